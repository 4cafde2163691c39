//! Refunds: a user asks (`POST /api/payment/refund/{transaction_id}`, the
//! request waits as `pending`), an operator approves or rejects
//! (`/api/admin/refunds/{id}/approve|reject`).
//!
//! Approving moves the money:
//! - a gateway top-up goes back through the gateway plugin's `refund`; the
//!   wallet gives the top-up back first, in the approving transaction (so
//!   money already spent cannot be refunded: 402), and gets it back if the
//!   gateway refuses;
//! - anything paid from the balance (rentals, extensions, dues) goes back to
//!   the wallet, and the points used come back as points.
//!
//! A gateway that cannot be reached leaves the refund `approved`; a job
//! retries it with backoff under the same idempotency key.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use powerbank_plugin_runtime::types::{GatewayError, PaymentStatus, RefundRequest};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{
    gateway_errors::{gateway_failure, plugin_failure},
    idempotency::{self, remember_once, replayed},
};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, AuthUser, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        jobs::{self, NewJob},
        now_ts,
        text_enum::text_enum,
        ts_to_rfc3339,
    },
    ledger::{self, NewTransaction, TransactionKind, TransactionStatus, WalletKind},
    state::AppState,
};

/// Job: sends an approved gateway refund (again) until the gateway answers.
pub const REFUND_JOB: &str = "payments.process_refund";

const REFUNDABLE: &[TransactionKind] =
    &[TransactionKind::Topup, TransactionKind::Rental, TransactionKind::RentalExtension, TransactionKind::Overdue];

