//! A local Firebase Cloud Messaging, HTTP v1, with its OAuth token endpoint.
//!
//! `POST /token` takes Google's service-account grant
//! (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`),
//! verifies the RS256 assertion with the public half of the test key pair in
//! `tests/fixtures/`, and issues an access token. `POST
//! /v1/projects/{project}/messages:send` requires one of those tokens as its
//! bearer, records the message, and answers the way FCM does: `UNREGISTERED`
//! (404) for tokens it was told are dead, `INVALID_ARGUMENT` (400) for bad
//! ones, `UNAVAILABLE` (503) for everything while it is down.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Form, Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use powerbank::config::FcmConfig;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::TestServer;

/// The test service account's private key (PKCS#8 PEM). Test-only.
pub const PRIVATE_KEY_PEM: &str = include_str!("../fixtures/fake-fcm-key.pem");
const PUBLIC_KEY_PEM: &str = include_str!("../fixtures/fake-fcm-key.pub.pem");
pub const PROJECT_ID: &str = "powerbank-test";
pub const CLIENT_EMAIL: &str = "push@powerbank-test.iam.gserviceaccount.com";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Clone)]
pub struct FakeFcm {
    addr: std::net::SocketAddr,
    inner: Arc<FcmInner>,
}

struct FcmInner {
    token_uri: String,
    decoding: DecodingKey,
    access_tokens: Mutex<HashSet<String>>,
    token_requests: AtomicUsize,
    rejected_assertions: AtomicUsize,
    send_attempts: AtomicUsize,
    messages: Mutex<Vec<FcmMessage>>,
    unregistered: Mutex<HashSet<String>>,
    invalid: Mutex<HashSet<String>>,
    down: AtomicBool,
}

/// A message FCM accepted.
#[derive(Debug, Clone)]
pub struct FcmMessage {
    pub token: String,
    pub title: String,
    pub body: String,
    pub data: HashMap<String, String>,
    /// The `android` block (priority, notification.channel_id), if sent.
    pub android: Option<Value>,
    /// The `apns` block (headers, payload.aps), if sent.
    pub apns: Option<Value>,
}

/// Checks the platform blocks as FCM does: Android priority is `NORMAL` or
/// `HIGH`, the channel a string; APNs priority is `5` or `10`, a badge a
/// non-negative integer, a sound a string.
fn platform_blocks_valid(message: &Value) -> bool {
    let android = &message["android"];
    if !android.is_null() {
        let priority_ok =
            android["priority"].is_null() || matches!(android["priority"].as_str(), Some("NORMAL" | "HIGH"));
        let channel = &android["notification"]["channel_id"];
        if !android.is_object() || !priority_ok || !(channel.is_null() || channel.is_string()) {
            return false;
        }
    }
    let apns = &message["apns"];
    if !apns.is_null() {
        let priority = &apns["headers"]["apns-priority"];
        let aps = &apns["payload"]["aps"];
        let priority_ok = priority.is_null() || matches!(priority.as_str(), Some("5" | "10"));
        let badge_ok = aps["badge"].is_null() || aps["badge"].as_u64().is_some();
        let sound_ok = aps["sound"].is_null() || aps["sound"].is_string();
        if !apns.is_object() || !priority_ok || !badge_ok || !sound_ok {
            return false;
        }
    }
    true
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    assertion: String,
}

#[derive(Deserialize)]
struct AssertionClaims {
    scope: String,
    iat: i64,
    exp: i64,
}

fn oauth_error(error: &str, description: &str) -> (StatusCode, Json<Value>) {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error, "error_description": description})))
}

