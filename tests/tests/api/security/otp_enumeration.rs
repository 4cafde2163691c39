//! `get-otp` tells register and login apart (the app needs it), so every
//! answer, "exists" and "does not exist" included, is counted against the
//! per-address and per-identifier limits first: probing stops at the limit.

use powerbank_tests::TestServer;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn probing_for_accounts_hits_the_rate_limit() {
    let s = TestServer::start_with(|c| {
        // The production limits (the harness raises the per-address one).
        c.otp.per_ip_per_hour = 30;
        c.otp.per_target_per_hour = 5;
    })
    .await;
    let per_ip = s.config().otp.per_ip_per_hour as usize;
    let mut statuses = Vec::new();
    for i in 0..60 {
        let probe = json!({"identifier": format!("98410{i:05}"), "purpose": "login"});
        statuses.push(s.post("/api/auth/get-otp", None, probe).await.status);
    }
    let not_found = statuses.iter().filter(|s| **s == StatusCode::NOT_FOUND).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((not_found, limited), (per_ip, 60 - per_ip), "{statuses:?}");
    assert!(statuses[per_ip..].iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let r = s.post("/api/auth/get-otp", None, json!({"identifier": "9841777777", "purpose": "register"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn probing_one_identifier_hits_its_own_limit() {
    let s = TestServer::start_with(|c| c.otp.per_target_per_hour = 5).await;
    s.register("9841000090").await;
    // Registering used one code; the rest of the identifier's budget goes on
    // "already registered" answers, then the limit answers instead.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let probe = json!({"identifier": "9841000090", "purpose": "register"});
        statuses.push(s.post("/api/auth/get-otp", None, probe).await.status);
    }
    assert_eq!(statuses[..4], [StatusCode::CONFLICT; 4], "{statuses:?}");
    assert!(statuses[4..].iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}
