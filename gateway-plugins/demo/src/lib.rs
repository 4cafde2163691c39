//! The demo's payment gateway: no money moves anywhere. Its "gateway
//! server" is a checkout page the host serves in demo mode
//! (`GET {checkout_url}/{ref}`), where the payer approves or declines.
//!
//! - create-intent: no outbound call. The reference is `demo_<order id>`; the
//!   redirect URL carries the amount and two tokens, HMAC-SHA256(signing_key,
//!   `<ref>|<amount>|succeeded`) and (`...|cancelled`), so the page can
//!   vouch for the payer's one decision without knowing the key.
//! - parse-webhook: the page's notification, a form `ref`, `amount_paisa`,
//!   `status` (`succeeded` or `cancelled`) and `signature` (the token of that
//!   decision). A decision's event id is `<ref>:<status>`, so any number of
//!   deliveries of it act once.
//! - verify: the same fields, as the page hands them back with the payer;
//!   without them the payment is still `pending` (the page's notification
//!   settles it).
//! - refund: always succeeds (there is no money to send back).
//!
//! Config: `checkout_url` (an http(s) URL, or a path such as
//! `/demo/checkout/demo` that the host resolves against its public URL).
//! Secret: `signing_key`. Never enable this plugin outside a demo: whoever
//! opens the checkout page can approve the payment.

use gateway_common::{
    constant_time_eq, form_decode, hmac_sha256, param, query_value, required_secret, secret_or_internal, to_hex,
};
use powerbank_plugin_sdk::payment_gateway::{
    CreateIntentRequest, GatewayError, Guest, PaymentIntent, PaymentStatus, PaymentVerification, RefundRequest,
    RefundResult, VerifyRequest, WebhookEvent,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, plugin_info};

const REF_PREFIX: &str = "demo_";

fn checkout_url() -> Result<String, CallError> {
    let url = config::required("checkout_url")?;
    let url = url.trim().trim_end_matches('/').to_string();
    let absolute = url.starts_with("https://") || url.starts_with("http://");
    if !(absolute || (url.starts_with('/') && !url.starts_with("//"))) {
        return Err(config::misconfigured("checkout_url", format!("must be an http(s) URL or a path, got `{url}`")));
    }
    Ok(url)
}

fn status_text(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Cancelled => "cancelled",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Pending => "pending",
        PaymentStatus::Refunded => "refunded",
    }
}

/// The token that vouches for one decision on one payment.
fn token(gateway_ref: &str, amount_paisa: i64, status: PaymentStatus) -> Result<String, GatewayError> {
    let key = secret_or_internal("signing_key")?;
    let message = format!("{gateway_ref}|{amount_paisa}|{}", status_text(status));
    Ok(to_hex(&hmac_sha256(key.as_bytes(), message.as_bytes())))
}

/// A decision the page vouched for: checks its token, and that it is a decision.
fn decision(fields: &[(String, String)]) -> Result<(String, i64, PaymentStatus), GatewayError> {
    let field = |k: &str| param(fields, k).ok_or_else(|| GatewayError::InvalidRequest(format!("missing `{k}`")));
    let gateway_ref = field("ref")?.to_string();
    if !gateway_ref.starts_with(REF_PREFIX) {
        return Err(GatewayError::InvalidRequest("not a demo payment reference".into()));
    }
    let amount: i64 = field("amount_paisa")?.parse().map_err(|_| GatewayError::InvalidRequest("bad amount".into()))?;
    let status = match field("status")? {
        "succeeded" => PaymentStatus::Succeeded,
        "cancelled" => PaymentStatus::Cancelled,
        other => return Err(GatewayError::InvalidRequest(format!("unknown status `{other}`"))),
    };
    let expected = token(&gateway_ref, amount, status)?;
    if !constant_time_eq(expected.as_bytes(), field("signature")?.trim().as_bytes()) {
        return Err(GatewayError::BadSignature);
    }
    Ok((gateway_ref, amount, status))
}

struct DemoGateway;

impl Guest for DemoGateway {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PaymentGateway, "Demo gateway (no real money)")
    }

    fn self_check() -> Result<(), CallError> {
        checkout_url()?;
        required_secret("signing_key").map(|_| ())
    }

    fn create_intent(request: CreateIntentRequest) -> Result<PaymentIntent, GatewayError> {
        if request.amount_paisa <= 0 {
            return Err(GatewayError::InvalidRequest("amount must be positive".into()));
        }
        let base = checkout_url()?;
        let gateway_ref = format!("{REF_PREFIX}{}", request.order_id);
        let amount = request.amount_paisa;
        let mut url = format!(
            "{base}/{gateway_ref}?amount_paisa={amount}&description={}&approve={}&decline={}",
            query_value(&request.description),
            token(&gateway_ref, amount, PaymentStatus::Succeeded)?,
            token(&gateway_ref, amount, PaymentStatus::Cancelled)?,
        );
        if let Some(back) = &request.return_url {
            url.push_str(&format!("&return_url={}", query_value(back)));
        }
        Ok(PaymentIntent { gateway_ref, status: PaymentStatus::Pending, redirect_url: Some(url), client_payload: None })
    }

    fn verify(request: VerifyRequest) -> Result<PaymentVerification, GatewayError> {
        if param(&request.callback_params, "signature").is_none() {
            // No decision handed back: nothing is known beyond the page's notification.
            return Ok(PaymentVerification {
                gateway_ref: request.gateway_ref,
                status: PaymentStatus::Pending,
                amount_paisa: request.expected_amount_paisa,
            });
        }
        let (gateway_ref, amount_paisa, status) = decision(&request.callback_params)?;
        if gateway_ref != request.gateway_ref {
            return Err(GatewayError::InvalidRequest("the decision is for another payment".into()));
        }
        if amount_paisa != request.expected_amount_paisa {
            return Err(GatewayError::AmountMismatch);
        }
        Ok(PaymentVerification { gateway_ref, status, amount_paisa })
    }

    fn parse_webhook(_headers: Vec<(String, String)>, body: Vec<u8>) -> Result<WebhookEvent, GatewayError> {
        let text = String::from_utf8(body).map_err(|_| GatewayError::InvalidRequest("body is not UTF-8".into()))?;
        let (gateway_ref, amount_paisa, status) = decision(&form_decode(text.trim()))?;
        Ok(WebhookEvent {
            event_id: format!("{gateway_ref}:{}", status_text(status)),
            order_id: gateway_ref.strip_prefix(REF_PREFIX).map(str::to_string),
            gateway_ref,
            status,
            amount_paisa,
        })
    }

    fn refund(request: RefundRequest) -> Result<RefundResult, GatewayError> {
        Ok(RefundResult {
            refund_ref: format!("demo_refund_{}", request.idempotency_key),
            status: PaymentStatus::Refunded,
            amount_paisa: request.amount_paisa,
        })
    }
}

powerbank_plugin_sdk::export_payment_gateway!(DemoGateway);
