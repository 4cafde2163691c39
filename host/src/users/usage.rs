//! `GET /api/analytics/usage-stats`: what the user has done with the service.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    core::{ApiError, AuthUser, error::ErrorBody},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct FavouriteStation {
    pub serial_number: String,
    pub name: String,
    pub rentals: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageStats {
    pub total_rentals: i64,
    pub completed_rentals: i64,
    pub active_rentals: i64,
    /// Hours with a power bank, over returned rentals.
    pub total_hours: f64,
    /// Paid for rentals, extensions and overdue charges, net of refunds (paisa).
    pub total_spent_paisa: i64,
    pub overdue_returns: i64,
    pub points_balance: i64,
    pub points_earned: i64,
    pub points_spent: i64,
    /// The stations the user rents from most, up to three.
    pub favourite_stations: Vec<FavouriteStation>,
}

/// The caller's rental, spending and points statistics.
#[utoipa::path(
    get, path = "/api/analytics/usage-stats", tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Statistics", body = UsageStats),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn usage_stats(State(state): State<AppState>, user: AuthUser) -> Result<Json<UsageStats>, ApiError> {
    let stats = state
        .db
        .read(move |c| {
            let (total, completed, active, seconds, overdue): (i64, i64, i64, i64, i64) = c.query_row(
                "SELECT COUNT(*),
                        COALESCE(SUM(status = 'completed'), 0),
                        COALESCE(SUM(status IN ('pending_eject', 'active')), 0),
                        COALESCE(SUM(CASE WHEN returned_at IS NOT NULL THEN returned_at - started_at END), 0),
                        COALESCE(SUM(overdue_paisa > 0), 0)
                 FROM rentals WHERE user_id = ?1",
                [user.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            let spent: i64 = c.query_row(
                "SELECT COALESCE(SUM(amount_paisa), 0) FROM transactions
                 WHERE user_id = ?1 AND status = 'success' AND kind IN ('rental', 'rental_extension', 'overdue')",
                [user.id],
                |r| r.get(0),
            )?;
            let (balance, earned, spent_points): (i64, i64, i64) = c.query_row(
                "SELECT balance, total_earned, total_spent FROM user_points WHERE user_id = ?1",
                [user.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let mut stmt = c.prepare_cached(
                "SELECT s.serial_number, s.name, COUNT(*) AS n FROM rentals r JOIN stations s ON s.id = r.station_id
                 WHERE r.user_id = ?1 AND r.status IN ('active', 'completed')
                 GROUP BY s.id ORDER BY n DESC, s.id LIMIT 3",
            )?;
            let favourite_stations = stmt
                .query_map([user.id], |r| {
                    Ok(FavouriteStation { serial_number: r.get(0)?, name: r.get(1)?, rentals: r.get(2)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(UsageStats {
                total_rentals: total,
                completed_rentals: completed,
                active_rentals: active,
                total_hours: (seconds as f64 / 3600.0 * 100.0).round() / 100.0,
                total_spent_paisa: spent,
                overdue_returns: overdue,
                points_balance: balance,
                points_earned: earned,
                points_spent: spent_points,
                favourite_stations,
            })
        })
        .await?;
    Ok(Json(stats))
}
