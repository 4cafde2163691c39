//! Steps shared by the KYC and notification tests, all through HTTP.
#![allow(dead_code)]

pub mod openapi;
pub mod renting;

use std::time::Duration;

use powerbank_tests::{Reply, TestServer};
use reqwest::{StatusCode, multipart};
use serde_json::{Value, json};

/// How long a test waits for the job worker's effects.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(10);

/// A minimal valid PNG (1x1 pixel).
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// Uploads a PNG as `token`'s user; returns the upload id.
pub async fn upload_png(s: &TestServer, token: &str) -> i64 {
    let part = multipart::Part::bytes(PNG.to_vec()).file_name("document.png").mime_str("image/png").unwrap();
    let form = multipart::Form::new().part("file", part).text("purpose", "kyc");
    let r =
        TestServer::read(s.http.post(s.url("/api/upload")).bearer_auth(token).multipart(form).send().await.unwrap())
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "upload: {}", r.body);
    r.body["id"].as_i64().expect("upload id")
}

/// Submits a citizenship KYC with fresh uploads of the caller's.
pub async fn submit_kyc(s: &TestServer, token: &str) -> Reply {
    let front = upload_png(s, token).await;
    let back = upload_png(s, token).await;
    s.post(
        "/api/auth/kyc",
        Some(token),
        json!({"document_type": "citizenship", "document_number": "27-01-75-12345",
               "front_upload_id": front, "back_upload_id": back}),
    )
    .await
}

/// Submits a KYC and has `admin` approve it; returns the submission id.
pub async fn submit_and_approve(s: &TestServer, token: &str, admin: &str) -> i64 {
    let r = submit_kyc(s, token).await;
    assert_eq!(r.status, StatusCode::CREATED, "submit: {}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let r = s.post(&format!("/api/admin/kyc/{id}/approve"), Some(admin), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "approve: {}", r.body);
    id
}

/// Submits a KYC and has `admin` reject it; returns the submission id.
pub async fn submit_and_reject(s: &TestServer, token: &str, admin: &str, reason: &str) -> i64 {
    let r = submit_kyc(s, token).await;
    assert_eq!(r.status, StatusCode::CREATED, "submit: {}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let r = s.post(&format!("/api/admin/kyc/{id}/reject"), Some(admin), json!({"reason": reason})).await;
    assert_eq!(r.status, StatusCode::OK, "reject: {}", r.body);
    id
}

pub async fn register_device(s: &TestServer, token: &str, device_id: &str, fcm_token: &str) -> Reply {
    s.post(
        "/api/user/device",
        Some(token),
        json!({"device_id": device_id, "fcm_token": fcm_token, "platform": "android", "app_version": "1.0.0"}),
    )
    .await
}

/// The caller's notifications (first page).
pub async fn notifications(s: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/user/notifications{query}"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "notifications: {}", r.body);
    r.body["results"].as_array().cloned().unwrap_or_default()
}

/// Delivery attempts logged for a user (admin view of `sms_fcm_log`).
pub async fn deliveries(s: &TestServer, admin: &str, user_id: i64) -> Vec<Value> {
    let r = s.get(&format!("/api/admin/notifications/deliveries?user_id={user_id}&limit=100"), Some(admin)).await;
    assert_eq!(r.status, StatusCode::OK, "deliveries: {}", r.body);
    r.body["results"].as_array().cloned().unwrap_or_default()
}
