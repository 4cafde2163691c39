//! Devices, in-app notifications and push delivery (FCM with SMS fallback)
//! through the real HTTP API, with fake FCM and Sparrow servers.

use crate::support::{JOB_TIMEOUT, deliveries, notifications, register_device, submit_and_approve, submit_and_reject};
use powerbank_tests::{FakeFcm, TestServer, fake_fcm::eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOKEN_A: &str = "fcm-token-aaaaaaaaaaaaaaaaaaaa";
const TOKEN_B: &str = "fcm-token-bbbbbbbbbbbbbbbbbbbb";

async fn devices(s: &TestServer, token: &str) -> Vec<Value> {
    let r = s.get("/api/user/devices", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn devices_register_update_and_move_between_accounts() {
    let s = TestServer::start().await;
    let alice = s.register("9841200001").await;
    let bob = s.register("9841200002").await;

    let r = register_device(&s, &alice.access, "pixel-7", TOKEN_A).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["platform"], "android");
    assert_eq!(r.body["is_active"], true);
    let device = r.body["id"].clone();

    // Same install again: an update of the same row (new token, new version).
    let r = s
        .post(
            "/api/user/device",
            Some(&alice.access),
            json!({"device_id": "pixel-7", "fcm_token": TOKEN_B, "platform": "android", "app_version": "1.1.0"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], device);
    let list = devices(&s, &alice.access).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["app_version"], "1.1.0");

    // Validation.
    let bad = [
        json!({"device_id": "x", "fcm_token": TOKEN_A, "platform": "windows"}),
        json!({"device_id": "x", "fcm_token": "short", "platform": "ios"}),
        json!({"device_id": "x", "fcm_token": "has spaces in the token", "platform": "ios"}),
        json!({"device_id": "", "fcm_token": TOKEN_A, "platform": "ios"}),
        json!({"device_id": "x", "fcm_token": TOKEN_A, "platform": "ios", "app_version": "1.0 beta!"}),
        json!({"device_id": "x", "platform": "ios"}),
        json!({"device_id": "x", "fcm_token": TOKEN_A, "platform": "ios", "extra": 1}),
    ];
    for body in bad {
        let r = s.post("/api/user/device", Some(&alice.access), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.error_code(), "validation_failed");
    }
    let r = s.post("/api/user/device", None, json!({"device_id": "x", "fcm_token": TOKEN_A, "platform": "ios"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Bob signs in on Alice's phone: the token moves to him and leaves her.
    let r = register_device(&s, &bob.access, "pixel-7", TOKEN_B).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(devices(&s, &alice.access).await.is_empty(), "Alice still holds the token");
    let bobs = devices(&s, &bob.access).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["device_id"], "pixel-7");
}

#[tokio::test]
async fn push_goes_to_fcm_with_a_valid_oauth_flow() {
    let fcm = FakeFcm::start().await;
    // Configured the way `--fcm-credentials` does it: from a service-account key file.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("service-account.json");
    std::fs::write(&key_file, fcm.service_account_json().to_string()).unwrap();
    let config = powerbank::notifications::fcm::load_service_account(&key_file, &fcm.config().base_url).unwrap();
    let s = TestServer::start_with(move |c| c.fcm = Some(config)).await;
    let user = s.register("9841200011").await;
    let admin = s.admin().await;
    let user_id = user.user["id"].as_i64().unwrap();
    assert_eq!(register_device(&s, &user.access, "phone-1", TOKEN_A).await.status, StatusCode::CREATED);
    assert_eq!(register_device(&s, &user.access, "tablet-1", TOKEN_B).await.status, StatusCode::CREATED);

    submit_and_reject(&s, &user.access, &admin.access, "document expired").await;
    let pushed = eventually("two pushes", JOB_TIMEOUT, || async {
        let m = fcm.messages();
        (m.len() >= 2).then_some(m)
    })
    .await;
    let mut tokens: Vec<&str> = pushed.iter().map(|m| m.token.as_str()).collect();
    tokens.sort_unstable();
    assert_eq!(tokens, vec![TOKEN_A, TOKEN_B]);
    assert_eq!(pushed[0].title, "KYC not approved");
    assert!(pushed[0].body.contains("document expired"));
    assert_eq!(pushed[0].data["template"], "kyc_rejected");
    let inbox = notifications(&s, &user.access, "").await;
    assert_eq!(pushed[0].data["notification_id"], inbox[0]["id"].to_string());

    // The OAuth assertion verified against the service account's public key.
    assert_eq!(fcm.rejected_assertions(), 0);
    assert_eq!(fcm.token_requests(), 1);

    // A second notification reuses the cached access token.
    submit_and_approve(&s, &user.access, &admin.access).await;
    eventually("two more pushes", JOB_TIMEOUT, || async { (fcm.messages().len() >= 4).then_some(()) }).await;
    assert_eq!(fcm.messages()[3].title, "KYC verified");
    assert_eq!(fcm.token_requests(), 1, "access token not cached");

    // Every attempt is logged; no SMS was needed.
    // The last attempt is logged just after FCM answered it.
    let log = eventually("four attempts logged", JOB_TIMEOUT, || async {
        let log = deliveries(&s, &admin.access, user_id).await;
        (log.len() >= 4).then_some(log)
    })
    .await;
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(log.iter().all(|a| a["channel"] == "fcm" && a["status"] == "sent" && a["provider_status"] == 200));
    assert!(s.sms.messages().iter().all(|m| !m.text.contains("KYC")));
}

#[tokio::test]
async fn unregistered_token_deactivates_the_device_then_sms_takes_over() {
    let fcm = FakeFcm::start().await;
    let s = TestServer::start_with_fcm(&fcm).await;
    let user = s.register("9841200021").await;
    let admin = s.admin().await;
    let user_id = user.user["id"].as_i64().unwrap();
    register_device(&s, &user.access, "old-phone", TOKEN_A).await;
    fcm.unregister(TOKEN_A);

    submit_and_approve(&s, &user.access, &admin.access).await;
    // The only device is dead, so the kyc_approved rule's SMS fallback is used.
    let sms = eventually("the fallback SMS", JOB_TIMEOUT, || async {
        s.sms.messages().into_iter().find(|m| m.text.contains("KYC verified"))
    })
    .await;
    assert_eq!(sms.to, "9841200021");
    let list = devices(&s, &user.access).await;
    assert_eq!(list[0]["is_active"], false, "{list:?}");

    let log = eventually("both attempts logged", JOB_TIMEOUT, || async {
        let log = deliveries(&s, &admin.access, user_id).await;
        (log.len() >= 2).then_some(log)
    })
    .await;
    let statuses: Vec<(&str, &str)> =
        log.iter().rev().map(|a| (a["channel"].as_str().unwrap(), a["status"].as_str().unwrap())).collect();
    assert_eq!(statuses, vec![("fcm", "invalid_token"), ("sms", "sent")]);
    assert_eq!(log[1]["provider_status"], 404);
    assert!(log[1]["provider_response"].as_str().unwrap().contains("UNREGISTERED"));
    assert!(fcm.messages().is_empty());

    // Registering again revives the device (the app got a fresh token).
    let r = register_device(&s, &user.access, "old-phone", TOKEN_B).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["is_active"], true);
}

#[tokio::test]
async fn fcm_down_falls_back_to_sms_and_logs_both() {
    let fcm = FakeFcm::start().await;
    let s = TestServer::start_with_fcm(&fcm).await;
    let user = s.register("9841200031").await;
    let admin = s.admin().await;
    let user_id = user.user["id"].as_i64().unwrap();
    register_device(&s, &user.access, "phone", TOKEN_A).await;
    fcm.set_down(true);

    let kyc_id = submit_and_approve(&s, &user.access, &admin.access).await;
    let sms = eventually("the fallback SMS", JOB_TIMEOUT, || async {
        s.sms.messages().into_iter().find(|m| m.text.contains("KYC verified"))
    })
    .await;
    assert_eq!(sms.to, "9841200031");
    assert!(fcm.send_attempts() >= 1);
    assert!(fcm.messages().is_empty());

    let log = eventually("both attempts logged", JOB_TIMEOUT, || async {
        let log = deliveries(&s, &admin.access, user_id).await;
        (log.len() >= 2).then_some(log)
    })
    .await;
    let fcm_attempt = log.iter().find(|a| a["channel"] == "fcm").expect("fcm attempt logged");
    assert_eq!(fcm_attempt["status"], "failed");
    assert_eq!(fcm_attempt["provider_status"], 503);
    let sms_attempt = log.iter().find(|a| a["channel"] == "sms").expect("sms attempt logged");
    assert_eq!(sms_attempt["status"], "sent");
    assert_eq!(sms_attempt["recipient"], "+9779841200031");
    let inbox = notifications(&s, &user.access, "").await;
    assert_eq!(sms_attempt["notification_id"], inbox[0]["id"]);
    assert_eq!(inbox[0]["data"]["kyc_id"], kyc_id);
    // A transient FCM failure does not cost the device its token.
    assert_eq!(devices(&s, &user.access).await[0]["is_active"], true);
}

#[tokio::test]
async fn users_only_ever_see_and_change_their_own_notifications() {
    let s = TestServer::start().await;
    let alice = s.register("9841200041").await;
    let bob = s.register("9841200042").await;
    let admin = s.admin().await;
    submit_and_reject(&s, &alice.access, &admin.access, "blurred").await;
    submit_and_approve(&s, &alice.access, &admin.access).await;
    submit_and_approve(&s, &bob.access, &admin.access).await;

    let alices = notifications(&s, &alice.access, "").await;
    assert_eq!(alices.len(), 2);
    let (newest, oldest) = (alices[0]["id"].as_i64().unwrap(), alices[1]["id"].as_i64().unwrap());
    let bobs = notifications(&s, &bob.access, "").await;
    assert_eq!(bobs.len(), 1);

    // Cursor pagination and the unread filter.
    let r = s.get("/api/user/notifications?limit=1", Some(&alice.access)).await;
    assert_eq!(r.body["results"][0]["id"], newest);
    let cursor = r.body["next_cursor"].as_str().expect("a second page").to_string();
    let r = s.get(&format!("/api/user/notifications?limit=1&cursor={cursor}"), Some(&alice.access)).await;
    assert_eq!(r.body["results"][0]["id"], oldest);
    assert!(r.body["next_cursor"].is_null());

    let r = s.post(&format!("/api/user/notification/{oldest}"), Some(&alice.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["is_read"], true);
    assert!(r.body["read_at"].is_string());
    let unread = notifications(&s, &alice.access, "?unread=true").await;
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0]["id"], newest);

    // Bob cannot read, mark or delete Alice's: it does not exist for him.
    for (method, path) in [
        (Method::POST, format!("/api/user/notification/{newest}")),
        (Method::DELETE, format!("/api/user/notification/{newest}")),
    ] {
        let r = s.call(method.clone(), &path, Some(&bob.access), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}: {}", r.body);
        assert_eq!(r.error_code(), "not_found");
    }
    assert!(bobs.iter().all(|n| n["id"] != newest && n["id"] != oldest));

    // Bob's mark-all-read touches only Bob's.
    let r = s.post("/api/user/notifications/mark-all-read", Some(&bob.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["updated"], 1);
    assert_eq!(notifications(&s, &alice.access, "?unread=true").await.len(), 1);
    assert_eq!(notifications(&s, &bob.access, "?unread=true").await.len(), 0);

    let r = s.post("/api/user/notifications/mark-all-read", Some(&alice.access), json!({})).await;
    assert_eq!(r.body["updated"], 1);
    assert!(notifications(&s, &alice.access, "?unread=true").await.is_empty());

    // Deleting is final and private.
    let r = s.call(Method::DELETE, &format!("/api/user/notification/{newest}"), Some(&alice.access), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s.call(Method::DELETE, &format!("/api/user/notification/{newest}"), Some(&alice.access), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(notifications(&s, &alice.access, "").await.len(), 1);
    assert_eq!(notifications(&s, &bob.access, "").await.len(), 1);

    // No token, no inbox.
    for (method, path) in [
        (Method::GET, "/api/user/notifications".to_string()),
        (Method::POST, format!("/api/user/notification/{oldest}")),
        (Method::DELETE, format!("/api/user/notification/{oldest}")),
        (Method::POST, "/api/user/notifications/mark-all-read".to_string()),
        (Method::GET, "/api/user/devices".to_string()),
    ] {
        let r = s.call(method.clone(), &path, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(r.error_code(), "unauthorized");
    }
    let r = s.get("/api/user/notifications?limit=0", Some(&alice.access)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn new_endpoints_are_documented_with_schemas() {
    let s = TestServer::start().await;
    let doc = s.get("/api/openapi.json", None).await.body;
    let paths = &doc["paths"];
    let expect = [
        ("/api/auth/kyc", "post", true),
        ("/api/auth/kyc-status", "get", false),
        ("/api/admin/kyc", "get", false),
        ("/api/admin/kyc/{id}/approve", "post", false),
        ("/api/admin/kyc/{id}/reject", "post", true),
        ("/api/user/device", "post", true),
        ("/api/user/devices", "get", false),
        ("/api/user/notifications", "get", false),
        ("/api/user/notification/{id}", "post", false),
        ("/api/user/notification/{id}", "delete", false),
        ("/api/user/notifications/mark-all-read", "post", false),
        ("/api/admin/notifications/deliveries", "get", false),
    ];
    for (path, method, has_body) in expect {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} missing from the OpenAPI document");
        if has_body {
            assert!(op["requestBody"]["content"]["application/json"]["schema"].is_object(), "{method} {path} body");
        }
        let responses = op["responses"].as_object().expect("responses");
        let ok = responses.iter().find(|(code, _)| code.starts_with('2')).expect("a success response");
        if method != "delete" {
            assert!(ok.1["content"]["application/json"]["schema"].is_object(), "{method} {path} success schema");
        }
        let unauthorized = &responses["401"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(unauthorized, "#/components/schemas/ErrorBody", "{method} {path} error schema");
    }
    for schema in ["KycSubmission", "KycOut", "AdminKycOut", "DeviceRegistration", "NotificationOut", "DeliveryAttempt"]
    {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema}");
    }
}
