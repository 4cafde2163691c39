//! The leaderboard: top riders by category and period, the caller's own
//! rank, names masked ("Sita S."), and a setting to stay off it.
//!
//! Read from `leaderboard_rollups` (kept by triggers, see `schema.sql`): a
//! page is one index range scan and a rank is one index range count, so
//! neither grows with the number of rentals.

use axum::{Json, extract::State};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::periods::{Period, key_at};
use crate::{
    core::{ApiError, ApiJson, ApiQuery, AuthUser, error::ErrorBody, now_ts, opt_ts, text_enum::text_enum},
    state::AppState,
};

pub const DEFAULT_TOP: i64 = 10;
pub const MAX_TOP: i64 = 100;

text_enum! {
    /// What a leaderboard ranks by.
    pub enum Category {
        RentalsCompleted = "rentals_completed",
        OnTimeReturns = "on_time_returns",
        PointsEarned = "points_earned",
        Referrals = "referrals",
        DistinctStations = "distinct_stations",
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeaderboardQuery {
    /// Default `rentals_completed`.
    pub category: Option<Category>,
    /// `week` and `month` run Monday / the 1st to now in Asia/Kathmandu. Default `week`.
    pub period: Option<Period>,
    /// How many top riders, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeaderboardEntry {
    /// 1 for the best; riders with the same value share a rank.
    pub rank: i64,
    /// Masked: first name and the initial of the last, e.g. "Sita S.".
    pub name: String,
    pub value: i64,
    pub is_you: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct YourStanding {
    /// `null` when hidden or with nothing counted yet.
    pub rank: Option<i64>,
    pub value: i64,
    pub hidden: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Leaderboard {
    pub category: Category,
    pub period: Period,
    /// When the period began (`null` for all time), RFC 3339.
    pub period_start: Option<String>,
    pub entries: Vec<LeaderboardEntry>,
    pub you: YourStanding,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SocialProfile {
    /// Keeps the rider off every leaderboard (they still see their own rank as hidden).
    pub hide_from_leaderboard: bool,
}

/// "Sita Sharma" → "Sita S."; one word stays as it is; no name → "Rider".
pub fn masked_name(full_name: Option<&str>) -> String {
    let mut words = full_name.unwrap_or_default().split_whitespace();
    let Some(first) = words.next() else { return "Rider".to_string() };
    match words.last().and_then(|last| last.chars().next()) {
        Some(initial) => format!("{first} {}.", initial.to_uppercase()),
        None => first.to_string(),
    }
}

/// The page and the caller's standing, at `now`.
pub fn read_board(
    c: &Connection,
    category: Category,
    period: Period,
    limit: i64,
    caller: i64,
    now: i64,
) -> Result<Leaderboard, ApiError> {
    let (key, starts_at) = key_at(period, now);
    let mut stmt = c.prepare_cached(
        "SELECT r.user_id, r.value, p.full_name
         FROM leaderboard_rollups r
         JOIN users u ON u.id = r.user_id
         LEFT JOIN user_profiles p ON p.user_id = r.user_id
         WHERE r.category = ?1 AND r.period = ?2 AND r.hidden = 0 AND r.value > 0 AND u.status = 'active'
         ORDER BY r.value DESC, r.user_id
         LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![category, key, limit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<String>>(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut entries: Vec<LeaderboardEntry> = Vec::with_capacity(rows.len());
    for (i, (user_id, value, name)) in rows.into_iter().enumerate() {
        let rank = match entries.last() {
            Some(prev) if prev.value == value => prev.rank,
            _ => i64::try_from(i).unwrap_or(i64::MAX) + 1,
        };
        entries.push(LeaderboardEntry { rank, name: masked_name(name.as_deref()), value, is_you: user_id == caller });
    }
    let mine: Option<(i64, bool)> = c
        .query_row(
            "SELECT value, hidden FROM leaderboard_rollups WHERE category = ?1 AND period = ?2 AND user_id = ?3",
            params![category, key, caller],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let hidden_pref: bool = c
        .query_row("SELECT hide_from_leaderboard FROM social_preferences WHERE user_id = ?1", [caller], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    let (value, hidden) = mine.unwrap_or((0, hidden_pref));
    let rank = if hidden || value <= 0 {
        None
    } else {
        let above: i64 = c.query_row(
            "SELECT count(*) FROM leaderboard_rollups
             WHERE category = ?1 AND period = ?2 AND hidden = 0 AND value > ?3",
            params![category, key, value],
            |r| r.get(0),
        )?;
        Some(above + 1)
    };
    Ok(Leaderboard {
        category,
        period,
        period_start: opt_ts(starts_at),
        entries,
        you: YourStanding { rank, value, hidden },
    })
}

/// Top riders of a category and period, and where the caller stands.
#[utoipa::path(
    get, path = "/api/social/leaderboard", tag = "social",
    security(("bearer" = [])),
    params(LeaderboardQuery),
    responses(
        (status = 200, description = "The top riders and the caller's rank", body = Leaderboard),
        (status = 400, description = "Unknown category or period, bad limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn leaderboard(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<LeaderboardQuery>,
) -> Result<Json<Leaderboard>, ApiError> {
    let limit = match q.limit {
        None => DEFAULT_TOP,
        Some(n) if (1..=MAX_TOP).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid_field("limit", format!("must be between 1 and {MAX_TOP}"))),
    };
    let category = q.category.unwrap_or(Category::RentalsCompleted);
    let period = q.period.unwrap_or(Period::Week);
    let board = state.db.read(move |c| read_board(c, category, period, limit, user.id, now_ts())).await?;
    Ok(Json(board))
}

/// The caller's social settings.
#[utoipa::path(
    get, path = "/api/social/profile", tag = "social",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Settings", body = SocialProfile),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn get_profile(State(state): State<AppState>, user: AuthUser) -> Result<Json<SocialProfile>, ApiError> {
    let hidden = state
        .db
        .read(move |c| {
            Ok(c.query_row("SELECT hide_from_leaderboard FROM social_preferences WHERE user_id = ?1", [user.id], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(false))
        })
        .await?;
    Ok(Json(SocialProfile { hide_from_leaderboard: hidden }))
}

/// Changes the caller's social settings; hiding takes effect on every
/// leaderboard at once.
#[utoipa::path(
    put, path = "/api/social/profile", tag = "social",
    security(("bearer" = [])),
    request_body = SocialProfile,
    responses(
        (status = 200, description = "Settings", body = SocialProfile),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn put_profile(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<SocialProfile>,
) -> Result<Json<SocialProfile>, ApiError> {
    let hidden = req.hide_from_leaderboard;
    state
        .db
        .write(move |tx| {
            tx.execute(
                "INSERT INTO social_preferences (user_id, hide_from_leaderboard, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET hide_from_leaderboard = excluded.hide_from_leaderboard,
                     updated_at = excluded.updated_at",
                params![user.id, hidden, now_ts()],
            )?;
            tx.execute("UPDATE leaderboard_rollups SET hidden = ?2 WHERE user_id = ?1", params![user.id, hidden])?;
            Ok(())
        })
        .await?;
    Ok(Json(SocialProfile { hide_from_leaderboard: hidden }))
}

#[cfg(test)]
mod tests {
    use super::masked_name;

    #[test]
    fn names_are_masked() {
        assert_eq!(masked_name(Some("Sita Sharma")), "Sita S.");
        assert_eq!(masked_name(Some("  Ram Bahadur thapa ")), "Ram T.");
        assert_eq!(masked_name(Some("Sita")), "Sita");
        assert_eq!(masked_name(Some("सीता शर्मा")), "सीता श.");
        assert_eq!(masked_name(Some("  ")), "Rider");
        assert_eq!(masked_name(None), "Rider");
    }
}