text_enum! {
    /// Where a refund request stands (`refunds.status`): pending → approved
    /// (being processed) → processed or failed, or pending → rejected.
    pub enum RefundStatus {
        Pending = "pending",
        Approved = "approved",
        Processed = "processed",
        Rejected = "rejected",
        Failed = "failed",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundOut {
    pub id: i64,
    pub user_id: i64,
    pub transaction_id: i64,
    pub transaction_reference: String,
    /// What was paid: `topup`, `rental`, `rental_extension` or `overdue`.
    pub transaction_kind: TransactionKind,
    pub gateway: Option<String>,
    pub amount_paisa: i64,
    pub reason: String,
    pub status: RefundStatus,
    pub review_note: Option<String>,
    pub gateway_refund_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The columns of [`RefundOut`], named as [`refund_from_row`] reads them.
const REFUND_SELECT: &str = "SELECT r.id, r.user_id, r.transaction_id, t.reference AS transaction_reference,
        t.kind AS transaction_kind, t.gateway, r.amount_paisa, r.reason, r.status, r.review_note,
        r.gateway_refund_id, r.last_error, r.created_at, r.updated_at
    FROM refunds r JOIN transactions t ON t.id = r.transaction_id";

fn refund_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RefundOut> {
    Ok(RefundOut {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        transaction_id: r.get("transaction_id")?,
        transaction_reference: r.get("transaction_reference")?,
        transaction_kind: r.get("transaction_kind")?,
        gateway: r.get("gateway")?,
        amount_paisa: r.get("amount_paisa")?,
        reason: r.get("reason")?,
        status: r.get("status")?,
        review_note: r.get("review_note")?,
        gateway_refund_id: r.get("gateway_refund_id")?,
        last_error: r.get("last_error")?,
        created_at: ts_to_rfc3339(r.get("created_at")?),
        updated_at: ts_to_rfc3339(r.get("updated_at")?),
    })
}

fn load_refund(c: &Connection, id: i64) -> Result<RefundOut, ApiError> {
    c.query_row(&format!("{REFUND_SELECT} WHERE r.id = ?1"), [id], refund_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("refund"))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefundRequestIn {
    /// Why the user wants the money back (1-500 characters).
    pub reason: String,
}

/// The caller's transaction by numeric id or by its `TXN-...` reference.
fn user_transaction(
    c: &Connection,
    user_id: i64,
    key: &str,
) -> Result<(i64, TransactionKind, TransactionStatus, i64), ApiError> {
    let row = match key.parse::<i64>() {
        Ok(id) => c
            .query_row(
                "SELECT id, kind, status, amount_paisa FROM transactions WHERE id = ?1 AND user_id = ?2",
                params![id, user_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?,
        Err(_) => c
            .query_row(
                "SELECT id, kind, status, amount_paisa FROM transactions WHERE reference = ?1 AND user_id = ?2",
                params![key, user_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?,
    };
    row.ok_or_else(|| ApiError::not_found("transaction"))
}

/// Asks for a payment to be refunded; an operator decides.
#[utoipa::path(
    post, path = "/api/payment/refund/{transaction_id}", tag = "payments",
    security(("bearer" = [])),
    params(
        ("transaction_id" = String, Path, description = "Transaction id or `TXN-...` reference"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer"),
    ),
    request_body = RefundRequestIn,
    responses(
        (status = 201, description = "Refund requested (pending review)", body = RefundOut),
        (status = 400, description = "Missing reason", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such transaction of the caller's", body = ErrorBody),
        (status = 409, description = "Not refundable, or a refund was already requested", body = ErrorBody),
    )
)]
pub async fn request_refund(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiPath(transaction_key): ApiPath<String>,
    ApiJson(body): ApiJson<RefundRequestIn>,
) -> Result<(StatusCode, Json<RefundOut>), ApiError> {
    const ENDPOINT: &str = "payment/refund";
    let reason = body.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::invalid_field("reason", "must be 1 to 500 characters"));
    }
    crate::core::text::check_user_text("reason", &reason, true)?;
    let key = idempotency::key_from(&headers)?;
    let hash = idempotency::request_hash(&json!({ "transaction": transaction_key, "reason": reason }));
    if let Some((status, out)) = replayed::<RefundOut>(&state, user.id, &key, ENDPOINT, &hash).await? {
        return Ok((status, Json(out)));
    }
    let (status, out) = state
        .db
        .write(move |tx| {
            if let Some(k) = &key
                && let Some(stored) = idempotency::replay(tx, user.id, k, ENDPOINT, &hash)?
            {
                return Ok(stored);
            }
            let (txn_id, kind, status, amount) = user_transaction(tx, user.id, &transaction_key)?;
            if !REFUNDABLE.contains(&kind) || status != TransactionStatus::Success || amount <= 0 {
                return Err(ApiError::conflict(
                    "not_refundable",
                    format!("a {status} {kind} transaction cannot be refunded"),
                ));
            }
            let exists: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM refunds WHERE transaction_id = ?1)", [txn_id], |r| {
                    r.get(0)
                })?;
            if exists {
                return Err(ApiError::conflict("refund_exists", "a refund was already requested for this transaction"));
            }
            let now = now_ts();
            tx.execute(
                "INSERT INTO refunds (transaction_id, user_id, amount_paisa, reason, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?6, ?5, ?5)",
                params![txn_id, user.id, amount, reason, now, RefundStatus::Pending],
            )?;
            let out = load_refund(tx, tx.last_insert_rowid())?;
            remember_once(tx, user.id, key.as_deref(), ENDPOINT, &hash, StatusCode::CREATED, out)
        })
        .await?;
    Ok((status, Json(out)))
}

/// The caller's refund requests, newest first.
#[utoipa::path(
    get, path = "/api/payment/refunds", tag = "payments",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of refunds", body = Page<RefundOut>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn my_refunds(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<RefundOut>>, ApiError> {
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{REFUND_SELECT} WHERE r.user_id = ?1 AND r.id < ?2 ORDER BY r.id DESC LIMIT ?3"
            ))?;
            let rows =
                stmt.query_map(params![user.id, before, limit + 1], refund_from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.id)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminRefundFilter {
    /// `pending`, `approved`, `processed`, `rejected` or `failed`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Every refund request, newest first, optionally by status.
#[utoipa::path(
    get, path = "/api/admin/refunds", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance", "support"]))),
    params(AdminRefundFilter),
    responses(
        (status = 200, description = "A page of refunds", body = Page<RefundOut>),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
    )
)]
pub async fn admin_list(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<AdminRefundFilter>,
) -> Result<Json<Page<RefundOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = f
        .status
        .as_deref()
        .map(str::parse::<RefundStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{REFUND_SELECT} WHERE r.id < ?1 AND (?2 IS NULL OR r.status = ?2) ORDER BY r.id DESC LIMIT ?3"
            ))?;
            let rows =
                stmt.query_map(params![before, status, limit + 1], refund_from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.id)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ApproveIn {
    /// Why the money goes back (kept in the audit log); required, `note`
    /// is taken when `reason` is absent.
    pub reason: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectIn {
    /// Shown to the user (1-500 characters).
    pub reason: String,
}

/// Claims a pending refund for review; 404 or 409 otherwise.
fn claim(tx: &Transaction<'_>, id: i64, to: RefundStatus, admin: i64, note: Option<&str>) -> Result<(), ApiError> {
    let n = tx.execute(
        "UPDATE refunds SET status = ?2, reviewed_by = ?3, review_note = ?4, updated_at = ?5
         WHERE id = ?1 AND status = ?6",
        params![id, to, admin, note, now_ts(), RefundStatus::Pending],
    )?;
    if n == 1 {
        return Ok(());
    }
    let status = load_refund(tx, id)?.status;
    Err(ApiError::conflict("refund_not_pending", format!("this refund is already {status}")))
}

/// Approves a refund and moves the money (see the module docs).
#[utoipa::path(
    post, path = "/api/admin/refunds/{id}/approve", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    params(("id" = i64, Path, description = "Refund id")),
    request_body = ApproveIn,
    responses(
        (status = 200, description = "`processed`, or `approved` while a gateway is retried, or `failed` if the gateway refused", body = RefundOut),
        (status = 400, description = "No reason (`reason_required`)", body = ErrorBody),
        (status = 402, description = "The wallet no longer holds the top-up to give back", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such refund", body = ErrorBody),
        (status = 409, description = "Not pending", body = ErrorBody),
    )
)]
pub async fn approve(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ApproveIn>,
) -> Result<Json<RefundOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref().or(body.note.as_deref()))?;
    let note = audit::optional_reason(body.note.as_deref())?.unwrap_or_else(|| reason.clone());
    let via_gateway = state
        .db
        .write(move |tx| {
            let before = load_refund(tx, id)?;
            claim(tx, id, RefundStatus::Approved, admin.id, Some(&note))?;
            let via_gateway = start_refund(tx, id)?;
            let after = load_refund(tx, id)?;
            audit::record(tx, &admin, "refund.approve", Target::new("refund", id), &before, &after, Some(&reason))?;
            Ok(via_gateway)
        })
        .await?;
    if via_gateway {
        state.jobs.wake();
        if let Err(e) = process_refund(&state, id).await {
            tracing::warn!(refund = id, error = %e, "gateway refund not sent yet; the job retries it");
        }
    }
    Ok(Json(state.db.read(move |c| load_refund(c, id)).await?))
}

