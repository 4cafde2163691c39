//! Payment intents: a payment opened at a gateway plugin and what became of
//! it. The intent row and its API shape, opening and storing one, asking the
//! gateway about it, the one transaction that credits a paid intent, and
//! `GET /api/payment/status/{intent_id}` and `POST /api/payment/cancel/{intent_id}`.
//! Top-ups ([`super::topup`]), rentals paid at a gateway, the webhooks and
//! the background check ([`super::intent_checks`]) all go through here.
//!
//! An intent is credited at most once. The guard is the first statement of
//! the crediting transaction, `UPDATE payment_intents SET status =
//! 'completed' ... WHERE status <> 'completed'` (spelled out as the statuses
//! that may still be paid): verify calls, webhooks and the job may all learn
//! of the same payment at once, and every writer after the first finds
//! nothing to update and credits nothing. An intent that ended unpaid
//! (expired, cancelled, failed) is still credited if its gateway later
//! confirms the money arrived: money received is never left uncredited.
//!
//! Intents have a purpose. A `topup` credits the wallet ([`credit_topup`]).
//! Any other purpose belongs to the domain that sells something through a
//! gateway and registered a [`PurposeHandler`] for it
//! ([`super::purposes`]): the payment is recorded as its transaction kind
//! and handed to it inside the crediting transaction, and it hears, in the
//! same transaction, when such an intent ends unpaid ([`finish_unpaid`]).

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode};
use powerbank_plugin_runtime::types::{
    CallContext, CreateIntentRequest, PaymentStatus, PaymentVerification, VerifyRequest,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    gateway_errors::gateway_result,
    intent_checks::{FIRST_CHECK_SECS, schedule_check},
    purposes::{IntentPaid, PaymentPurposes, PurposeHandler},
    topup::{TopupPoints, credit_topup, plan_topup_points},
};
use crate::{
    core::{
        ApiError, ApiPath, AuthUser, error::ErrorBody, money::format_npr, now_ts, text_enum::text_enum, ts_to_rfc3339,
    },
    ledger::{self, NewTransaction, TransactionKind, TransactionStatus},
    state::AppState,
};

text_enum! {
    /// What an intent pays for (`payment_intents.purpose`).
    pub enum IntentPurpose {
        /// Wallet top-ups, credited here.
        Topup = "topup",
        /// A rental paid at a gateway (the rentals domain's handler).
        Rental = "rental",
        /// A rental's unpaid due paid at a gateway (the rentals domain's handler).
        RentalDue = "rental_due",
        /// A rental's extension paid at a gateway (the rentals domain's handler).
        RentalExtension = "rental_extension",
    }
}

text_enum! {
    /// Where an intent stands (`payment_intents.status`).
    pub enum IntentStatus {
        Pending = "pending",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
        Expired = "expired",
    }
}

/// A `payment_intents` row.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    pub user_id: i64,
    pub purpose: IntentPurpose,
    pub gateway: String,
    pub amount_paisa: i64,
    pub status: IntentStatus,
    pub gateway_reference: Option<String>,
    pub payment_url: Option<String>,
    pub client_secret: Option<String>,
    pub client_payload: Option<String>,
    pub transaction_id: Option<i64>,
    pub last_error: Option<String>,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    pub created_at: i64,
    /// The gateway build that created it; its verification goes through
    /// that build while the runtime keeps it.
    pub plugin_release: Option<String>,
}

const INTENT_COLUMNS: &str = "id, user_id, purpose, gateway, amount_paisa, status, gateway_reference, payment_url,
    client_secret, client_payload, transaction_id, last_error, expires_at, completed_at, created_at, plugin_release";

