//! Fake Khalti ePayment (KPG-2): initiate, lookup and the merchant refund
//! API, with `Authorization: Key <secret>` as Khalti checks it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, atomic::Ordering},
};

use axum::{
    Json, Router,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

use super::{Behaviour, Control, random_id, serve};

#[derive(Debug, Clone)]
pub struct KhaltiPayment {
    pub pidx: String,
    pub amount: i64,
    pub total_amount: i64,
    pub purchase_order_id: String,
    pub purchase_order_name: String,
    pub return_url: String,
    pub status: String,
    pub transaction_id: Option<String>,
    pub refunded: bool,
}

struct KhaltiInner {
    secret_key: String,
    payments: Mutex<HashMap<String, KhaltiPayment>>,
    refunds: Mutex<Vec<(String, Option<i64>)>>,
    base: Mutex<String>,
}

/// Khalti ePayment (KPG-2) under `/api/v2/epayment/...` and the merchant
/// refund API under `/api/merchant-transaction/{id}/refund/`.
#[derive(Clone)]
pub struct FakeKhalti {
    addr: std::net::SocketAddr,
    inner: Arc<KhaltiInner>,
    control: Control,
}

type KhaltiState = (Arc<KhaltiInner>, Control);

fn khalti_auth(inner: &KhaltiInner, headers: &HeaderMap) -> Option<Response> {
    let expected = format!("Key {}", inner.secret_key);
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    (given != Some(expected.as_str())).then(|| {
        (StatusCode::UNAUTHORIZED, Json(json!({"detail": "Invalid token.", "status_code": 401}))).into_response()
    })
}

async fn khalti_initiate(
    State((inner, control)): State<KhaltiState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = control.gate().await {
        return r;
    }
    if let Some(r) = khalti_auth(&inner, &headers) {
        return r;
    }
    let mut missing = serde_json::Map::new();
    for field in ["return_url", "website_url", "amount", "purchase_order_id", "purchase_order_name"] {
        if body.get(field).is_none_or(Value::is_null) {
            missing.insert(field.to_string(), json!(["This field is required."]));
        }
    }
    if !missing.is_empty() {
        missing.insert("error_key".into(), json!("validation_error"));
        return (StatusCode::BAD_REQUEST, Json(Value::Object(missing))).into_response();
    }
    let amount = body["amount"].as_i64().unwrap_or(0);
    if amount < 1000 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"amount": ["Amount should be greater than Rs. 10, that is 1000 paisa."], "error_key": "validation_error"})),
        )
            .into_response();
    }
    let pidx = random_id(22);
    let payment = KhaltiPayment {
        pidx: pidx.clone(),
        amount,
        total_amount: amount,
        purchase_order_id: body["purchase_order_id"].as_str().unwrap_or_default().to_string(),
        purchase_order_name: body["purchase_order_name"].as_str().unwrap_or_default().to_string(),
        return_url: body["return_url"].as_str().unwrap_or_default().to_string(),
        status: "Initiated".into(),
        transaction_id: None,
        refunded: false,
    };
    inner.payments.lock().unwrap().insert(pidx.clone(), payment);
    let base = inner.base.lock().unwrap().clone();
    Json(json!({
        "pidx": pidx,
        "payment_url": format!("{base}/pay/?pidx={pidx}"),
        "expires_at": "2026-11-27T12:00:00.000000+05:45",
        "expires_in": 1800,
    }))
    .into_response()
}

