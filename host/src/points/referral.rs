//! Referral codes: the caller's own code, checking a code, and claiming one
//! after registration. A code given at registration is settled there (see
//! [`super::settle_signup`]); both paths end in [`record`].

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::StatusCode,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use powerbank_plugin_runtime::types::{PointsEvent, ReferralEvent};

use super::{NEW_USER, PlannedAward, expiry_days, plan_awards, write_awards};
use crate::{
    core::{ApiError, ApiJson, ApiQuery, AuthUser, error::ErrorBody, now_ts, rate_limit},
    ledger,
    state::AppState,
};

/// A user who registered without a code may claim one for this long.
pub const CLAIM_WINDOW_SECS: i64 = 7 * 24 * 60 * 60;
/// `GET /api/referral/validate` is public: checks per IP per 10 minutes.
const VALIDATE_PER_IP: u32 = 60;

/// Where a referral came from (stored as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Signup,
    Claim,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Signup => "signup",
            Source::Claim => "claim",
        }
    }
}

/// A referral ready to record: the referrer behind `code` and both sides'
/// awards as the plugin decided them.
#[derive(Debug, Clone)]
pub struct ReferralPlan {
    pub code: String,
    pub referrer: i64,
    pub awards: Vec<PlannedAward>,
}

/// Trims and upper-cases a code; refuses anything that cannot be a code.
pub fn normalize_code(raw: &str) -> Result<String, ApiError> {
    let code = raw.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 32 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_field("code", "a referral code is letters and digits only"));
    }
    Ok(code)
}

fn code_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "referral_code_not_found", "no such referral code")
}

/// The active account whose code is `code`. Deleted accounts lose their code
/// and suspended ones cannot refer, so both read as an unknown code.
pub fn find_referrer(c: &Connection, code: &str) -> Result<i64, ApiError> {
    c.query_row("SELECT id FROM users WHERE referral_code = ?1 AND status = 'active'", [code], |r| r.get(0))
        .optional()?
        .ok_or_else(code_not_found)
}

/// Every rule a claim must pass; returns the referrer. Run before planning
/// (to fail fast) and again inside the write transaction (to be sure).
fn check_claim(c: &Connection, user_id: i64, code: &str, now: i64) -> Result<i64, ApiError> {
    let referrer = find_referrer(c, code)?;
    if referrer == user_id {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "self_referral", "you cannot use your own referral code"));
    }
    let (created_at, referred): (i64, bool) = c.query_row(
        "SELECT created_at, EXISTS (SELECT 1 FROM referrals WHERE referee_id = ?1) FROM users WHERE id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if referred {
        return Err(already_referred());
    }
    if now > created_at + CLAIM_WINDOW_SECS {
        return Err(ApiError::conflict(
            "claim_window_closed",
            "a referral code can only be claimed within 7 days of signing up",
        ));
    }
    // A referrer must have joined before the referee; this also keeps two new
    // users from claiming each other's codes.
    if referrer > user_id {
        return Err(ApiError::conflict("referral_not_allowed", "this code belongs to an account newer than yours"));
    }
    Ok(referrer)
}

fn already_referred() -> ApiError {
    ApiError::conflict("already_referred", "a referral has already been recorded for this account")
}

/// Records `plan` for `referee` and grants both sides' points, in the
/// caller's transaction; the referrer is notified, the referee (whose own
/// request this is) is not. The referrer is checked again here, so a
/// referrer deleted since planning is refused.
pub fn record(
    tx: &Transaction<'_>,
    plan: &ReferralPlan,
    referee: i64,
    source: Source,
    expiry_days: u32,
    now: i64,
) -> Result<(), ApiError> {
    if find_referrer(tx, &plan.code)? != plan.referrer {
        return Err(code_not_found());
    }
    let points_to = |user: i64| plan.awards.iter().filter(|a| a.user_id == user).map(|a| a.points).sum::<i64>();
    let inserted = tx.execute(
        "INSERT INTO referrals (referrer_id, referee_id, code, source, referrer_points, referee_points, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![plan.referrer, referee, plan.code, source.as_str(), points_to(plan.referrer), points_to(referee), now],
    );
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            return Err(already_referred());
        }
        other => other?,
    };
    write_awards(tx, &plan.awards, expiry_days, now, Some(referee))
}

