//! Wallet top-ups through a gateway plugin: `POST /api/wallet/topup-intent`,
//! `POST /api/payment/verify-topup`, `GET /api/payment/status/{intent_id}`,
//! `POST /api/payment/cancel/{intent_id}`, and the job that keeps checking
//! pending intents until they are paid or expire.
//!
//! A gateway that is down or slow never loses a payment: the request fails
//! with 502/504, the intent stays pending, and the job asks again with
//! backoff (a verification with no callback data is always possible: the
//! plugins ask the gateway's lookup/status API).

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use powerbank_plugin_runtime::types::{CallContext, CreateIntentRequest};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{
    gateway::{
        Intent, IntentOut, IntentPurpose, IntentStatus, Settled, ask_gateway, find_intent, finish_unpaid,
        gateway_result, is_unreachable, note_error, settle, user_intent,
    },
    idempotency, wallet,
};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, AuthUser,
        error::ErrorBody,
        jobs::{self, NewJob},
        now_ts,
    },
    state::AppState,
};

/// Job: asks the gateway about a pending intent; expires it once its time is up.
pub const VERIFY_JOB: &str = "payments.verify_intent";

/// NPR 10: the smallest top-up (Khalti's own minimum too).
pub const MIN_TOPUP_PAISA: i64 = 1_000;
/// NPR 100,000.
pub const MAX_TOPUP_PAISA: i64 = 10_000_000;
/// How long the user has to pay at the gateway.
pub const INTENT_TTL_SECS: i64 = 30 * 60;
/// First background check of a new intent; later checks back off to 10 minutes.
const FIRST_CHECK_SECS: i64 = 60;
const MAX_CHECK_SECS: i64 = 600;

/// Stores `body` as the answer to an Idempotency-Key in the caller's
/// transaction, unless a concurrent twin of the request stored one first:
/// then the twin's answer is the answer.
pub(crate) fn remember_once<T: Serialize + DeserializeOwned>(
    tx: &Transaction<'_>,
    user_id: i64,
    key: Option<&str>,
    endpoint: &str,
    hash: &str,
    status: StatusCode,
    body: T,
) -> Result<(StatusCode, T), ApiError> {
    let Some(key) = key else { return Ok((status, body)) };
    if let Some(stored) = idempotency::replay(tx, user_id, key, endpoint, hash)? {
        return Ok(stored);
    }
    idempotency::remember(tx, user_id, key, endpoint, hash, status, &body)?;
    Ok((status, body))
}

