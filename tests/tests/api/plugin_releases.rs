//! Plugin releases (issue 17): an operator uploads a build over the admin
//! API, it is checked and staged (or rejected with the reason), promoted
//! under load without a failed call, kept across a restart, and rolled back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use powerbank::core::Db;
use powerbank_tests::{Reply, Session, TestServer};
use reqwest::{StatusCode, multipart};
use serde_json::{Value, json};

use crate::support::renting::sql;

pub(crate) fn dist(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist").join(file);
    assert!(path.exists(), "{} missing: run `cargo xtask build-plugins`", path.display());
    path
}

/// pricing-standard charging NPR 5 per started hour late, from its file.
fn manifest() -> String {
    format!(
        r#"
[plugins.pricing-standard]
kind = "pricing"
path = "{}"
[plugins.pricing-standard.config]
overdue_paisa_per_hour = 500

[plugins.points-standard]
kind = "points-rules"
path = "{}"
"#,
        dist("pricing_standard.wasm").display(),
        dist("points_standard.wasm").display()
    )
}

async fn server(adjust: impl FnOnce(&mut powerbank::config::Config) + Send + 'static) -> TestServer {
    TestServer::start_with(move |c| {
        c.plugins_path = c.data_dir.join("plugins.toml");
        std::fs::write(&c.plugins_path, manifest()).unwrap();
        adjust(c);
    })
    .await
}

pub(crate) async fn upload(s: &TestServer, token: &str, plugin: &str, wasm: Vec<u8>, config: &str) -> Reply {
    upload_signed(s, token, plugin, wasm, config, None).await
}

async fn upload_signed(
    s: &TestServer,
    token: &str,
    plugin: &str,
    wasm: Vec<u8>,
    config: &str,
    signature: Option<&str>,
) -> Reply {
    let mut form = multipart::Form::new()
        .part("wasm", multipart::Part::bytes(wasm).file_name("plugin.wasm"))
        .text("config", config.to_string());
    if let Some(signature) = signature {
        form = form.text("signature", signature.to_string());
    }
    let url = s.url(&format!("/api/admin/plugins/{plugin}/releases"));
    TestServer::read(s.http.post(url).bearer_auth(token).multipart(form).send().await.unwrap()).await
}

pub(crate) fn wasm(file: &str) -> Vec<u8> {
    std::fs::read(dist(file)).unwrap()
}

pub(crate) async fn pricing(s: &TestServer, admin: &Session) -> Value {
    let list = s.get("/api/admin/plugins", Some(&admin.access)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    list.body.as_array().unwrap().iter().find(|p| p["name"] == "pricing-standard").cloned().unwrap()
}

/// A rider whose rental has been overdue for 2 h 30 min: 3 started hours,
/// so the price changes only with the per-hour rate, far from any boundary.
pub(crate) async fn overdue_rider(s: &TestServer) -> (Session, i64) {
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let rider = s.register("9841500001").await;
    let now = chrono::Utc::now().timestamp();
    let due = now - 150 * 60;
    sql(
        s,
        "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index,
                              amount_paisa, due_minutes, started_at, due_at, created_at, updated_at)
         VALUES ('RL-TEST-1', ?1, (SELECT MIN(id) FROM rental_packages), 'active', 'wallet',
                 (SELECT MIN(id) FROM stations), 1, 0, 60, ?2, ?3, ?2, ?2)",
        rusqlite::params![rider.user["id"].as_i64().unwrap(), due - 3600, due],
    );
    let id = rental_id_of(s);
    (rider, id)
}

pub(crate) fn rental_id_of(s: &TestServer) -> i64 {
    let rows = crate::support::renting::rows(s, "SELECT id FROM rentals WHERE code = 'RL-TEST-1'", []);
    rows[0][0].as_i64().unwrap()
}

pub(crate) async fn overdue_now(s: &TestServer, rider: &Session, rental: i64) -> Reply {
    s.get(&format!("/api/rentals/{rental}/calculate-due"), Some(&rider.access)).await
}

