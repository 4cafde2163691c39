//! Per-user upload quotas: files and bytes per hour (429) and in all (413),
//! held under parallel uploads, with nothing left on disk for a refused one.

use powerbank_tests::{Reply, TestServer};
use reqwest::{StatusCode, multipart};

use crate::support::PNG;

async fn upload(s: &TestServer, token: &str) -> Reply {
    let part = multipart::Part::bytes(PNG.to_vec()).file_name("photo.png").mime_str("image/png").unwrap();
    let form = multipart::Form::new().part("file", part).text("purpose", "station_issue");
    TestServer::read(s.http.post(s.url("/api/upload")).bearer_auth(token).multipart(form).send().await.unwrap()).await
}

fn stored_files(s: &TestServer) -> usize {
    std::fs::read_dir(s.config().media_dir()).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn parallel_uploads_stop_at_the_hourly_quota() {
    let s = TestServer::start_with(|c| c.upload_quota.files_per_hour = 5).await;
    let user = s.register("9841000201").await;
    let replies = futures::future::join_all((0..12).map(|_| upload(&s, &user.access))).await;
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 5, "{statuses:?}");
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status != StatusCode::CREATED).collect();
    assert_eq!(refused.len(), 7, "{statuses:?}");
    for r in refused {
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert_eq!(r.error_code(), "upload_rate_exceeded");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
    }
    assert_eq!(stored_files(&s), 5, "refused uploads left files behind");
    // Another user has a quota of their own.
    let other = s.register("9841000202").await;
    assert_eq!(upload(&s, &other.access).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_total_quota_is_a_clear_413() {
    let s = TestServer::start_with(|c| c.upload_quota.total_bytes = 3 * PNG.len() as i64).await;
    let user = s.register("9841000203").await;
    for _ in 0..3 {
        assert_eq!(upload(&s, &user.access).await.status, StatusCode::CREATED);
    }
    let r = upload(&s, &user.access).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert_eq!(r.error_code(), "upload_quota_exceeded");
    assert_eq!(stored_files(&s), 3);
}

#[tokio::test]
async fn bytes_per_hour_are_limited_too() {
    let s = TestServer::start_with(|c| c.upload_quota.bytes_per_hour = 2 * PNG.len() as i64).await;
    let user = s.register("9841000204").await;
    for _ in 0..2 {
        assert_eq!(upload(&s, &user.access).await.status, StatusCode::CREATED);
    }
    let r = upload(&s, &user.access).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.error_code(), "upload_rate_exceeded");
}