/// The stored answer for this key, if the request was made before.
pub(crate) async fn replayed<T: DeserializeOwned + Send + 'static>(
    state: &AppState,
    user_id: i64,
    key: &Option<String>,
    endpoint: &'static str,
    hash: &str,
) -> Result<Option<(StatusCode, T)>, ApiError> {
    let Some(key) = key.clone() else { return Ok(None) };
    let hash = hash.to_string();
    state.db.write(move |tx| idempotency::replay(tx, user_id, &key, endpoint, &hash)).await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopupIntentIn {
    /// NPR 10 to NPR 100,000, in paisa.
    pub amount_paisa: i64,
    /// A gateway from `GET /api/payment/methods`: `khalti`, `esewa`, `stripe`.
    pub gateway: String,
    /// Where the gateway sends the user back (the app's deep link); the
    /// plugin's configured URL when absent.
    pub return_url: Option<String>,
}

/// Starts a wallet top-up at a gateway. With an `Idempotency-Key`, a repeated
/// request returns the first intent instead of opening another.
#[utoipa::path(
    post, path = "/api/wallet/topup-intent", tag = "payments",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    request_body = TopupIntentIn,
    responses(
        (status = 201, description = "Intent created: send the user to `payment_url`, post `form`, or confirm with `client_secret`", body = IntentOut),
        (status = 400, description = "Bad amount or unknown gateway", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 422, description = "The gateway refused the request, or the Idempotency-Key was used for another request", body = ErrorBody),
        (status = 502, description = "The gateway is unavailable", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time", body = ErrorBody),
    )
)]
pub async fn topup_intent(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TopupIntentIn>,
) -> Result<(StatusCode, Json<IntentOut>), ApiError> {
    const ENDPOINT: &str = "wallet/topup-intent";
    if !(MIN_TOPUP_PAISA..=MAX_TOPUP_PAISA).contains(&body.amount_paisa) {
        return Err(ApiError::invalid_field(
            "amount_paisa",
            format!("must be between {MIN_TOPUP_PAISA} and {MAX_TOPUP_PAISA} paisa"),
        ));
    }
    let gateways = state.plugins.gateway_names();
    if !gateways.contains(&body.gateway) {
        return Err(ApiError::invalid_field(
            "gateway",
            format!("`{}` is not an available gateway (available: {})", body.gateway, gateways.join(", ")),
        ));
    }
    check_return_url(body.return_url.as_deref())?;
    let key = idempotency::key_from(&headers)?;
    let hash = idempotency::request_hash(&body);
    if let Some((status, out)) = replayed::<IntentOut>(&state, user.id, &key, ENDPOINT, &hash).await? {
        return Ok((status, Json(out)));
    }

    let description = format!("powerbank wallet top-up NPR {}", crate::core::money::format_npr(body.amount_paisa));
    let opened =
        open_at_gateway(&state, user.id, &body.gateway, body.amount_paisa, description, body.return_url.clone())
            .await?;
    let (status, out) = state
        .db
        .write(move |tx| {
            // A twin request with the same key may have finished meanwhile.
            if let Some(k) = &key
                && let Some(stored) = idempotency::replay(tx, user.id, k, ENDPOINT, &hash)?
            {
                return Ok(stored);
            }
            let intent = store_intent(tx, user.id, IntentPurpose::Topup, &opened)?;
            remember_once(tx, user.id, key.as_deref(), ENDPOINT, &hash, StatusCode::CREATED, IntentOut::from(intent))
        })
        .await?;
    Ok((status, Json(out)))
}

/// A `return_url` the gateway may send the user back to.
pub(crate) fn check_return_url(url: Option<&str>) -> Result<(), ApiError> {
    if let Some(url) = url
        && (url.len() > 500 || !(url.starts_with("https://") || url.starts_with("http://")))
    {
        return Err(ApiError::invalid_field("return_url", "must be an http(s) URL of at most 500 characters"));
    }
    Ok(())
}

/// A payment the gateway has opened and we have not stored yet.
#[derive(Debug, Clone)]
pub struct OpenedIntent {
    pub id: String,
    pub gateway: String,
    pub amount_paisa: i64,
    pub gateway_ref: String,
    pub redirect_url: Option<String>,
    pub client_secret: Option<String>,
    pub client_payload: Option<Value>,
}

/// Opens a payment of `amount_paisa` at `gateway` (a loaded gateway plugin's
/// name; the caller checks it). Nothing is stored: [`store_intent`] does that
/// in the caller's transaction.
pub async fn open_at_gateway(
    state: &AppState,
    user_id: i64,
    gateway: &str,
    amount_paisa: i64,
    description: String,
    return_url: Option<String>,
) -> Result<OpenedIntent, ApiError> {
    let intent_id = uuid::Uuid::new_v4().to_string();
    let request = CreateIntentRequest {
        order_id: intent_id.clone(),
        amount_paisa,
        description,
        return_url,
        context: CallContext { user_id: Some(user_id.to_string()), station_sn: None, now_unix_ms: now_ts() * 1000 },
    };
    let created = gateway_result(gateway, state.plugins.gateway(gateway).create_intent(request).await)?;
    if created.gateway_ref.trim().is_empty() {
        return Err(ApiError::new(StatusCode::BAD_GATEWAY, "gateway_error", "the gateway returned no reference"));
    }
    let payload: Option<Value> = created.client_payload.as_deref().and_then(|p| serde_json::from_str(p).ok());
    let client_secret = payload.as_ref().and_then(|p| p["client_secret"].as_str()).map(str::to_owned);
    Ok(OpenedIntent {
        id: intent_id,
        gateway: gateway.to_string(),
        amount_paisa,
        gateway_ref: created.gateway_ref,
        redirect_url: created.redirect_url,
        client_secret,
        client_payload: payload,
    })
}

