//! Khalti ePayment (KPG-2).
//!
//! - create-intent: `POST {base_url}/epayment/initiate/` with
//!   `Authorization: Key <secret_key>`; answers `pidx` and `payment_url`.
//! - verify and webhooks: always confirmed by `POST {base_url}/epayment/lookup/`;
//!   only `Completed` is a payment. What the user's browser or a webhook body
//!   says (status, amount) is never trusted on its own.
//! - refund: Khalti's merchant refund API,
//!   `POST {refund_base_url}/merchant-transaction/{transaction_id}/refund/`.
//!
//! Config: `base_url` (e.g. `https://dev.khalti.com/api/v2`), `website_url`,
//! `return_url` (used when the host gives none), `refund_base_url` (default:
//! `base_url` without its trailing `/v2`). Secret: `secret_key`.

use gateway_common::{
    base_url, body_fields, config_or_internal, int, json_ok, param, required_secret, secret_or_internal, send, text,
};
use powerbank_plugin_sdk::http::HttpMethod;
use powerbank_plugin_sdk::payment_gateway::{
    CreateIntentRequest, GatewayError, Guest, PaymentIntent, PaymentStatus, PaymentVerification, RefundRequest,
    RefundResult, VerifyRequest, WebhookEvent,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, log, plugin_info};
use serde_json::{Value, json};

fn auth_headers() -> Result<Vec<(String, String)>, GatewayError> {
    let key = secret_or_internal("secret_key")?;
    Ok(vec![
        ("Authorization".to_string(), format!("Key {key}")),
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Accept".to_string(), "application/json".to_string()),
    ])
}

fn post_json(url: &str, body: &Value) -> Result<Value, GatewayError> {
    let response = send(HttpMethod::Post, url, auth_headers()?, Some(body.to_string().into_bytes()))?;
    json_ok(url, &response)
}

fn refund_base() -> Result<String, GatewayError> {
    if config::get("refund_base_url").is_some() {
        return config_or_internal("refund_base_url");
    }
    let base = config_or_internal("base_url")?;
    Ok(base.strip_suffix("/v2").unwrap_or(&base).to_string())
}

/// Khalti's lookup answer for `pidx`.
struct Lookup {
    status_text: String,
    status: PaymentStatus,
    total_amount: i64,
    transaction_id: Option<String>,
}

fn lookup(pidx: &str) -> Result<Lookup, GatewayError> {
    let url = format!("{}/epayment/lookup/", config_or_internal("base_url")?);
    let answer = post_json(&url, &json!({ "pidx": pidx }))?;
    let status_text = text(&answer, "status").ok_or_else(|| GatewayError::Internal("lookup without status".into()))?;
    // Only `Completed` is money received; everything else credits nothing.
    let status = match status_text.as_str() {
        "Completed" => PaymentStatus::Succeeded,
        "Pending" | "Initiated" => PaymentStatus::Pending,
        "User canceled" => PaymentStatus::Cancelled,
        "Expired" => PaymentStatus::Failed,
        "Refunded" | "Partially Refunded" => PaymentStatus::Refunded,
        other => {
            log::warn("unknown Khalti status; treated as pending", &[("status", other)]);
            PaymentStatus::Pending
        }
    };
    Ok(Lookup {
        status_text,
        status,
        total_amount: int(&answer, "total_amount").unwrap_or(0),
        transaction_id: text(&answer, "transaction_id"),
    })
}

/// An amount a callback or webhook claims, if it claims one.
fn claimed_amount(params: &[(String, String)]) -> Result<Option<i64>, GatewayError> {
    let raw = param(params, "total_amount").or_else(|| param(params, "amount"));
    raw.map(|a| a.trim().parse::<i64>().map_err(|_| GatewayError::InvalidRequest(format!("bad amount `{a}`"))))
        .transpose()
}

struct Khalti;