/// The one mapping of a `payment_intents` row ([`INTENT_COLUMNS`]), by column name.
fn intent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Intent> {
    Ok(Intent {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        purpose: r.get("purpose")?,
        gateway: r.get("gateway")?,
        amount_paisa: r.get("amount_paisa")?,
        status: r.get("status")?,
        gateway_reference: r.get("gateway_reference")?,
        payment_url: r.get("payment_url")?,
        client_secret: r.get("client_secret")?,
        client_payload: r.get("client_payload")?,
        transaction_id: r.get("transaction_id")?,
        last_error: r.get("last_error")?,
        expires_at: r.get("expires_at")?,
        completed_at: r.get("completed_at")?,
        created_at: r.get("created_at")?,
        plugin_release: r.get("plugin_release")?,
    })
}

pub fn find_intent(c: &Connection, id: &str) -> Result<Option<Intent>, ApiError> {
    Ok(c.query_row(&format!("SELECT {INTENT_COLUMNS} FROM payment_intents WHERE id = ?1"), [id], intent_from_row)
        .optional()?)
}

/// The caller's intent, or 404 (also for someone else's: ids are not secrets
/// worth confirming).
pub fn user_intent(c: &Connection, user_id: i64, id: &str) -> Result<Intent, ApiError> {
    find_intent(c, id)?.filter(|i| i.user_id == user_id).ok_or_else(|| ApiError::not_found("payment intent"))
}

/// The intent a gateway event is about: by the gateway's own reference, else
/// by our order id (only for an intent of that gateway).
pub fn intent_for_event(
    c: &Connection,
    gateway: &str,
    gateway_ref: &str,
    order_id: Option<&str>,
) -> Result<Option<Intent>, ApiError> {
    let by_ref = c
        .query_row(
            &format!("SELECT {INTENT_COLUMNS} FROM payment_intents WHERE gateway = ?1 AND gateway_reference = ?2"),
            params![gateway, gateway_ref],
            intent_from_row,
        )
        .optional()?;
    if by_ref.is_some() {
        return Ok(by_ref);
    }
    match order_id {
        Some(id) => Ok(find_intent(c, id)?.filter(|i| i.gateway == gateway)),
        None => Ok(None),
    }
}

/// A form the app posts to the gateway (eSewa).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GatewayForm {
    /// URL to post the form to.
    pub action: String,
    /// `POST`.
    pub method: String,
    /// Field name → value, to send as they are (already signed).
    pub fields: BTreeMap<String, String>,
}

/// A top-up intent as the app sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntentOut {
    pub id: String,
    /// Gateway plugin name: `khalti`, `esewa`, `stripe`, ...
    pub gateway: String,
    pub purpose: IntentPurpose,
    pub amount_paisa: i64,
    pub amount_npr: String,
    pub status: IntentStatus,
    /// The gateway's reference: Khalti `pidx`, eSewa `transaction_uuid`, Stripe `pi_...`.
    pub gateway_reference: Option<String>,
    /// Where to send the user (Khalti).
    pub payment_url: Option<String>,
    /// A signed form to post (eSewa).
    pub form: Option<GatewayForm>,
    /// For the gateway's SDK (Stripe).
    pub client_secret: Option<String>,
    /// Everything the gateway plugin handed over for the app, as JSON.
    #[schema(value_type = Option<Object>)]
    pub client_payload: Option<Value>,
    /// The payment, once credited.
    pub transaction_id: Option<i64>,
    /// Why the last verification did not credit, if it did not.
    pub last_error: Option<String>,
    pub expires_at: String,
    pub completed_at: Option<String>,
    pub created_at: String,
}

impl From<Intent> for IntentOut {
    fn from(i: Intent) -> Self {
        let payload: Option<Value> = i.client_payload.as_deref().and_then(|p| serde_json::from_str(p).ok());
        let form = payload.as_ref().and_then(|p| p.get("form")).and_then(|f| serde_json::from_value(f.clone()).ok());
        IntentOut {
            amount_npr: format_npr(i.amount_paisa),
            id: i.id,
            gateway: i.gateway,
            purpose: i.purpose,
            amount_paisa: i.amount_paisa,
            status: i.status,
            gateway_reference: i.gateway_reference,
            payment_url: i.payment_url,
            form,
            client_secret: i.client_secret,
            client_payload: payload,
            transaction_id: i.transaction_id,
            last_error: i.last_error,
            expires_at: ts_to_rfc3339(i.expires_at),
            completed_at: i.completed_at.map(ts_to_rfc3339),
            created_at: ts_to_rfc3339(i.created_at),
        }
    }
}

