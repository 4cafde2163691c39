//! Acme Pay: a gateway the host has never heard of, for the tests that show
//! a new gateway is a plugin and a plugins.toml entry, nothing else. It makes
//! no outbound calls: its checkout is a URL, and it speaks to the host only
//! through signed webhooks.
//!
//! - create-intent: reference `acme_<order id>`, redirect `{checkout_url}/<ref>`.
//! - parse-webhook: a JSON event `{"id", "type", "data": {"reference",
//!   "order_id", "amount_paisa"}}` with `Acme-Signature: sha256=<hex
//!   HMAC-SHA256(webhook_secret, raw body)>`; `type` is `payment.succeeded`,
//!   `payment.failed` or `payment.cancelled`.
//! - verify: Acme has no status API here; a payment is `pending` until its
//!   webhook arrives.
//! - refund: accepted at once.
//!
//! Config: `checkout_url`. Secret: `webhook_secret`.

use gateway_common::{
    base_url, constant_time_eq, header, hmac_sha256, int, required_secret, secret_or_internal, text, to_hex,
};
use powerbank_plugin_sdk::payment_gateway::{
    CreateIntentRequest, GatewayError, Guest, PaymentIntent, PaymentStatus, PaymentVerification, RefundRequest,
    RefundResult, VerifyRequest, WebhookEvent,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, plugin_info};
use serde_json::Value;

struct AcmePay;

impl Guest for AcmePay {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PaymentGateway, "Acme Pay")
    }

    fn self_check() -> Result<(), CallError> {
        base_url("checkout_url")?;
        required_secret("webhook_secret").map(|_| ())
    }

    fn create_intent(request: CreateIntentRequest) -> Result<PaymentIntent, GatewayError> {
        if request.amount_paisa <= 0 {
            return Err(GatewayError::InvalidRequest("amount must be positive".into()));
        }
        let gateway_ref = format!("acme_{}", request.order_id);
        Ok(PaymentIntent {
            redirect_url: Some(format!("{}/{gateway_ref}", base_url("checkout_url")?)),
            gateway_ref,
            status: PaymentStatus::Pending,
            client_payload: None,
        })
    }

    fn verify(request: VerifyRequest) -> Result<PaymentVerification, GatewayError> {
        Ok(PaymentVerification {
            gateway_ref: request.gateway_ref,
            status: PaymentStatus::Pending,
            amount_paisa: request.expected_amount_paisa,
        })
    }

    fn parse_webhook(headers: Vec<(String, String)>, body: Vec<u8>) -> Result<WebhookEvent, GatewayError> {
        let key = secret_or_internal("webhook_secret")?;
        let given = header(&headers, "acme-signature").and_then(|s| s.trim().strip_prefix("sha256="));
        let expected = to_hex(&hmac_sha256(key.as_bytes(), &body));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
            return Err(GatewayError::BadSignature);
        }
        let event: Value =
            serde_json::from_slice(&body).map_err(|e| GatewayError::InvalidRequest(format!("not JSON: {e}")))?;
        let missing = |k: &str| GatewayError::InvalidRequest(format!("missing `{k}`"));
        let data = event.get("data").ok_or_else(|| missing("data"))?;
        let status = match text(&event, "type").as_deref() {
            Some("payment.succeeded") => PaymentStatus::Succeeded,
            Some("payment.failed") => PaymentStatus::Failed,
            Some("payment.cancelled") => PaymentStatus::Cancelled,
            _ => PaymentStatus::Pending,
        };
        Ok(WebhookEvent {
            event_id: text(&event, "id").ok_or_else(|| missing("id"))?,
            order_id: text(data, "order_id"),
            gateway_ref: text(data, "reference").ok_or_else(|| missing("data.reference"))?,
            status,
            amount_paisa: int(data, "amount_paisa").ok_or_else(|| missing("data.amount_paisa"))?,
        })
    }

    fn refund(request: RefundRequest) -> Result<RefundResult, GatewayError> {
        Ok(RefundResult {
            refund_ref: format!("acme_refund_{}", request.idempotency_key),
            status: PaymentStatus::Refunded,
            amount_paisa: request.amount_paisa,
        })
    }
}

powerbank_plugin_sdk::export_payment_gateway!(AcmePay);