async fn token(State(inner): State<Arc<FcmInner>>, Form(form): Form<TokenForm>) -> (StatusCode, Json<Value>) {
    inner.token_requests.fetch_add(1, Ordering::SeqCst);
    if form.grant_type != GRANT_TYPE {
        return oauth_error("unsupported_grant_type", "Invalid grant_type");
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.set_audience(&[&inner.token_uri]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = match jsonwebtoken::decode::<AssertionClaims>(&form.assertion, &inner.decoding, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            inner.rejected_assertions.fetch_add(1, Ordering::SeqCst);
            return oauth_error("invalid_grant", &format!("Invalid JWT: {e}"));
        }
    };
    if !claims.scope.split(' ').any(|s| s == SCOPE) || claims.exp - claims.iat > 3600 {
        inner.rejected_assertions.fetch_add(1, Ordering::SeqCst);
        return oauth_error("invalid_scope", "scope or lifetime not allowed");
    }
    let n = inner.token_requests.load(Ordering::SeqCst);
    let access = format!("ya29.fake-{n}-{}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
    if let Ok(mut tokens) = inner.access_tokens.lock() {
        tokens.insert(access.clone());
    }
    (StatusCode::OK, Json(json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer"})))
}

fn fcm_error(status: StatusCode, name: &str, error_code: Option<&str>) -> (StatusCode, Json<Value>) {
    let details: Vec<Value> = error_code
        .map(|c| json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c}))
        .into_iter()
        .collect();
    (status, Json(json!({"error": {"code": status.as_u16(), "message": name, "status": name, "details": details}})))
}

async fn send(
    State(inner): State<Arc<FcmInner>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    inner.send_attempts.fetch_add(1, Ordering::SeqCst);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let known = inner.access_tokens.lock().map(|t| t.contains(bearer)).unwrap_or(false);
    if !known {
        return fcm_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", None);
    }
    if project != PROJECT_ID {
        return fcm_error(StatusCode::NOT_FOUND, "NOT_FOUND", None);
    }
    if inner.down.load(Ordering::SeqCst) {
        return fcm_error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", Some("UNAVAILABLE"));
    }
    let message = &body["message"];
    let token = message["token"].as_str().unwrap_or_default().to_string();
    let data = message["data"].as_object().cloned().unwrap_or_default();
    // FCM refuses non-string data values.
    let data: Option<HashMap<String, String>> =
        data.into_iter().map(|(k, v)| v.as_str().map(|s| (k, s.to_string()))).collect();
    let (Some(title), Some(text), Some(data)) =
        (message["notification"]["title"].as_str(), message["notification"]["body"].as_str(), data)
    else {
        return fcm_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"));
    };
    if !platform_blocks_valid(message) {
        return fcm_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"));
    }
    let (android, apns) = (message.get("android").cloned(), message.get("apns").cloned());
    if inner.unregistered.lock().map(|u| u.contains(&token)).unwrap_or(false) {
        return fcm_error(StatusCode::NOT_FOUND, "NOT_FOUND", Some("UNREGISTERED"));
    }
    if token.is_empty() || inner.invalid.lock().map(|u| u.contains(&token)).unwrap_or(false) {
        return fcm_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"));
    }
    let mut messages = inner.messages.lock().expect("messages lock");
    messages.push(FcmMessage { token, title: title.into(), body: text.into(), data, android, apns });
    (StatusCode::OK, Json(json!({"name": format!("projects/{PROJECT_ID}/messages/{}", messages.len())})))
}

impl FakeFcm {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake fcm");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(FcmInner {
            token_uri: format!("http://{addr}/token"),
            decoding: DecodingKey::from_rsa_pem(PUBLIC_KEY_PEM.as_bytes()).expect("test public key"),
            access_tokens: Mutex::new(HashSet::new()),
            token_requests: AtomicUsize::new(0),
            rejected_assertions: AtomicUsize::new(0),
            send_attempts: AtomicUsize::new(0),
            messages: Mutex::new(Vec::new()),
            unregistered: Mutex::new(HashSet::new()),
            invalid: Mutex::new(HashSet::new()),
            down: AtomicBool::new(false),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/messages:send", post(send))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    /// Settings for the host, as its service-account file would give them.
    pub fn config(&self) -> FcmConfig {
        FcmConfig {
            base_url: format!("http://{}", self.addr),
            token_uri: self.inner.token_uri.clone(),
            project_id: PROJECT_ID.into(),
            client_email: CLIENT_EMAIL.into(),
            private_key: PRIVATE_KEY_PEM.into(),
        }
    }

    /// A service-account key file, as the Firebase console hands it out.
    pub fn service_account_json(&self) -> Value {
        json!({
            "type": "service_account",
            "project_id": PROJECT_ID,
            "private_key_id": "test",
            "private_key": PRIVATE_KEY_PEM,
            "client_email": CLIENT_EMAIL,
            "token_uri": self.inner.token_uri,
        })
    }

    pub fn messages(&self) -> Vec<FcmMessage> {
        self.inner.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Access tokens requested at the OAuth endpoint (valid or not).
    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Assertions that failed verification.
    pub fn rejected_assertions(&self) -> usize {
        self.inner.rejected_assertions.load(Ordering::SeqCst)
    }

    /// Every `messages:send` call, accepted or not.
    pub fn send_attempts(&self) -> usize {
        self.inner.send_attempts.load(Ordering::SeqCst)
    }

    /// From now on, messages to `token` get `UNREGISTERED`.
    pub fn unregister(&self, token: &str) {
        self.inner.unregistered.lock().expect("lock").insert(token.to_string());
    }

    /// From now on, messages to `token` get `INVALID_ARGUMENT`.
    pub fn mark_invalid(&self, token: &str) {
        self.inner.invalid.lock().expect("lock").insert(token.to_string());
    }

    /// While down, every message gets 503 `UNAVAILABLE`.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }
}

impl TestServer {
    /// Starts a server whose push notifications go to `fcm`.
    pub async fn start_with_fcm(fcm: &FakeFcm) -> Self {
        let config = fcm.config();
        Self::start_with(move |c| c.fcm = Some(config)).await
    }
}

/// Polls `check` until it yields a value, for effects of background jobs;
/// panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
