//! Stripe PaymentIntents.
//!
//! - create-intent: `POST {base_url}/v1/payment_intents` (form-encoded,
//!   `Authorization: Bearer <secret_key>`, `Idempotency-Key` = the host's
//!   order id), amount in paisa, currency `npr`; the app confirms it with the
//!   returned `client_secret`.
//! - verify: `GET {base_url}/v1/payment_intents/{id}`; `succeeded` credits.
//! - webhooks: `Stripe-Signature: t=..,v1=..` must carry a `v1` equal to the
//!   hex HMAC-SHA256 of `"{t}.{raw body}"` under `webhook_secret`, with `t`
//!   within `webhook_tolerance_secs` (300) of now.
//!   `payment_intent.succeeded` and `payment_intent.payment_failed` matter;
//!   other event types are parsed and reported as pending.
//! - refund: `POST {base_url}/v1/refunds` with the host's idempotency key.
//!
//! Config: `base_url` (`https://api.stripe.com`), `currency` (default `npr`),
//! `publishable_key` (optional, handed to the app), `webhook_tolerance_secs`.
//! Secrets: `secret_key`, `webhook_secret`.

use gateway_common::{
    base_url, config_or_internal, constant_time_eq, form_encode, header, hmac_sha256, int, json_ok, required_secret,
    secret_or_internal, send, text, to_hex,
};
use powerbank_plugin_sdk::http::HttpMethod;
use powerbank_plugin_sdk::payment_gateway::{
    CreateIntentRequest, GatewayError, Guest, PaymentIntent, PaymentStatus, PaymentVerification, RefundRequest,
    RefundResult, VerifyRequest, WebhookEvent,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, now_unix_ms, plugin_info};
use serde_json::{Value, json};

fn headers(idempotency_key: Option<&str>) -> Result<Vec<(String, String)>, GatewayError> {
    let key = secret_or_internal("secret_key")?;
    let mut h = vec![
        ("Authorization".to_string(), format!("Bearer {key}")),
        ("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string()),
        ("Stripe-Version".to_string(), "2024-06-20".to_string()),
    ];
    if let Some(k) = idempotency_key {
        h.push(("Idempotency-Key".to_string(), k.to_string()));
    }
    Ok(h)
}

fn intent_status(status: &str) -> PaymentStatus {
    match status {
        "succeeded" => PaymentStatus::Succeeded,
        "canceled" => PaymentStatus::Cancelled,
        // requires_payment_method (also after a failed attempt: the customer
        // may try again), requires_confirmation, requires_action, processing,
        // requires_capture.
        _ => PaymentStatus::Pending,
    }
}

/// Amount actually received for a succeeded intent, else the intent's amount.
fn intent_amount(object: &Value, status: PaymentStatus) -> i64 {
    let received = int(object, "amount_received").filter(|a| *a > 0);
    match (status, received) {
        (PaymentStatus::Succeeded, Some(a)) => a,
        _ => int(object, "amount").unwrap_or(0),
    }
}

fn order_id_of(object: &Value) -> Option<String> {
    object.get("metadata").and_then(|m| text(m, "order_id"))
}

/// Checks `Stripe-Signature` the way Stripe's own libraries do.
fn verify_signature(headers: &[(String, String)], body: &[u8]) -> Result<(), GatewayError> {
    let secret = secret_or_internal("webhook_secret")?;
    let tolerance: i64 = config::parse_or("webhook_tolerance_secs", 300)?;
    let header = header(headers, "stripe-signature").ok_or(GatewayError::BadSignature)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.push(s.to_string()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(GatewayError::BadSignature)?;
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = to_hex(&hmac_sha256(secret.as_bytes(), &signed));
    if !signatures.iter().any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes())) {
        return Err(GatewayError::BadSignature);
    }
    // A valid but old delivery may be a replay.
    if (now_unix_ms() / 1000 - timestamp).abs() > tolerance {
        return Err(GatewayError::BadSignature);
    }
    Ok(())
}

struct Stripe;

