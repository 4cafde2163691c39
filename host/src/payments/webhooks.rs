//! Gateway webhooks: `POST /api/payment/webhook/{khalti,esewa,stripe}`.
//!
//! Public endpoints: what makes a delivery believable is the gateway plugin's
//! `parse-webhook` (Stripe's signature, eSewa's signed `data`, Khalti's
//! lookup). A verified event is stored in `payment_webhooks` and acted on in
//! the same transaction; the UNIQUE (gateway, event_id) row makes a repeated
//! delivery a no-op. Answers follow what gateways expect: 2xx for anything
//! handled, duplicates and events about payments we do not know included (a
//! retry would not change them); 400 for a delivery that does not verify;
//! 5xx only when we could not process it, so the gateway retries later.

use axum::{Json, body::Bytes, extract::State, http::HeaderMap};
use powerbank_plugin_runtime::types::{GatewayError, PaymentStatus, WebhookEvent};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    gateway_errors::{gateway_failure, plugin_failure},
    intents::{IntentPurpose, IntentStatus, credit_intent, finish_unpaid, intent_for_event, note_error},
    topup::plan_topup_points,
};
use crate::{
    core::{ApiError, error::ErrorBody, now_ts},
    state::AppState,
};

/// Stored payloads are capped; a webhook body is a few KiB.
const MAX_STORED_PAYLOAD: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    pub event_id: String,
    /// `credited`, `duplicate`, `already_completed`, `amount_mismatch`,
    /// `unknown_intent`, `payment_failed`, `cancelled` or `ignored`.
    pub outcome: String,
}

fn status_text(s: PaymentStatus) -> &'static str {
    match s {
        PaymentStatus::Pending => "pending",
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Cancelled => "cancelled",
        PaymentStatus::Refunded => "refunded",
    }
}

async fn handle(
    state: AppState,
    gateway: &'static str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    let header_list: Vec<(String, String)> =
        headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string()))).collect();
    let parsed = state.plugins.gateway(gateway).parse_webhook(header_list, body.to_vec()).await;
    let event: WebhookEvent = match parsed.map_err(plugin_failure)? {
        Ok(event) => event,
        Err(GatewayError::BadSignature) => {
            tracing::warn!(gateway, "webhook with a signature that does not verify refused");
            return Err(gateway_failure(gateway, GatewayError::BadSignature));
        }
        Err(GatewayError::InvalidRequest(m)) => {
            tracing::warn!(gateway, error = %m, "malformed webhook refused");
            return Err(ApiError::bad_request(format!("webhook refused: {m}")));
        }
        Err(GatewayError::AmountMismatch) => {
            tracing::warn!(gateway, "webhook claims another amount than the gateway reports; refused");
            return Err(ApiError::bad_request("webhook amount does not match the gateway's record"));
        }
        Err(other) => return Err(gateway_failure(gateway, other)),
    };

    let found = {
        let (gateway_ref, order_id) = (event.gateway_ref.clone(), event.order_id.clone());
        state.db.read(move |c| intent_for_event(c, gateway, &gateway_ref, order_id.as_deref())).await?
    };
    let creditable = found.as_ref().filter(|i| {
        event.status == PaymentStatus::Succeeded
            && i.status != IntentStatus::Completed
            && i.amount_paisa == event.amount_paisa
            && i.purpose == IntentPurpose::Topup
    });
    let planned = match creditable {
        Some(i) => plan_topup_points(&state, i.user_id, i.amount_paisa).await,
        None => None,
    };
    let payload = String::from_utf8_lossy(&body[..body.len().min(MAX_STORED_PAYLOAD)]).into_owned();
    let event_id = event.event_id.clone();
    let purposes = state.payment_purposes.clone();
    let outcome = state
        .db
        .write(move |tx| {
            let inserted = tx.execute(
                "INSERT INTO payment_webhooks (gateway, event_id, event_type, payload, outcome, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'processing', ?5) ON CONFLICT (gateway, event_id) DO NOTHING",
                params![gateway, event.event_id, format!("payment.{}", status_text(event.status)), payload, now_ts()],
            )?;
            if inserted == 0 {
                return Ok("duplicate".to_string());
            }
            let webhook_id = tx.last_insert_rowid();
            let outcome = match (&found, event.status) {
                (None, _) => "unknown_intent",
                (Some(i), PaymentStatus::Succeeded) if i.amount_paisa != event.amount_paisa => {
                    note_error(tx, &i.id, &format!("amount_mismatch: webhook reports {} paisa", event.amount_paisa))?;
                    tracing::warn!(gateway, intent = %i.id, reported = event.amount_paisa, "webhook amount mismatch");
                    "amount_mismatch"
                }
                (Some(i), PaymentStatus::Succeeded) => {
                    match credit_intent(tx, &purposes, &i.id, event.amount_paisa, planned.as_ref())? {
                        Some(_) => "credited",
                        None => "already_completed",
                    }
                }
                (Some(i), PaymentStatus::Failed) => {
                    // Not final for every gateway (a Stripe customer may try
                    // another card): note it and let verification decide.
                    note_error(tx, &i.id, "the gateway reported a failed payment attempt")?;
                    "payment_failed"
                }
                (Some(i), PaymentStatus::Cancelled) => {
                    finish_unpaid(tx, &purposes, &i.id, IntentStatus::Cancelled, "cancelled at the gateway")?;
                    "cancelled"
                }
                (Some(_), _) => "ignored",
            };
            tx.execute("UPDATE payment_webhooks SET outcome = ?2 WHERE id = ?1", params![webhook_id, outcome])?;
            Ok(outcome.to_string())
        })
        .await?;
    if outcome == "credited" {
        state.jobs.wake();
    }
    tracing::info!(gateway, event_id, outcome, "webhook handled");
    Ok(Json(WebhookAck { received: true, event_id, outcome }))
}