/// Moves the balance side of an approved refund. Returns whether a gateway
/// refund still has to be sent.
fn start_refund(tx: &Transaction<'_>, id: i64) -> Result<bool, ApiError> {
    let (user_id, txn_id, amount): (i64, i64, i64) =
        tx.query_row("SELECT user_id, transaction_id, amount_paisa FROM refunds WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let (kind, reference, gateway, points_used, points_value): (String, String, Option<String>, i64, i64) = tx
        .query_row(
            "SELECT kind, reference, gateway, points_used, points_value_paisa FROM transactions WHERE id = ?1",
            [txn_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
    let via_gateway = kind == "topup";
    let description = format!("Refund of {reference}");
    let (refund_txn, _) = ledger::record_transaction(
        tx,
        NewTransaction {
            user_id,
            kind: TransactionKind::Refund,
            status: if via_gateway { TransactionStatus::Pending } else { TransactionStatus::Success },
            amount_paisa: amount,
            wallet_paisa: if via_gateway { amount } else { amount - points_value },
            points_used,
            points_value_paisa: points_value,
            gateway: gateway.as_deref().filter(|_| via_gateway),
            payment_intent_id: None,
            rental_id: None,
            description: &description,
        },
    )?;
    tx.execute("UPDATE refunds SET refund_transaction_id = ?2 WHERE id = ?1", params![id, refund_txn])?;
    if via_gateway {
        // The top-up leaves the wallet now, before the gateway returns it, so
        // it cannot be both spent and refunded.
        ledger::wallet_change(tx, user_id, -amount, WalletKind::Refund, Some(refund_txn), &description)?;
        jobs::enqueue(
            tx,
            NewJob::new(REFUND_JOB, json!({ "refund_id": id }))
                .at(now_ts() + 60)
                .attempts(12)
                .dedupe(format!("{REFUND_JOB}:{id}")),
        )?;
        return Ok(true);
    }
    // Paid from the balance: back to the wallet, points back as points.
    let to_wallet = amount - points_value;
    if to_wallet > 0 {
        ledger::wallet_change(tx, user_id, to_wallet, WalletKind::Refund, Some(refund_txn), &description)?;
    }
    if points_used > 0 {
        ledger::points_earn(tx, user_id, points_used, &description, None, Some(refund_txn))?;
    }
    finish(tx, id, txn_id, RefundStatus::Processed, None, None)?;
    Ok(false)
}

fn finish(
    tx: &Transaction<'_>,
    id: i64,
    txn_id: i64,
    status: RefundStatus,
    gateway_refund_id: Option<&str>,
    error: Option<&str>,
) -> Result<bool, ApiError> {
    let now = now_ts();
    let n = tx.execute(
        "UPDATE refunds SET status = ?2, gateway_refund_id = COALESCE(?3, gateway_refund_id), last_error = ?4, updated_at = ?5
         WHERE id = ?1 AND status = ?6",
        params![id, status, gateway_refund_id, error, now, RefundStatus::Approved],
    )?;
    if n == 0 {
        return Ok(false);
    }
    let refund_txn: Option<i64> =
        tx.query_row("SELECT refund_transaction_id FROM refunds WHERE id = ?1", [id], |r| r.get(0))?;
    let (txn_status, refund_status) = if status == RefundStatus::Processed {
        (TransactionStatus::Refunded, TransactionStatus::Success)
    } else {
        (TransactionStatus::Success, TransactionStatus::Failed)
    };
    ledger::set_transaction_status(tx, txn_id, txn_status)?;
    if let Some(r) = refund_txn {
        ledger::set_transaction_status(tx, r, refund_status)?;
    }
    Ok(true)
}

/// Sends an approved top-up refund through its gateway. An unreachable
/// gateway is an `Err` (the job retries); a refusal ends the refund `failed`
/// and gives the top-up back to the wallet.
pub async fn process_refund(state: &AppState, id: i64) -> Result<(), ApiError> {
    type Row = (RefundStatus, i64, i64, i64, String, Option<String>, Option<String>, Option<i64>);
    let row: Option<Row> = state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT r.status, r.user_id, r.transaction_id, r.amount_paisa, r.reason, t.gateway, i.gateway_reference,
                        r.refund_transaction_id
                 FROM refunds r JOIN transactions t ON t.id = r.transaction_id
                 LEFT JOIN payment_intents i ON i.id = t.payment_intent_id
                 WHERE r.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
            )
            .optional()?)
        })
        .await?;
    let Some((status, user_id, txn_id, amount, reason, gateway, gateway_ref, refund_txn)) = row else { return Ok(()) };
    if status != RefundStatus::Approved {
        return Ok(());
    }
    let order_id: Option<String> = state
        .db
        .read(move |c| {
            Ok(c.query_row("SELECT payment_intent_id FROM transactions WHERE id = ?1", [txn_id], |r| r.get(0))?)
        })
        .await?;
    let (Some(gateway), Some(gateway_ref), Some(order_id)) = (gateway, gateway_ref, order_id) else {
        return fail_refund(state, id, txn_id, user_id, amount, refund_txn, "the payment has no gateway reference")
            .await;
    };
    let request = RefundRequest {
        order_id,
        gateway_ref,
        amount_paisa: amount,
        reason,
        idempotency_key: format!("powerbank-refund-{id}"),
    };
    let answer = state.plugins.gateway(&gateway).refund(request).await;
    let refused = match answer.map_err(plugin_failure) {
        Err(e) => {
            note_refund_error(state, id, &e).await;
            return Err(e);
        }
        Ok(Ok(result)) if matches!(result.status, PaymentStatus::Refunded | PaymentStatus::Pending) => {
            let reference = result.refund_ref;
            state.db.write(move |tx| finish(tx, id, txn_id, RefundStatus::Processed, Some(&reference), None)).await?;
            tracing::info!(refund = id, gateway, "gateway refund processed");
            return Ok(());
        }
        Ok(Ok(result)) => format!("the gateway answered {:?}", result.status),
        Ok(Err(e @ (GatewayError::Unavailable(_) | GatewayError::Timeout(_) | GatewayError::Internal(_)))) => {
            let e = gateway_failure(&gateway, e);
            note_refund_error(state, id, &e).await;
            return Err(e);
        }
        Ok(Err(GatewayError::NotSupported)) => {
            format!("{gateway} cannot refund automatically; settle it outside the app")
        }
        Ok(Err(e)) => gateway_failure(&gateway, e).message,
    };
    fail_refund(state, id, txn_id, user_id, amount, refund_txn, &refused).await
}

