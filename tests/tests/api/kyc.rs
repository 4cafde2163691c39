//! KYC submission and review through the real HTTP API.

use crate::support::{submit_kyc, upload_png};
use powerbank_tests::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn submit_review_reject_resubmit_approve() {
    let s = TestServer::start().await;
    let user = s.register("9841100001").await;
    let admin = s.admin().await;
    let user_id = user.user["id"].as_i64().unwrap();

    let r = s.get("/api/auth/kyc-status", Some(&user.access)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "not_submitted", "kyc": null}));

    let r = submit_kyc(&s, &user.access).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["document_type"], "citizenship");
    assert!(r.body["front"]["url"].as_str().unwrap().starts_with("http"));
    let first = r.body["id"].as_i64().unwrap();

    // One open submission at a time.
    let again = submit_kyc(&s, &user.access).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "kyc_pending");

    let r = s.get("/api/auth/kyc-status", Some(&user.access)).await;
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["kyc"]["id"], first);

    // The review queue shows it with its owner.
    let r = s.get("/api/admin/kyc?status=pending", Some(&admin.access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let queued = r.body["results"].as_array().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["id"], first);
    assert_eq!(queued[0]["user_id"], user_id);
    assert_eq!(queued[0]["user_phone"], "+9779841100001");
    // Operators were told in their inbox.
    let alerts = crate::support::notifications(&s, &admin.access, "").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["template"], "kyc_review_requested");
    let body = alerts[0]["body"].as_str().unwrap();
    assert!(body.contains("citizenship") && body.contains("1 submission"), "{body}");

    // Rejecting needs a reason.
    let path = format!("/api/admin/kyc/{first}/reject");
    let r = s.post(&path, Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "validation_failed");
    let r = s.post(&path, Some(&admin.access), json!({"reason": "  "})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = s.post(&path, Some(&admin.access), json!({"reason": "the photo is blurred"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "rejected");
    assert_eq!(r.body["reviewed_by"], admin.user["id"]);

    // A decided submission cannot be decided again.
    let r = s.post(&format!("/api/admin/kyc/{first}/approve"), Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "kyc_not_pending");

    let r = s.get("/api/auth/kyc-status", Some(&user.access)).await;
    assert_eq!(r.body["status"], "rejected");
    assert_eq!(r.body["kyc"]["rejection_reason"], "the photo is blurred");
    let inbox = crate::support::notifications(&s, &user.access, "").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["template"], "kyc_rejected");
    assert!(inbox[0]["body"].as_str().unwrap().contains("the photo is blurred"), "{}", inbox[0]);
    assert_eq!(inbox[0]["is_read"], false);

    // After a rejection the user submits again, and this time it passes.
    let r = submit_kyc(&s, &user.access).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let second = r.body["id"].as_i64().unwrap();
    assert_ne!(second, first);
    let r = s.post(&format!("/api/admin/kyc/{second}/approve"), Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "approved");
    assert!(r.body["reviewed_at"].is_string());

    let r = s.get("/api/auth/kyc-status", Some(&user.access)).await;
    assert_eq!(r.body["status"], "approved");
    assert_eq!(r.body["kyc"]["id"], second);
    let inbox = crate::support::notifications(&s, &user.access, "").await;
    assert_eq!(inbox.len(), 2);
    assert_eq!(inbox[0]["template"], "kyc_approved");
    assert_eq!(inbox[0]["title"], "KYC verified");
    assert_eq!(inbox[0]["data"]["kyc_id"], second);

    // Approved is final.
    let r = submit_kyc(&s, &user.access).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "kyc_already_approved");

    // Nothing left to review; the full history is still there.
    let r = s.get("/api/admin/kyc?status=pending", Some(&admin.access)).await;
    assert_eq!(r.body["results"].as_array().unwrap().len(), 0);
    let r = s.get("/api/admin/kyc", Some(&admin.access)).await;
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn documents_must_be_the_callers_own_uploads() {
    let s = TestServer::start().await;
    let alice = s.register("9841100011").await;
    let bob = s.register("9841100012").await;
    let alices = upload_png(&s, &alice.access).await;
    let bobs_front = upload_png(&s, &bob.access).await;
    let bobs_back = upload_png(&s, &bob.access).await;

    let submit = |front: i64, back: Option<i64>, doc: &str, number: &str| json!({"document_type": doc, "document_number": number, "front_upload_id": front, "back_upload_id": back});
    let cases = [
        ("someone else's front", submit(alices, Some(bobs_back), "citizenship", "12345-678")),
        ("someone else's back", submit(bobs_front, Some(alices), "citizenship", "12345-678")),
        ("no such upload", submit(999_999, Some(bobs_back), "citizenship", "12345-678")),
        ("back missing", submit(bobs_front, None, "driving_license", "12345-678")),
        ("same image twice", submit(bobs_front, Some(bobs_front), "citizenship", "12345-678")),
        ("short number", submit(bobs_front, Some(bobs_back), "citizenship", "12")),
        ("odd characters", submit(bobs_front, Some(bobs_back), "citizenship", "12345<script>")),
    ];
    for (name, body) in cases {
        let r = s.post("/api/auth/kyc", Some(&bob.access), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
        assert_eq!(r.error_code(), "validation_failed", "{name}");
    }
    let r =
        s.post("/api/auth/kyc", Some(&bob.access), submit(bobs_front, Some(bobs_back), "voter_card", "12345678")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "validation_failed");
    // Nothing was stored by the refused attempts.
    let r = s.get("/api/auth/kyc-status", Some(&bob.access)).await;
    assert_eq!(r.body["status"], "not_submitted");

    // A passport has no back side.
    let r = s.post("/api/auth/kyc", Some(&bob.access), submit(bobs_front, None, "passport", "pa 1234567")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["document_number"], "PA 1234567");
    assert!(r.body["back"].is_null());
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_role_and_every_endpoint_a_token() {
    let s = TestServer::start().await;
    let user = s.register("9841100021").await;
    let r = submit_kyc(&s, &user.access).await;
    let id = r.body["id"].as_i64().unwrap();

    let admin_calls = [
        (Method::GET, "/api/admin/kyc?status=pending".to_string(), None),
        (Method::POST, format!("/api/admin/kyc/{id}/approve"), Some(json!({}))),
        (Method::POST, format!("/api/admin/kyc/{id}/reject"), Some(json!({"reason": "not me"}))),
        (Method::GET, "/api/admin/notifications/deliveries".to_string(), None),
    ];
    for (method, path, body) in admin_calls.iter().cloned() {
        let r = s.call(method.clone(), &path, Some(&user.access), body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {}", r.body);
        assert_eq!(r.error_code(), "forbidden");
        let r = s.call(method.clone(), &path, None, body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(r.error_code(), "unauthorized");
    }
    for (method, path) in [(Method::POST, "/api/auth/kyc"), (Method::GET, "/api/auth/kyc-status")] {
        let r = s.call(method, path, None, Some(json!({}))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.error_code(), "unauthorized");
    }
    // The submission is untouched by the refused calls.
    let r = s.get("/api/auth/kyc-status", Some(&user.access)).await;
    assert_eq!(r.body["status"], "pending");

    let admin = s.admin().await;
    let r = s.post("/api/admin/kyc/999999/approve", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    let r = s.get("/api/admin/kyc?status=maybe", Some(&admin.access)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "validation_failed");
}

#[tokio::test]
async fn review_queue_is_cursor_paginated() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for phone in ["9841100031", "9841100032", "9841100033"] {
        let user = s.register(phone).await;
        ids.push(submit_kyc(&s, &user.access).await.body["id"].as_i64().unwrap());
    }
    let admin = s.admin().await;
    let page1 = s.get("/api/admin/kyc?status=pending&limit=2", Some(&admin.access)).await;
    assert_eq!(page1.status, StatusCode::OK);
    let got: Vec<i64> = page1.body["results"].as_array().unwrap().iter().map(|k| k["id"].as_i64().unwrap()).collect();
    assert_eq!(got, vec![ids[2], ids[1]]);
    let cursor = page1.body["next_cursor"].as_str().expect("a next page");
    let page2 = s.get(&format!("/api/admin/kyc?status=pending&limit=2&cursor={cursor}"), Some(&admin.access)).await;
    let got: Vec<i64> = page2.body["results"].as_array().unwrap().iter().map(|k| k["id"].as_i64().unwrap()).collect();
    assert_eq!(got, vec![ids[0]]);
    assert!(page2.body["next_cursor"].is_null());
}
