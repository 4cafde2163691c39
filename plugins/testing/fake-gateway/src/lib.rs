//! A payment gateway stand-in that talks to nobody: enough to exercise the
//! payment-gateway world, secrets and per-name gateways in the runtime tests.
//!
//! Config: `checkout_base_url` (required). Secret: `webhook_secret`; a webhook
//! is accepted when its `x-signature` header equals it (a real gateway would
//! check an HMAC). Webhook body: `order_id=...&ref=...&amount=...&status=paid`.

use powerbank_plugin_sdk::payment_gateway::{
    CreateIntentRequest, GatewayError, Guest, PaymentIntent, PaymentStatus, PaymentVerification, RefundRequest,
    RefundResult, VerifyRequest, WebhookEvent,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, plugin_info, secret};

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
}

fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

struct FakeGateway;

impl Guest for FakeGateway {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PaymentGateway, "Fake Pay")
    }

    fn self_check() -> Result<(), CallError> {
        config::required("checkout_base_url").map(|_| ())
    }

    fn create_intent(request: CreateIntentRequest) -> Result<PaymentIntent, GatewayError> {
        if request.amount_paisa <= 0 {
            return Err(GatewayError::InvalidRequest("amount must be positive".into()));
        }
        let base = config::get("checkout_base_url").unwrap_or_default();
        let gateway_ref = format!("fake-{}", request.order_id);
        Ok(PaymentIntent {
            redirect_url: Some(format!("{base}/pay/{gateway_ref}")),
            gateway_ref,
            status: PaymentStatus::Pending,
            client_payload: None,
        })
    }

    fn verify(request: VerifyRequest) -> Result<PaymentVerification, GatewayError> {
        let amount: i64 = param(&request.callback_params, "amount")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| GatewayError::InvalidRequest("missing amount".into()))?;
        if amount != request.expected_amount_paisa {
            return Err(GatewayError::AmountMismatch);
        }
        let status = match param(&request.callback_params, "status") {
            Some("paid") => PaymentStatus::Succeeded,
            Some("cancelled") => PaymentStatus::Cancelled,
            _ => PaymentStatus::Failed,
        };
        Ok(PaymentVerification { gateway_ref: request.gateway_ref, status, amount_paisa: amount })
    }

    fn parse_webhook(headers: Vec<(String, String)>, body: Vec<u8>) -> Result<WebhookEvent, GatewayError> {
        let expected = secret("webhook_secret")
            .ok_or_else(|| GatewayError::Internal("secret `webhook_secret` not configured".into()))?;
        if param(&headers, "x-signature") != Some(expected.as_str()) {
            return Err(GatewayError::BadSignature);
        }
        let body = String::from_utf8(body).map_err(|_| GatewayError::InvalidRequest("body is not UTF-8".into()))?;
        let pairs = form_pairs(&body);
        let field = |k: &str| {
            param(&pairs, k).map(str::to_string).ok_or_else(|| GatewayError::InvalidRequest(format!("missing {k}")))
        };
        let amount_paisa = field("amount")?.parse().map_err(|_| GatewayError::InvalidRequest("bad amount".into()))?;
        let gateway_ref = field("ref")?;
        Ok(WebhookEvent {
            event_id: format!("evt-{gateway_ref}"),
            order_id: param(&pairs, "order_id").map(str::to_string),
            gateway_ref,
            status: if field("status")? == "paid" { PaymentStatus::Succeeded } else { PaymentStatus::Failed },
            amount_paisa,
        })
    }

    fn refund(request: RefundRequest) -> Result<RefundResult, GatewayError> {
        Ok(RefundResult {
            refund_ref: format!("refund-{}", request.idempotency_key),
            status: PaymentStatus::Refunded,
            amount_paisa: request.amount_paisa,
        })
    }
}

powerbank_plugin_sdk::export_payment_gateway!(FakeGateway);
