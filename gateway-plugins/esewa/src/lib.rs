//! eSewa ePay v2.
//!
//! - create-intent: no call to eSewa. The app posts a signed form to
//!   `form_url`; the signature is base64(HMAC-SHA256(secret_key,
//!   "total_amount=..,transaction_uuid=..,product_code=..")).
//! - verify and webhooks: eSewa sends the user back to `success_url` with
//!   `data` = base64 of a JSON object signed the same way over its
//!   `signed_field_names`. It is accepted only if that signature verifies,
//!   and then only once the status API
//!   (`GET {base_url}/api/epay/transaction/status/?product_code=..&total_amount=..&transaction_uuid=..`)
//!   answers `COMPLETE`. Without `data`, verify asks the status API alone.
//! - refund: ePay v2 has no refund API, so refunds are `not-supported` and
//!   are settled by the operator.
//!
//! Config: `base_url` (status API, e.g. `https://rc.esewa.com.np`),
//! `form_url` (e.g. `https://rc-epay.esewa.com.np/api/epay/main/v2/form`),
//! `product_code` (`EPAYTEST` in the sandbox), `success_url`, `failure_url`
//! (both optional when the host passes a return URL). Secret: `secret_key`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gateway_common::{
    base_url, body_fields, config_or_internal, constant_time_eq, hmac_sha256, json_ok, paisa_to_rupees, param,
    query_value, required_secret, rupees_to_paisa, secret_or_internal, send, text,
};
use powerbank_plugin_sdk::http::HttpMethod;
use powerbank_plugin_sdk::payment_gateway::{
    CreateIntentRequest, GatewayError, Guest, PaymentIntent, PaymentStatus, PaymentVerification, RefundRequest,
    RefundResult, VerifyRequest, WebhookEvent,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, log, plugin_info};
use serde_json::{Map, Value, json};

const REQUEST_SIGNED_FIELDS: &str = "total_amount,transaction_uuid,product_code";

fn product_code() -> Result<String, GatewayError> {
    Ok(config::required("product_code")?)
}

fn sign(message: &str) -> Result<String, GatewayError> {
    let key = secret_or_internal("secret_key")?;
    Ok(STANDARD.encode(hmac_sha256(key.as_bytes(), message.as_bytes())))
}

/// The message eSewa signs: `name=value` for each signed field, comma-joined.
fn signed_message(fields: &Map<String, Value>, names: &str) -> Option<String> {
    let mut parts = Vec::new();
    for name in names.split(',').map(str::trim) {
        let value = match fields.get(name)? {
            Value::String(s) => s.clone(),
            Value::Null => return None,
            other => other.to_string(),
        };
        parts.push(format!("{name}={value}"));
    }
    Some(parts.join(","))
}

/// The fields of eSewa's success `data`, after its signature checked out.
struct SuccessData {
    transaction_code: Option<String>,
    status: String,
    total_amount_paisa: i64,
    transaction_uuid: String,
}

fn decode_data(data: &str) -> Result<SuccessData, GatewayError> {
    // Query strings may turn `+` into a space.
    let cleaned: String = data.trim().replace(' ', "+");
    let raw =
        STANDARD.decode(cleaned.as_bytes()).map_err(|_| GatewayError::InvalidRequest("`data` is not base64".into()))?;
    let value: Value =
        serde_json::from_slice(&raw).map_err(|_| GatewayError::InvalidRequest("`data` is not JSON".into()))?;
    let fields = value.as_object().ok_or_else(|| GatewayError::InvalidRequest("`data` is not an object".into()))?;
    let names = text(&value, "signed_field_names").ok_or(GatewayError::BadSignature)?;
    let signature = text(&value, "signature").ok_or(GatewayError::BadSignature)?;
    let message = signed_message(fields, &names).ok_or(GatewayError::BadSignature)?;
    // The fields that decide a payment must be among the signed ones.
    for needed in ["status", "total_amount", "transaction_uuid", "product_code"] {
        if !names.split(',').any(|n| n.trim() == needed) {
            return Err(GatewayError::BadSignature);
        }
    }
    let expected = sign(&message)?;
    if !constant_time_eq(expected.as_bytes(), signature.trim().as_bytes()) {
        return Err(GatewayError::BadSignature);
    }
    if text(&value, "product_code") != Some(product_code()?) {
        return Err(GatewayError::InvalidRequest("`data` is for another product_code".into()));
    }
    let amount = text(&value, "total_amount").unwrap_or_default();
    Ok(SuccessData {
        transaction_code: text(&value, "transaction_code"),
        status: text(&value, "status").unwrap_or_default(),
        total_amount_paisa: rupees_to_paisa(&amount)
            .ok_or_else(|| GatewayError::InvalidRequest(format!("bad total_amount `{amount}`")))?,
        transaction_uuid: text(&value, "transaction_uuid")
            .ok_or_else(|| GatewayError::InvalidRequest("`data` without transaction_uuid".into()))?,
    })
}

