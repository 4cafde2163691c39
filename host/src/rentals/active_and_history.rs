//! What the user sees of their rentals: the one in progress (and any
//! gateway payment for one) and the history.

use axum::{Json, extract::State};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::model::{RENTAL_SELECT, RentalOut, RentalStatus, rental_from_row};
use crate::{
    core::{ApiError, ApiQuery, AuthUser, Page, PageParams, error::ErrorBody, pagination::date_filter},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveRental {
    /// The rental in progress, or null.
    pub rental: Option<RentalOut>,
    /// A gateway payment for a rental waiting to be paid or started, or null.
    pub payment: Option<super::orders::RentalOrderOut>,
}

/// The caller's rental in progress, if any.
#[utoipa::path(
    get, path = "/api/rentals/active", tag = "rentals",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rental in progress or null", body = ActiveRental),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn active(State(state): State<AppState>, user: AuthUser) -> Result<Json<ActiveRental>, ApiError> {
    let (rental, payment) = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{RENTAL_SELECT} WHERE r.user_id = ?1 AND r.status IN (?2, ?3) ORDER BY r.id DESC LIMIT 1"
            ))?;
            let in_progress = params![user.id, RentalStatus::PendingEject, RentalStatus::Active];
            let rental = stmt.query_map(in_progress, rental_from_row)?.next().transpose()?;
            Ok((rental, super::orders::open_order_of(c, user.id)?))
        })
        .await?;
    Ok(Json(ActiveRental { rental, payment }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryFilter {
    /// `active`, `completed`, `failed`, `cancelled` or `pending_eject`.
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

/// The caller's rentals, newest first.
#[utoipa::path(
    get, path = "/api/rentals/history", tag = "rentals",
    security(("bearer" = [])),
    params(HistoryFilter),
    responses(
        (status = 200, description = "A page of rentals", body = Page<RentalOut>),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(f): ApiQuery<HistoryFilter>,
) -> Result<Json<Page<RentalOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = f
        .status
        .as_deref()
        .map(str::parse::<RentalStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let (from, to) = (date_filter("from", &f.from, false)?, date_filter("to", &f.to, true)?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{RENTAL_SELECT} WHERE r.user_id = ?1 AND r.id < ?2 AND (?3 IS NULL OR r.status = ?3)
                   AND (?4 IS NULL OR r.created_at >= ?4) AND (?5 IS NULL OR r.created_at <= ?5)
                 ORDER BY r.id DESC LIMIT ?6"
            ))?;
            let rows = stmt
                .query_map(params![user.id, before, status, from, to, limit + 1], rental_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.id)))
}
