//! Everything a user does with a rental after it started: look at it,
//! extend it, pay what is due, send its location, report a problem, and
//! read the history.

use axum::{Json, extract::State, http::StatusCode};
use powerbank_plugin_runtime::types::{CallContext, ExtensionRequest, OverdueRequest};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    charge::{self, PaymentMethod},
    model::{self, RENTAL_SELECT, RentalOut, rental_from_row},
};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, AuthUser, Page, PageParams, error::ErrorBody, now_ts,
        pagination::date_filter, rate_limit,
    },
    ledger::{TransactionKind, WalletKind},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveRental {
    /// The rental in progress, or null.
    pub rental: Option<RentalOut>,
    /// A gateway payment for a rental waiting to be paid or started, or null.
    pub payment: Option<super::gateway::RentalOrderOut>,
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
                "{RENTAL_SELECT} WHERE r.user_id = ?1 AND r.status IN ('pending_eject', 'active') LIMIT 1"
            ))?;
            let rental = stmt.query_map([user.id], rental_from_row)?.next().transpose()?;
            Ok((rental, super::gateway::open_order_of(c, user.id)?))
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
    const STATUSES: &[&str] = &["pending_eject", "active", "completed", "failed", "cancelled"];
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    if let Some(s) = &f.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::invalid_field("status", format!("must be one of {}", STATUSES.join(", "))));
    }
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
                .query_map(params![user.id, before, f.status, from, to, limit + 1], rental_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.id)))
}

async fn own_core(state: &AppState, user: i64, id: i64) -> Result<model::RentalCore, ApiError> {
    state
        .db
        .read(move |c| model::load_core(c, id))
        .await?
        .filter(|r| r.user_id == user)
        .ok_or_else(|| ApiError::not_found("rental"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// 15 to 1440 minutes.
    pub extra_minutes: u32,
    pub payment_method: PaymentMethod,
}

/// Extends an active rental, priced by the pricing plugin and paid now.
#[utoipa::path(
    post, path = "/api/rentals/{id}/extend", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = ExtendRequest,
    responses(
        (status = 200, description = "The extended rental", body = RentalOut),
        (status = 400, description = "Bad duration", body = ErrorBody),
        (status = 402, description = "Not enough balance", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "The rental is not active", body = ErrorBody),
    )
)]
pub async fn extend(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ExtendRequest>,
) -> Result<Json<RentalOut>, ApiError> {
    if !(15..=1440).contains(&req.extra_minutes) {
        return Err(ApiError::invalid_field("extra_minutes", "must be 15 to 1440"));
    }
    let rental = own_core(&state, user.id, id).await?;
    if rental.status != "active" {
        return Err(model::illegal(&rental.status, "extend"));
    }
    let due = rental.due_at.unwrap_or_else(now_ts);
    let price = state
        .plugins
        .pricing()
        .price_extension(ExtensionRequest {
            package: rental.package_info(),
            current_due_unix_ms: due * 1000,
            extra_minutes: req.extra_minutes,
            context: CallContext {
                user_id: Some(user.id.to_string()),
                station_sn: None,
                now_unix_ms: chrono::Utc::now().timestamp_millis(),
            },
        })
        .await?;
    let extra = i64::from(req.extra_minutes);
    let split = charge::plan_split(&state, user.id, price, req.payment_method).await?;
    let out = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let new_due: Option<(i64, i64)> = tx
                .query_row(
                    "UPDATE rentals SET due_at = due_at + ?2 * 60, due_minutes = due_minutes + ?2, reminded_at = NULL,
                        updated_at = ?3
                     WHERE id = ?1 AND status = 'active' RETURNING due_at - ?2 * 60, due_at",
                    params![id, extra, now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (previous, new) = new_due.ok_or_else(|| model::illegal("no longer active", "extend"))?;
            let paid = charge::charge(
                tx,
                user.id,
                price,
                split,
                charge::ChargeFor {
                    kind: TransactionKind::RentalExtension,
                    wallet_kind: WalletKind::ExtensionCharge,
                    rental_id: Some(id),
                    description: &format!("Extension of {extra} minutes"),
                },
            )?;
            tx.execute(
                "INSERT INTO rental_extensions (rental_id, extra_minutes, amount_paisa, transaction_id, previous_due_at,
                    new_due_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, extra, price, paid.transaction_id, previous, new, now],
            )?;
            model::load_own(tx, user.id, id)
        })
        .await?;
    Ok(Json(out))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DueOut {
    pub rental_id: i64,
    /// Overdue charge if the bank were returned now (active rentals).
    pub overdue_now_paisa: i64,
    /// Recorded and not yet paid (completed rentals).
    pub unpaid_due_paisa: i64,
    pub explanation: String,
}

