//! Fake eSewa ePay v2: the form endpoint, which checks the merchant's
//! signature as eSewa does, the status API and eSewa's signed success `data`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::json;

use super::{Behaviour, Control, hmac_sha256, random_id, serve};

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
