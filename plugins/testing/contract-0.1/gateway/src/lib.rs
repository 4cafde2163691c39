//! A payment gateway built against contract 0.1.0, with 0.1's conventions:
//! a timeout is `unavailable` with a message starting with `timeout`.
//!
//! Config: `api_base_url` (required). Secret: `webhook_secret`.
//! - `create-intent`: `v01-{order_id}`, redirect to `{api_base_url}/pay/{ref}`.
//! - `verify`: `GET {api_base_url}/status/{ref}` answers `paid:{amount}` or
//!   `unpaid`; another amount than expected is `amount-mismatch`; an HTTP
//!   504 is `unavailable("timeout ...")`, another 5xx plain `unavailable`.
//! - `parse-webhook`: header `x-signature` must equal the secret; body
//!   `ref=...&amount=...&status=paid`.
//! - `refund`: `not-supported` when config `refunds = "off"`.

use contract_v0_1_bindings::host::{self, HttpError, HttpMethod, HttpRequest};
use contract_v0_1_bindings::payment_gateway::{
    CreateIntentRequest, GatewayError, Guest, PaymentIntent, PaymentStatus, PaymentVerification, PluginInfo,
    PluginKind, RefundRequest, RefundResult, VerifyRequest, WebhookEvent,
};
use contract_v0_1_bindings::plugin_info;

fn api() -> Result<String, String> {
    host::config_get("api_base_url").ok_or_else(|| "config `api_base_url` is required".to_string())
}

fn pairs(text: &str) -> Vec<(String, String)> {
    text.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Result<&'a str, GatewayError> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| GatewayError::InvalidRequest(format!("missing {key}")))
}

struct Gateway01;

impl Guest for Gateway01 {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PaymentGateway)
    }

    fn self_check() -> Result<(), String> {
        api().map(|_| ())
    }

    fn create_intent(request: CreateIntentRequest) -> Result<PaymentIntent, GatewayError> {
        if request.amount_paisa <= 0 {
            return Err(GatewayError::InvalidRequest("amount must be positive".into()));
        }
        let gateway_ref = format!("v01-{}", request.order_id);
        Ok(PaymentIntent {
            redirect_url: Some(format!("{}/pay/{gateway_ref}", api().map_err(GatewayError::Internal)?)),
            gateway_ref,
            status: PaymentStatus::Pending,
            client_payload: None,
        })
    }

    fn verify(request: VerifyRequest) -> Result<PaymentVerification, GatewayError> {
        let url = format!("{}/status/{}", api().map_err(GatewayError::Internal)?, request.gateway_ref);
        let fetched = host::http_fetch(&HttpRequest { method: HttpMethod::Get, url, headers: Vec::new(), body: None });
        let response = fetched.map_err(|e| match e {
            // 0.1's convention for the host: a timeout is `unavailable("timeout ...")`.
            HttpError::Timeout => GatewayError::Unavailable("timeout waiting for the status API".into()),
            other => GatewayError::Unavailable(format!("status API: {other:?}")),
        })?;
        match response.status {
            504 => return Err(GatewayError::Unavailable("timeout reported by the status API (HTTP 504)".into())),
            500..=599 => {
                return Err(GatewayError::Unavailable(format!("status API answered HTTP {}", response.status)));
            }
            _ => {}
        }
        let body = String::from_utf8_lossy(&response.body).into_owned();
        let (status, amount) = match body.trim().split_once(':') {
            Some(("paid", amount)) => (PaymentStatus::Succeeded, amount.parse().unwrap_or(-1)),
            _ => (PaymentStatus::Pending, request.expected_amount_paisa),
        };
        if amount != request.expected_amount_paisa {
            return Err(GatewayError::AmountMismatch);
        }
        Ok(PaymentVerification { gateway_ref: request.gateway_ref, status, amount_paisa: amount })
    }

    fn parse_webhook(headers: Vec<(String, String)>, body: Vec<u8>) -> Result<WebhookEvent, GatewayError> {
        let secret = host::secret_get("webhook_secret")
            .ok_or_else(|| GatewayError::Internal("secret `webhook_secret` not configured".into()))?;
        if field(&headers, "x-signature").ok() != Some(secret.as_str()) {
            return Err(GatewayError::BadSignature);
        }
        let fields = pairs(&String::from_utf8_lossy(&body));
        let gateway_ref = field(&fields, "ref")?.to_string();
        let amount_paisa =
            field(&fields, "amount")?.parse().map_err(|_| GatewayError::InvalidRequest("amount".into()))?;
        let paid = field(&fields, "status")? == "paid";
        Ok(WebhookEvent {
            event_id: format!("evt-{gateway_ref}"),
            order_id: gateway_ref.strip_prefix("v01-").map(str::to_string),
            gateway_ref,
            status: if paid { PaymentStatus::Succeeded } else { PaymentStatus::Failed },
            amount_paisa,
        })
    }

    fn refund(request: RefundRequest) -> Result<RefundResult, GatewayError> {
        if host::config_get("refunds").as_deref() == Some("off") {
            return Err(GatewayError::NotSupported);
        }
        Ok(RefundResult {
            refund_ref: format!("r-{}", request.idempotency_key),
            status: PaymentStatus::Refunded,
            amount_paisa: request.amount_paisa,
        })
    }
}

contract_v0_1_bindings::export_payment_gateway!(Gateway01);