/// What a new user gets for `referrer`'s code, or `None` when the points
/// plugin cannot say right now (display only, so never an error).
async fn referee_bonus(state: &AppState, referrer: i64) -> Option<i64> {
    let event =
        PointsEvent::Referral(ReferralEvent { referrer_id: referrer.to_string(), referee_id: NEW_USER.to_string() });
    match plan_awards(state, event).await {
        Ok(awards) => Some(awards.iter().filter(|a| a.user_id == NEW_USER).map(|a| a.points).sum()),
        Err(e) => {
            tracing::warn!(error = %e, "referral bonus unavailable");
            None
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MyCodeOut {
    pub code: String,
    /// Ready to paste into a message.
    pub share_text: String,
    /// Points a new user gets with this code; null when it cannot be worked
    /// out right now.
    pub referee_bonus_points: Option<i64>,
    /// How many users joined with this code.
    pub referred_count: i64,
    /// Points this user earned from referrals.
    pub points_earned: i64,
}

/// The caller's referral code, with how well it has done.
#[utoipa::path(
    get, path = "/api/referral/my-code", tag = "points",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's code and referral stats", body = MyCodeOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn my_code(State(state): State<AppState>, user: AuthUser) -> Result<Json<MyCodeOut>, ApiError> {
    let (code, referred_count, points_earned) = state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT u.referral_code, COUNT(r.id), COALESCE(SUM(r.referrer_points), 0)
                 FROM users u LEFT JOIN referrals r ON r.referrer_id = u.id WHERE u.id = ?1 GROUP BY u.id",
                [user.id],
                |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .await?;
    let bonus = referee_bonus(&state, user.id).await;
    let share_text = match bonus {
        Some(points) if points > 0 => {
            format!("Rent a power bank with powerbank! Sign up with my code {code} and get {points} bonus points.")
        }
        _ => format!("Rent a power bank with powerbank! Sign up with my code {code}."),
    };
    Ok(Json(MyCodeOut { code, share_text, referee_bonus_points: bonus, referred_count, points_earned }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateQuery {
    /// The referral code to check (case-insensitive).
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidateOut {
    /// The code as checked (trimmed, upper case).
    pub code: String,
    /// The code belongs to an active account and may be used at registration.
    pub valid: bool,
    /// Points a new user gets with this code, when valid.
    pub referee_bonus_points: Option<i64>,
}

/// Checks a referral code before registration. Public (no account exists yet
/// at that point) and limited per IP; it says only whether the code is
/// usable, never whose it is.
#[utoipa::path(
    get, path = "/api/referral/validate", tag = "points",
    params(ValidateQuery),
    responses(
        (status = 200, description = "Whether the code is usable", body = ValidateOut),
        (status = 400, description = "No code given", body = ErrorBody),
        (status = 429, description = "Too many checks from this address", body = ErrorBody),
    )
)]
pub async fn validate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiQuery(q): ApiQuery<ValidateQuery>,
) -> Result<Json<ValidateOut>, ApiError> {
    let ip = peer.ip().to_string();
    state
        .db
        .write(move |tx| rate_limit::hit(tx, &format!("referral-validate:{ip}"), VALIDATE_PER_IP, 600, now_ts()))
        .await?;
    let Ok(code) = normalize_code(&q.code) else {
        let code = q.code.trim().to_ascii_uppercase();
        return Ok(Json(ValidateOut { code, valid: false, referee_bonus_points: None }));
    };
    let referrer = {
        let code = code.clone();
        state.db.read(move |c| Ok(find_referrer(c, &code).ok())).await?
    };
    let out = match referrer {
        Some(referrer) => {
            ValidateOut { code, valid: true, referee_bonus_points: referee_bonus(&state, referrer).await }
        }
        None => ValidateOut { code, valid: false, referee_bonus_points: None },
    };
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Another user's referral code.
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimOut {
    pub code: String,
    /// Points the caller received for this referral.
    pub points_awarded: i64,
    /// The caller's points balance afterwards.
    pub balance: i64,
}

/// Claims a referral after registration: for users who did not give a code
/// when they signed up, within 7 days of signing up, once. Both sides get
/// their points at once.
#[utoipa::path(
    post, path = "/api/referral/claim", tag = "points",
    security(("bearer" = [])),
    request_body = ClaimRequest,
    responses(
        (status = 201, description = "Referral recorded and points granted", body = ClaimOut),
        (status = 400, description = "Malformed code, or the caller's own code (`self_referral`)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No active account has this code (`referral_code_not_found`)", body = ErrorBody),
        (status = 409, description = "Already referred, claim window closed, or the code's account is newer", body = ErrorBody),
        (status = 502, description = "The points plugin failed", body = ErrorBody),
    )
)]
pub async fn claim(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<(StatusCode, Json<ClaimOut>), ApiError> {
    let code = normalize_code(&req.code)?;
    let referrer = {
        let code = code.clone();
        state.db.read(move |c| check_claim(c, user.id, &code, now_ts())).await?
    };
    let awards = plan_awards(
        &state,
        PointsEvent::Referral(ReferralEvent { referrer_id: referrer.to_string(), referee_id: user.id.to_string() }),
    )
    .await?;
    let days = expiry_days(&state).await?;
    let plan = ReferralPlan { code: code.clone(), referrer, awards };
    let out = state
        .db
        .write(move |tx| {
            let now = now_ts();
            if check_claim(tx, user.id, &plan.code, now)? != plan.referrer {
                return Err(code_not_found());
            }
            record(tx, &plan, user.id, Source::Claim, days, now)?;
            let balance = ledger::points_balance(tx, user.id)?;
            let points_awarded = plan.awards.iter().filter(|a| a.user_id == user.id).map(|a| a.points).sum();
            Ok(ClaimOut { code, points_awarded, balance })
        })
        .await?;
    state.jobs.wake();
    Ok((StatusCode::CREATED, Json(out)))
}
