//! The cached hot read paths: station pages follow every applied station
//! message at once (ETag and 304 included), and the session check follows
//! logout and refresh-token reuse at once and never mixes riders up.

use std::time::Duration;

use powerbank_tests::{
    TestServer,
    mqtt::{Broker, link_config, linked_server, sim_config, start_sim, wait_for},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_codecs::native::StationEvent;

use crate::support::renting;

const SN: &str = "KTM-THAMEL-01";
const WAIT: Duration = Duration::from_secs(10);
const LIST: &str = "/api/stations?limit=100";

/// `GET /api/stations?limit=100`, optionally with `If-None-Match`: the
/// status, the ETag and the body (null for a 304).
async fn list(s: &TestServer, if_none_match: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut request = s.http.get(s.url(LIST));
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let etag = r.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    let body = if status == StatusCode::OK { r.json().await.unwrap() } else { Value::Null };
    (status, etag, body)
}

fn summary<'a>(page: &'a Value, sn: &str) -> &'a Value {
    page["results"].as_array().unwrap().iter().find(|s| s["serial_number"] == sn).expect("station listed")
}

async fn slot_status(s: &TestServer, slot: u64) -> Value {
    let detail = s.get(&format!("/api/stations/{SN}"), None).await.body;
    detail["slots"].as_array().unwrap().iter().find(|x| x["slot_index"] == slot).unwrap()["status"].clone()
}

#[tokio::test]
async fn a_slot_change_over_mqtt_shows_in_the_very_next_list_answer() {
    let s = linked_server(link_config(Broker::Embedded, 60)).await;
    let admin = s.admin().await;
    let mut sim = start_sim(&s, &admin, SN, sim_config(&s)).await;
    assert!(
        wait_for(WAIT, || async { s.get(&format!("/api/stations/{SN}"), None).await.body["status"] == "online" }).await
    );
    // From here on only this test's message changes the station.
    sim.stop_heartbeats();
    let detail = s.get(&format!("/api/stations/{SN}"), None).await.body;
    let empty = detail["slots"].as_array().unwrap().iter().find(|x| x["status"] == "empty").expect("an empty slot");
    let empty = empty["slot_index"].as_u64().unwrap();

    // The answer is cached and tagged: asking again with its ETag is a 304.
    // (Polled: a heartbeat already in flight may still move the version once.)
    let deadline = tokio::time::Instant::now() + WAIT;
    let (etag, before) = loop {
        let (status, etag, body) = list(&s, None).await;
        assert_eq!(status, StatusCode::OK);
        let etag = etag.expect("the list carries an ETag");
        let (again, same, _) = list(&s, Some(&etag)).await;
        if again == StatusCode::NOT_MODIFIED && same.as_deref() == Some(etag.as_str()) {
            break (etag, body);
        }
        assert!(tokio::time::Instant::now() < deadline, "If-None-Match with the current ETag never answered 304");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    sim.publish_event(&StationEvent::SlotFault { slot: u16::try_from(empty).unwrap(), reason: "jammed".into() })
        .await
        .unwrap();
    // Wait on another read path (the detail is not cached) until the link
    // applied the message...
    assert!(wait_for(WAIT, || async { slot_status(&s, empty).await == "fault" }).await);
    // ...and the very next list answer shows it, under a new ETag.
    let (status, new_etag, after) = list(&s, Some(&etag)).await;
    assert_eq!(status, StatusCode::OK, "the old ETag no longer matches");
    assert_ne!(new_etag.as_deref(), Some(etag.as_str()));
    assert_eq!(summary(&after, SN)["empty_slots"], summary(&before, SN)["empty_slots"].as_i64().unwrap() - 1);
    // Nearby reads the same state.
    let nearby = s.get("/api/stations/nearby?lat=27.7154&lng=85.3123&radius=50000&limit=100", None).await;
    assert_eq!(summary(&nearby.body, SN)["empty_slots"], summary(&after, SN)["empty_slots"]);
}

#[tokio::test]
async fn an_operator_edit_shows_in_the_next_list_answer() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let r = s
        .post(
            "/api/admin/stations",
            Some(&admin.access),
            json!({"serial_number": "RP-EDIT-01", "name": "Before", "address": "Road 1", "city": "Pokhara",
                   "latitude": 28.2, "longitude": 83.98, "total_slots": 4}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (_, _, page) = list(&s, None).await;
    assert_eq!(summary(&page, "RP-EDIT-01")["name"], "Before");
    let r = s
        .call(Method::PATCH, "/api/admin/stations/RP-EDIT-01", Some(&admin.access), Some(json!({"name": "After"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, _, page) = list(&s, None).await;
    assert_eq!(summary(&page, "RP-EDIT-01")["name"], "After");
}

#[tokio::test]
async fn riders_never_see_each_others_signed_in_answers() {
    let s = TestServer::start().await;
    let a = s.register("+9779800000601").await;
    let b = s.register("+9779800000602").await;
    for (rider, name, paisa) in [(&a, "Asha Gurung", 12_300), (&b, "Bikash Thapa", 45_600)] {
        let r = s.call(Method::PUT, "/api/profile", Some(&rider.access), Some(json!({"full_name": name}))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        renting::wallet_add(&s, rider, paisa).await;
    }
    // Many interleaved reads at once, each checked against its own rider.
    let mut reads = Vec::new();
    for i in 0..40 {
        let (rider, name, paisa) = if i % 2 == 0 { (&a, "Asha Gurung", 12_300) } else { (&b, "Bikash Thapa", 45_600) };
        let (s, token) = (&s, rider.access.clone());
        reads.push(async move {
            let profile = s.get("/api/profile", Some(&token)).await;
            assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
            assert_eq!(profile.body["full_name"], name, "{}", profile.body);
            let wallet = s.get("/api/wallet/balance", Some(&token)).await;
            assert_eq!(wallet.body["balance_paisa"], paisa, "{}", wallet.body);
        });
    }
    futures::future::join_all(reads).await;

    // Logging out ends A's session from the very next request (its check was
    // cached a moment ago); B's goes on.
    let r = s.post("/api/auth/logout", Some(&a.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.get("/api/profile", Some(&a.access)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/api/profile", Some(&b.access)).await.status, StatusCode::OK);

    // Replaying a spent refresh token revokes B's session at once too.
    assert_eq!(s.get("/api/wallet/balance", Some(&b.access)).await.status, StatusCode::OK);
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": b.refresh})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": b.refresh})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(s.get("/api/wallet/balance", Some(&b.access)).await.status, StatusCode::UNAUTHORIZED);
}
