//! `GET /api/points/history` and `GET /api/points/summary`: the caller's
//! points ledger and what it adds up to.

use axum::{Json, extract::State};
use rusqlite::params;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    core::{
        ApiError, ApiQuery, AuthUser, Page, PageParams, error::ErrorBody, money::format_npr, now_ts, opt_ts,
        ts_to_rfc3339,
    },
    state::AppState,
};

/// "Expiring soon" in the summary means within this many days.
pub const EXPIRING_SOON_DAYS: i64 = 30;

#[derive(Debug, Serialize, ToSchema)]
pub struct PointsEntry {
    pub id: i64,
    /// `credit` or `debit`.
    pub direction: String,
    /// `earned`, `expired`, or how the points were spent (e.g. `spent`).
    pub kind: String,
    pub points: i64,
    pub balance_after: i64,
    /// Why: `signup`, `referral`, `top-up`, `rental completed`, ...
    pub reason: String,
    /// For earned points: when what is left of them expires.
    pub expires_at: Option<String>,
    /// For earned points: how many are still unspent and unexpired.
    pub remaining: Option<i64>,
    /// The payment this entry belongs to, if any.
    pub transaction_id: Option<i64>,
    pub created_at: String,
}

/// The caller's points ledger, newest first.
#[utoipa::path(
    get, path = "/api/points/history", tag = "points",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of points movements", body = Page<PointsEntry>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<PointsEntry>>, ApiError> {
    let (limit, before) = (page.limit()?, page.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, direction, kind, points, balance_after, reason, expires_at, remaining, transaction_id,
                        created_at
                 FROM points_transactions WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![user.id, before, limit + 1], |r| {
                Ok(PointsEntry {
                    id: r.get(0)?,
                    direction: r.get(1)?,
                    kind: r.get(2)?,
                    points: r.get(3)?,
                    balance_after: r.get(4)?,
                    reason: r.get(5)?,
                    expires_at: opt_ts(r.get(6)?),
                    remaining: r.get(7)?,
                    transaction_id: r.get(8)?,
                    created_at: ts_to_rfc3339(r.get(9)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |e| e.id)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PointsSummary {
    /// Points available now: `total_earned - total_spent - total_expired`.
    pub balance: i64,
    pub total_earned: i64,
    pub total_spent: i64,
    pub total_expired: i64,
    /// Points that expire within the next 30 days unless spent first
    /// (including any already past their date that expiry has not removed yet).
    pub expiring_soon: i64,
    /// When the next of those expire, if any.
    pub next_expiry_at: Option<String>,
    /// What the balance is worth when paying, in paisa.
    pub value_paisa: i64,
    /// The same, for display, e.g. `"12.50"`.
    pub value_npr: String,
}

/// The caller's points: balance, totals, what expires soon and what the
/// balance is worth.
#[utoipa::path(
    get, path = "/api/points/summary", tag = "points",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Points overview", body = PointsSummary),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 502, description = "The points plugin failed", body = ErrorBody),
    )
)]
pub async fn summary(State(state): State<AppState>, user: AuthUser) -> Result<Json<PointsSummary>, ApiError> {
    let soon = now_ts() + EXPIRING_SOON_DAYS * 24 * 60 * 60;
    let (balance, total_earned, total_spent, total_expired, expiring_soon, next_expiry) = state
        .db
        .read(move |c| {
            // One statement, so the numbers come from one snapshot and add up.
            Ok(c.query_row(
                "SELECT p.balance, p.total_earned, p.total_spent,
                    (SELECT COALESCE(SUM(points), 0) FROM points_transactions
                     WHERE user_id = ?1 AND kind = 'expired'),
                    (SELECT COALESCE(SUM(remaining), 0) FROM points_transactions
                     WHERE user_id = ?1 AND remaining > 0 AND expires_at <= ?2),
                    (SELECT MIN(expires_at) FROM points_transactions
                     WHERE user_id = ?1 AND remaining > 0 AND expires_at <= ?2)
                 FROM user_points p WHERE p.user_id = ?1",
                params![user.id, soon],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, Option<i64>>(5)?)),
            )?)
        })
        .await?;
    let value_paisa = state.plugins.points().points_to_paisa(balance).await?;
    Ok(Json(PointsSummary {
        balance,
        total_earned,
        total_spent,
        total_expired,
        expiring_soon,
        next_expiry_at: opt_ts(next_expiry),
        value_paisa,
        value_npr: format_npr(value_paisa),
    }))
}
