//! What the top-up endpoints, the webhooks and the verification job share:
//! the intent row and its API shape, how gateway failures reach clients, and
//! the one transaction that credits a paid intent.
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
//! Intents have a purpose. A `topup` credits the wallet; a `rental` (opened
//! by `rentals::gateway`) is recorded as a `rental` transaction through the
//! gateway and handed to the rentals domain, which also hears when such an
//! intent ends unpaid ([`finish_unpaid`]).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use powerbank_plugin_runtime::{
    Failure, PluginError,
    types::{GatewayError, PaymentStatus, PaymentVerification, PointsEvent, TopUpEvent, VerifyRequest},
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::{
    core::{
        ApiError, AppState,
        jobs::{self, NewJob},
        money::format_npr,
        now_ts, ts_to_rfc3339,
    },
    notifications::notify,
    payments::ledger::{self, NewTransaction, WalletKind},
    points::{self, PlannedAward},
};

/// Job: grants a credited top-up's points when the points plugin could not be
/// asked at crediting time.
pub const TOPUP_POINTS_JOB: &str = "payments.topup_points";

/// A `payment_intents` row.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    pub user_id: i64,
    pub purpose: String,
    pub gateway: String,
    pub amount_paisa: i64,
    pub status: String,
    pub gateway_reference: Option<String>,
    pub payment_url: Option<String>,
    pub client_secret: Option<String>,
    pub client_payload: Option<String>,
    pub transaction_id: Option<i64>,
    pub last_error: Option<String>,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    pub created_at: i64,
}

const INTENT_COLUMNS: &str = "id, user_id, purpose, gateway, amount_paisa, status, gateway_reference, payment_url,
    client_secret, client_payload, transaction_id, last_error, expires_at, completed_at, created_at";

fn intent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Intent> {
    Ok(Intent {
        id: r.get(0)?,
        user_id: r.get(1)?,
        purpose: r.get(2)?,
        gateway: r.get(3)?,
        amount_paisa: r.get(4)?,
        status: r.get(5)?,
        gateway_reference: r.get(6)?,
        payment_url: r.get(7)?,
        client_secret: r.get(8)?,
        client_payload: r.get(9)?,
        transaction_id: r.get(10)?,
        last_error: r.get(11)?,
        expires_at: r.get(12)?,
        completed_at: r.get(13)?,
        created_at: r.get(14)?,
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
    /// `topup` (or `rental`).
    pub purpose: String,
    pub amount_paisa: i64,
    pub amount_npr: String,
    /// `pending`, `completed`, `failed`, `cancelled` or `expired`.
    pub status: String,
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

/// A plugin failure on a gateway call. A plugin past its time budget is a
/// slow gateway: 504, so the app knows to check the status later.
pub fn plugin_failure(e: PluginError) -> ApiError {
    if let Failure::Timeout { timeout_ms } = e.failure {
        tracing::warn!(plugin = %e.plugin, operation = %e.operation, timeout_ms, "gateway call timed out");
        return ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "gateway_timeout",
            format!("payment gateway {} did not answer in time", e.plugin),
        )
        .with_details(json!({ "gateway": e.plugin, "timeout_ms": timeout_ms }));
    }
    if e.failure == Failure::NotLoaded {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "gateway_not_available",
            format!("payment gateway {} is not available right now", e.plugin),
        );
    }
    e.into()
}

/// The gateway's own refusal or failure, as the client should see it.
pub fn gateway_failure(gateway: &str, e: GatewayError) -> ApiError {
    let details = json!({ "gateway": gateway });
    match e {
        GatewayError::Timeout(m) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "gateway_timeout", format!("{gateway} did not answer in time"))
                .with_details(json!({ "gateway": gateway, "reason": m }))
        }
        GatewayError::Unavailable(m) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "gateway_unavailable", format!("{gateway} is unavailable: {m}"))
                .with_details(details)
        }
        GatewayError::Internal(m) => {
            tracing::error!(gateway, error = %m, "gateway plugin reports a configuration or protocol problem");
            ApiError::new(StatusCode::BAD_GATEWAY, "gateway_error", format!("{gateway} failed: {m}"))
                .with_details(details)
        }
        GatewayError::InvalidRequest(m) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "gateway_rejected", format!("{gateway} refused: {m}"))
                .with_details(details)
        }
        GatewayError::Declined(m) => {
            ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_declined", format!("{gateway} declined: {m}"))
                .with_details(details)
        }
        GatewayError::BadSignature => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_signature", "the gateway data's signature does not verify")
                .with_details(details)
        }
        GatewayError::AmountMismatch => ApiError::new(
            StatusCode::CONFLICT,
            "amount_mismatch",
            "the gateway reports another amount than this payment's; nothing was credited",
        )
        .with_details(details),
        GatewayError::NotSupported => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_supported",
            format!("{gateway} does not support this operation"),
        )
        .with_details(details),
    }
}