/// How long the user has to pay at the gateway.
pub const INTENT_TTL_SECS: i64 = 30 * 60;

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
    /// The gateway build that created it.
    pub plugin_release: String,
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
    let decided = state.plugins.gateway(gateway).create_intent_traced(request).await;
    let plugin_release = decided.as_ref().map(|d| d.release.clone()).unwrap_or_default();
    let created = gateway_result(gateway, decided.map(|d| d.value))?;
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
        // A gateway served by this host (the demo's checkout page) may name
        // its page by path alone, wherever the server listens.
        redirect_url: created.redirect_url.map(|url| match url.starts_with('/') && !url.starts_with("//") {
            true => format!("{}{url}", state.config.public_base_url.trim_end_matches('/')),
            false => url,
        }),
        client_secret,
        client_payload: payload,
        plugin_release,
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
            gateway_reference, payment_url, client_secret, client_payload, expires_at, created_at, updated_at,
            plugin_release)
         VALUES (?1, ?2, ?3, ?4, ?5, 'NPR', ?12, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?13)",
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
            IntentStatus::Pending,
            opened.plugin_release
        ],
    )?;
    schedule_check(tx, &opened.id, 1, now + FIRST_CHECK_SECS)?;
    find_intent(tx, &opened.id)?.ok_or_else(|| ApiError::internal("intent vanished"))
}