/// eSewa's status API for one payment of `total_paisa`.
fn status_check(transaction_uuid: &str, total_paisa: i64) -> Result<(PaymentStatus, i64), GatewayError> {
    let url = format!(
        "{}/api/epay/transaction/status/?product_code={}&total_amount={}&transaction_uuid={}",
        config_or_internal("base_url")?,
        query_value(&product_code()?),
        query_value(&paisa_to_rupees(total_paisa)),
        query_value(transaction_uuid),
    );
    let response = send(HttpMethod::Get, &url, vec![("Accept".into(), "application/json".into())], None)?;
    let answer = json_ok(&url, &response)?;
    let status_text = text(&answer, "status").unwrap_or_default();
    let status = match status_text.as_str() {
        "COMPLETE" => PaymentStatus::Succeeded,
        "CANCELED" => PaymentStatus::Cancelled,
        "FULL_REFUND" | "PARTIAL_REFUND" => PaymentStatus::Refunded,
        // PENDING, AMBIGUOUS, NOT_FOUND (no payment yet, or its session ended):
        // nothing to credit now; the host expires the intent in time.
        _ => PaymentStatus::Pending,
    };
    let amount = text(&answer, "total_amount").and_then(|a| rupees_to_paisa(&a)).unwrap_or(0);
    if status == PaymentStatus::Succeeded
        && (text(&answer, "transaction_uuid").as_deref() != Some(transaction_uuid) || amount != total_paisa)
    {
        log::warn("eSewa status answer does not match the payment", &[("transaction_uuid", transaction_uuid)]);
        return Err(GatewayError::AmountMismatch);
    }
    Ok((status, amount))
}

struct Esewa;

impl Guest for Esewa {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PaymentGateway, "eSewa")
    }

    fn self_check() -> Result<(), CallError> {
        base_url("base_url")?;
        base_url("form_url")?;
        config::required("product_code")?;
        for key in ["success_url", "failure_url"] {
            if config::get(key).is_some() {
                base_url(key)?;
            }
        }
        required_secret("secret_key").map(|_| ())
    }

    fn create_intent(request: CreateIntentRequest) -> Result<PaymentIntent, GatewayError> {
        if request.amount_paisa <= 0 {
            return Err(GatewayError::InvalidRequest("amount must be positive".into()));
        }
        // eSewa accepts letters, digits and hyphens in transaction_uuid.
        if request.order_id.is_empty() || !request.order_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(GatewayError::InvalidRequest("order id must be letters, digits and hyphens".into()));
        }
        let product_code = product_code()?;
        let total = paisa_to_rupees(request.amount_paisa);
        let success_url = match request.return_url.clone() {
            Some(url) => url,
            None => config_or_internal("success_url")?,
        };
        let failure_url = config_or_internal("failure_url").unwrap_or_else(|_| success_url.clone());
        let message = format!("total_amount={total},transaction_uuid={},product_code={product_code}", request.order_id);
        let signature = sign(&message)?;
        let fields = json!({
            "amount": total,
            "tax_amount": "0",
            "total_amount": total,
            "transaction_uuid": request.order_id,
            "product_code": product_code,
            "product_service_charge": "0",
            "product_delivery_charge": "0",
            "success_url": success_url,
            "failure_url": failure_url,
            "signed_field_names": REQUEST_SIGNED_FIELDS,
            "signature": signature,
        });
        let payload = json!({
            "form": { "action": config_or_internal("form_url")?, "method": "POST", "fields": fields },
        });
        Ok(PaymentIntent {
            gateway_ref: request.order_id,
            status: PaymentStatus::Pending,
            redirect_url: None,
            client_payload: Some(payload.to_string()),
        })
    }

    fn verify(request: VerifyRequest) -> Result<PaymentVerification, GatewayError> {
        if let Some(data) = param(&request.callback_params, "data") {
            let data = decode_data(data)?;
            if data.transaction_uuid != request.gateway_ref {
                return Err(GatewayError::InvalidRequest("`data` is for another payment".into()));
            }
            if data.total_amount_paisa != request.expected_amount_paisa {
                return Err(GatewayError::AmountMismatch);
            }
        }
        let (status, amount_paisa) = status_check(&request.gateway_ref, request.expected_amount_paisa)?;
        Ok(PaymentVerification { gateway_ref: request.gateway_ref, status, amount_paisa })
    }

    fn parse_webhook(headers: Vec<(String, String)>, body: Vec<u8>) -> Result<WebhookEvent, GatewayError> {
        let fields = body_fields(&headers, &body)?;
        let data = param(&fields, "data").ok_or_else(|| GatewayError::InvalidRequest("missing `data`".into()))?;
        let data = decode_data(data)?;
        // Signed, but still confirmed with eSewa before anyone is credited.
        let (status, amount_paisa) = if data.status == "COMPLETE" {
            status_check(&data.transaction_uuid, data.total_amount_paisa)?
        } else {
            (PaymentStatus::Pending, data.total_amount_paisa)
        };
        let code = data.transaction_code.unwrap_or_else(|| "-".to_string());
        Ok(WebhookEvent {
            event_id: format!("{}:{code}:{}", data.transaction_uuid, data.status),
            order_id: Some(data.transaction_uuid.clone()),
            gateway_ref: data.transaction_uuid,
            status,
            amount_paisa,
        })
    }

    fn refund(_request: RefundRequest) -> Result<RefundResult, GatewayError> {
        Err(GatewayError::NotSupported)
    }
}

powerbank_plugin_sdk::export_payment_gateway!(Esewa);