/// What the rental owes: the running overdue charge, or the unpaid due.
#[utoipa::path(
    get, path = "/api/rentals/{id}/calculate-due", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    responses(
        (status = 200, description = "Amounts owed", body = DueOut),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
    )
)]
pub async fn calculate_due(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<DueOut>, ApiError> {
    let rental = own_core(&state, user.id, id).await?;
    let now = now_ts();
    let (overdue, explanation) = match (rental.status.as_str(), rental.due_at) {
        ("active", Some(due)) if now > due => {
            let c = state
                .plugins
                .pricing()
                .overdue_charge(OverdueRequest {
                    package: rental.package_info(),
                    due_unix_ms: due * 1000,
                    returned_unix_ms: now * 1000,
                    context: CallContext {
                        user_id: Some(user.id.to_string()),
                        station_sn: None,
                        now_unix_ms: now * 1000,
                    },
                })
                .await?;
            (c.amount_paisa, c.explanation)
        }
        ("active", _) => (0, "not overdue".to_string()),
        _ if rental.unpaid_due_paisa > 0 => (0, "overdue charge recorded at return".to_string()),
        _ => (0, "nothing owed".to_string()),
    };
    Ok(Json(DueOut {
        rental_id: id,
        overdue_now_paisa: overdue,
        unpaid_due_paisa: rental.unpaid_due_paisa,
        explanation,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayDueRequest {
    pub payment_method: PaymentMethod,
}

/// Pays a recorded overdue charge, which unblocks new rentals.
#[utoipa::path(
    post, path = "/api/rentals/{id}/pay-due", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = PayDueRequest,
    responses(
        (status = 200, description = "Paid", body = RentalOut),
        (status = 402, description = "Not enough balance", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "Nothing to pay", body = ErrorBody),
    )
)]
pub async fn pay_due(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<PayDueRequest>,
) -> Result<Json<RentalOut>, ApiError> {
    let due = own_core(&state, user.id, id).await?.unpaid_due_paisa;
    if due == 0 {
        return Err(ApiError::conflict("nothing_due", "this rental has nothing to pay"));
    }
    let split = charge::plan_split(&state, user.id, due, req.payment_method).await?;
    let out = state
        .db
        .write(move |tx| {
            // The due the split was planned for must still be the one owed.
            let settled = tx.execute(
                "UPDATE rentals SET unpaid_due_paisa = 0, updated_at = ?4
                 WHERE id = ?1 AND user_id = ?2 AND unpaid_due_paisa = ?3",
                params![id, user.id, due, now_ts()],
            )?;
            if settled == 0 {
                return Err(ApiError::conflict("nothing_due", "this due was already paid"));
            }
            charge::charge(
                tx,
                user.id,
                due,
                split,
                charge::ChargeFor {
                    kind: TransactionKind::Overdue,
                    wallet_kind: WalletKind::OverdueCharge,
                    rental_id: Some(id),
                    description: "Overdue charge",
                },
            )?;
            model::load_own(tx, user.id, id)
        })
        .await?;
    Ok(Json(out))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelOut {
    pub message: String,
    /// A return at any station before this time is refunded in full.
    pub refund_if_returned_by: Option<String>,
}

/// Cancelling a rental means putting the bank back: a return within the grace
/// window after the start is refunded in full, at any station.
#[utoipa::path(
    post, path = "/api/rentals/{id}/cancel", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    responses(
        (status = 200, description = "Within the grace window: return the bank by the given time for a full refund", body = CancelOut),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "The grace window has passed, or the rental is not active", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CancelOut>, ApiError> {
    let rental = own_core(&state, user.id, id).await?;
    if rental.status != "active" {
        return Err(model::illegal(&rental.status, "cancel"));
    }
    let refund_until = rental.started_at.unwrap_or_default() + state.config.rentals.grace_minutes * 60;
    if now_ts() > refund_until {
        return Err(ApiError::conflict(
            "grace_window_passed",
            "the free cancellation window has passed; return the bank to end the rental",
        ));
    }
    Ok(Json(CancelOut {
        message:
            "put the power bank into any station's free slot; a return within the grace window is refunded in full"
                .into(),
        refund_if_returned_by: Some(crate::core::ts_to_rfc3339(refund_until)),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationUpdate {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: Option<f64>,
}

/// Records a point of the GPS trail of an active rental (at most 6 a minute).
#[utoipa::path(
    post, path = "/api/rentals/{id}/location", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = LocationUpdate,
    responses(
        (status = 201, description = "Recorded", body = CancelOut),
        (status = 400, description = "Bad coordinates", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "The rental is not active", body = ErrorBody),
        (status = 429, description = "Too frequent", body = ErrorBody),
    )
)]
pub async fn location(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(p): ApiJson<LocationUpdate>,
) -> Result<(StatusCode, Json<CancelOut>), ApiError> {
    if !(p.latitude.is_finite() && (-90.0..=90.0).contains(&p.latitude)) {
        return Err(ApiError::invalid_field("latitude", "must be between -90 and 90"));
    }
    if !(p.longitude.is_finite() && (-180.0..=180.0).contains(&p.longitude)) {
        return Err(ApiError::invalid_field("longitude", "must be between -180 and 180"));
    }
    if p.accuracy_m.is_some_and(|a| !a.is_finite() || a < 0.0) {
        return Err(ApiError::invalid_field("accuracy_m", "must be a positive number"));
    }
    let rental = own_core(&state, user.id, id).await?;
    if rental.status != "active" {
        return Err(model::illegal(&rental.status, "track"));
    }
    state
        .db
        .write(move |tx| {
            let now = now_ts();
            rate_limit::hit(tx, &format!("rental-location:{id}"), 6, 60, now)?;
            tx.execute(
                "INSERT INTO rental_locations (rental_id, latitude, longitude, accuracy_m, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, p.latitude, p.longitude, p.accuracy_m, now],
            )?;
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(CancelOut { message: "location recorded".into(), refund_if_returned_by: None })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RentalIssueRequest {
    /// `not_charging`, `damaged`, `lost`, `stuck_in_slot`, `billing` or `other`.
    pub issue_type: String,
    /// 10 to 1000 characters.
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RentalIssueOut {
    pub id: i64,
    pub rental_id: i64,
    pub issue_type: String,
    pub status: String,
}

/// Reports a problem with a rental.
#[utoipa::path(
    post, path = "/api/rentals/{id}/report-issue", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = RentalIssueRequest,
    responses(
        (status = 201, description = "Reported", body = RentalIssueOut),
        (status = 400, description = "Bad fields", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 429, description = "Too many reports", body = ErrorBody),
    )
)]
pub async fn report_issue(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<RentalIssueRequest>,
) -> Result<(StatusCode, Json<RentalIssueOut>), ApiError> {
    const TYPES: &[&str] = &["not_charging", "damaged", "lost", "stuck_in_slot", "billing", "other"];
    if !TYPES.contains(&req.issue_type.as_str()) {
        return Err(ApiError::invalid_field("issue_type", format!("must be one of {}", TYPES.join(", "))));
    }
    let description = req.description.trim().to_string();
    if !(10..=1000).contains(&description.chars().count()) {
        return Err(ApiError::invalid_field("description", "must be 10 to 1000 characters"));
    }
    own_core(&state, user.id, id).await?;
    let out = state
        .db
        .write(move |tx| {
            let now = now_ts();
            rate_limit::hit(tx, &format!("rental-issue:{}", user.id), 10, 3600, now)?;
            tx.execute(
                "INSERT INTO rental_issues (rental_id, user_id, issue_type, description, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, user.id, req.issue_type, description, now],
            )?;
            Ok(RentalIssueOut {
                id: tx.last_insert_rowid(),
                rental_id: id,
                issue_type: req.issue_type,
                status: "open".into(),
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}