/// Asks the intent's gateway what became of it. `callback` carries what the
/// gateway sent back with the user (Khalti's `pidx`, eSewa's `data`).
pub async fn ask_gateway(
    state: &AppState,
    intent: &Intent,
    callback: Vec<(String, String)>,
) -> Result<PaymentVerification, ApiError> {
    let gateway_ref = intent
        .gateway_reference
        .clone()
        .ok_or_else(|| ApiError::internal(format!("intent {} has no gateway reference", intent.id)))?;
    let request = VerifyRequest {
        order_id: intent.id.clone(),
        gateway_ref,
        callback_params: callback,
        expected_amount_paisa: intent.amount_paisa,
    };
    let answer = state.plugins.gateway_pinned(&intent.gateway, intent.plugin_release.as_deref()).verify(request).await;
    gateway_result(&intent.gateway, answer)
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

/// What crediting did.
#[derive(Debug, Clone)]
pub struct Credited {
    pub transaction_id: i64,
    pub reference: String,
    pub balance_paisa: i64,
    pub points_awarded: i64,
}

/// A paid intent claimed once, with the transaction recording the payment.
pub(super) struct PaidIntent {
    pub(super) user_id: i64,
    pub(super) gateway: String,
    pub(super) transaction_id: i64,
    pub(super) reference: String,
    pub(super) description: String,
}

/// Marks a paid intent of `purpose` completed and records its `kind`
/// transaction. `None` when the intent was claimed before or `amount_paisa`
/// is not its amount: a payment is recorded at most once, and only in full.
pub(super) fn claim_paid_intent(
    tx: &Transaction<'_>,
    intent_id: &str,
    amount_paisa: i64,
    purpose: IntentPurpose,
    kind: TransactionKind,
    what: &str,
) -> Result<Option<PaidIntent>, ApiError> {
    let claimed: Option<(i64, String)> = tx
        .query_row(
            "UPDATE payment_intents SET status = ?5, completed_at = ?2, updated_at = ?2, last_error = NULL
             WHERE id = ?1 AND status IN (?6, ?7, ?8, ?9)
               AND purpose = ?4 AND amount_paisa = ?3
             RETURNING user_id, gateway",
            params![
                intent_id,
                now_ts(),
                amount_paisa,
                purpose,
                IntentStatus::Completed,
                IntentStatus::Pending,
                IntentStatus::Expired,
                IntentStatus::Cancelled,
                IntentStatus::Failed
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((user_id, gateway)) = claimed else { return Ok(None) };
    let description = format!("{what} via {gateway}");
    let (transaction_id, reference) = ledger::record_transaction(
        tx,
        NewTransaction {
            user_id,
            kind,
            status: TransactionStatus::Success,
            amount_paisa,
            wallet_paisa: 0,
            points_used: 0,
            points_value_paisa: 0,
            gateway: Some(&gateway),
            payment_intent_id: Some(intent_id),
            rental_id: None,
            description: &description,
        },
    )?;
    tx.execute("UPDATE payment_intents SET transaction_id = ?2 WHERE id = ?1", params![intent_id, transaction_id])?;
    Ok(Some(PaidIntent { user_id, gateway, transaction_id, reference, description }))
}

/// Credits a paid intent, whatever it pays for: a top-up goes to the wallet
/// ([`credit_topup`]); any other purpose is recorded as its handler's
/// transaction and handed to it (`credit_purpose`). Same guarantees for
/// all: at most once per intent, only for the intent's amount.
pub fn credit_intent(
    tx: &Transaction<'_>,
    purposes: &PaymentPurposes,
    intent_id: &str,
    amount_paisa: i64,
    planned: Option<&TopupPoints>,
) -> Result<Option<Credited>, ApiError> {
    let purpose: Option<IntentPurpose> =
        tx.query_row("SELECT purpose FROM payment_intents WHERE id = ?1", [intent_id], |r| r.get(0)).optional()?;
    match purpose {
        Some(IntentPurpose::Topup) | None => credit_topup(tx, intent_id, amount_paisa, planned),
        Some(purpose) => credit_purpose(tx, purposes.handler(purpose)?, purpose, intent_id, amount_paisa),
    }
}

/// Records a paid intent of a registered purpose inside the caller's
/// transaction: intent completed, a transaction of the handler's kind paid
/// through the gateway (nothing moves in the wallet here), then the handler
/// takes over (a rental order is marked paid, or, if it ended unpaid
/// meanwhile, the money goes to the wallet). Returns `None` when the intent
/// was recorded before or the amount differs.
fn credit_purpose(
    tx: &Transaction<'_>,
    handler: &dyn PurposeHandler,
    purpose: IntentPurpose,
    intent_id: &str,
    amount_paisa: i64,
) -> Result<Option<Credited>, ApiError> {
    let Some(PaidIntent { user_id, gateway, transaction_id, reference, .. }) =
        claim_paid_intent(tx, intent_id, amount_paisa, purpose, handler.transaction_kind(), handler.description())?
    else {
        return Ok(None);
    };
    handler.paid(tx, IntentPaid { intent_id, user_id, transaction_id, amount_paisa })?;
    let balance_paisa = super::wallet::load_balance(tx, user_id)?.balance_paisa;
    tracing::info!(intent_id, user_id, amount_paisa, gateway, transaction_id, %purpose, "gateway payment received");
    Ok(Some(Credited { transaction_id, reference, balance_paisa, points_awarded: 0 }))
}

/// Records why an intent was not credited, for the app and for support.
pub fn note_error(tx: &Transaction<'_>, intent_id: &str, error: &str) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE payment_intents SET last_error = ?2, updated_at = ?3 WHERE id = ?1 AND status = ?4",
        params![intent_id, error, now_ts(), IntentStatus::Pending],
    )?;
    Ok(())
}

/// Ends a pending intent without crediting it (`failed`, `cancelled`,
/// `expired`). Returns whether it was still pending. The purpose's handler
/// hears of it in the same transaction (a rental order ends with it).
pub fn finish_unpaid(
    tx: &Transaction<'_>,
    purposes: &PaymentPurposes,
    intent_id: &str,
    status: IntentStatus,
    why: &str,
) -> Result<bool, ApiError> {
    let purpose: Option<IntentPurpose> = tx
        .query_row(
            "UPDATE payment_intents SET status = ?2, last_error = ?3, updated_at = ?4
             WHERE id = ?1 AND status = ?5 RETURNING purpose",
            params![intent_id, status, why, now_ts(), IntentStatus::Pending],
            |r| r.get(0),
        )
        .optional()?;
    match purpose {
        Some(IntentPurpose::Topup) | None => {}
        Some(purpose) => purposes.handler(purpose)?.ended(tx, intent_id, status)?,
    }
    Ok(purpose.is_some())
}

/// What one verification did to an intent.
#[derive(Debug, Clone)]
pub enum Settled {
    /// This call credited the wallet.
    Credited(Credited),
    /// Paid, but someone else credited it first (or it is no longer pending).
    AlreadySettled,
    /// The gateway has no payment yet.
    Pending,
    /// The gateway says the payment failed or was cancelled; the intent ended.
    Unpaid(String),
    /// The gateway reports a different amount; nothing was credited.
    AmountMismatch,
}

/// Acts on a gateway's answer about `intent`, then runs `after` in the same
/// transaction (to store an idempotent answer with the credit).
pub async fn settle<T, F>(
    state: &AppState,
    intent: &Intent,
    verified: &PaymentVerification,
    after: F,
) -> Result<(Settled, T), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>, &Settled) -> Result<T, ApiError> + Send + 'static,
{
    let paid = verified.status == PaymentStatus::Succeeded;
    let amount_ok = verified.amount_paisa == intent.amount_paisa;
    let planned =
        if paid && amount_ok && intent.status != IntentStatus::Completed && intent.purpose == IntentPurpose::Topup {
            plan_topup_points(state, intent.user_id, intent.amount_paisa).await
        } else {
            None
        };
    let id = intent.id.clone();
    let status = verified.status;
    let amount = verified.amount_paisa;
    let purposes = state.payment_purposes.clone();
    let result = state
        .db
        .write(move |tx| {
            let settled = match status {
                PaymentStatus::Succeeded if amount != amount_of(tx, &id)? => {
                    note_error(tx, &id, &format!("amount_mismatch: gateway reports {amount} paisa"))?;
                    Settled::AmountMismatch
                }
                PaymentStatus::Succeeded => match credit_intent(tx, &purposes, &id, amount, planned.as_ref())? {
                    Some(c) => Settled::Credited(c),
                    None => Settled::AlreadySettled,
                },
                PaymentStatus::Pending => Settled::Pending,
                PaymentStatus::Failed => {
                    finish_unpaid(tx, &purposes, &id, IntentStatus::Failed, "the gateway reports the payment failed")?;
                    Settled::Unpaid("failed".into())
                }
                PaymentStatus::Cancelled => {
                    finish_unpaid(
                        tx,
                        &purposes,
                        &id,
                        IntentStatus::Cancelled,
                        "the payment was cancelled at the gateway",
                    )?;
                    Settled::Unpaid("cancelled".into())
                }
                PaymentStatus::Refunded => {
                    finish_unpaid(
                        tx,
                        &purposes,
                        &id,
                        IntentStatus::Failed,
                        "the gateway reports the payment refunded",
                    )?;
                    Settled::Unpaid("refunded".into())
                }
            };
            let out = after(tx, &settled)?;
            Ok((settled, out))
        })
        .await?;
    if matches!(result.0, Settled::Credited(_)) {
        state.jobs.wake();
    }
    Ok(result)
}

fn amount_of(tx: &Transaction<'_>, intent_id: &str) -> Result<i64, ApiError> {
    Ok(tx.query_row("SELECT amount_paisa FROM payment_intents WHERE id = ?1", [intent_id], |r| r.get(0))?)
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
