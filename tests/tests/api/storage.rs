//! Uploads in an S3-compatible bucket (moto's server, started per test):
//! public files at the bucket's URL, identity documents only through the
//! host to their owner and operators, and both gone with the account.

use powerbank::core::storage::StorageConfig;
use powerbank_tests::{Reply, TestServer, moto::Moto};
use reqwest::{StatusCode, multipart};

use crate::support::PNG;

const BUCKET: &str = "powerbank-uploads";

async fn upload(s: &TestServer, token: &str, purpose: &str) -> Reply {
    let part = multipart::Part::bytes(PNG.to_vec()).file_name("photo.png").mime_str("image/png").unwrap();
    let form = multipart::Form::new().part("file", part).text("purpose", purpose.to_string());
    TestServer::read(s.http.post(s.url("/api/upload")).bearer_auth(token).multipart(form).send().await.unwrap()).await
}

fn key_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn uploads_live_in_the_bucket_private_ones_only_reach_owner_and_operators() {
    let moto = Moto::start().await;
    moto.create_bucket(BUCKET).await;
    let settings = moto.settings(BUCKET);
    let s = TestServer::start_with(move |c| c.storage = StorageConfig::S3(settings)).await;
    let owner = s.register("9841800001").await;
    let other = s.register("9841800002").await;
    let admin = s.admin().await;

    // Public: stored under media/ and served by the host at /media (the
    // bucket stays private), without signing in.
    let avatar = upload(&s, &owner.access, "avatar").await;
    assert_eq!(avatar.status, StatusCode::CREATED, "{}", avatar.body);
    let url = avatar.body["url"].as_str().unwrap().to_string();
    assert_eq!(url, s.url(&format!("/media/{}", key_of(&url))));
    assert_eq!(moto.object(BUCKET, &format!("media/{}", key_of(&url))).await.as_deref(), Some(PNG));
    let fetched = s.http.get(&url).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), PNG);
    assert!(
        s.data_dir.path().join("media").read_dir().map_or(true, |mut d| d.next().is_none()),
        "nothing on local disk"
    );

    // Private: under private/, no bucket URL handed out; the host serves it.
    let kyc = upload(&s, &owner.access, "kyc").await;
    assert_eq!(kyc.status, StatusCode::CREATED, "{}", kyc.body);
    let private_url = kyc.body["url"].as_str().unwrap().to_string();
    assert_eq!(private_url, s.url(&format!("/api/uploads/files/{}", key_of(&private_url))));
    let private_key = key_of(&private_url);
    assert_eq!(moto.object(BUCKET, &format!("private/{private_key}")).await.as_deref(), Some(PNG));
    assert!(moto.refuses_anonymous(BUCKET, &format!("private/{private_key}")).await, "the bucket is not public");
    assert_eq!(moto.object(BUCKET, &format!("media/{private_key}")).await, None, "not among public files");
    let path = format!("/api/uploads/files/{private_key}");
    let mine = s.http.get(s.url(&path)).bearer_auth(&owner.access).send().await.unwrap();
    assert_eq!(mine.status(), StatusCode::OK);
    assert_eq!(mine.headers()["cache-control"], "private, no-store");
    assert_eq!(mine.bytes().await.unwrap().as_ref(), PNG);
    assert_eq!(s.get(&path, Some(&other.access)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&path, None).await.status, StatusCode::UNAUTHORIZED);
    let operator = s.http.get(s.url(&path)).bearer_auth(&admin.access).send().await.unwrap();
    assert_eq!(operator.status(), StatusCode::OK);

    // Deleting the account deletes both objects from the bucket.
    let r = s.call(reqwest::Method::DELETE, "/api/auth/account", Some(&owner.access), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(moto.object(BUCKET, &format!("private/{private_key}")).await, None);
    assert_eq!(moto.object(BUCKET, &format!("media/{}", key_of(&url))).await, None);
    let gone = TestServer::read(s.http.get(&url).send().await.unwrap()).await;
    assert_eq!((gone.status, gone.error_code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(s.get(&path, Some(&admin.access)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_missing_bucket_stops_the_server_at_start_with_a_clear_error() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = powerbank::config::Config::for_tests(dir.path());
    config.storage = StorageConfig::S3(moto.settings("no-such-bucket"));
    let err = powerbank::server::build_state(config).await.err().expect("refused");
    let text = format!("{err:#}");
    assert!(text.contains("no-such-bucket") && text.contains("404"), "{text}");
}

#[tokio::test]
async fn a_public_url_hands_out_cdn_links_for_public_uploads_only() {
    let moto = Moto::start().await;
    moto.create_bucket(BUCKET).await;
    let mut settings = moto.settings(BUCKET);
    settings.public_url = Some("https://cdn.example.com/uploads/".into());
    let s = TestServer::start_with(move |c| c.storage = StorageConfig::S3(settings)).await;
    let user = s.register("9841800003").await;
    let avatar = upload(&s, &user.access, "avatar").await;
    let url = avatar.body["url"].as_str().unwrap();
    assert!(url.starts_with("https://cdn.example.com/uploads/"), "{url}");
    assert_eq!(moto.object(BUCKET, &format!("media/{}", key_of(url))).await.as_deref(), Some(PNG));
    let kyc = upload(&s, &user.access, "kyc").await;
    assert!(kyc.body["url"].as_str().unwrap().starts_with(&s.url("/api/uploads/files/")), "{}", kyc.body);
}
