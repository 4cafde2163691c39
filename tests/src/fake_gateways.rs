//! Local stand-ins for the payment gateways, speaking their real protocols
//! over HTTP on 127.0.0.1: Khalti ePayment (initiate, lookup, merchant
//! refund, `Authorization: Key`), eSewa ePay v2 (the signed form, the status
//! API and the signed success `data`), and Stripe (PaymentIntents, refunds,
//! bearer auth, idempotency keys, signed webhooks).
//!
//! Each fake can be told to fail (`Behaviour::Fail` answers 503) or to be
//! slow (`Behaviour::Slow`), and [`Gateways`] writes a plugins.toml that
//! points the repository's built gateway plugins at them.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Form, Json, Router,
    extract::{Path as UrlPath, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// How a fake answers right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    /// 503 on every request.
    Fail,
    /// Waits this long before answering.
    Slow(Duration),
}

#[derive(Clone)]
struct Control {
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<AtomicU64>,
}

impl Control {
    fn new() -> Self {
        Control { behaviour: Arc::new(Mutex::new(Behaviour::Normal)), requests: Arc::new(AtomicU64::new(0)) }
    }

    /// Applies the behaviour; `Some` is the answer to send instead.
    async fn gate(&self) -> Option<Response> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let behaviour = *self.behaviour.lock().unwrap();
        match behaviour {
            Behaviour::Normal => None,
            Behaviour::Fail => Some(
                (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"detail": "Service temporarily unavailable"})))
                    .into_response(),
            ),
            Behaviour::Slow(d) => {
                tokio::time::sleep(d).await;
                None
            }
        }
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn random_id(len: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string().chars().take(len).collect()
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake gateway");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

// ---------------------------------------------------------------- Khalti

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

// ---------------------------------------------------------------- eSewa

pub const ESEWA_PRODUCT_CODE: &str = "EPAYTEST";

#[derive(Debug, Clone)]
pub struct EsewaPayment {
    pub transaction_uuid: String,
    pub total_amount_paisa: i64,
    pub status: String,
    pub ref_id: Option<String>,
    pub success_url: String,
}

struct EsewaInner {
    secret_key: String,
    payments: Mutex<HashMap<String, EsewaPayment>>,
}

/// eSewa ePay v2: the form endpoint (`/api/epay/main/v2/form`, which checks
/// the merchant's signature as eSewa does) and the status API
/// (`/api/epay/transaction/status/`).
#[derive(Clone)]
pub struct FakeEsewa {
    addr: std::net::SocketAddr,
    inner: Arc<EsewaInner>,
    control: Control,
}

type EsewaState = (Arc<EsewaInner>, Control);

/// Paisa as eSewa writes amounts in its answers: `1,500.0`, `100.0`, `99.5`.
pub fn esewa_amount(paisa: i64) -> String {
    let whole = paisa / 100;
    let frac = paisa % 100;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac % 10 == 0 { format!("{grouped}.{}", frac / 10) } else { format!("{grouped}.{frac:02}") }
}

fn parse_rupees(text: &str) -> Option<i64> {
    let cleaned: String = text.chars().filter(|c| *c != ',').collect();
    let (w, f) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    let f = format!("{:0<2}", f.trim_end_matches('0'));
    if f.len() > 2 {
        return None;
    }
    Some(w.parse::<i64>().ok()? * 100 + f.parse::<i64>().ok()?)
}

fn esewa_sign(secret: &str, message: &str) -> String {
    STANDARD.encode(hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

async fn esewa_form(State((inner, control)): State<EsewaState>, Form(form): Form<HashMap<String, String>>) -> Response {
    if let Some(r) = control.gate().await {
        return r;
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let names = field("signed_field_names");
    let message: Vec<String> = names.split(',').map(|n| format!("{n}={}", field(n))).collect();
    if esewa_sign(&inner.secret_key, &message.join(",")) != field("signature") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error_message": "Invalid payload signature."}))).into_response();
    }
    let Some(total) = parse_rupees(&field("total_amount")) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error_message": "Invalid amount."}))).into_response();
    };
    let uuid = field("transaction_uuid");
    inner.payments.lock().unwrap().insert(
        uuid.clone(),
        EsewaPayment {
            transaction_uuid: uuid,
            total_amount_paisa: total,
            status: "PENDING".into(),
            ref_id: None,
            success_url: field("success_url"),
        },
    );
    // eSewa shows its login page here; the test "pays" with a helper.
    (StatusCode::OK, "<html>eSewa login</html>").into_response()
}

async fn esewa_status(
    State((inner, control)): State<EsewaState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = control.gate().await {
        return r;
    }
    let uuid = q.get("transaction_uuid").cloned().unwrap_or_default();
    let product = q.get("product_code").cloned().unwrap_or_default();
    let total = q.get("total_amount").and_then(|t| parse_rupees(t));
    let payment = inner.payments.lock().unwrap().get(&uuid).cloned();
    match payment {
        Some(p) if product == ESEWA_PRODUCT_CODE && total == Some(p.total_amount_paisa) => Json(json!({
            "product_code": product,
            "transaction_uuid": p.transaction_uuid,
            "total_amount": p.total_amount_paisa as f64 / 100.0,
            "status": p.status,
            "ref_id": p.ref_id,
        }))
        .into_response(),
        _ => Json(json!({
            "product_code": product,
            "transaction_uuid": uuid,
            "total_amount": total.map(|t| t as f64 / 100.0),
            "status": "NOT_FOUND",
            "ref_id": null,
        }))
        .into_response(),
    }
}

impl FakeEsewa {
    pub async fn start(secret_key: &str) -> Self {
        let inner = Arc::new(EsewaInner { secret_key: secret_key.to_string(), payments: Mutex::new(HashMap::new()) });
        let control = Control::new();
        let app = Router::new()
            .route("/api/epay/main/v2/form", post(esewa_form))
            .route("/api/epay/transaction/status/", get(esewa_status))
            .with_state((inner.clone(), control.clone()));
        let addr = serve(app).await;
        FakeEsewa { addr, inner, control }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn form_url(&self) -> String {
        format!("http://{}/api/epay/main/v2/form", self.addr)
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        *self.control.behaviour.lock().unwrap() = b;
    }

    pub fn payment(&self, uuid: &str) -> Option<EsewaPayment> {
        self.inner.payments.lock().unwrap().get(uuid).cloned()
    }

    /// The user pays: the payment becomes `COMPLETE` and eSewa's signed
    /// success `data` (what it appends to `success_url`) is returned.
    pub fn pay(&self, uuid: &str) -> String {
        let amount = {
            let mut payments = self.inner.payments.lock().unwrap();
            let p = payments.get_mut(uuid).expect("the form was posted first");
            p.status = "COMPLETE".into();
            p.ref_id = Some(format!("000{}", random_id(4).to_uppercase()));
            p.total_amount_paisa
        };
        self.success_data(uuid, amount, &self.inner.secret_key)
    }

    /// eSewa's success `data` for `uuid` claiming `amount_paisa`, signed with
    /// `secret` (pass a wrong one to forge).
    pub fn success_data(&self, uuid: &str, amount_paisa: i64, secret: &str) -> String {
        let p = self.payment(uuid);
        let code = p.as_ref().and_then(|p| p.ref_id.clone()).unwrap_or_else(|| "000AWEO".into());
        let success_url = p.map(|p| p.success_url).unwrap_or_default();
        let names = "transaction_code,status,total_amount,transaction_uuid,product_code,success_url,signed_field_names";
        let mut data = json!({
            "transaction_code": code,
            "status": "COMPLETE",
            "total_amount": esewa_amount(amount_paisa),
            "transaction_uuid": uuid,
            "product_code": ESEWA_PRODUCT_CODE,
            "success_url": success_url,
            "signed_field_names": names,
        });
        let message: Vec<String> =
            names.split(',').map(|n| format!("{n}={}", data[n].as_str().unwrap_or_default())).collect();
        data["signature"] = json!(esewa_sign(secret, &message.join(",")));
        STANDARD.encode(data.to_string())
    }

    pub fn secret_key(&self) -> String {
        self.inner.secret_key.clone()
    }
}

// ---------------------------------------------------------------- Stripe

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

// ---------------------------------------------------------------- plugins.toml

pub const KHALTI_SECRET: &str = "test_secret_key_f59e8b7d18b4499ca40f68195a846e9b";
pub const ESEWA_SECRET: &str = "8gBm/:&EnhH.1/q";
pub const STRIPE_SECRET: &str = "sk_test_51PowerbankFakeKey";
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_powerbank_fake_endpoint_secret";

/// The three fakes, and the plugins.toml that points the gateway plugins at them.
#[derive(Clone)]
pub struct Gateways {
    pub khalti: FakeKhalti,
    pub esewa: FakeEsewa,
    pub stripe: FakeStripe,
}

/// Absolute path of a built plugin in the repository's `plugins/dist/`.
pub fn dist(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("plugins").join("dist").join(file)
}

/// Per-call limits of the gateway plugins in tests: short, so a slow fake
/// shows as a timeout quickly.
pub const GATEWAY_TIMEOUT_MS: u64 = 2_000;

impl Gateways {
    pub async fn start() -> Self {
        Gateways {
            khalti: FakeKhalti::start(KHALTI_SECRET).await,
            esewa: FakeEsewa::start(ESEWA_SECRET).await,
            stripe: FakeStripe::start(STRIPE_SECRET, STRIPE_WEBHOOK_SECRET).await,
        }
    }

    /// A complete plugins.toml: the standard pricing, points and promotions
    /// plugins, the two station protocols and the three gateways pointed at
    /// the fakes. `khalti_extra`
    /// is added to Khalti's config table (to make a "new version").
    pub fn plugins_toml(&self, khalti_extra: &str) -> String {
        let path = |f: &str| dist(f).display().to_string().replace('\\', "/");
        format!(
            r#"
[plugins.pricing-standard]
kind = "pricing"
path = "{pricing}"

[plugins.points-standard]
kind = "points-rules"
path = "{points}"

[plugins.promotions-standard]
kind = "promotions"
path = "{promotions}"

[plugins.native]
kind = "station-protocol"
path = "{station_native}"

[plugins.volinks-v1]
kind = "station-protocol"
path = "{station_volinks}"

[plugins.khalti]
kind = "payment-gateway"
path = "{khalti}"
allowed_hosts = ["http://{khalti_host}"]
secrets = {{ secret_key = {{ value = "{khalti_secret}" }} }}
[plugins.khalti.config]
base_url = "{khalti_base}"
website_url = "https://powerbank.test"
return_url = "https://powerbank.test/payment/khalti/return"
{khalti_extra}
[plugins.khalti.limits]
timeout_ms = {timeout}
max_outbound_calls = 3

[plugins.esewa]
kind = "payment-gateway"
path = "{esewa}"
allowed_hosts = ["http://{esewa_host}"]
secrets = {{ secret_key = {{ value = "{esewa_secret}" }} }}
[plugins.esewa.config]
base_url = "{esewa_base}"
form_url = "{esewa_form}"
product_code = "EPAYTEST"
success_url = "https://powerbank.test/payment/esewa/success"
failure_url = "https://powerbank.test/payment/esewa/failure"
[plugins.esewa.limits]
timeout_ms = {timeout}
max_outbound_calls = 2

[plugins.stripe]
kind = "payment-gateway"
path = "{stripe}"
allowed_hosts = ["http://{stripe_host}"]
secrets = {{ secret_key = {{ value = "{stripe_secret}" }}, webhook_secret = {{ value = "{stripe_whsec}" }} }}
[plugins.stripe.config]
base_url = "{stripe_base}"
[plugins.stripe.limits]
timeout_ms = {timeout}
max_outbound_calls = 2
"#,
            pricing = path("pricing_standard.wasm"),
            points = path("points_standard.wasm"),
            promotions = path("promotions_standard.wasm"),
            station_native = path("station_native.wasm"),
            station_volinks = path("station_volinks_v1.wasm"),
            khalti = path("khalti.wasm"),
            khalti_host = self.khalti.host(),
            khalti_secret = KHALTI_SECRET,
            khalti_base = self.khalti.base_url(),
            esewa = path("esewa.wasm"),
            esewa_host = self.esewa.host(),
            esewa_secret = ESEWA_SECRET.replace('\\', "\\\\"),
            esewa_base = self.esewa.base_url(),
            esewa_form = self.esewa.form_url(),
            stripe = path("stripe.wasm"),
            stripe_host = self.stripe.host(),
            stripe_secret = STRIPE_SECRET,
            stripe_whsec = STRIPE_WEBHOOK_SECRET,
            stripe_base = self.stripe.base_url(),
            timeout = GATEWAY_TIMEOUT_MS,
        )
    }

    /// Writes [`Self::plugins_toml`] into `dir`; returns its path.
    pub fn write_plugins_toml(&self, dir: &Path, khalti_extra: &str) -> PathBuf {
        let file = dir.join("plugins.toml");
        std::fs::write(&file, self.plugins_toml(khalti_extra)).expect("write plugins.toml");
        file
    }

    /// A test server whose gateway plugins talk to these fakes.
    pub async fn server(&self) -> crate::TestServer {
        let gateways = self.clone();
        crate::TestServer::start_with(move |config| {
            config.plugins_path = gateways.write_plugins_toml(&config.data_dir, "");
        })
        .await
    }
}
