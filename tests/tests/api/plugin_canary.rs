//! Shadow and canary of plugin releases (issue 17, part 2): a shadow sees
//! live calls off their path and reports how its answers differ, without
//! delaying them; a canary prices its share of riders for real and each
//! rental names the build that priced it; a failing canary stops itself,
//! with an audit row and a notice for operators.

use std::time::{Duration, Instant};

use powerbank::core::Db;
use powerbank_plugin_runtime::canary_bucket;
use powerbank_tests::{Session, TestServer, fake_gateways::Gateways};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::plugin_releases::{dist, overdue_now, overdue_rider, pricing, upload, wasm};
use crate::support::renting::{self, SN, customer, initiate, rows, station};

/// pricing-standard from its file (NPR 5 per started hour late), with room
/// for a slow shadow to spin for 2 s per call.
fn manifest() -> String {
    format!(
        r#"
[plugins.pricing-standard]
kind = "pricing"
path = "{}"
[plugins.pricing-standard.config]
overdue_paisa_per_hour = 500
[plugins.pricing-standard.limits]
timeout_ms = 2000

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

fn release_path(id: i64, what: &str) -> String {
    format!("/api/admin/plugins/pricing-standard/releases/{id}/{what}")
}

async fn staged(s: &TestServer, admin: &Session, file: &str, config: &str) -> i64 {
    let r = upload(s, &admin.access, "pricing-standard", wasm(file), config).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// Polls `path` until `done` holds (the shadow worker runs in the background).
async fn report_until(s: &TestServer, admin: &Session, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.get(path, Some(&admin.access)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if done(&r.body) || Instant::now() > deadline {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_shadow_reports_how_its_answers_differ_and_never_decides() {
    let s = server(|_| {}).await;
    let admin = s.admin().await;
    let (rider, rental) = overdue_rider(&s).await;
    let release = staged(&s, &admin, "pricing_standard.wasm", "overdue_paisa_per_hour = 900").await;

    // Refusals first: a bad sample rate, no such release, nothing to stop.
    let r = s.post(&release_path(release, "shadow"), Some(&admin.access), json!({"sample_percent": 0})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s.post(&release_path(9999, "shadow"), Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = s.call(reqwest::Method::DELETE, &release_path(release, "shadow"), Some(&admin.access), None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "candidate_not_running"), "{}", r.body);

    let r = s.post(&release_path(release, "shadow"), Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["mode"].as_str(), r.body["running"].as_bool()), (Some("shadow"), Some(true)));
    let listed = pricing(&s, &admin).await;
    assert_eq!(
        (listed["candidate_release_id"].as_i64(), listed["candidate_mode"].as_str()),
        (Some(release), Some("shadow"))
    );

    // Every answer is the serving build's (3 started hours at NPR 5).
    for _ in 0..5 {
        let due = overdue_now(&s, &rider, rental).await;
        assert_eq!(due.status, StatusCode::OK, "{}", due.body);
        assert_eq!(due.body["overdue_now_paisa"], 1500, "the shadow decided: {}", due.body);
    }
    let report =
        report_until(&s, &admin, &release_path(release, "shadow"), |b| b["different"].as_i64() >= Some(5)).await;
    // (The rentals sweep may ask for a lost policy meanwhile: that is shadowed too.)
    assert!(report["calls"].as_i64() >= Some(5), "{report}");
    assert_eq!((report["shadow_failures"].as_i64(), report["dropped"].as_i64()), (Some(0), Some(0)), "{report}");
    assert!(report["live_p50_us"].as_i64().is_some() && report["shadow_p99_us"].as_i64().is_some(), "{report}");
    let samples = report["samples"].as_array().unwrap();
    let overdue: Vec<&Value> = samples.iter().filter(|d| d["operation"] == "overdue-charge").collect();
    assert_eq!(overdue.len(), 5, "{report}");
    let sample = overdue[0];
    assert_eq!(
        (sample["live"]["amount_paisa"].as_i64(), sample["shadow"]["amount_paisa"].as_i64()),
        (Some(1500), Some(2700))
    );
    assert!(sample["input"].is_array(), "{sample}");

    // The same report at the canary path; stopping keeps it readable.
    let r = s.call(reqwest::Method::DELETE, &release_path(release, "shadow"), Some(&admin.access), None).await;
    assert_eq!((r.status, r.body["running"].as_bool()), (StatusCode::OK, Some(false)), "{}", r.body);
    assert!(pricing(&s, &admin).await["candidate_mode"].is_null());
    let after = s.get(&release_path(release, "canary"), Some(&admin.access)).await;
    assert!(after.body["different"].as_i64() >= Some(5), "{}", after.body);
    assert_eq!(overdue_now(&s, &rider, rental).await.body["overdue_now_paisa"], 1500);
    let audit =
        rows(&s, "SELECT action FROM admin_audit_log WHERE action LIKE 'plugin.release.shadow.%' ORDER BY id", []);
    assert_eq!(audit, vec![vec![json!("plugin.release.shadow.start")], vec![json!("plugin.release.shadow.stop")]]);
}

/// How long an operator's price preview (a quote, an overdue charge and a
/// lost policy from the pricing plugin) takes, and the quoted price.
async fn timed_preview(s: &TestServer, admin: &Session) -> (Duration, Option<i64>) {
    let preview = json!({"package_id": 1, "due_at": "2026-01-01T10:00:00Z", "returned_at": "2026-01-01T12:30:00Z"});
    let at = Instant::now();
    let r = s.post("/api/admin/pricing/preview", Some(&admin.access), preview).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (at.elapsed(), r.body["quote"]["amount_paisa"].as_i64())
}

#[tokio::test]
async fn a_slow_shadow_does_not_delay_the_live_answer() {
    let s = server(|_| {}).await;
    let admin = s.admin().await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    // Spins in `quote` until its 2 s deadline.
    let release = staged(&s, &admin, "spin_forever.wasm", "").await;
    let (before, price) = timed_preview(&s, &admin).await;

    let r = s.post(&release_path(release, "shadow"), Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for _ in 0..3 {
        let (took, shadowed_price) = timed_preview(&s, &admin).await;
        assert_eq!(shadowed_price, price);
        // Had it waited for the shadow, it would have taken its 2 s; the
        // bound is generous for a loaded machine and far below that.
        assert!(
            took < Duration::from_millis(1500),
            "live answer took {took:?} with a slow shadow (before: {before:?})"
        );
    }
    // The shadow's calls ran out their time in the background.
    let report =
        report_until(&s, &admin, &release_path(release, "shadow"), |b| b["shadow_failures"].as_i64() >= Some(1)).await;
    assert!(report["shadow_failures"].as_i64() >= Some(1), "{report}");
    let timeouts = report["samples"].as_array().unwrap().iter().filter(|d| d["shadow"]["error"] == "timeout").count();
    assert!(timeouts >= 1, "{report}");
    let r = s.call(reqwest::Method::DELETE, &release_path(release, "shadow"), Some(&admin.access), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn a_failing_canary_stops_itself_and_operators_hear_of_it() {
    let s = server(|c| {
        c.canary_min_calls = 4;
        c.canary_max_failure_percent = 20;
    })
    .await;
    let admin = s.admin().await;
    let (rider, rental) = overdue_rider(&s).await;
    // `overdue-charge` executes `unreachable`.
    let release = staged(&s, &admin, "trap.wasm", "").await;
    let rider_id = rider.user["id"].as_i64().unwrap().to_string();
    assert!(canary_bucket(&rider_id, release) < 99, "the rider must be in the canary's 99 %");

    let r = s.post(&release_path(release, "canary"), Some(&admin.access), json!({"percent": 99})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "reason_required"), "{}", r.body);
    let r = s.post(&release_path(release, "canary"), Some(&admin.access), json!({"percent": 100, "reason": "x"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s
        .post(
            &release_path(release, "canary"),
            Some(&admin.access),
            json!({"percent": 99, "reason": "try the new rules"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["min_calls"].as_i64(), r.body["max_failure_percent"].as_i64()), (Some(4), Some(20)));

    // The canary decides for the rider and traps, four times: then it is stopped.
    for _ in 0..4 {
        let due = overdue_now(&s, &rider, rental).await;
        assert_eq!((due.status, due.error_code()), (StatusCode::BAD_GATEWAY, "plugin_failed"), "{}", due.body);
    }
    let due = overdue_now(&s, &rider, rental).await;
    assert_eq!((due.status, due.body["overdue_now_paisa"].as_i64()), (StatusCode::OK, Some(1500)), "{}", due.body);

    let report = s.get(&release_path(release, "canary"), Some(&admin.access)).await.body;
    assert_eq!((report["running"].as_bool(), report["canary_failures"].as_i64()), (Some(false), Some(4)), "{report}");
    assert!(report["stop_reason"].as_str().unwrap().contains("4 of 4 calls failed"), "{report}");
    let listed = pricing(&s, &admin).await;
    assert!(listed["candidate_mode"].is_null(), "{listed}");
    assert!(listed["notice"].as_str().unwrap_or_default().contains("stopped"), "{listed}");
    assert_eq!(listed["source"], "file", "the serving build never changed");

    // The system's audit row arrives from the notice listener.
    let deadline = Instant::now() + Duration::from_secs(10);
    let audit = loop {
        let audit = rows(
            &s,
            "SELECT request_id, after_json, reason FROM admin_audit_log WHERE action = 'plugin.release.canary.auto_rollback'",
            [],
        );
        if !audit.is_empty() || Instant::now() > deadline {
            break audit;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0][0], "system");
    assert!(audit[0][1].as_str().unwrap().contains("\"actor\":\"system\""), "{audit:?}");
    assert!(audit[0][2].as_str().unwrap().contains("stopped"), "{audit:?}");
}

#[tokio::test]
async fn a_canary_prices_its_share_of_riders_and_each_rental_names_the_build() {
    let gw = Gateways::start().await;
    let s = renting::server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let admin = s.admin().await;
    let r =
        upload(&s, &admin.access, "pricing-standard", wasm("pricing_standard.wasm"), "service_fee_paisa = 1000").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let release = r.body["id"].as_i64().unwrap();
    let r = s
        .post(
            &format!("/api/admin/plugins/pricing-standard/releases/{release}/canary"),
            Some(&admin.access),
            json!({"percent": 50, "reason": "a service fee for half the riders"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // One rider on each side of the split (the split is by user id).
    let (mut inside, mut outside) = (None, None);
    for n in 0..40 {
        let rider = customer(&s, &format!("98415{n:05}"), 20_000).await;
        let id = rider.user["id"].as_i64().unwrap().to_string();
        match canary_bucket(&id, release) < 50 {
            true if inside.is_none() => inside = Some(rider),
            false if outside.is_none() => outside = Some(rider),
            _ => {}
        }
        if inside.is_some() && outside.is_some() {
            break;
        }
    }
    let (inside, outside) = (inside.unwrap(), outside.unwrap());

    let mut rented = Vec::new();
    for rider in [&inside, &outside] {
        let r = initiate(&s, rider, SN, "wallet", None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        rented.push(r.body["id"].as_i64().unwrap());
    }
    let stored = |id: i64| rows(&s, "SELECT amount_paisa, plugin_release FROM rentals WHERE id = ?1", [id]).remove(0);
    let (canary, serving) = (stored(rented[0]), stored(rented[1]));
    assert_eq!((canary[0].as_i64(), serving[0].as_i64()), (Some(6_000), Some(5_000)), "{canary:?} {serving:?}");
    let canary_build = canary[1].as_str().unwrap();
    let serving_build = serving[1].as_str().unwrap();
    assert!(canary_build.starts_with("pricing-standard@") && canary_build.ends_with(&format!("+r{release}")));
    assert!(serving_build.starts_with("pricing-standard@") && !serving_build.contains("+r"), "{serving_build}");

    // The operator sees it on the rider's page.
    let detail = s.get(&format!("/api/admin/users/{}", inside.user["id"]), Some(&admin.access)).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_eq!(detail.body["last_rentals"][0]["plugin_release"], canary_build, "{}", detail.body);

    let report =
        s.get(&format!("/api/admin/plugins/pricing-standard/releases/{release}/canary"), Some(&admin.access)).await;
    assert!(report.body["canary_calls"].as_i64() >= Some(1), "{}", report.body);
    assert_eq!(report.body["canary_failures"], 0, "{}", report.body);
}

#[tokio::test]
async fn a_payment_verifies_through_the_gateway_build_that_created_it() {
    let gw = Gateways::start().await;
    let s = gw.server().await;
    let admin = s.admin().await;
    let user = s.register("9841600001").await;
    // A Khalti build whose server is nowhere (and no allowed host).
    let config = "base_url = \"http://127.0.0.1:9\"\nwebsite_url = \"https://powerbank.test\"\n\
                  return_url = \"https://powerbank.test/payment/khalti/return\"";
    let r = upload(&s, &admin.access, "khalti", wasm("khalti.wasm"), config).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let release = r.body["id"].as_i64().unwrap();

    let topup = json!({"amount_paisa": 10_000, "gateway": "khalti"});
    let created = s.post("/api/wallet/topup-intent", Some(&user.access), topup.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let (intent, pidx) = (created.body["id"].as_str().unwrap().to_string(), created.body["gateway_reference"].clone());
    let stored = rows(&s, "SELECT plugin_release FROM payment_intents WHERE id = ?1", [&intent]);
    let file_build = stored[0][0].as_str().unwrap().to_string();
    assert!(file_build.starts_with("khalti@") && !file_build.contains("+r"), "{file_build}");

    let r =
        s.post(&format!("/api/admin/plugins/khalti/releases/{release}/promote"), Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The intent created before the promote verifies through its own build.
    gw.khalti.complete(pidx.as_str().unwrap());
    let r = s.post("/api/payment/verify-topup", Some(&user.access), json!({"intent_id": intent, "pidx": pidx})).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("credited")), "{}", r.body);

    // New intents are the new build's, which cannot reach its server.
    let r = s.post("/api/wallet/topup-intent", Some(&user.access), topup).await;
    assert!(r.status.is_server_error(), "{} {}", r.status, r.body);
}