#[tokio::test]
async fn a_release_is_checked_then_staged_or_rejected_and_nothing_serving_changes() {
    let s = server(|_| {}).await;
    let admin = s.admin().await;
    let serving = pricing(&s, &admin).await;
    assert_eq!(serving["source"], "file");

    // A good build with its own config (TOML) is staged.
    let r =
        upload(&s, &admin.access, "pricing-standard", wasm("pricing_standard.wasm"), "overdue_paisa_per_hour = 900\n")
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "staged");
    assert_eq!(r.body["version"], "0.1.0");
    assert_eq!(r.body["config"]["overdue_paisa_per_hour"], "900");
    assert_eq!(r.body["sha256"], serving["sha256"], "content-addressed by the same sha256 as the file");
    let staged = r.body["id"].as_i64().unwrap();
    let stored =
        s.config().data_dir.join("plugin-releases").join(format!("{}.wasm", r.body["sha256"].as_str().unwrap()));
    assert!(stored.exists(), "{} not stored", stored.display());

    // The same with a JSON config.
    let r = upload(
        &s,
        &admin.access,
        "pricing-standard",
        wasm("pricing_standard.wasm"),
        r#"{"overdue_paisa_per_hour": 700}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["config"]["overdue_paisa_per_hour"], "700");

    // A build of another world is rejected, with the reason, and recorded.
    let r = upload(&s, &admin.access, "pricing-standard", wasm("points_standard.wasm"), "").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.error_code(), "release_rejected");
    let wrong_world = r.body["error"]["details"]["release_id"].as_i64().unwrap();
    let d = s.get(&format!("/api/admin/plugins/pricing-standard/releases/{wrong_world}"), Some(&admin.access)).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["state"], "rejected");
    assert!(d.body["reason"].as_str().unwrap().contains("pricing"), "{}", d.body);

    // A failing self-check is rejected.
    let r = upload(&s, &admin.access, "pricing-standard", wasm("bad_self_check.wasm"), "").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("self-check"), "{}", r.body);

    // A config the plugin's self-check refuses is rejected too.
    let r = upload(
        &s,
        &admin.access,
        "pricing-standard",
        wasm("pricing_standard.wasm"),
        "overdue_paisa_per_hour = \"lots\"",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // Malformed input: no file, bad config, not Wasm at all.
    let form = multipart::Form::new().text("config", "");
    let url = s.url("/api/admin/plugins/pricing-standard/releases");
    let r = TestServer::read(s.http.post(&url).bearer_auth(&admin.access).multipart(form).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = upload(&s, &admin.access, "pricing-standard", wasm("pricing_standard.wasm"), "x = [1, 2]").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = upload(&s, &admin.access, "pricing-standard", b"not wasm".to_vec(), "").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // A 60 MB upload is over the limit.
    let r = upload(&s, &admin.access, "pricing-standard", vec![0u8; 60 * 1024 * 1024], "").await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert_eq!(r.error_code(), "payload_too_large");

    // Unknown slots and non-admins.
    let r = upload(&s, &admin.access, "no-such-plugin", wasm("pricing_standard.wasm"), "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let rider = s.register("9841500002").await;
    let r = upload(&s, &rider.access, "pricing-standard", wasm("pricing_standard.wasm"), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = s.get("/api/admin/plugins/pricing-standard/releases", Some(&rider.access)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // The listing is newest first; rejected builds cannot be promoted.
    let list = s.get("/api/admin/plugins/pricing-standard/releases", Some(&admin.access)).await;
    let ids: Vec<i64> = list.body.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 6, "{}", list.body);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(*ids.last().unwrap(), staged);
    let r = s
        .post(
            &format!("/api/admin/plugins/pricing-standard/releases/{wrong_world}/promote"),
            Some(&admin.access),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    // Nothing serving changed.
    let after = pricing(&s, &admin).await;
    assert_eq!((after["source"].clone(), after["sha256"].clone()), (json!("file"), serving["sha256"].clone()));
}

#[tokio::test]
async fn promote_swaps_under_load_without_a_failed_call_survives_a_restart_and_rolls_back() {
    let s = server(|_| {}).await;
    let admin = s.admin().await;
    let (rider, rental) = overdue_rider(&s).await;
    let due = overdue_now(&s, &rider, rental).await;
    assert_eq!(due.status, StatusCode::OK, "{}", due.body);
    assert_eq!(due.body["overdue_now_paisa"], 1500, "3 started hours at NPR 5: {}", due.body);

    let r =
        upload(&s, &admin.access, "pricing-standard", wasm("pricing_standard.wasm"), "overdue_paisa_per_hour = 900")
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let release = r.body["id"].as_i64().unwrap();
    assert_eq!(overdue_now(&s, &rider, rental).await.body["overdue_now_paisa"], 1500, "staged is not serving");

    // 8 riders' worth of concurrent calls while the release is promoted.
    let s = Arc::new(s);
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for _ in 0..8 {
        let (s, rider, stop) = (s.clone(), rider.access.clone(), stop.clone());
        callers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = s.get(&format!("/api/rentals/{rental}/calculate-due"), Some(&rider)).await;
                seen.push((r.status, r.body["overdue_now_paisa"].as_i64()));
            }
            seen
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = s
        .post(
            &format!("/api/admin/plugins/pricing-standard/releases/{release}/promote"),
            Some(&admin.access),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["plugin"]["source"], "release");
    assert_eq!(r.body["plugin"]["release_id"], release);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = 0;
    for caller in callers {
        let seen = caller.await.unwrap();
        calls += seen.len();
        for (status, amount) in &seen {
            assert_eq!(*status, StatusCode::OK, "a call failed during the promote");
            assert!(matches!(amount, Some(1500) | Some(2700)), "{amount:?}");
        }
        assert_eq!(seen.last().unwrap().1, Some(2700), "calls after the promote get the release");
    }
    assert!(calls >= 16, "only {calls} calls were made");
    let s = Arc::try_unwrap(s).ok().unwrap();

    let listed = pricing(&s, &admin).await;
    assert_eq!((listed["source"].clone(), listed["release_id"].clone()), (json!("release"), json!(release)));
    let d = s.get(&format!("/api/admin/plugins/pricing-standard/releases/{release}"), Some(&admin.access)).await;
    assert_eq!(d.body["state"], "active");

    // The promoted release wins over the file after a restart.
    let s = s.restart().await;
    let admin = s.admin().await;
    let listed = pricing(&s, &admin).await;
    assert_eq!((listed["source"].clone(), listed["release_id"].clone()), (json!("release"), json!(release)));
    assert_eq!(overdue_now(&s, &rider, rental).await.body["overdue_now_paisa"], 2700);

    // Roll back to what served before: the file.
    let r = s.post("/api/admin/plugins/pricing-standard/rollback", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["plugin"]["source"], "file");
    assert!(r.body["plugin"]["release_id"].is_null());
    assert_eq!(overdue_now(&s, &rider, rental).await.body["overdue_now_paisa"], 1500);
    let d = s.get(&format!("/api/admin/plugins/pricing-standard/releases/{release}"), Some(&admin.access)).await;
    assert_eq!(d.body["state"], "retired");

    // To any kept release by id, and to the file by name.
    let r = s
        .post("/api/admin/plugins/pricing-standard/rollback", Some(&admin.access), json!({"release_id": release}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(overdue_now(&s, &rider, rental).await.body["overdue_now_paisa"], 2700);
    let r = s.post("/api/admin/plugins/pricing-standard/rollback", Some(&admin.access), json!({"file": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["plugin"]["source"], "file");
    assert_eq!(overdue_now(&s, &rider, rental).await.body["overdue_now_paisa"], 1500);

    // Refusals change nothing.
    let r = s
        .post("/api/admin/plugins/pricing-standard/rollback", Some(&admin.access), json!({"release_id": 999999}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = s
        .post(
            "/api/admin/plugins/pricing-standard/rollback",
            Some(&admin.access),
            json!({"release_id": release, "file": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(pricing(&s, &admin).await["source"], "file");
}

#[tokio::test]
async fn only_the_last_releases_of_a_plugin_are_kept() {
    let s = server(|c| c.plugin_releases_kept = 2).await;
    let admin = s.admin().await;
    let mut ids = Vec::new();
    for rate in [600, 700, 800] {
        let r = upload(
            &s,
            &admin.access,
            "pricing-standard",
            wasm("pricing_standard.wasm"),
            &format!("overdue_paisa_per_hour = {rate}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_i64().unwrap());
    }
    let list = s.get("/api/admin/plugins/pricing-standard/releases", Some(&admin.access)).await;
    let kept: Vec<i64> = list.body.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(kept, vec![ids[2], ids[1]]);
    let r = s.get(&format!("/api/admin/plugins/pricing-standard/releases/{}", ids[0]), Some(&admin.access)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // The component is shared by the kept releases, so it stays on disk.
    let sha = list.body[0]["sha256"].as_str().unwrap();
    assert!(s.config().data_dir.join("plugin-releases").join(format!("{sha}.wasm")).exists());
}

#[tokio::test]
async fn when_plugins_toml_trusts_keys_only_builds_signed_by_one_load_or_stage() {
    use powerbank_plugin_runtime::signing;
    let (secret, public) = signing::keypair_from_seed([42; 32]);
    let (stranger, _) = signing::keypair_from_seed([43; 32]);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(wasm("pricing_standard.wasm")));
    let signature = signing::sign(&secret, &sha).unwrap();
    let (file_signature, trusted) = (signature.clone(), public.clone());
    let s = TestServer::start_with(move |c| {
        // pricing: a file signed beside it (`.sig`); points: unsigned but
        // allowed; promotions: unsigned, so it must not load.
        let pricing = c.data_dir.join("pricing_standard.wasm");
        std::fs::copy(dist("pricing_standard.wasm"), &pricing).unwrap();
        std::fs::write(c.data_dir.join("pricing_standard.wasm.sig"), format!("{file_signature}\n")).unwrap();
        c.plugins_path = c.data_dir.join("plugins.toml");
        let manifest = format!(
            r#"
[signing]
trusted_keys = ["{trusted}"]

[plugins.pricing-standard]
kind = "pricing"
path = "{}"

[plugins.points-standard]
kind = "points-rules"
path = "{}"
allow_unsigned = true

[plugins.promotions-standard]
kind = "promotions"
path = "{}"
"#,
            pricing.display(),
            dist("points_standard.wasm").display(),
            dist("promotions_standard.wasm").display()
        );
        std::fs::write(&c.plugins_path, manifest).unwrap();
    })
    .await;
    let admin = s.admin().await;
    let list = s.get("/api/admin/plugins", Some(&admin.access)).await;
    let status = |name: &str| list.body.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
    assert_eq!(status("pricing-standard")["status"], "active", "{}", list.body);
    assert_eq!(status("points-standard")["status"], "active", "{}", list.body);
    let promotions = status("promotions-standard");
    assert_eq!(promotions["status"], "failed", "{}", list.body);
    assert!(promotions["last_error"].as_str().unwrap().contains("unsigned"), "{promotions}");

    // A build signed by a trusted key is staged and says by whom.
    let good = wasm("pricing_standard.wasm");
    let r = upload_signed(&s, &admin.access, "pricing-standard", good.clone(), "", Some(&signature)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["signed_by"], public.as_str());
    let signed = r.body["id"].as_i64().unwrap();

    // Signed by a stranger, a signature of something else, or not signed: rejected.
    let strangers = signing::sign(&stranger, &sha).unwrap();
    let r = upload_signed(&s, &admin.access, "pricing-standard", good.clone(), "", Some(&strangers)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("bad signature"), "{}", r.body);
    let other = signing::sign(&secret, &"00".repeat(32)).unwrap();
    let r = upload_signed(&s, &admin.access, "pricing-standard", good.clone(), "", Some(&other)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = upload(&s, &admin.access, "pricing-standard", good.clone(), "").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("unsigned"), "{}", r.body);
    // The slot that allows unsigned builds takes one.
    let r = upload(&s, &admin.access, "points-standard", wasm("points_standard.wasm"), "").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // The signed release promotes, and loads again (its signature checked) after a restart.
    let r = s
        .post(&format!("/api/admin/plugins/pricing-standard/releases/{signed}/promote"), Some(&admin.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let s = s.restart().await;
    let admin = s.admin().await;
    let listed = pricing(&s, &admin).await;
    assert_eq!((listed["status"].clone(), listed["release_id"].clone()), (json!("active"), json!(signed)));
}
