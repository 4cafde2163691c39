//! Fake Stripe: PaymentIntents and refunds (form-encoded, bearer auth,
//! `Idempotency-Key`), and signing of webhook deliveries.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use super::{Behaviour, Control, hmac_sha256, random_id, serve};

struct StripeInner {
    secret_key: String,
    webhook_secret: String,
    intents: Mutex<HashMap<String, Value>>,
    /// Idempotency-Key → the first answer, as Stripe replays them.
    idempotent: Mutex<HashMap<String, Value>>,
    refunds: Mutex<Vec<Value>>,
}

/// Stripe's `/v1/payment_intents` and `/v1/refunds` (form-encoded, bearer
/// auth, `Idempotency-Key`), plus signing of webhook deliveries.
#[derive(Clone)]
pub struct FakeStripe {
    addr: std::net::SocketAddr,
    inner: Arc<StripeInner>,
    control: Control,
}

type StripeState = (Arc<StripeInner>, Control);

fn stripe_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"type": "invalid_request_error", "code": code, "message": message}})))
        .into_response()
}

fn stripe_auth(inner: &StripeInner, headers: &HeaderMap) -> Option<Response> {
    let expected = format!("Bearer {}", inner.secret_key);
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    (given != Some(expected.as_str()))
        .then(|| stripe_error(StatusCode::UNAUTHORIZED, "api_key_invalid", "Invalid API Key provided"))
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn stripe_create(
    State((inner, control)): State<StripeState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = control.gate().await {
        return r;
    }
    if let Some(r) = stripe_auth(&inner, &headers) {
        return r;
    }
    let key = idempotency_key(&headers);
    if let Some(k) = &key
        && let Some(first) = inner.idempotent.lock().unwrap().get(k)
    {
        return Json(first.clone()).into_response();
    }
    let Some(amount) = form.get("amount").and_then(|a| a.parse::<i64>().ok()).filter(|a| *a > 0) else {
        return stripe_error(StatusCode::BAD_REQUEST, "parameter_invalid_integer", "Invalid integer: amount");
    };
    let id = format!("pi_{}", random_id(24));
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[").and_then(|k| k.strip_suffix(']')).map(|k| (k.to_string(), json!(v)))
        })
        .collect();
    let intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": 0,
        "currency": form.get("currency").cloned().unwrap_or_default(),
        "description": form.get("description"),
        "metadata": metadata,
        "status": "requires_payment_method",
        "client_secret": format!("{id}_secret_{}", random_id(16)),
        "livemode": false,
    });
    inner.intents.lock().unwrap().insert(id, intent.clone());
    if let Some(k) = key {
        inner.idempotent.lock().unwrap().insert(k, intent.clone());
    }
    Json(intent).into_response()
}

async fn stripe_retrieve(
    State((inner, control)): State<StripeState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if let Some(r) = control.gate().await {
        return r;
    }
    if let Some(r) = stripe_auth(&inner, &headers) {
        return r;
    }
    match inner.intents.lock().unwrap().get(&id) {
        Some(intent) => Json(intent.clone()).into_response(),
        None => stripe_error(StatusCode::NOT_FOUND, "resource_missing", "No such payment_intent"),
    }
}

async fn stripe_refund(
    State((inner, control)): State<StripeState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = control.gate().await {
        return r;
    }
    if let Some(r) = stripe_auth(&inner, &headers) {
        return r;
    }
    let key = idempotency_key(&headers);
    if let Some(k) = &key
        && let Some(first) = inner.idempotent.lock().unwrap().get(k)
    {
        return Json(first.clone()).into_response();
    }
    let pi = form.get("payment_intent").cloned().unwrap_or_default();
    let Some(intent) = inner.intents.lock().unwrap().get(&pi).cloned() else {
        return stripe_error(StatusCode::NOT_FOUND, "resource_missing", "No such payment_intent");
    };
    if intent["status"] != "succeeded" {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "charge_not_refundable",
            "This PaymentIntent has no successful charge",
        );
    }
    let amount = form
        .get("amount")
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(intent["amount_received"].as_i64().unwrap_or(0));
    let refund = json!({
        "id": format!("re_{}", random_id(24)),
        "object": "refund",
        "amount": amount,
        "payment_intent": pi,
        "status": "succeeded",
        "reason": form.get("reason"),
    });
    inner.refunds.lock().unwrap().push(refund.clone());
    if let Some(k) = key {
        inner.idempotent.lock().unwrap().insert(k, refund.clone());
    }
    Json(refund).into_response()
}

impl FakeStripe {
    pub async fn start(secret_key: &str, webhook_secret: &str) -> Self {
        let inner = Arc::new(StripeInner {
            secret_key: secret_key.to_string(),
            webhook_secret: webhook_secret.to_string(),
            intents: Mutex::new(HashMap::new()),
            idempotent: Mutex::new(HashMap::new()),
            refunds: Mutex::new(Vec::new()),
        });
        let control = Control::new();
        let app = Router::new()
            .route("/v1/payment_intents", post(stripe_create))
            .route("/v1/payment_intents/{id}", get(stripe_retrieve))
            .route("/v1/refunds", post(stripe_refund))
            .with_state((inner.clone(), control.clone()));
        let addr = serve(app).await;
        FakeStripe { addr, inner, control }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        *self.control.behaviour.lock().unwrap() = b;
    }

    pub fn intent(&self, id: &str) -> Option<Value> {
        self.inner.intents.lock().unwrap().get(id).cloned()
    }

    pub fn refunds(&self) -> Vec<Value> {
        self.inner.refunds.lock().unwrap().clone()
    }

    /// The customer confirms the intent in the app and the charge succeeds.
    pub fn succeed(&self, id: &str) -> Value {
        let mut intents = self.inner.intents.lock().unwrap();
        let intent = intents.get_mut(id).expect("known payment intent");
        intent["status"] = json!("succeeded");
        intent["amount_received"] = intent["amount"].clone();
        intent.clone()
    }

    /// A Stripe event about the payment intent `id` as it is now.
    pub fn event(&self, kind: &str, id: &str) -> String {
        let object = self.intent(id).expect("known payment intent");
        json!({
            "id": format!("evt_{}", random_id(24)),
            "object": "event",
            "api_version": "2024-06-20",
            "created": chrono::Utc::now().timestamp(),
            "type": kind,
            "livemode": false,
            "data": { "object": object },
        })
        .to_string()
    }

    /// `Stripe-Signature` for `body` at `timestamp`, with `secret` (the
    /// endpoint secret unless forging).
    pub fn signature_with(secret: &str, body: &str, timestamp: i64) -> String {
        let signed = format!("{timestamp}.{body}");
        format!("t={timestamp},v1={}", hex::encode(hmac_sha256(secret.as_bytes(), signed.as_bytes())))
    }

    /// `Stripe-Signature` for `body`, signed now with the endpoint secret.
    pub fn sign(&self, body: &str) -> String {
        Self::signature_with(&self.inner.webhook_secret, body, chrono::Utc::now().timestamp())
    }

    pub fn sign_at(&self, body: &str, timestamp: i64) -> String {
        Self::signature_with(&self.inner.webhook_secret, body, timestamp)
    }
}
