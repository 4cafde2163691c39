//! `GET /api/wallet`, `GET /api/wallet/balance`, `GET /api/transactions`.

use axum::{Json, extract::State};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    core::{ApiError, ApiQuery, AuthUser, Page, PageParams, error::ErrorBody, money::format_npr, ts_to_rfc3339},
    ledger::{TransactionKind, TransactionStatus},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct Balance {
    pub balance_paisa: i64,
    /// For display, e.g. `"120.50"`.
    pub balance_npr: String,
    pub currency: String,
    pub points: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletEntry {
    pub id: i64,
    /// `credit` or `debit`.
    pub direction: String,
    pub kind: String,
    pub amount_paisa: i64,
    pub balance_after_paisa: i64,
    pub description: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletOut {
    #[serde(flatten)]
    pub balance: Balance,
    /// The 10 latest wallet movements.
    pub recent: Vec<WalletEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionOut {
    pub id: i64,
    pub reference: String,
    pub kind: TransactionKind,
    pub status: TransactionStatus,
    pub amount_paisa: i64,
    pub wallet_paisa: i64,
    pub points_used: i64,
    pub points_value_paisa: i64,
    pub gateway: Option<String>,
    pub payment_intent_id: Option<String>,
    pub rental_id: Option<i64>,
    pub description: String,
    pub created_at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionFilter {
    /// `topup`, `rental`, `rental_extension`, `overdue` or `refund`.
    pub kind: Option<String>,
    /// `pending`, `success`, `failed` or `refunded`.
    pub status: Option<String>,
    /// From this date (inclusive, `YYYY-MM-DD`, UTC).
    pub from: Option<String>,
    /// Up to this date (inclusive, `YYYY-MM-DD`, UTC).
    pub to: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

pub fn load_balance(c: &Connection, user_id: i64) -> Result<Balance, ApiError> {
    Ok(c.query_row(
        "SELECT w.balance_paisa, w.currency, p.balance FROM wallets w JOIN user_points p ON p.user_id = w.user_id
         WHERE w.user_id = ?1",
        [user_id],
        |r| {
            let paisa: i64 = r.get(0)?;
            Ok(Balance { balance_paisa: paisa, balance_npr: format_npr(paisa), currency: r.get(1)?, points: r.get(2)? })
        },
    )?)
}

/// The caller's wallet with its latest movements.
#[utoipa::path(
    get, path = "/api/wallet", tag = "payments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Wallet", body = WalletOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn wallet(State(state): State<AppState>, user: AuthUser) -> Result<Json<WalletOut>, ApiError> {
    let out = state
        .db
        .read(move |c| {
            let balance = load_balance(c, user.id)?;
            let mut stmt = c.prepare_cached(
                "SELECT id, direction, kind, amount_paisa, balance_after_paisa, description, created_at
                 FROM wallet_transactions WHERE user_id = ?1 ORDER BY id DESC LIMIT 10",
            )?;
            let recent = stmt
                .query_map([user.id], |r| {
                    Ok(WalletEntry {
                        id: r.get(0)?,
                        direction: r.get(1)?,
                        kind: r.get(2)?,
                        amount_paisa: r.get(3)?,
                        balance_after_paisa: r.get(4)?,
                        description: r.get(5)?,
                        created_at: ts_to_rfc3339(r.get(6)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(WalletOut { balance, recent })
        })
        .await?;
    Ok(Json(out))
}

/// The caller's wallet balance and points.
#[utoipa::path(
    get, path = "/api/wallet/balance", tag = "payments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Balance", body = Balance),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn balance(State(state): State<AppState>, user: AuthUser) -> Result<Json<Balance>, ApiError> {
    Ok(Json(state.db.read(move |c| load_balance(c, user.id)).await?))
}

/// The caller's payments, newest first.
#[utoipa::path(
    get, path = "/api/transactions", tag = "payments",
    security(("bearer" = [])),
    params(TransactionFilter),
    responses(
        (status = 200, description = "A page of transactions", body = Page<TransactionOut>),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn transactions(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(f): ApiQuery<TransactionFilter>,
) -> Result<Json<Page<TransactionOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let kind = f
        .kind
        .as_deref()
        .map(str::parse::<TransactionKind>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("kind", e))?;
    let status = f
        .status
        .as_deref()
        .map(str::parse::<TransactionStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let from = crate::core::pagination::date_filter("from", &f.from, false)?;
    let to = crate::core::pagination::date_filter("to", &f.to, true)?;
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, reference, kind, status, amount_paisa, wallet_paisa, points_used, points_value_paisa,
                        gateway, payment_intent_id, rental_id, description, created_at
                 FROM transactions
                 WHERE user_id = ?1 AND id < ?2
                   AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR status = ?4)
                   AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at <= ?6)
                 ORDER BY id DESC LIMIT ?7",
            )?;
            let rows = stmt
                .query_map(params![user.id, before, kind, status, from, to, limit + 1], |r| {
                    Ok(TransactionOut {
                        id: r.get(0)?,
                        reference: r.get(1)?,
                        kind: r.get(2)?,
                        status: r.get(3)?,
                        amount_paisa: r.get(4)?,
                        wallet_paisa: r.get(5)?,
                        points_used: r.get(6)?,
                        points_value_paisa: r.get(7)?,
                        gateway: r.get(8)?,
                        payment_intent_id: r.get(9)?,
                        rental_id: r.get(10)?,
                        description: r.get(11)?,
                        created_at: ts_to_rfc3339(r.get(12)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |t| t.id)))
}