async fn note_refund_error(state: &AppState, id: i64, e: &ApiError) {
    let message = format!("{}: {}", e.code, e.message);
    let noted = state
        .db
        .write(move |tx| {
            tx.execute(
                "UPDATE refunds SET last_error = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, message, now_ts()],
            )?;
            Ok(())
        })
        .await;
    if let Err(err) = noted {
        tracing::warn!(refund = id, error = %err, "could not record a refund error");
    }
}

async fn fail_refund(
    state: &AppState,
    id: i64,
    txn_id: i64,
    user_id: i64,
    amount: i64,
    refund_txn: Option<i64>,
    why: &str,
) -> Result<(), ApiError> {
    let why = why.to_string();
    tracing::warn!(refund = id, reason = %why, "gateway refund refused; the top-up goes back to the wallet");
    state
        .db
        .write(move |tx| {
            if finish(tx, id, txn_id, RefundStatus::Failed, None, Some(&why))? {
                ledger::wallet_change(
                    tx,
                    user_id,
                    amount,
                    WalletKind::Adjustment,
                    refund_txn,
                    "Refund not possible: top-up returned to the wallet",
                )?;
            }
            Ok(())
        })
        .await
}

/// The retry of an approved gateway refund (see [`REFUND_JOB`]).
pub async fn refund_job(state: AppState, payload: Value) -> Result<(), String> {
    let id = payload["refund_id"].as_i64().ok_or("payload without refund_id")?;
    process_refund(&state, id).await.map_err(|e| e.to_string())
}

/// Rejects a pending refund with a reason the user sees.
#[utoipa::path(
    post, path = "/api/admin/refunds/{id}/reject", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    params(("id" = i64, Path, description = "Refund id")),
    request_body = RejectIn,
    responses(
        (status = 200, description = "Rejected", body = RefundOut),
        (status = 400, description = "Missing reason", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such refund", body = ErrorBody),
        (status = 409, description = "Not pending", body = ErrorBody),
    )
)]
pub async fn reject(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RejectIn>,
) -> Result<Json<RefundOut>, ApiError> {
    let reason = body.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::invalid_field("reason", "must be 1 to 500 characters"));
    }
    crate::core::text::check_user_text("reason", &reason, true)?;
    let out = state
        .db
        .write(move |tx| {
            let before = load_refund(tx, id)?;
            claim(tx, id, RefundStatus::Rejected, admin.id, Some(&reason))?;
            let after = load_refund(tx, id)?;
            audit::record(tx, &admin, "refund.reject", Target::new("refund", id), &before, &after, Some(&reason))?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}
