//! Local stand-ins for external services, speaking their real protocols.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicI64, Ordering},
};

use axum::{Form, Json, Router, extract::State, http::StatusCode, routing::post};
use serde::Deserialize;
use serde_json::{Value, json};

/// Sparrow SMS v2: `POST /v2/sms/` with form fields `token`, `from`, `to`,
/// `text`. Answers 200 with `response_code: 200` when queued, 403 with
/// Sparrow's own error codes otherwise.
#[derive(Clone)]
pub struct FakeSparrow {
    addr: std::net::SocketAddr,
    inner: Arc<SparrowInner>,
}

struct SparrowInner {
    token: String,
    messages: Mutex<Vec<SentSms>>,
    failing: AtomicBool,
    next_id: AtomicI64,
}

#[derive(Debug, Clone)]
pub struct SentSms {
    pub from: String,
    pub to: String,
    pub text: String,
}

#[derive(Deserialize)]
struct SmsForm {
    token: String,
    from: String,
    to: String,
    text: String,
}

async fn send_sms(State(inner): State<Arc<SparrowInner>>, Form(form): Form<SmsForm>) -> (StatusCode, Json<Value>) {
    if inner.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"response_code": 5000, "response": "Server error"})));
    }
    if form.token != inner.token {
        return (StatusCode::FORBIDDEN, Json(json!({"response_code": 1002, "response": "Invalid Token"})));
    }
    let valid_number = form.to.len() == 10 && form.to.bytes().all(|b| b.is_ascii_digit());
    if !valid_number {
        return (StatusCode::FORBIDDEN, Json(json!({"response_code": 1008, "response": "Invalid Receiver"})));
    }
    let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut m) = inner.messages.lock() {
        m.push(SentSms { from: form.from, to: form.to, text: form.text });
    }
    (
        StatusCode::OK,
        Json(
            json!({"count": 1, "response_code": 200, "response": "1 mesages has been queued for delivery", "message_id": id, "credit_consumed": 1}),
        ),
    )
}

impl FakeSparrow {
    pub async fn start(token: &str) -> Self {
        let inner = Arc::new(SparrowInner {
            token: token.to_string(),
            messages: Mutex::new(Vec::new()),
            failing: AtomicBool::new(false),
            next_id: AtomicI64::new(1),
        });
        let app = Router::new().route("/v2/sms/", post(send_sms)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake sparrow");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn messages(&self) -> Vec<SentSms> {
        self.inner.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// The six-digit code in the newest message.
    pub fn last_code(&self) -> Option<String> {
        let text = self.messages().last()?.text.clone();
        text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).map(str::to_owned)
    }
}