impl Guest for Khalti {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PaymentGateway, "Khalti")
    }

    fn self_check() -> Result<(), CallError> {
        base_url("base_url")?;
        base_url("website_url")?;
        if config::get("refund_base_url").is_some() {
            base_url("refund_base_url")?;
        }
        required_secret("secret_key").map(|_| ())
    }

    fn create_intent(request: CreateIntentRequest) -> Result<PaymentIntent, GatewayError> {
        // Khalti refuses less than Rs 10.
        if request.amount_paisa < 1000 {
            return Err(GatewayError::InvalidRequest("Khalti needs at least 1000 paisa (NPR 10)".into()));
        }
        let return_url = match request.return_url.clone() {
            Some(url) => url,
            None => config_or_internal("return_url")?,
        };
        let url = format!("{}/epayment/initiate/", config_or_internal("base_url")?);
        let answer = post_json(
            &url,
            &json!({
                "return_url": return_url,
                "website_url": config_or_internal("website_url")?,
                "amount": request.amount_paisa,
                "purchase_order_id": request.order_id,
                "purchase_order_name": request.description,
            }),
        )?;
        let pidx =
            text(&answer, "pidx").ok_or_else(|| GatewayError::Internal("initiate answer without pidx".into()))?;
        let payment_url = text(&answer, "payment_url");
        let payload = json!({
            "pidx": pidx,
            "payment_url": payment_url,
            "expires_at": text(&answer, "expires_at"),
        });
        Ok(PaymentIntent {
            gateway_ref: pidx,
            status: PaymentStatus::Pending,
            redirect_url: payment_url,
            client_payload: Some(payload.to_string()),
        })
    }

    fn verify(request: VerifyRequest) -> Result<PaymentVerification, GatewayError> {
        // The callback's pidx, if any, must be this payment's.
        if let Some(pidx) = param(&request.callback_params, "pidx")
            && pidx != request.gateway_ref
        {
            return Err(GatewayError::InvalidRequest("pidx does not belong to this payment".into()));
        }
        if let Some(claimed) = claimed_amount(&request.callback_params)?
            && claimed != request.expected_amount_paisa
        {
            return Err(GatewayError::AmountMismatch);
        }
        let found = lookup(&request.gateway_ref)?;
        if found.status == PaymentStatus::Succeeded && found.total_amount != request.expected_amount_paisa {
            log::warn(
                "Khalti reports another amount than expected",
                &[("pidx", &request.gateway_ref), ("total_amount", &found.total_amount.to_string())],
            );
            return Err(GatewayError::AmountMismatch);
        }
        Ok(PaymentVerification {
            gateway_ref: request.gateway_ref,
            status: found.status,
            amount_paisa: found.total_amount,
        })
    }

    fn parse_webhook(headers: Vec<(String, String)>, body: Vec<u8>) -> Result<WebhookEvent, GatewayError> {
        // Khalti signs nothing: the body only names the payment, and the
        // lookup says what really happened to it.
        let fields = body_fields(&headers, &body)?;
        let pidx = param(&fields, "pidx").ok_or_else(|| GatewayError::InvalidRequest("missing pidx".into()))?;
        let found = lookup(pidx)?;
        if let Some(claimed) = claimed_amount(&fields)?
            && claimed != found.total_amount
        {
            return Err(GatewayError::AmountMismatch);
        }
        Ok(WebhookEvent {
            event_id: format!("{pidx}:{}", found.status_text),
            order_id: param(&fields, "purchase_order_id").map(str::to_string),
            gateway_ref: pidx.to_string(),
            status: found.status,
            amount_paisa: found.total_amount,
        })
    }

    fn refund(request: RefundRequest) -> Result<RefundResult, GatewayError> {
        let found = lookup(&request.gateway_ref)?;
        if found.status != PaymentStatus::Succeeded {
            return Err(GatewayError::InvalidRequest(format!("payment is `{}`, not Completed", found.status_text)));
        }
        let transaction_id = found
            .transaction_id
            .ok_or_else(|| GatewayError::Internal("completed payment without transaction_id".into()))?;
        let url = format!("{}/merchant-transaction/{transaction_id}/refund/", refund_base()?);
        // A full refund sends no body; a partial one names the amount.
        let body = (request.amount_paisa < found.total_amount).then(|| json!({ "amount": request.amount_paisa }));
        let response = send(
            HttpMethod::Post,
            &url,
            auth_headers()?,
            Some(body.unwrap_or_else(|| json!({})).to_string().into_bytes()),
        )?;
        json_ok(&url, &response)?;
        Ok(RefundResult {
            refund_ref: transaction_id,
            status: PaymentStatus::Refunded,
            amount_paisa: request.amount_paisa,
        })
    }
}

powerbank_plugin_sdk::export_payment_gateway!(Khalti);