/// Stores an opened intent as `pending` for `purpose`
/// and schedules its background checks, which verify it and expire it once
/// [`INTENT_TTL_SECS`] have passed unpaid.
pub fn store_intent(
    tx: &Transaction<'_>,
    user_id: i64,
    purpose: IntentPurpose,
    opened: &OpenedIntent,
) -> Result<Intent, ApiError> {
    let now = now_ts();
    tx.execute(
        "INSERT INTO payment_intents (id, user_id, purpose, gateway, amount_paisa, currency, status,
            gateway_reference, payment_url, client_secret, client_payload, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'NPR', ?12, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
        params![
            opened.id,
            user_id,
            purpose,
            opened.gateway,
            opened.amount_paisa,
            opened.gateway_ref,
            opened.redirect_url,
            opened.client_secret,
            opened.client_payload.as_ref().map(Value::to_string),
            now + INTENT_TTL_SECS,
            now,
            IntentStatus::Pending
        ],
    )?;
    schedule_check(tx, &opened.id, 1, now + FIRST_CHECK_SECS)?;
    find_intent(tx, &opened.id)?.ok_or_else(|| ApiError::internal("intent vanished"))
}

fn schedule_check(tx: &Transaction<'_>, intent_id: &str, attempt: i64, at: i64) -> Result<(), ApiError> {
    jobs::enqueue(
        tx,
        NewJob::new(VERIFY_JOB, json!({ "intent_id": intent_id, "attempt": attempt }))
            .at(at)
            .attempts(12)
            .dedupe(format!("{VERIFY_JOB}:{intent_id}:{attempt}")),
    )?;
    Ok(())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyTopupIn {
    pub intent_id: String,
    /// Khalti: the `pidx` the user came back with.
    pub pidx: Option<String>,
    /// eSewa: the base64 `data` the user came back with.
    pub data: Option<String>,
    /// Any other parameters the gateway sent back with the user.
    pub params: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyOut {
    pub intent: IntentOut,
    /// Whether this request credited the wallet.
    pub credited: bool,
    /// `credited`, `already_completed`, `pending`, `failed`, `cancelled` or `expired`.
    pub outcome: String,
    /// The top-up payment, once there is one.
    pub transaction_reference: Option<String>,
    pub balance_paisa: i64,
    /// Points this top-up earned (when this request credited it).
    pub points_awarded: i64,
}

fn verify_out(
    tx: &Transaction<'_>,
    user_id: i64,
    intent_id: &str,
    settled: Option<&Settled>,
) -> Result<VerifyOut, ApiError> {
    let intent = find_intent(tx, intent_id)?.ok_or_else(|| ApiError::not_found("payment intent"))?;
    let reference: Option<String> = match intent.transaction_id {
        Some(id) => tx.query_row("SELECT reference FROM transactions WHERE id = ?1", [id], |r| r.get(0)).optional()?,
        None => None,
    };
    let balance = wallet::load_balance(tx, user_id)?.balance_paisa;
    let (credited, points) = match settled {
        Some(Settled::Credited(c)) => (true, c.points_awarded),
        _ => (false, 0),
    };
    let outcome = match (credited, intent.status) {
        (true, _) => "credited",
        (false, IntentStatus::Completed) => "already_completed",
        (false, other) => other.as_str(),
    }
    .to_string();
    Ok(VerifyOut {
        intent: IntentOut::from(intent),
        credited,
        outcome,
        transaction_reference: reference,
        balance_paisa: balance,
        points_awarded: points,
    })
}

/// Confirms a top-up with its gateway after the user comes back, and credits
/// the wallet if it was paid. Safe to call any number of times: an intent is
/// credited once. With an `Idempotency-Key`, a retry gets the first answer.
#[utoipa::path(
    post, path = "/api/payment/verify-topup", tag = "payments",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    request_body = VerifyTopupIn,
    responses(
        (status = 200, description = "What the gateway says and what was done", body = VerifyOut),
        (status = 400, description = "The callback data's signature does not verify", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such intent of the caller's", body = ErrorBody),
        (status = 409, description = "The gateway reports another amount; nothing was credited", body = ErrorBody),
        (status = 422, description = "The gateway refused the verification", body = ErrorBody),
        (status = 502, description = "The gateway is unavailable; the intent stays pending", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time; the intent stays pending", body = ErrorBody),
    )
)]
pub async fn verify_topup(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<VerifyTopupIn>,
) -> Result<Json<VerifyOut>, ApiError> {
    const ENDPOINT: &str = "payment/verify-topup";
    let key = idempotency::key_from(&headers)?;
    let hash = idempotency::request_hash(&body);
    if let Some((_, out)) = replayed::<VerifyOut>(&state, user.id, &key, ENDPOINT, &hash).await? {
        return Ok(Json(out));
    }
    let intent = {
        let id = body.intent_id.clone();
        state.db.read(move |c| user_intent(c, user.id, &id)).await?
    };
    let respond = move |tx: &Transaction<'_>, settled: Option<&Settled>| -> Result<VerifyOut, ApiError> {
        let out = verify_out(tx, user.id, &body.intent_id, settled)?;
        Ok(remember_once(tx, user.id, key.as_deref(), ENDPOINT, &hash, StatusCode::OK, out)?.1)
    };
    // Only a credited intent needs no question: one that ended unpaid may
    // still have been paid at the last moment.
    if intent.status == IntentStatus::Completed {
        return Ok(Json(state.db.write(move |tx| respond(tx, None)).await?));
    }
    let callback = callback_params(body.pidx.clone(), body.data.clone(), body.params.clone());

    let verified = match ask_gateway(&state, &intent, callback).await {
        Ok(v) => v,
        Err(e) => {
            record_failure(&state, &intent, &e).await;
            return Err(e);
        }
    };
    let (settled, out) = settle(&state, &intent, &verified, move |tx, settled| {
        // A mismatch answers 409 below and stores no answer: a retry asks again.
        if matches!(settled, Settled::AmountMismatch) { Ok(None) } else { respond(tx, Some(settled)).map(Some) }
    })
    .await?;
    match (settled, out) {
        (_, Some(out)) => Ok(Json(out)),
        (_, None) => Err(super::gateway::gateway_failure(
            &intent.gateway,
            powerbank_plugin_runtime::types::GatewayError::AmountMismatch,
        )),
    }
}

/// What the gateway sent back with the user, as the plugin's `verify` takes it.
pub(crate) fn callback_params(
    pidx: Option<String>,
    data: Option<String>,
    params: Option<BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    let mut callback: Vec<(String, String)> = Vec::new();
    if let Some(pidx) = pidx {
        callback.push(("pidx".into(), pidx));
    }
    if let Some(data) = data {
        callback.push(("data".into(), data));
    }
    callback.extend(params.unwrap_or_default());
    callback
}

/// Notes on the intent why a verification failed, for the app and support.
pub(crate) async fn record_failure(state: &AppState, intent: &Intent, e: &ApiError) {
    let id = intent.id.clone();
    let message = format!("{}: {}", e.code, e.message);
    if let Err(err) = state.db.write(move |tx| note_error(tx, &id, &message)).await {
        tracing::warn!(error = %err, "could not record a verification failure");
    }
}

/// A payment intent of the caller's.
#[utoipa::path(
    get, path = "/api/payment/status/{intent_id}", tag = "payments",
    security(("bearer" = [])),
    params(("intent_id" = String, Path, description = "Payment intent id")),
    responses(
        (status = 200, description = "The intent", body = IntentOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such intent of the caller's", body = ErrorBody),
    )
)]
pub async fn status(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(intent_id): ApiPath<String>,
) -> Result<Json<IntentOut>, ApiError> {
    let intent = state.db.read(move |c| user_intent(c, user.id, &intent_id)).await?;
    Ok(Json(intent.into()))
}

