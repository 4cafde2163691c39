//! App core endpoints, demo data, uploads and the HTTP conventions shared by
//! every endpoint, through the real HTTP API.

use std::collections::HashSet;

use powerbank_tests::TestServer;
use reqwest::{StatusCode, multipart};
use serde_json::json;

async fn demo_server() -> TestServer {
    let s = TestServer::start().await;
    let db = powerbank::core::Db::open(&s.db_path(), 1).unwrap();
    assert!(powerbank::demo::seed_if_empty(&db).unwrap());
    // A second run loads nothing.
    assert!(!powerbank::demo::seed_if_empty(&db).unwrap());
    s
}

#[tokio::test]
async fn health_reports_the_database() {
    let s = TestServer::start().await;
    let r = s.get("/api/health", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["database"]["status"], "ok");
    assert!(r.body["uptime_secs"].is_u64());
}

#[tokio::test]
async fn demo_catalogue_is_served() {
    let s = demo_server().await;
    let countries = s.get("/api/countries", None).await;
    assert!(countries.body.as_array().unwrap().iter().any(|c| c["code"] == "NP" && c["dial_code"] == "+977"));
    let banners = s.get("/api/banners", None).await;
    assert_eq!(banners.body.as_array().unwrap().len(), 2);
    let packages = s.get("/api/packages", None).await;
    let first = &packages.body[0];
    assert_eq!(first["price_paisa"], 5000);
    assert_eq!(first["price_npr"], "50.00");

    let old = s.get("/api/app/version?platform=android&version=0.9.0", None).await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(old.body["update_required"], true);
    let current = s.get("/api/app/version?platform=ios&version=1.2.0", None).await;
    assert_eq!(current.body["update_available"], false);
    assert_eq!(current.headers["cache-control"], "public, max-age=60");
    let bad = s.get("/api/app/version?platform=windows&version=1.0", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = s.get("/api/app/version?platform=android&version=one", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let missing = s.get("/api/app/version?platform=android", None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    missing.error_code();
}

#[tokio::test]
async fn stations_page_with_cursors_and_show_slots() {
    let s = demo_server().await;
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/stations?limit=4&cursor={c}"),
            None => "/api/stations?limit=4".to_string(),
        };
        let r = s.get(&path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for st in r.body["results"].as_array().unwrap() {
            assert!(seen.insert(st["serial_number"].as_str().unwrap().to_string()), "duplicate across pages");
            assert!(st["available_power_banks"].as_i64().unwrap() > 0);
        }
        pages += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(pages, 2);

    let lalitpur = s.get("/api/stations?city=lalitpur", None).await;
    assert_eq!(lalitpur.body["results"].as_array().unwrap().len(), 2);
    let bad = s.get("/api/stations?status=exploded", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = s.get("/api/stations?cursor=nonsense", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = s.get("/api/stations?limit=1000", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let detail = s.get("/api/stations/KTM-THAMEL-01", None).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.body["slots"].as_array().unwrap().len(), 8);
    assert_eq!(detail.body["amenities"].as_array().unwrap().len(), 2);
    let missing = s.get("/api/stations/NOPE", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.error_code();
}

/// A minimal valid PNG (1x1 pixel).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

async fn upload(s: &TestServer, token: Option<&str>, name: &str, mime: &str, bytes: Vec<u8>) -> powerbank_tests::Reply {
    let part = multipart::Part::bytes(bytes).file_name(name.to_string()).mime_str(mime).unwrap();
    let form = multipart::Form::new().part("file", part).text("purpose", "kyc");
    let mut req = s.http.post(s.url("/api/upload")).multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    TestServer::read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn uploads_are_typed_by_content_not_name() {
    let s = TestServer::start_with(|c| c.upload_max_bytes = 64 * 1024).await;
    let user = s.register("9841000100").await;

    // An ELF executable dressed up as a PNG.
    let mut elf = vec![0x7F, b'E', b'L', b'F', 2, 1, 1, 0];
    elf.extend(std::iter::repeat_n(0u8, 120));
    let r = upload(&s, Some(&user.access), "photo.png", "image/png", elf).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);
    assert_eq!(r.error_code(), "unsupported_file_type");

    let r = upload(&s, Some(&user.access), "notes.png", "image/png", b"just some text".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = upload(&s, None, "a.png", "image/png", PNG.to_vec()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A real PNG, even named .jpg with a wrong header, is stored as PNG.
    let r = upload(&s, Some(&user.access), "selfie.jpg", "image/jpeg", PNG.to_vec()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["content_type"], "image/png");
    assert_eq!(r.body["purpose"], "kyc");
    let url = r.body["url"].as_str().unwrap();
    assert!(url.ends_with(".png"));
    // An identity document: only its owner and operators can fetch it, and
    // no static path serves it.
    let key = url.rsplit('/').next().unwrap();
    assert_eq!(url, s.url(&format!("/api/uploads/files/{key}")));
    let fetch = |token: Option<String>| {
        let mut req = s.http.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let own = fetch(Some(user.access.clone())).await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(own.headers()["content-type"], "image/png");
    assert_eq!(own.headers()["cache-control"], "private, no-store");
    assert_eq!(&own.bytes().await.unwrap()[..], PNG);
    let admin = s.admin().await;
    assert_eq!(&fetch(Some(admin.access.clone())).await.unwrap().bytes().await.unwrap()[..], PNG);
    assert_eq!(fetch(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let stranger = s.register("9841000999").await;
    assert_eq!(fetch(Some(stranger.access.clone())).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(s.http.get(s.url(&format!("/media/{key}"))).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // Other purposes stay plain static files.
    let part = reqwest::multipart::Part::bytes(PNG.to_vec()).file_name("avatar.png");
    let form = reqwest::multipart::Form::new().part("file", part).text("purpose", "avatar");
    let r = TestServer::read(
        s.http.post(s.url("/api/upload")).bearer_auth(&user.access).multipart(form).send().await.unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let avatar = r.body["url"].as_str().unwrap();
    assert!(avatar.contains("/media/"), "{avatar}");
    assert_eq!(&s.http.get(avatar).send().await.unwrap().bytes().await.unwrap()[..], PNG);

    let mut big = PNG.to_vec();
    big.extend(std::iter::repeat_n(0u8, 70 * 1024));
    let r = upload(&s, Some(&user.access), "big.png", "image/png", big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    r.error_code();
}

/// Identity documents are for their owner and the roles that review KYC
/// (owner, admin, support); finance and field technicians get 403 for them
/// and still read a rider's other uploads.
#[tokio::test]
async fn only_kyc_reviewing_roles_read_identity_documents() {
    let s = TestServer::start().await;
    let rider = s.register("9841000201").await;
    let stored = |purpose: &'static str| {
        let part = multipart::Part::bytes(PNG.to_vec()).file_name("doc.png");
        let form = multipart::Form::new().part("file", part).text("purpose", purpose);
        let req = s.http.post(s.url("/api/upload")).bearer_auth(&rider.access).multipart(form);
        async move {
            let r = TestServer::read(req.send().await.unwrap()).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            let key = r.body["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
            format!("/api/uploads/files/{key}")
        }
    };
    let kyc = stored("kyc").await;
    let issue = stored("station_issue").await;
    for (role, reads_kyc) in
        [("owner", true), ("admin", true), ("support", true), ("finance", false), ("field_tech", false)]
    {
        let operator = s.operator(role).await;
        let r = s.http.get(s.url(&kyc)).bearer_auth(&operator.access).send().await.unwrap();
        if reads_kyc {
            assert_eq!(r.status(), StatusCode::OK, "{role} reads a KYC document");
            assert_eq!(&r.bytes().await.unwrap()[..], PNG);
        } else {
            let r = TestServer::read(r).await;
            assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "role_not_allowed"), "{role}: {}", r.body);
            assert_eq!(r.body["error"]["details"]["role"], role);
        }
        let r = s.http.get(s.url(&issue)).bearer_auth(&operator.access).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{role} reads a station-issue photo");
    }
    // The rider reads both; another rider neither.
    for path in [&kyc, &issue] {
        assert_eq!(s.http.get(s.url(path)).bearer_auth(&rider.access).send().await.unwrap().status(), StatusCode::OK);
    }
    let stranger = s.register("9841000202").await;
    assert_eq!(s.get(&kyc, Some(&stranger.access)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&issue, Some(&stranger.access)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_shape_with_request_id() {
    let s = TestServer::start().await;
    let r = s.get("/api/does-not-exist", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    assert_eq!(r.body["error"]["request_id"].as_str(), r.headers["x-request-id"].to_str().ok());

    let r = s.call(reqwest::Method::DELETE, "/api/countries", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_code(), "method_not_allowed");

    // A client-supplied request id is kept end to end.
    let resp = s.http.get(s.url("/api/nope")).header("x-request-id", "trace-me-123").send().await.unwrap();
    let r = TestServer::read(resp).await;
    assert_eq!(r.body["error"]["request_id"], "trace-me-123");

    // Oversized JSON bodies are refused before parsing.
    let huge = json!({"identifier": "x".repeat(300 * 1024), "purpose": "login"});
    let r = s.post("/api/auth/get-otp", None, huge).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    r.error_code();
}

#[tokio::test]
async fn openapi_documents_every_route_with_schemas() {
    let s = TestServer::start().await;
    let r = s.get("/api/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/api/health",
        "/api/app/version",
        "/api/countries",
        "/api/banners",
        "/api/upload",
        "/api/auth/get-otp",
        "/api/auth/verify-otp",
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/auth/account",
        "/api/profile",
        "/api/stations",
        "/api/stations/{sn}",
        "/api/packages",
    ] {
        assert!(paths.contains_key(p), "{p} missing from OpenAPI");
    }
    let register = &paths["/api/auth/register"]["post"];
    assert!(register["requestBody"]["content"]["application/json"]["schema"].is_object());
    assert!(register["responses"]["201"]["content"]["application/json"]["schema"].is_object());
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());
    let docs = s.http.get(s.url("/api/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
}
