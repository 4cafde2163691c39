//! Late-fee modes of pricing-standard through `POST /api/admin/pricing/preview`,
//! across hot reloads: each mode, grace and caps as configured, and a bad
//! config refused at load while the previous one keeps serving.

use std::path::{Path, PathBuf};

use powerbank::core::Db;
use powerbank_tests::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn dist(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist").join(file);
    assert!(path.exists(), "{} missing: run `cargo xtask build-plugins`", path.display());
    path
}

/// plugins.toml with pricing-standard configured by `pricing_config` (TOML lines).
fn manifest(pricing_config: &str) -> String {
    format!(
        "[plugins.pricing-standard]\nkind = \"pricing\"\npath = \"{}\"\n[plugins.pricing-standard.config]\n{pricing_config}\n\n\
         [plugins.points-standard]\nkind = \"points-rules\"\npath = \"{}\"\n",
        dist("pricing_standard.wasm").display(),
        dist("points_standard.wasm").display()
    )
}

const DUE: &str = "2026-03-01T12:00:00Z";

/// The preview of package 1 (HOUR_1, NPR 50 for an hour) returned at `returned_at`.
async fn preview(s: &TestServer, token: &str, returned_at: &str) -> Value {
    let r = s
        .post(
            "/api/admin/pricing/preview",
            Some(token),
            json!({"package_id": 1, "due_at": DUE, "returned_at": returned_at}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn reload(s: &TestServer, token: &str, path: &Path, pricing_config: &str) -> Value {
    std::fs::write(path, manifest(pricing_config)).unwrap();
    let r = s.post("/api/admin/plugins/reload", Some(token), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn operators_preview_each_late_fee_mode_and_a_bad_config_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("plugins.toml");
    std::fs::write(&manifest_path, manifest("overdue_paisa_per_hour = 500")).unwrap();
    let path = manifest_path.clone();
    let s = TestServer::start_with(move |c| c.plugins_path = path).await;
    powerbank::demo::seed_if_empty(&Db::open(&s.db_path(), 1).unwrap()).unwrap();
    let admin = s.admin().await;
    let token = admin.access.as_str();

    // Per started hour (the default): 90 minutes late is 2 hours at NPR 5.
    let p = preview(&s, token, "2026-03-01T13:30:00Z").await;
    assert_eq!(p["quote"]["amount_paisa"], 5_000, "{p}");
    assert_eq!(p["quote"]["due_minutes"], 60);
    assert_eq!(p["overdue"]["amount_paisa"], 1_000, "{p}");
    assert_eq!(
        (p["lost"]["lost_after_minutes"].as_i64(), p["lost"]["penalty_paisa"].as_i64()),
        (Some(1_440), Some(500_000))
    );
    assert!(p["plugin"].as_str().is_some_and(|n| n.starts_with("pricing-standard@")), "{p}");
    // On time is free.
    assert_eq!(preview(&s, token, "2026-03-01T11:59:00Z").await["overdue"]["amount_paisa"], 0);

    // A multiple of the package's own rate (NPR 50 an hour x 1.5), by the
    // minute, with a grace period, a daily cap and a total cap.
    let package_rate = "overdue_mode = \"package_rate\"\noverdue_rate_percent = 150\noverdue_grace_minutes = 10\n\
                        overdue_daily_cap_paisa = 20000\noverdue_cap_paisa = 30000\n\
                        lost_after_hours = 48\nlost_penalty_paisa = 300000";
    let r = reload(&s, token, &manifest_path, package_rate).await;
    assert!(r["failed"].as_array().unwrap().is_empty(), "{r}");
    let p = preview(&s, token, "2026-03-01T13:30:00Z").await;
    assert_eq!(p["overdue"]["amount_paisa"], 11_250, "90 min x NPR 75 an hour: {p}");
    assert_eq!(
        (p["lost"]["lost_after_minutes"].as_i64(), p["lost"]["penalty_paisa"].as_i64()),
        (Some(2_880), Some(300_000))
    );
    assert_eq!(preview(&s, token, "2026-03-01T12:10:00Z").await["overdue"]["amount_paisa"], 0, "within the grace");
    // 10 h late: NPR 750, capped at NPR 200 for the day.
    assert_eq!(preview(&s, token, "2026-03-01T22:00:00Z").await["overdue"]["amount_paisa"], 20_000);
    // 30 h late: NPR 200 for each of two days is NPR 400, capped at NPR 300.
    assert_eq!(preview(&s, token, "2026-03-02T18:00:00Z").await["overdue"]["amount_paisa"], 30_000);

    // Pro rata per minute: NPR 6 an hour is 10 paisa a minute.
    let r = reload(&s, token, &manifest_path, "overdue_mode = \"per_minute\"\noverdue_paisa_per_hour = 600").await;
    assert!(r["failed"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(preview(&s, token, "2026-03-01T13:30:00Z").await["overdue"]["amount_paisa"], 900);

    // Bad configs fail the load, naming the key; per_minute keeps serving.
    for bad in [
        "overdue_mode = \"weekly\"",
        "overdue_mode = \"package_rate\"\noverdue_rate_percent = 0",
        "lost_after_hours = 0",
        "overdue_daily_cap_paisa = -5",
        "overdue_reminder_minutes = \"0,soon\"",
    ] {
        let r = reload(&s, token, &manifest_path, bad).await;
        assert_eq!(r["failed"][0]["name"], "pricing-standard", "{bad}: {r}");
        assert_eq!(preview(&s, token, "2026-03-01T13:30:00Z").await["overdue"]["amount_paisa"], 900, "{bad}");
    }

    // Refusals.
    let user = s.register("9841600001").await;
    let body = json!({"package_id": 1, "due_at": DUE, "returned_at": DUE});
    let r = s.post("/api/admin/pricing/preview", Some(&user.access), body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(s.post("/api/admin/pricing/preview", None, body).await.status, StatusCode::UNAUTHORIZED);
    let r = s
        .post("/api/admin/pricing/preview", Some(token), json!({"package_id": 1, "due_at": "noon", "returned_at": DUE}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s
        .post("/api/admin/pricing/preview", Some(token), json!({"package_id": 999, "due_at": DUE, "returned_at": DUE}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.error_code(), "not_found");
}
