//! Operators inspect and hot-reload plugins through the admin API.

use std::path::{Path, PathBuf};

use powerbank_tests::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn dist(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist").join(file);
    assert!(path.exists(), "{} missing: run `cargo xtask build-plugins`", path.display());
    path
}

fn manifest(pricing_wasm: &str, overdue_paisa_per_hour: u32) -> String {
    format!(
        r#"
[plugins.pricing-standard]
kind = "pricing"
path = "{}"
[plugins.pricing-standard.config]
overdue_paisa_per_hour = {overdue_paisa_per_hour}

[plugins.points-standard]
kind = "points-rules"
path = "{}"
"#,
        dist(pricing_wasm).display(),
        dist("points_standard.wasm").display()
    )
}

fn plugin<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array().and_then(|l| l.iter().find(|p| p["name"] == name)).unwrap_or(&Value::Null)
}

#[tokio::test]
async fn admins_list_and_hot_reload_plugins_and_a_broken_one_never_replaces_a_working_one() {
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("plugins.toml");
    std::fs::write(&manifest_path, manifest("pricing_standard.wasm", 500)).unwrap();
    let path = manifest_path.clone();
    let s = TestServer::start_with(move |c| c.plugins_path = path).await;
    let admin = s.admin().await;

    let list = s.get("/api/admin/plugins", Some(&admin.access)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let pricing = plugin(&list.body, "pricing-standard");
    assert_eq!(pricing["status"], "active");
    assert_eq!(pricing["kind"], "pricing");
    assert_eq!(pricing["version"], "0.1.0");
    let serving_sha = pricing["sha256"].as_str().unwrap().to_string();

    let user = s.register("9841300001").await;
    assert_eq!(s.get("/api/admin/plugins", Some(&user.access)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.post("/api/admin/plugins/reload", None, json!({})).await.status, StatusCode::UNAUTHORIZED);

    // A replacement whose self-check fails is refused; the old one keeps serving.
    std::fs::write(&manifest_path, manifest("bad_self_check.wasm", 500)).unwrap();
    let r = s.post("/api/admin/plugins/reload", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["failed"][0]["name"], "pricing-standard");
    let pricing = plugin(&r.body["plugins"], "pricing-standard").clone();
    assert_eq!(pricing["sha256"], serving_sha.as_str(), "the broken build must not be swapped in");
    assert!(pricing["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{pricing}");
    let health = s.get("/api/health", None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    assert_eq!(health.body["plugins"]["status"], "ok");

    // An unreadable manifest changes nothing and says why.
    std::fs::write(&manifest_path, "[plugins.x\nkind = ").unwrap();
    let r = s.post("/api/admin/plugins/reload", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_plugins_config");

    // A good change is loaded and swapped in.
    std::fs::write(&manifest_path, manifest("pricing_standard.wasm", 800)).unwrap();
    let r = s.post("/api/admin/plugins/reload", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["loaded"].as_array().unwrap().iter().any(|n| n == "pricing-standard"), "{}", r.body);
    assert!(r.body["failed"].as_array().unwrap().is_empty(), "{}", r.body);
    assert!(plugin(&r.body["plugins"], "pricing-standard")["last_error"].is_null());
}