/// Unwraps a gateway call's two layers of failure.
pub fn gateway_result<T>(gateway: &str, r: Result<Result<T, GatewayError>, PluginError>) -> Result<T, ApiError> {
    r.map_err(plugin_failure)?.map_err(|e| gateway_failure(gateway, e))
}

/// Whether an error means "the gateway could not be asked" (retry later)
/// rather than "the gateway answered no".
pub fn is_unreachable(e: &ApiError) -> bool {
    matches!(e.status, StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE)
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
    let answer = state.plugins.gateway(&intent.gateway).verify(request).await;
    gateway_result(&intent.gateway, answer)
}

/// Points a top-up earns, asked of the points plugin before the crediting
/// transaction. `None` when the plugin could not answer: the credit goes
/// ahead and a job grants the points later.
pub struct TopupPoints {
    pub awards: Vec<PlannedAward>,
    pub expiry_days: u32,
}

pub async fn plan_topup_points(state: &AppState, user_id: i64, amount_paisa: i64) -> Option<TopupPoints> {
    let event = PointsEvent::TopUp(TopUpEvent { user_id: user_id.to_string(), amount_paisa });
    let planned = async {
        let awards = points::plan_awards(state, event).await?;
        let expiry_days = points::expiry_days(state).await?;
        Ok::<_, ApiError>(TopupPoints { awards, expiry_days })
    };
    match planned.await {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(user_id, error = %e, "top-up points not planned; a job will grant them");
            None
        }
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
struct PaidIntent {
    user_id: i64,
    gateway: String,
    transaction_id: i64,
    reference: String,
    description: String,
}

/// Marks a paid intent of `purpose` completed and records its `kind`
/// transaction. `None` when the intent was claimed before or `amount_paisa`
/// is not its amount: a payment is recorded at most once, and only in full.
fn claim_paid_intent(
    tx: &Transaction<'_>,
    intent_id: &str,
    amount_paisa: i64,
    purpose: &str,
    kind: &'static str,
    what: &str,
) -> Result<Option<PaidIntent>, ApiError> {
    let claimed: Option<(i64, String)> = tx
        .query_row(
            "UPDATE payment_intents SET status = 'completed', completed_at = ?2, updated_at = ?2, last_error = NULL
             WHERE id = ?1 AND status IN ('pending', 'expired', 'cancelled', 'failed')
               AND purpose = ?4 AND amount_paisa = ?3
             RETURNING user_id, gateway",
            params![intent_id, now_ts(), amount_paisa, purpose],
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
            status: "success",
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

/// Credits a paid top-up intent inside the caller's transaction: intent
/// completed, a `topup` transaction, the wallet credit, the points and the
/// notification, all or nothing. `amount_paisa` is what the gateway says was
/// paid: anything but the intent's amount credits nothing. Returns `None`
/// when the intent was credited before or the amount differs.
pub fn credit_topup(
    tx: &Transaction<'_>,
    intent_id: &str,
    amount_paisa: i64,
    planned: Option<&TopupPoints>,
) -> Result<Option<Credited>, ApiError> {
    let now = now_ts();
    let Some(PaidIntent { user_id, gateway, transaction_id, reference, description }) =
        claim_paid_intent(tx, intent_id, amount_paisa, "topup", "topup", "Wallet top-up")?
    else {
        return Ok(None);
    };
    let balance_paisa =
        ledger::wallet_change(tx, user_id, amount_paisa, WalletKind::Topup, Some(transaction_id), &description)?;
    let points_awarded = match planned {
        Some(p) => {
            points::grant(tx, &p.awards, p.expiry_days, now)?;
            p.awards.iter().filter(|a| a.user_id == user_id).map(|a| a.points).sum()
        }
        None => {
            jobs::enqueue(
                tx,
                NewJob::new(TOPUP_POINTS_JOB, json!({ "user_id": user_id, "amount_paisa": amount_paisa }))
                    .dedupe(format!("topup_points:{transaction_id}"))
                    .attempts(12),
            )?;
            0
        }
    };
    notify(
        tx,
        user_id,
        "topup_credited",
        json!({ "amount": format_npr(amount_paisa), "balance": format_npr(balance_paisa) }),
    )?;
    tracing::info!(intent_id, user_id, amount_paisa, gateway, transaction_id, "top-up credited");
    Ok(Some(Credited { transaction_id, reference, balance_paisa, points_awarded }))
}

/// Credits a paid intent, whatever it pays for: a top-up goes to the wallet
/// ([`credit_topup`]); a rental payment becomes a `rental` transaction the
/// rentals domain takes over ([`credit_rental`]). Same guarantees for both:
/// at most once per intent, only for the intent's amount.
pub fn credit_intent(
    tx: &Transaction<'_>,
    intent_id: &str,
    amount_paisa: i64,
    planned: Option<&TopupPoints>,
) -> Result<Option<Credited>, ApiError> {
    let purpose: Option<String> =
        tx.query_row("SELECT purpose FROM payment_intents WHERE id = ?1", [intent_id], |r| r.get(0)).optional()?;
    match purpose.as_deref() {
        Some("rental") => credit_rental(tx, intent_id, amount_paisa),
        _ => credit_topup(tx, intent_id, amount_paisa, planned),
    }
}

/// Records a paid rental intent inside the caller's transaction: intent
/// completed, a `rental` transaction paid through the gateway (nothing moves
/// in the wallet), then the rental order is marked paid, or, if the order
/// ended unpaid meanwhile, the money goes to the wallet. Returns `None` when
/// the intent was recorded before or the amount differs.
fn credit_rental(tx: &Transaction<'_>, intent_id: &str, amount_paisa: i64) -> Result<Option<Credited>, ApiError> {
    let Some(PaidIntent { user_id, gateway, transaction_id, reference, .. }) =
        claim_paid_intent(tx, intent_id, amount_paisa, "rental", "rental", "Rental payment")?
    else {
        return Ok(None);
    };
    crate::rentals::gateway::payment_received(tx, intent_id, transaction_id, amount_paisa)?;
    let balance_paisa = super::wallet::load_balance(tx, user_id)?.balance_paisa;
    tracing::info!(intent_id, user_id, amount_paisa, gateway, transaction_id, "rental payment received");
    Ok(Some(Credited { transaction_id, reference, balance_paisa, points_awarded: 0 }))
}

/// Grants a top-up's points later (see [`TOPUP_POINTS_JOB`]).
pub async fn topup_points_job(state: AppState, payload: Value) -> Result<(), String> {
    let user_id = payload["user_id"].as_i64().ok_or("payload without user_id")?;
    let amount_paisa = payload["amount_paisa"].as_i64().ok_or("payload without amount_paisa")?;
    let event = PointsEvent::TopUp(TopUpEvent { user_id: user_id.to_string(), amount_paisa });
    let awards = points::plan_awards(&state, event).await.map_err(|e| e.to_string())?;
    let days = points::expiry_days(&state).await.map_err(|e| e.to_string())?;
    state.db.write(move |tx| points::grant(tx, &awards, days, now_ts())).await.map_err(|e| e.to_string())
}

/// Records why an intent was not credited, for the app and for support.
pub fn note_error(tx: &Transaction<'_>, intent_id: &str, error: &str) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE payment_intents SET last_error = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'pending'",
        params![intent_id, error, now_ts()],
    )?;
    Ok(())
}

/// Ends a pending intent without crediting it (`failed`, `cancelled`,
/// `expired`). Returns whether it was still pending. A rental payment's order
/// ends with it, in the same transaction.
pub fn finish_unpaid(tx: &Transaction<'_>, intent_id: &str, status: &str, why: &str) -> Result<bool, ApiError> {
    let purpose: Option<String> = tx
        .query_row(
            "UPDATE payment_intents SET status = ?2, last_error = ?3, updated_at = ?4
             WHERE id = ?1 AND status = 'pending' RETURNING purpose",
            params![intent_id, status, why, now_ts()],
            |r| r.get(0),
        )
        .optional()?;
    if purpose.as_deref() == Some("rental") {
        crate::rentals::gateway::payment_ended(tx, intent_id, status)?;
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
    let planned = if paid && amount_ok && intent.status != "completed" && intent.purpose == "topup" {
        plan_topup_points(state, intent.user_id, intent.amount_paisa).await
    } else {
        None
    };
    let id = intent.id.clone();
    let status = verified.status;
    let amount = verified.amount_paisa;
    let result = state
        .db
        .write(move |tx| {
            let settled = match status {
                PaymentStatus::Succeeded if amount != amount_of(tx, &id)? => {
                    note_error(tx, &id, &format!("amount_mismatch: gateway reports {amount} paisa"))?;
                    Settled::AmountMismatch
                }
                PaymentStatus::Succeeded => match credit_intent(tx, &id, amount, planned.as_ref())? {
                    Some(c) => Settled::Credited(c),
                    None => Settled::AlreadySettled,
                },
                PaymentStatus::Pending => Settled::Pending,
                PaymentStatus::Failed => {
                    finish_unpaid(tx, &id, "failed", "the gateway reports the payment failed")?;
                    Settled::Unpaid("failed".into())
                }
                PaymentStatus::Cancelled => {
                    finish_unpaid(tx, &id, "cancelled", "the payment was cancelled at the gateway")?;
                    Settled::Unpaid("cancelled".into())
                }
                PaymentStatus::Refunded => {
                    finish_unpaid(tx, &id, "failed", "the gateway reports the payment refunded")?;
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