/// Cancels a pending intent. The gateway is asked first: a payment that went
/// through is credited instead (409 `already_paid`).
#[utoipa::path(
    post, path = "/api/payment/cancel/{intent_id}", tag = "payments",
    security(("bearer" = [])),
    params(("intent_id" = String, Path, description = "Payment intent id")),
    responses(
        (status = 200, description = "Cancelled (or already ended unpaid)", body = IntentOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such intent of the caller's", body = ErrorBody),
        (status = 409, description = "Already paid and credited", body = ErrorBody),
        (status = 502, description = "The gateway is unavailable; the intent stays pending", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time; the intent stays pending", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(intent_id): ApiPath<String>,
) -> Result<Json<IntentOut>, ApiError> {
    let intent = {
        let id = intent_id.clone();
        state.db.read(move |c| user_intent(c, user.id, &id)).await?
    };
    let already_paid =
        || ApiError::conflict("already_paid", "this payment went through and was credited; it cannot be cancelled");
    match intent.status {
        IntentStatus::Pending => {}
        IntentStatus::Completed => return Err(already_paid()),
        _ => return Ok(Json(intent.into())),
    }
    let verified = match ask_gateway(&state, &intent, Vec::new()).await {
        Ok(v) => v,
        Err(e) => {
            record_failure(&state, &intent, &e).await;
            return Err(e);
        }
    };
    let id = intent.id.clone();
    let purposes = state.payment_purposes.clone();
    let (_, ended) = settle(&state, &intent, &verified, move |tx, settled| match settled {
        Settled::Pending | Settled::AmountMismatch => {
            finish_unpaid(tx, &purposes, &id, IntentStatus::Cancelled, "cancelled by the user")?;
            find_intent(tx, &id)
        }
        _ => find_intent(tx, &id),
    })
    .await?;
    let ended = ended.ok_or_else(|| ApiError::not_found("payment intent"))?;
    if ended.status == IntentStatus::Completed {
        return Err(already_paid());
    }
    Ok(Json(ended.into()))
}

fn check_delay(attempt: i64) -> i64 {
    let exp = u32::try_from(attempt.clamp(1, 10) - 1).unwrap_or(0);
    (FIRST_CHECK_SECS * 2_i64.pow(exp)).min(MAX_CHECK_SECS)
}

/// The background check of one pending intent (see [`VERIFY_JOB`]). An
/// unreachable gateway fails the job, so the job runner retries it with
/// backoff; otherwise the next check is scheduled until the intent expires.
/// An intent past its expiry is asked about once more before it is expired,
/// so a payment made in its last minute is still credited.
pub async fn verify_job(state: AppState, payload: Value) -> Result<(), String> {
    let intent_id = payload["intent_id"].as_str().ok_or("payload without intent_id")?.to_string();
    let attempt = payload["attempt"].as_i64().unwrap_or(1);
    let found = {
        let id = intent_id.clone();
        state.db.read(move |c| find_intent(c, &id)).await.map_err(|e| e.to_string())?
    };
    let Some(intent) = found else { return Ok(()) };
    if intent.status != IntentStatus::Pending {
        return Ok(());
    }
    match ask_gateway(&state, &intent, Vec::new()).await {
        Ok(verified) => {
            settle(&state, &intent, &verified, |_, _| Ok(())).await.map_err(|e| e.to_string())?;
        }
        Err(e) => {
            record_failure(&state, &intent, &e).await;
            if is_unreachable(&e) {
                return Err(e.to_string());
            }
        }
    }
    let now = now_ts();
    let purposes = state.payment_purposes.clone();
    state
        .db
        .write(move |tx| {
            let status: Option<(IntentStatus, i64)> = tx
                .query_row("SELECT status, expires_at FROM payment_intents WHERE id = ?1", [&intent_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((IntentStatus::Pending, expires_at)) = status else { return Ok(()) };
            if now < expires_at {
                let next = (now + check_delay(attempt + 1)).min(expires_at + 1);
                schedule_check(tx, &intent_id, attempt + 1, next)?;
            } else if finish_unpaid(
                tx,
                &purposes,
                &intent_id,
                IntentStatus::Expired,
                "not paid before the intent expired",
            )? {
                tracing::info!(intent_id, "payment intent expired unpaid");
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn checks_back_off_to_ten_minutes() {
        let delays: Vec<i64> = (1..=7).map(super::check_delay).collect();
        assert_eq!(delays, vec![60, 120, 240, 480, 600, 600, 600]);
    }
}
