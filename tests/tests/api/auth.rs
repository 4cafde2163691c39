//! Sign-in, sessions and accounts through the real HTTP API.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use powerbank_tests::{Session, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

const SECRET: &str = "test-jwt-secret-that-is-long-enough-123";

async fn server_with_known_secret() -> TestServer {
    TestServer::start_with(|c| c.jwt_secret = Some(SECRET.into())).await
}

#[tokio::test]
async fn otp_register_me_refresh_logout() {
    let s = TestServer::start().await;
    let session = s.register("9841000001").await;
    assert_eq!(session.user["phone"], "+9779841000001");
    assert_eq!(session.user["role"], "user");

    // The SMS went through Sparrow's API with the number in local form.
    let sms = s.sms.messages();
    assert_eq!(sms.last().map(|m| m.to.as_str()), Some("9841000001"));

    let me = s.get("/api/auth/me", Some(&session.access)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["id"], session.user["id"]);

    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": session.refresh})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access2 = r.body["access_token"].as_str().unwrap().to_string();
    let refresh2 = r.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, session.refresh);
    assert_eq!(s.get("/api/auth/me", Some(&access2)).await.status, StatusCode::OK);

    let out = s.post("/api/auth/logout", Some(&access2), json!({})).await;
    assert_eq!(out.status, StatusCode::OK);
    // Logout ends the whole session: both access tokens and the refresh token.
    for token in [&session.access, &access2] {
        let r = s.get("/api/auth/me", Some(token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.error_code(), "unauthorized");
    }
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": refresh2})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Logging in again with a fresh OTP works.
    let token = s.verification_token("+9779841000001", "login").await;
    let r = s.post("/api/auth/login", None, json!({"verification_token": token})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["user"]["id"], session.user["id"]);
    // A verification token is good once.
    let again = s.post("/api/auth/login", None, json!({"verification_token": token})).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn register_refuses_existing_accounts_and_login_unknown_ones() {
    let s = TestServer::start().await;
    s.register("9841000002").await;
    let r = s.post("/api/auth/get-otp", None, json!({"identifier": "+9779841000002", "purpose": "register"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "already_registered");
    let r = s.post("/api/auth/get-otp", None, json!({"identifier": "9841999999", "purpose": "login"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_registered");
    // A register token cannot be used to log in.
    let token = s.verification_token("9841000003", "register").await;
    let r = s.post("/api/auth/login", None, json!({"verification_token": token})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

fn sign(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test]
async fn expired_revoked_forged_and_alg_none_tokens_are_refused() {
    let s = server_with_known_secret().await;
    let session = s.register("9841000010").await;
    let me = s.get("/api/auth/me", Some(&session.access)).await;
    assert_eq!(me.status, StatusCode::OK);

    // Decode our own valid token's claims to build variants of it.
    let payload = session.access.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();

    let mut expired = claims.clone();
    expired["exp"] = json!(now - 60);
    expired["iat"] = json!(now - 3600);
    let expired = sign(expired, SECRET);

    let forged = sign(claims.clone(), "some-other-secret-of-sufficient-length!!");

    let mut admin_claims = claims.clone();
    admin_claims["role"] = json!("admin");
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin_claims).unwrap());
    let alg_none = format!("{header}.{body}.");

    let header384 = Header::new(Algorithm::HS384);
    let other_alg = jsonwebtoken::encode(&header384, &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap();

    for (name, token) in [
        ("expired", expired),
        ("forged", forged),
        ("alg none", alg_none),
        ("HS384", other_alg),
        ("garbage", "x.y.z".into()),
    ] {
        let r = s.get("/api/auth/me", Some(&token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name} token accepted: {}", r.body);
        assert_eq!(r.error_code(), "unauthorized");
    }
    let r = s.get("/api/auth/me", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Revoked: logout, then the same (unexpired, correctly signed) token fails.
    s.post("/api/auth/logout", Some(&session.access), json!({})).await;
    assert_eq!(s.get("/api/auth/me", Some(&session.access)).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_family() {
    let s = TestServer::start().await;
    let first = s.register("9841000020").await;
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": first.refresh})).await;
    assert_eq!(r.status, StatusCode::OK);
    let second = Session::from_body(
        &json!({"access_token": r.body["access_token"], "refresh_token": r.body["refresh_token"], "user": null}),
    );

    // Someone replays the spent token: refused, and the family is revoked...
    let replay = s.post("/api/auth/refresh", None, json!({"refresh_token": first.refresh})).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    // ...so the legitimate newer tokens stop working too.
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": second.refresh})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/api/auth/me", Some(&second.access)).await.status, StatusCode::UNAUTHORIZED);

    // Other sessions of the same user are untouched.
    let token = s.verification_token("9841000020", "login").await;
    let other = s.post("/api/auth/login", None, json!({"verification_token": token})).await;
    let other = Session::from_body(&other.body);
    assert_eq!(s.get("/api/auth/me", Some(&other.access)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn sixth_wrong_otp_locks_the_code() {
    let s = TestServer::start().await;
    let code = s.otp("9841000030", "register").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        let r = s
            .post(
                "/api/auth/verify-otp",
                None,
                json!({"identifier": "9841000030", "otp": wrong, "purpose": "register"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "attempt {attempt}");
        assert_eq!(r.error_code(), "otp_invalid");
        assert_eq!(r.body["error"]["details"]["attempts_left"], 5 - attempt);
    }
    // The sixth try is refused even with the right code.
    let r = s
        .post("/api/auth/verify-otp", None, json!({"identifier": "9841000030", "otp": code, "purpose": "register"}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "otp_locked");
    // A new code works.
    let token = s.verification_token("9841000030", "register").await;
    assert!(!token.is_empty());
}

#[tokio::test]
async fn otp_requests_are_rate_limited_per_number_and_per_ip() {
    let s = TestServer::start_with(|c| c.otp.per_ip_per_hour = 7).await;
    for _ in 0..5 {
        s.otp("9841000040", "register").await;
    }
    let r = s.post("/api/auth/get-otp", None, json!({"identifier": "9841000040", "purpose": "register"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));

    // Different numbers from the same address hit the per-IP limit (7 per
    // hour; 5 codes were sent above, the refused request did not count).
    s.otp("9841000041", "register").await;
    s.otp("9841000042", "register").await;
    let r = s.post("/api/auth/get-otp", None, json!({"identifier": "9841000043", "purpose": "register"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sms_gateway_failure_is_a_clear_502() {
    let s = TestServer::start().await;
    s.sms.set_failing(true);
    let r = s.post("/api/auth/get-otp", None, json!({"identifier": "9841000050", "purpose": "register"})).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.error_code(), "otp_delivery_failed");
}

#[tokio::test]
async fn bad_input_gets_400_in_the_error_shape() {
    let s = TestServer::start().await;
    let raw = |body: &'static str, ct: &'static str| {
        s.http.post(s.url("/api/auth/get-otp")).header("content-type", ct).body(body).send()
    };
    let r = TestServer::read(raw("{not json", "application/json").await.unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "malformed_json");

    let r = TestServer::read(raw(r#"{"identifier": 42, "purpose": "login"}"#, "application/json").await.unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "validation_failed");

    let r =
        TestServer::read(raw(r#"{"identifier": "9841000060", "purpose": "hack"}"#, "application/json").await.unwrap())
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r =
        TestServer::read(raw(r#"{"identifier": "12", "purpose": "login"}"#, "application/json").await.unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["identifier"].is_array());

    let r = TestServer::read(raw("{}", "text/plain").await.unwrap()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    r.error_code();

    let session = s.register("9841000061").await;
    for bad in [
        json!({"date_of_birth": "2030-01-01"}),
        json!({"date_of_birth": "01/02/1990"}),
        json!({"full_name": "x"}),
        json!({"username": "Has Spaces"}),
        json!({"avatar_url": "javascript:alert(1)"}),
        json!({"full_name": 12}),
        json!({"unknown_field": true}),
    ] {
        let r = s.call(Method::PUT, "/api/profile", Some(&session.access), Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad} accepted: {}", r.body);
        r.error_code();
    }
    // Nothing of the refused updates stuck.
    let p = s.get("/api/profile", Some(&session.access)).await;
    assert_eq!(p.body["full_name"], serde_json::Value::Null);

    let ok = s
        .call(
            Method::PUT,
            "/api/profile",
            Some(&session.access),
            Some(json!({"full_name": "Sita Sharma", "date_of_birth": "1995-04-14", "address": "Lazimpat, Kathmandu", "username": "sita_s"})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["is_complete"], true);
    assert_eq!(s.get("/api/auth/me", Some(&session.access)).await.body["profile_complete"], true);
}

#[tokio::test]
async fn account_deletion_anonymises_and_keeps_the_row() {
    let s = TestServer::start().await;
    let session = s.register("9841000070").await;
    s.call(
        Method::PUT,
        "/api/profile",
        Some(&session.access),
        Some(json!({"full_name": "Hari Bahadur", "address": "Patan", "username": "hari"})),
    )
    .await;
    // An identity document uploaded before: deleted with the account.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    let part = reqwest::multipart::Part::bytes(png).file_name("id.png");
    let resp = s
        .http
        .post(s.url("/api/upload"))
        .bearer_auth(&session.access)
        .multipart(reqwest::multipart::Form::new().part("file", part).text("purpose", "kyc"))
        .send()
        .await
        .unwrap();
    let upload = TestServer::read(resp).await;
    assert_eq!(upload.status, StatusCode::CREATED, "{}", upload.body);
    let file_url = upload.body["url"].as_str().unwrap().to_string();
    let admin = s.admin().await;
    let as_admin = || s.http.get(&file_url).bearer_auth(&admin.access).send();
    assert_eq!(as_admin().await.unwrap().status(), StatusCode::OK);

    let r = s.call(Method::DELETE, "/api/auth/account", Some(&session.access), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(as_admin().await.unwrap().status(), StatusCode::NOT_FOUND, "the document itself is gone");
    assert_eq!(s.get("/api/auth/me", Some(&session.access)).await.status, StatusCode::UNAUTHORIZED);
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": session.refresh})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let id = session.user["id"].as_i64().unwrap();
    let db = powerbank::core::Db::open(&s.db_path(), 1).unwrap();
    let row = db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT u.status, u.phone, u.username, p.full_name, p.address, w.user_id
                 FROM users u JOIN user_profiles p ON p.user_id = u.id JOIN wallets w ON w.user_id = u.id
                 WHERE u.id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                },
            )?)
        })
        .await
        .unwrap();
    assert_eq!(row, ("deleted".into(), None, None, None, None, id), "personal data remains");

    // The number is free again: the person can sign up anew as a new user.
    let again = s.register("9841000070").await;
    assert_ne!(again.user["id"], session.user["id"]);
}

#[tokio::test]
async fn data_survives_a_restart() {
    let s = TestServer::start().await;
    let session = s.register("9841000080").await;
    let s = s.restart().await;
    // Access tokens stay valid: the signing key was stored, not regenerated.
    let me = s.get("/api/auth/me", Some(&session.access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["phone"], "+9779841000080");
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": session.refresh})).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn admin_password_login_counts_failures() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    assert_eq!(admin.user["role"], "admin");
    for _ in 0..s.config().operator_signin.free_failures {
        let r = s
            .post("/api/admin/login", None, json!({"email": "ops@powerbank.test", "password": "wrong password!"}))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Locked out from this address, even with the right password, for a while.
    let r = s
        .post(
            "/api/admin/login",
            None,
            json!({"email": "ops@powerbank.test", "password": "correct horse battery staple"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}
