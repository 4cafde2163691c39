//! Broadcasts through HTTP (issue 13): an audience reached in-app and by
//! push (fake FCM) in batches through the job queue, riders outside it
//! untouched; scheduling at an explicit time far from now, cancelling, the
//! counts; refusals that change nothing.

use powerbank_tests::{FakeFcm, TestServer, fake_fcm::eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    JOB_TIMEOUT, notifications, register_device,
    renting::{at, rows, sql},
};

const TOKEN_A: &str = "fcm-token-broadcast-aaaaaaaaaa";
const TOKEN_B: &str = "fcm-token-broadcast-bbbbbbbbbb";
const TOKEN_C: &str = "fcm-token-broadcast-cccccccccc";

async fn broadcast(s: &TestServer, token: &str, id: i64) -> Value {
    let r = s.get(&format!("/api/admin/broadcasts/{id}"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn completed(s: &TestServer, token: &str, id: i64) -> Value {
    eventually("the broadcast to complete", JOB_TIMEOUT, || async {
        let b = broadcast(s, token, id).await;
        (b["status"] == "completed").then_some(b)
    })
    .await
}

fn titles(list: &[Value]) -> Vec<String> {
    list.iter().map(|n| n["title"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn a_broadcast_reaches_its_audience_in_batches_in_app_and_by_push_and_nobody_else() {
    let fcm = FakeFcm::start().await;
    let s = TestServer::start_with_fcm(&fcm).await;
    let admin = s.operator("admin").await;
    let support = s.operator("support").await;
    let (a, b, c) = (s.register("9841500001").await, s.register("9841500002").await, s.register("9841500003").await);
    for (user, token) in [(&a, TOKEN_A), (&b, TOKEN_B), (&c, TOKEN_C)] {
        let r = register_device(&s, &user.access, "phone", token).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let id_of = |u: &powerbank_tests::Session| u.user["id"].as_i64().unwrap();

    // One rider per batch, no pause: three runs for two riders (the last finds none).
    let r = s
        .call(
            Method::PUT,
            "/api/admin/settings",
            Some(&admin.access),
            Some(json!({"values": {"broadcasts.batch_size": 1, "broadcasts.batch_interval_seconds": 0}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let body = json!({"title": "Festival hours", "body": "Stations in Thamel stay open until midnight.",
                      "audience": {"kind": "users", "user_ids": [id_of(&a), id_of(&c)]}, "reason": "Dashain"});
    let r = s.post("/api/admin/broadcasts", Some(&support.access), body.clone()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "role_not_allowed"), "{}", r.body);
    let r = s.post("/api/admin/broadcasts", Some(&admin.access), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["targeted"], 2);
    assert_eq!(r.body["audience"]["kind"], "users");

    let done = completed(&s, &support.access, id).await;
    assert_eq!(
        (done["targeted"].as_i64(), done["sent"].as_i64(), done["failed"].as_i64()),
        (Some(2), Some(2), Some(0))
    );
    assert!(done["started_at"].is_string() && done["finished_at"].is_string(), "{done}");
    let runs = rows(&s, "SELECT COUNT(*) FROM jobs WHERE kind = 'admin.broadcast_batch' AND status = 'done'", []);
    assert_eq!(runs[0][0], 3, "one job run per batch");

    // In-app for the audience, push to their devices; nothing for the rider outside it.
    assert_eq!(titles(&notifications(&s, &a.access, "").await), ["Festival hours"]);
    assert_eq!(titles(&notifications(&s, &c.access, "").await), ["Festival hours"]);
    assert!(notifications(&s, &b.access, "").await.is_empty());
    let pushed = eventually("two pushes", JOB_TIMEOUT, || async {
        let m = fcm.messages();
        (m.len() >= 2).then_some(m)
    })
    .await;
    let mut tokens: Vec<&str> = pushed.iter().map(|m| m.token.as_str()).collect();
    tokens.sort_unstable();
    assert_eq!(tokens, [TOKEN_A, TOKEN_C]);
    assert!(pushed.iter().all(|m| m.title == "Festival hours" && m.body.contains("midnight")));

    // Started and finished: too late to cancel.
    let r = s.post(&format!("/api/admin/broadcasts/{id}/cancel"), Some(&admin.access), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "already_started"), "{}", r.body);
    let audit = s.get(&format!("/api/admin/audit?target_type=broadcast&target_id={id}"), Some(&admin.access)).await;
    let actions: Vec<&str> =
        audit.body["results"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["broadcast.create"]);
    assert_eq!(audit.body["results"][0]["reason"], "Dashain");
}

#[tokio::test]
async fn a_scheduled_broadcast_waits_for_its_time_and_can_be_cancelled_until_then() {
    let s = TestServer::start().await;
    let admin = s.operator("admin").await;
    let rider = s.register("9841500011").await;
    let other = s.register("9841500012").await;

    // Tomorrow: far from now, so nothing here races the clock.
    let schedule = |title: &str| json!({"title": title, "body": "Maintenance tonight", "audience": {"kind": "all"}, "send_at": at(86_400)});
    let r = s.post("/api/admin/broadcasts", Some(&admin.access), schedule("First")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "scheduled");
    assert_eq!(r.body["targeted"], 2);
    let first = r.body["id"].as_i64().unwrap();
    let r = s.post("/api/admin/broadcasts", Some(&admin.access), schedule("Second")).await;
    let second = r.body["id"].as_i64().unwrap();

    let list = s.get("/api/admin/broadcasts?status=scheduled&limit=1", Some(&admin.access)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["results"][0]["id"], second);
    let cursor = list.body["next_cursor"].as_str().unwrap().to_string();
    let next =
        s.get(&format!("/api/admin/broadcasts?status=scheduled&limit=1&cursor={cursor}"), Some(&admin.access)).await;
    assert_eq!(next.body["results"][0]["id"], first);
    assert_eq!(s.get("/api/admin/broadcasts?status=later", Some(&admin.access)).await.status, StatusCode::BAD_REQUEST);

    let r =
        s.post(&format!("/api/admin/broadcasts/{first}/cancel"), Some(&admin.access), json!({"reason": "typo"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    let r = s.post(&format!("/api/admin/broadcasts/{first}/cancel"), Some(&admin.access), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "already_cancelled"), "{}", r.body);
    let r = s.post("/api/admin/broadcasts/999999/cancel", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Its time comes (the queue's clock moved instead of waiting a day):
    // the cancelled one sends nothing, the other reaches everyone.
    sql(&s, "UPDATE jobs SET run_at = 0 WHERE kind = 'admin.broadcast_batch'", []);
    let done = completed(&s, &admin.access, second).await;
    assert_eq!(done["sent"], 2);
    assert_eq!(broadcast(&s, &admin.access, first).await["sent"], 0);
    for user in [&rider, &other] {
        assert_eq!(titles(&notifications(&s, &user.access, "").await), ["Second"]);
    }
}

#[tokio::test]
async fn an_empty_or_invalid_audience_or_bad_time_is_refused_and_nothing_is_recorded() {
    let s = TestServer::start().await;
    let admin = s.operator("admin").await;
    let _rider = s.register("9841500021").await;
    let base = json!({"title": "Hello", "body": "World"});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    for (body, status, code) in [
        (
            with(json!({"audience": {"kind": "users", "user_ids": [999_999]}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_audience",
        ),
        (
            with(json!({"audience": {"kind": "coupon_users", "code": "NOBODY"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_audience",
        ),
        (
            with(json!({"audience": {"kind": "active", "days": 0}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_audience",
        ),
        (
            with(json!({"audience": {"kind": "all"}, "send_at": at(-86_400)})),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            with(json!({"audience": {"kind": "all"}, "send_at": at(365 * 86_400)})),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"title": "", "body": "World", "audience": {"kind": "all"}}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
    ] {
        let r = s.post("/api/admin/broadcasts", Some(&admin.access), body.clone()).await;
        assert_eq!((r.status, r.error_code()), (status, code), "{body}: {}", r.body);
    }
    let list = s.get("/api/admin/broadcasts", Some(&admin.access)).await;
    assert_eq!(list.body["results"], json!([]));
    let audit = s.get("/api/admin/audit?target_type=broadcast", Some(&admin.access)).await;
    assert_eq!(audit.body["results"], json!([]));
    assert_eq!(s.get("/api/admin/broadcasts/1", Some(&admin.access)).await.status, StatusCode::NOT_FOUND);
}