impl Guest for Stripe {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PaymentGateway, "Card (Stripe)")
    }

    fn self_check() -> Result<(), CallError> {
        base_url("base_url")?;
        config::parse_or::<i64>("webhook_tolerance_secs", 300)?;
        required_secret("secret_key")?;
        required_secret("webhook_secret").map(|_| ())
    }

    fn create_intent(request: CreateIntentRequest) -> Result<PaymentIntent, GatewayError> {
        if request.amount_paisa <= 0 {
            return Err(GatewayError::InvalidRequest("amount must be positive".into()));
        }
        let url = format!("{}/v1/payment_intents", config_or_internal("base_url")?);
        let currency = config::get("currency").unwrap_or_else(|| "npr".to_string());
        let form = form_encode(&[
            ("amount", request.amount_paisa.to_string()),
            ("currency", currency),
            ("description", request.description.clone()),
            ("metadata[order_id]", request.order_id.clone()),
            ("automatic_payment_methods[enabled]", "true".to_string()),
        ]);
        let response = send(HttpMethod::Post, &url, headers(Some(&request.order_id))?, Some(form.into_bytes()))?;
        let answer = json_ok(&url, &response)?;
        let id = text(&answer, "id").ok_or_else(|| GatewayError::Internal("payment intent without id".into()))?;
        let client_secret = text(&answer, "client_secret");
        let payload = json!({
            "payment_intent": id,
            "client_secret": client_secret,
            "publishable_key": config::get("publishable_key"),
        });
        Ok(PaymentIntent {
            gateway_ref: id,
            status: intent_status(&text(&answer, "status").unwrap_or_default()),
            redirect_url: None,
            client_payload: Some(payload.to_string()),
        })
    }

    fn verify(request: VerifyRequest) -> Result<PaymentVerification, GatewayError> {
        if !request.gateway_ref.starts_with("pi_") || request.gateway_ref.contains(['/', '?', '#']) {
            return Err(GatewayError::InvalidRequest("not a payment intent id".into()));
        }
        let url = format!("{}/v1/payment_intents/{}", config_or_internal("base_url")?, request.gateway_ref);
        let response = send(HttpMethod::Get, &url, headers(None)?, None)?;
        let object = json_ok(&url, &response)?;
        if order_id_of(&object).is_some_and(|o| o != request.order_id) {
            return Err(GatewayError::InvalidRequest("payment intent belongs to another order".into()));
        }
        let status = intent_status(&text(&object, "status").unwrap_or_default());
        let amount_paisa = intent_amount(&object, status);
        if status == PaymentStatus::Succeeded && amount_paisa != request.expected_amount_paisa {
            return Err(GatewayError::AmountMismatch);
        }
        Ok(PaymentVerification { gateway_ref: request.gateway_ref, status, amount_paisa })
    }

    fn parse_webhook(headers: Vec<(String, String)>, body: Vec<u8>) -> Result<WebhookEvent, GatewayError> {
        verify_signature(&headers, &body)?;
        let event: Value =
            serde_json::from_slice(&body).map_err(|_| GatewayError::InvalidRequest("body is not JSON".into()))?;
        let event_id = text(&event, "id").ok_or_else(|| GatewayError::InvalidRequest("event without id".into()))?;
        let kind = text(&event, "type").unwrap_or_default();
        let object = event.pointer("/data/object").cloned().unwrap_or(Value::Null);
        let status = match kind.as_str() {
            "payment_intent.succeeded" => PaymentStatus::Succeeded,
            "payment_intent.payment_failed" => PaymentStatus::Failed,
            "payment_intent.canceled" => PaymentStatus::Cancelled,
            _ => PaymentStatus::Pending,
        };
        Ok(WebhookEvent {
            event_id,
            order_id: order_id_of(&object),
            gateway_ref: text(&object, "id").unwrap_or_default(),
            status,
            amount_paisa: intent_amount(&object, status),
        })
    }

    fn refund(request: RefundRequest) -> Result<RefundResult, GatewayError> {
        let url = format!("{}/v1/refunds", config_or_internal("base_url")?);
        let form = form_encode(&[
            ("payment_intent", request.gateway_ref.clone()),
            ("amount", request.amount_paisa.to_string()),
            ("reason", "requested_by_customer".to_string()),
            ("metadata[order_id]", request.order_id.clone()),
            ("metadata[reason]", request.reason.clone()),
        ]);
        let response = send(HttpMethod::Post, &url, headers(Some(&request.idempotency_key))?, Some(form.into_bytes()))?;
        let answer = json_ok(&url, &response)?;
        let status = match text(&answer, "status").unwrap_or_default().as_str() {
            "succeeded" => PaymentStatus::Refunded,
            "pending" | "requires_action" => PaymentStatus::Pending,
            other => return Err(GatewayError::Declined(format!("refund {other}"))),
        };
        Ok(RefundResult {
            refund_ref: text(&answer, "id").unwrap_or_default(),
            status,
            amount_paisa: int(&answer, "amount").unwrap_or(request.amount_paisa),
        })
    }
}

powerbank_plugin_sdk::export_payment_gateway!(Stripe);