async fn khalti_lookup(
    State((inner, control)): State<KhaltiState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = control.gate().await {
        return r;
    }
    if let Some(r) = khalti_auth(&inner, &headers) {
        return r;
    }
    let pidx = body["pidx"].as_str().unwrap_or_default();
    let Some(p) = inner.payments.lock().unwrap().get(pidx).cloned() else {
        return (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found.", "error_key": "validation_error"})))
            .into_response();
    };
    Json(json!({
        "pidx": p.pidx,
        "total_amount": p.total_amount,
        "status": p.status,
        "transaction_id": p.transaction_id,
        "fee": 0,
        "refunded": p.refunded,
    }))
    .into_response()
}

async fn khalti_refund(
    State((inner, control)): State<KhaltiState>,
    headers: HeaderMap,
    UrlPath(transaction_id): UrlPath<String>,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(r) = control.gate().await {
        return r;
    }
    if let Some(r) = khalti_auth(&inner, &headers) {
        return r;
    }
    let amount = body.and_then(|b| b["amount"].as_i64());
    let mut payments = inner.payments.lock().unwrap();
    let Some(p) = payments.values_mut().find(|p| p.transaction_id.as_deref() == Some(transaction_id.as_str())) else {
        return (StatusCode::NOT_FOUND, Json(json!({"detail": "Transaction not found."}))).into_response();
    };
    if p.refunded {
        return (StatusCode::BAD_REQUEST, Json(json!({"detail": "Transaction already refunded."}))).into_response();
    }
    p.refunded = true;
    p.status = if amount.is_some_and(|a| a < p.total_amount) { "Partially Refunded" } else { "Refunded" }.into();
    inner.refunds.lock().unwrap().push((transaction_id, amount));
    Json(json!({"detail": "Transaction refund successful."})).into_response()
}

impl FakeKhalti {
    pub async fn start(secret_key: &str) -> Self {
        let inner = Arc::new(KhaltiInner {
            secret_key: secret_key.to_string(),
            payments: Mutex::new(HashMap::new()),
            refunds: Mutex::new(Vec::new()),
            base: Mutex::new(String::new()),
        });
        let control = Control::new();
        let app = Router::new()
            .route("/api/v2/epayment/initiate/", post(khalti_initiate))
            .route("/api/v2/epayment/lookup/", post(khalti_lookup))
            .route("/api/merchant-transaction/{transaction_id}/refund/", post(khalti_refund))
            .with_state((inner.clone(), control.clone()));
        let addr = serve(app).await;
        *inner.base.lock().unwrap() = format!("http://{addr}");
        FakeKhalti { addr, inner, control }
    }

    /// `base_url` for the plugin: `http://127.0.0.1:PORT/api/v2`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v2", self.addr)
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        *self.control.behaviour.lock().unwrap() = b;
    }

    pub fn requests(&self) -> u64 {
        self.control.requests.load(Ordering::SeqCst)
    }

    pub fn payment(&self, pidx: &str) -> Option<KhaltiPayment> {
        self.inner.payments.lock().unwrap().get(pidx).cloned()
    }

    pub fn refunds(&self) -> Vec<(String, Option<i64>)> {
        self.inner.refunds.lock().unwrap().clone()
    }

    /// The user pays in full: status `Completed`, with a transaction id.
    pub fn complete(&self, pidx: &str) {
        self.set(pidx, |p| {
            p.status = "Completed".into();
            p.transaction_id = Some(random_id(22));
        });
    }

    /// A payment Khalti reports with another total than was initiated.
    pub fn complete_with_amount(&self, pidx: &str, total_amount: i64) {
        self.set(pidx, |p| {
            p.status = "Completed".into();
            p.total_amount = total_amount;
            p.transaction_id = Some(random_id(22));
        });
    }

    pub fn set_status(&self, pidx: &str, status: &str) {
        self.set(pidx, |p| p.status = status.into());
    }

    fn set(&self, pidx: &str, f: impl FnOnce(&mut KhaltiPayment)) {
        let mut payments = self.inner.payments.lock().unwrap();
        f(payments.get_mut(pidx).expect("known pidx"));
    }

    /// What Khalti appends to `return_url` when the user comes back.
    pub fn callback_params(&self, pidx: &str) -> Value {
        let p = self.payment(pidx).expect("known pidx");
        json!({
            "pidx": p.pidx,
            "transaction_id": p.transaction_id,
            "tidx": p.transaction_id,
            "amount": p.total_amount.to_string(),
            "total_amount": p.total_amount.to_string(),
            "mobile": "98XXXXX904",
            "status": p.status,
            "purchase_order_id": p.purchase_order_id,
            "purchase_order_name": p.purchase_order_name,
        })
    }
}
