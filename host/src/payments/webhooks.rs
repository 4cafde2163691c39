//! Gateway webhooks: `POST /api/payment/webhook/{gateway}`, one route for
//! every gateway plugin (the spec's `/khalti`, `/esewa` and `/stripe` among
//! them), dispatched by the plugin's name in plugins.toml.
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
use powerbank_plugin_runtime::{
    PluginKind, PluginState,
    types::{GatewayError, PaymentStatus, WebhookEvent},
};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    gateway_errors::{gateway_failure, plugin_failure},
    intents::{IntentPurpose, IntentStatus, credit_intent, finish_unpaid, intent_for_event, note_error},
    topup::plan_topup_points,
};
use crate::{
    core::{ApiError, ApiPath, error::ErrorBody, now_ts},
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

/// Verifies and acts on one delivery for `gateway`; also the way a gateway
/// hosted in this process (the demo's) delivers its notifications.
pub async fn handle(
    state: AppState,
    gateway: String,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    let header_list: Vec<(String, String)> =
        headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string()))).collect();
    let parsed = state.plugins.gateway(&gateway).parse_webhook(header_list.clone(), body.to_vec()).await;
    let event: WebhookEvent = match parsed.map_err(plugin_failure)? {
        Ok(event) => event,
        Err(GatewayError::BadSignature) => {
            tracing::warn!(%gateway, "webhook with a signature that does not verify refused");
            return Err(gateway_failure(&gateway, GatewayError::BadSignature));
        }
        Err(GatewayError::InvalidRequest(m)) => {
            tracing::warn!(%gateway, error = %m, "malformed webhook refused");
            return Err(ApiError::bad_request(format!("webhook refused: {m}")));
        }
        Err(GatewayError::AmountMismatch) => {
            tracing::warn!(%gateway, "webhook claims another amount than the gateway reports; refused");
            return Err(ApiError::bad_request("webhook amount does not match the gateway's record"));
        }
        Err(other) => return Err(gateway_failure(&gateway, other)),
    };

    let found = {
        let (gateway, gateway_ref, order_id) = (gateway.clone(), event.gateway_ref.clone(), event.order_id.clone());
        state.db.read(move |c| intent_for_event(c, &gateway, &gateway_ref, order_id.as_deref())).await?
    };
    // An intent an earlier build of this gateway created is read by that
    // build while the runtime keeps it: a newer build takes new intents only.
    let event = match found.as_ref().and_then(|i| i.plugin_release.clone()) {
        Some(release) if state.plugins.serving_release(&gateway).as_deref() != Some(release.as_str()) => {
            let pinned = state.plugins.gateway_pinned(&gateway, Some(&release));
            match pinned.parse_webhook(header_list, body.to_vec()).await {
                Ok(Ok(read)) if read.gateway_ref == event.gateway_ref => read,
                _ => event,
            }
        }
        _ => event,
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
    let gateway_name = gateway.clone();
    let outcome = state
        .db
        .write(move |tx| {
            let inserted = tx.execute(
                "INSERT INTO payment_webhooks (gateway, event_id, event_type, payload, outcome, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'processing', ?5) ON CONFLICT (gateway, event_id) DO NOTHING",
                params![gateway_name, event.event_id, format!("payment.{}", status_text(event.status)), payload, now_ts()],
            )?;
            if inserted == 0 {
                return Ok("duplicate".to_string());
            }
            let webhook_id = tx.last_insert_rowid();
            let outcome = match (&found, event.status) {
                (None, _) => "unknown_intent",
                (Some(i), PaymentStatus::Succeeded) if i.amount_paisa != event.amount_paisa => {
                    note_error(tx, &i.id, &format!("amount_mismatch: webhook reports {} paisa", event.amount_paisa))?;
                    tracing::warn!(gateway = %gateway_name, intent = %i.id, reported = event.amount_paisa, "webhook amount mismatch");
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
    tracing::info!(%gateway, event_id, outcome, "webhook handled");
    Ok(Json(WebhookAck { received: true, event_id, outcome }))
}

/// A gateway's server-to-server notification, for the gateway plugin named
/// `{gateway}` in plugins.toml (`/api/payment/webhook/khalti`, `.../esewa`,
/// `.../stripe` and any other gateway plugin). The host trusts nothing in
/// it: the plugin's `parse-webhook` verifies it its gateway's way (Stripe's
/// `Stripe-Signature`, eSewa's signed `data`, Khalti's lookup, an HMAC
/// header, ...), and a delivery repeated any number of times acts once.
#[utoipa::path(
    post, path = "/api/payment/webhook/{gateway}", tag = "payments",
    params(("gateway" = String, Path, description = "The gateway plugin's name, as in `GET /api/payment/methods`")),
    request_body(content = Object, description = "The gateway's own notification body (JSON or form-encoded), verified by its plugin"),
    responses(
        (status = 200, description = "Handled (also for duplicates, other event types and unknown payments)", body = WebhookAck),
        (status = 400, description = "Malformed, a signature that does not verify, or the gateway does not know the payment", body = ErrorBody),
        (status = 404, description = "No gateway of that name is configured", body = ErrorBody),
        (status = 502, description = "Could not be processed now (the gateway could not be asked); retry later", body = ErrorBody),
        (status = 503, description = "The gateway's plugin is not available right now; retry later", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time; retry later", body = ErrorBody),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    ApiPath(gateway): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    // A configured gateway whose plugin is not serving right now answers 503
    // below, so its gateway retries; a name nobody configured is 404.
    let configured = state
        .plugins
        .status()
        .iter()
        .any(|p| p.name == gateway && p.kind == PluginKind::PaymentGateway && p.state != PluginState::Disabled);
    if !configured {
        return Err(ApiError::not_found("payment gateway"));
    }
    handle(state, gateway, headers, body).await
}