/// Khalti's server-to-server callback (its return-URL parameters as JSON or a
/// form: `pidx`, `status`, `total_amount`, `purchase_order_id`, ...). Nothing
/// in it is trusted: the plugin looks the payment up at Khalti.
#[utoipa::path(
    post, path = "/api/payment/webhook/khalti", tag = "payments",
    request_body(content = Object, description = "Khalti callback parameters (JSON or form-encoded)"),
    responses(
        (status = 200, description = "Handled (also for duplicates and unknown payments)", body = WebhookAck),
        (status = 400, description = "Malformed, or Khalti does not know the payment", body = ErrorBody),
        (status = 502, description = "Khalti could not be asked; retry later", body = ErrorBody),
        (status = 503, description = "This gateway is not enabled on this server", body = ErrorBody),
        (status = 504, description = "Khalti did not answer in time; retry later", body = ErrorBody),
    )
)]
pub async fn khalti(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    handle(state, "khalti", headers, body).await
}

/// eSewa's success notification: `data`, the base64 JSON eSewa signs, as a
/// JSON field or a form field. Accepted only if its signature verifies and
/// eSewa's status API confirms it.
#[utoipa::path(
    post, path = "/api/payment/webhook/esewa", tag = "payments",
    request_body(content = Object, description = "`{\"data\": \"<base64 signed JSON>\"}` or form `data=...`"),
    responses(
        (status = 200, description = "Handled (also for duplicates and unknown payments)", body = WebhookAck),
        (status = 400, description = "Malformed, or the signature does not verify", body = ErrorBody),
        (status = 502, description = "eSewa could not be asked; retry later", body = ErrorBody),
        (status = 503, description = "This gateway is not enabled on this server", body = ErrorBody),
        (status = 504, description = "eSewa did not answer in time; retry later", body = ErrorBody),
    )
)]
pub async fn esewa(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    handle(state, "esewa", headers, body).await
}

/// Stripe events (`payment_intent.succeeded`, `payment_intent.payment_failed`,
/// ...), verified from `Stripe-Signature` over the raw body.
#[utoipa::path(
    post, path = "/api/payment/webhook/stripe", tag = "payments",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`")),
    request_body(content = Object, description = "A Stripe event object"),
    responses(
        (status = 200, description = "Handled (also for duplicates, other event types and unknown payments)", body = WebhookAck),
        (status = 400, description = "Bad or expired signature, or not an event", body = ErrorBody),
        (status = 502, description = "Could not be processed now; Stripe retries", body = ErrorBody),
        (status = 503, description = "This gateway is not enabled on this server", body = ErrorBody),
    )
)]
pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    handle(state, "stripe", headers, body).await
}
