//! Achievements: operators define them (code, names and descriptions per
//! language, icon, a counter and a threshold, a points reward, an active
//! window); riders' progress moves in the transaction of the event that
//! counts (triggers in `schema.sql`), an unlock is told by a durable job, and
//! claiming credits the reward through the points ledger exactly once.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::{
    content::lang::{Lang, PreferredLang},
    core::{
        ApiError, ApiJson, ApiPath, AuthUser, Operator,
        audit::{self, Target},
        error::ErrorBody,
        now_ts, opt_ts,
        text::check_user_text,
        text_enum::text_enum,
    },
    ledger,
    state::AppState,
};

/// Job kind: tell a rider about an unlock (enqueued by the unlock trigger).
pub const UNLOCKED_JOB: &str = "social.achievement_unlocked";
const DAY_SECS: i64 = 86_400;

text_enum! {
    /// What an achievement counts.
    pub enum Counter {
        RentalsCompleted = "rentals_completed",
        OnTimeReturns = "on_time_returns",
        PointsEarned = "points_earned",
        Referrals = "referrals",
        DistinctStations = "distinct_stations",
        Topups = "topups",
        /// Consecutive Kathmandu weeks with a completed rental (the best run).
        WeekStreak = "week_streak",
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AchievementText {
    pub lang: Lang,
    /// 1 to 80 characters.
    pub name: String,
    /// Up to 500 characters.
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AchievementIn {
    /// 2 to 40 lower-case letters, digits, `-` or `_`; fixed once created.
    pub code: String,
    pub counter: Counter,
    /// The counter value that unlocks it, 1 to 1,000,000.
    pub threshold: i64,
    /// Points credited on claim, 0 to 100,000.
    pub reward_points: i64,
    /// An image uploaded with `POST /api/upload`.
    pub icon_upload_id: Option<i64>,
    /// RFC 3339; events before it do not count. Without it, what riders did
    /// before the achievement existed counts too.
    pub starts_at: Option<String>,
    /// RFC 3339; events from then on do not count.
    pub ends_at: Option<String>,
    /// Default true.
    pub is_active: Option<bool>,
    /// English required.
    pub texts: Vec<AchievementText>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAchievementOut {
    pub code: String,
    pub counter: Counter,
    pub threshold: i64,
    pub reward_points: i64,
    pub icon_url: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub is_active: bool,
    pub texts: Vec<AchievementText>,
    pub unlocked_count: i64,
    pub claimed_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AchievementOut {
    pub code: String,
    /// In the caller's language, or English.
    pub name: String,
    pub description: String,
    pub lang: Lang,
    pub icon_url: Option<String>,
    pub counter: Counter,
    pub threshold: i64,
    /// The caller's count towards the threshold (capped at it).
    pub progress: i64,
    pub reward_points: i64,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub unlocked_at: Option<String>,
    pub claimed_at: Option<String>,
    /// Unlocked and not claimed yet.
    pub claimable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimOut {
    pub code: String,
    pub points_credited: i64,
    pub points_balance: i64,
    pub claimed_at: String,
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn parse_time(field: &str, raw: &Option<String>) -> Result<Option<i64>, ApiError> {
    raw.as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.timestamp())
                .map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 time"))
        })
        .transpose()
}

struct Checked {
    starts_at: Option<i64>,
    ends_at: Option<i64>,
}

fn check(req: &AchievementIn) -> Result<Checked, ApiError> {
    let code_ok = (2..=40).contains(&req.code.len())
        && req.code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !code_ok {
        return Err(ApiError::invalid_field("code", "2 to 40 lower-case letters, digits, - or _"));
    }
    if !(1..=1_000_000).contains(&req.threshold) {
        return Err(ApiError::invalid_field("threshold", "must be 1 to 1000000"));
    }
    if !(0..=100_000).contains(&req.reward_points) {
        return Err(ApiError::invalid_field("reward_points", "must be 0 to 100000"));
    }
    if !req.texts.iter().any(|t| t.lang == Lang::En) {
        return Err(ApiError::invalid_field("texts", "an English (en) text is required"));
    }
    for (i, t) in req.texts.iter().enumerate() {
        if req.texts[..i].iter().any(|u| u.lang == t.lang) {
            return Err(ApiError::invalid_field("texts", format!("{} given twice", t.lang)));
        }
        if !(1..=80).contains(&t.name.trim().chars().count()) {
            return Err(ApiError::invalid_field("name", "must be 1 to 80 characters"));
        }
        if t.description.chars().count() > 500 {
            return Err(ApiError::invalid_field("description", "at most 500 characters"));
        }
        check_user_text("name", &t.name, false)?;
        check_user_text("description", &t.description, true)?;
    }
    let starts_at = parse_time("starts_at", &req.starts_at)?;
    let ends_at = parse_time("ends_at", &req.ends_at)?;
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && e <= s
    {
        return Err(unprocessable("invalid_window", "ends_at must be after starts_at"));
    }
    Ok(Checked { starts_at, ends_at })
}

fn check_icon(tx: &Transaction<'_>, icon: Option<i64>) -> Result<(), ApiError> {
    let Some(icon) = icon else { return Ok(()) };
    let image: Option<bool> = tx
        .query_row("SELECT content_type LIKE 'image/%' FROM media_uploads WHERE id = ?1", [icon], |r| r.get(0))
        .optional()?;
    if image != Some(true) {
        return Err(ApiError::invalid_field("icon_upload_id", "not an uploaded image"));
    }
    Ok(())
}

fn write_texts(tx: &Transaction<'_>, id: i64, texts: &[AchievementText]) -> Result<(), ApiError> {
    tx.execute("DELETE FROM achievement_texts WHERE achievement_id = ?1", [id])?;
    for t in texts {
        tx.execute(
            "INSERT INTO achievement_texts (achievement_id, lang, name, description) VALUES (?1, ?2, ?3, ?4)",
            params![id, t.lang, t.name.trim(), t.description.trim()],
        )?;
    }
    Ok(())
}

/// Unlocks every progress of `id` that reached its threshold (the unlock
/// trigger enqueues each rider's notification).
fn unlock_reached(tx: &Transaction<'_>, id: i64, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE achievement_progress SET unlocked_at = ?2
         WHERE achievement_id = ?1 AND unlocked_at IS NULL
           AND progress >= (SELECT threshold FROM achievements WHERE id = ?1)",
        params![id, now],
    )?;
    Ok(())
}

/// A new achievement without a start counts what riders already did.
fn backfill(tx: &Transaction<'_>, id: i64, counter: Counter) -> Result<(), ApiError> {
    let insert = "INSERT INTO achievement_progress (user_id, achievement_id, progress)";
    let conflict = "ON CONFLICT (user_id, achievement_id) DO NOTHING";
    match counter {
        Counter::Topups => tx.execute(
            &format!(
                "{insert} SELECT user_id, ?1, count(*) FROM wallet_transactions
                 WHERE kind = 'topup' AND direction = 'credit' GROUP BY user_id {conflict}"
            ),
            [id],
        )?,
        Counter::WeekStreak => tx.execute(
            &format!("{insert} SELECT user_id, ?1, current FROM social_streaks WHERE true {conflict}"),
            [id],
        )?,
        _ => tx.execute(
            &format!(
                "{insert} SELECT user_id, ?1, value FROM leaderboard_rollups
                 WHERE category = ?2 AND period = 'all' AND value > 0 {conflict}"
            ),
            params![id, counter],
        )?,
    };
    Ok(())
}

const ADMIN_COLUMNS: &str = "SELECT a.id, a.code, a.counter, a.threshold, a.reward_points, u.url, a.starts_at,
        a.ends_at, a.is_active,
        (SELECT json_group_array(json_object('lang', lang, 'name', name, 'description', description))
         FROM achievement_texts WHERE achievement_id = a.id),
        (SELECT count(*) FROM achievement_progress WHERE achievement_id = a.id AND unlocked_at IS NOT NULL),
        (SELECT count(*) FROM achievement_progress WHERE achievement_id = a.id AND claimed_at IS NOT NULL)
    FROM achievements a LEFT JOIN media_uploads u ON u.id = a.icon_upload_id";

fn admin_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminAchievementOut> {
    let texts: String = r.get(9)?;
    Ok(AdminAchievementOut {
        code: r.get(1)?,
        counter: r.get(2)?,
        threshold: r.get(3)?,
        reward_points: r.get(4)?,
        icon_url: r.get(5)?,
        starts_at: opt_ts(r.get(6)?),
        ends_at: opt_ts(r.get(7)?),
        is_active: r.get(8)?,
        texts: serde_json::from_str(&texts).unwrap_or_default(),
        unlocked_count: r.get(10)?,
        claimed_count: r.get(11)?,
    })
}

fn load_admin(c: &Connection, code: &str) -> Result<AdminAchievementOut, ApiError> {
    c.query_row(&format!("{ADMIN_COLUMNS} WHERE a.code = ?1"), [code], admin_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("achievement"))
}

/// Defines an achievement.
#[utoipa::path(
    post, path = "/api/admin/social/achievements", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = AchievementIn,
    responses(
        (status = 201, description = "Created", body = AdminAchievementOut),
        (status = 400, description = "Bad code, threshold, reward, texts, times or icon", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 409, description = "Code taken (`code_taken`)", body = ErrorBody),
        (status = 422, description = "Ends before it starts (`invalid_window`)", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(req): ApiJson<AchievementIn>,
) -> Result<(StatusCode, Json<AdminAchievementOut>), ApiError> {
    let checked = check(&req)?;
    let out = state
        .db
        .write(move |tx| {
            check_icon(tx, req.icon_upload_id)?;
            let now = now_ts();
            let inserted = tx.execute(
                "INSERT INTO achievements (code, counter, threshold, reward_points, icon_upload_id, starts_at, ends_at,
                                           is_active, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    req.code,
                    req.counter,
                    req.threshold,
                    req.reward_points,
                    req.icon_upload_id,
                    checked.starts_at,
                    checked.ends_at,
                    req.is_active.unwrap_or(true),
                    now
                ],
            );
            match inserted {
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(ApiError::conflict("code_taken", "an achievement has this code"));
                }
                other => other?,
            };
            let id = tx.last_insert_rowid();
            write_texts(tx, id, &req.texts)?;
            if checked.starts_at.is_none() && req.is_active.unwrap_or(true) {
                backfill(tx, id, req.counter)?;
                unlock_reached(tx, id, now)?;
            }
            let audited = load_admin(tx, &req.code)?;
            audit::record(
                tx,
                &operator,
                "social.achievement.create",
                Target::new("achievement", &req.code),
                &serde_json::Value::Null,
                &audited,
                None,
            )?;
            Ok(audited)
        })
        .await?;
    state.jobs.wake();
    Ok((StatusCode::CREATED, Json(out)))
}

/// Changes an achievement (its code and counter stay; progress is kept).
#[utoipa::path(
    put, path = "/api/admin/social/achievements/{code}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("code" = String, Path)),
    request_body = AchievementIn,
    responses(
        (status = 200, description = "Changed", body = AdminAchievementOut),
        (status = 400, description = "Bad fields, or a different code or counter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such achievement", body = ErrorBody),
        (status = 422, description = "Ends before it starts (`invalid_window`)", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(code): ApiPath<String>,
    ApiJson(req): ApiJson<AchievementIn>,
) -> Result<Json<AdminAchievementOut>, ApiError> {
    let checked = check(&req)?;
    if req.code != code {
        return Err(ApiError::invalid_field("code", "cannot change"));
    }
    let out = state
        .db
        .write(move |tx| {
            let found: Option<(i64, Counter)> = tx
                .query_row("SELECT id, counter FROM achievements WHERE code = ?1", [&code], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((id, counter)) = found else { return Err(ApiError::not_found("achievement")) };
            if counter != req.counter {
                return Err(ApiError::invalid_field("counter", "cannot change; define a new achievement"));
            }
            check_icon(tx, req.icon_upload_id)?;
            let now = now_ts();
            tx.execute(
                "UPDATE achievements SET threshold = ?2, reward_points = ?3, icon_upload_id = ?4, starts_at = ?5,
                     ends_at = ?6, is_active = ?7, updated_at = ?8 WHERE id = ?1",
                params![
                    id,
                    req.threshold,
                    req.reward_points,
                    req.icon_upload_id,
                    checked.starts_at,
                    checked.ends_at,
                    req.is_active.unwrap_or(true),
                    now
                ],
            )?;
            write_texts(tx, id, &req.texts)?;
            if req.is_active.unwrap_or(true) {
                unlock_reached(tx, id, now)?;
            }
            let audited = load_admin(tx, &code)?;
            audit::record(
                tx,
                &operator,
                "social.achievement.update",
                Target::new("achievement", &code),
                &serde_json::Value::Null,
                &audited,
                None,
            )?;
            Ok(audited)
        })
        .await?;
    state.jobs.wake();
    Ok(Json(out))
}

/// Every achievement with how many riders unlocked and claimed it.
#[utoipa::path(
    get, path = "/api/admin/social/achievements", tag = "admin", operation_id = "admin_list_achievements",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    responses(
        (status = 200, description = "Achievements", body = Vec<AdminAchievementOut>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    )
)]
pub async fn admin_list(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Vec<AdminAchievementOut>>, ApiError> {
    let list = state
        .db
        .read(|c| {
            let mut stmt = c.prepare_cached(&format!("{ADMIN_COLUMNS} ORDER BY a.id"))?;
            let rows = stmt.query_map([], admin_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(list))
}

/// The caller's achievements: every active one (and any they unlocked) with
/// their progress, in their language.
#[utoipa::path(
    get, path = "/api/social/achievements", tag = "social",
    security(("bearer" = [])),
    params(("lang" = Option<String>, Query, description = "`en` or `ne`; otherwise Accept-Language, then `en`")),
    responses(
        (status = 200, description = "Achievements with progress", body = Vec<AchievementOut>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn mine(
    State(state): State<AppState>,
    user: AuthUser,
    lang: PreferredLang,
) -> Result<Json<Vec<AchievementOut>>, ApiError> {
    let list = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT a.code, t.name, t.description, t.lang, u.url, a.counter, a.threshold,
                        COALESCE(p.progress, 0), a.reward_points, a.starts_at, a.ends_at, p.unlocked_at, p.claimed_at
                 FROM achievements a
                 JOIN achievement_texts t ON t.achievement_id = a.id
                   AND t.lang = (SELECT lang FROM achievement_texts WHERE achievement_id = a.id AND lang IN (?2, 'en')
                                 ORDER BY lang = ?2 DESC LIMIT 1)
                 LEFT JOIN achievement_progress p ON p.achievement_id = a.id AND p.user_id = ?1
                 LEFT JOIN media_uploads u ON u.id = a.icon_upload_id
                 WHERE a.is_active = 1 OR p.unlocked_at IS NOT NULL
                 ORDER BY p.unlocked_at IS NULL, a.counter, a.threshold, a.id",
            )?;
            let rows = stmt.query_map(params![user.id, lang.0], |r| {
                let threshold: i64 = r.get(6)?;
                let progress: i64 = r.get(7)?;
                let unlocked_at: Option<i64> = r.get(11)?;
                let claimed_at: Option<i64> = r.get(12)?;
                Ok(AchievementOut {
                    code: r.get(0)?,
                    name: r.get(1)?,
                    description: r.get(2)?,
                    lang: r.get(3)?,
                    icon_url: r.get(4)?,
                    counter: r.get(5)?,
                    threshold,
                    progress: progress.min(threshold),
                    reward_points: r.get(8)?,
                    starts_at: opt_ts(r.get(9)?),
                    ends_at: opt_ts(r.get(10)?),
                    unlocked_at: opt_ts(unlocked_at),
                    claimed_at: opt_ts(claimed_at),
                    claimable: unlocked_at.is_some() && claimed_at.is_none(),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(list))
}

/// Claims an unlocked achievement's reward: credited once, however many
/// claims arrive at the same time.
#[utoipa::path(
    post, path = "/api/social/achievements/{code}/claim", tag = "social",
    security(("bearer" = [])),
    params(("code" = String, Path)),
    responses(
        (status = 200, description = "Reward credited", body = ClaimOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such achievement", body = ErrorBody),
        (status = 409, description = "Not unlocked yet (`not_unlocked`) or already claimed (`already_claimed`)", body = ErrorBody),
    )
)]
pub async fn claim(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<ClaimOut>, ApiError> {
    let expiry_days = crate::points::expiry_days(&state).await?;
    let out = state
        .db
        .write(move |tx| {
            let found: Option<(i64, i64)> = tx
                .query_row("SELECT id, reward_points FROM achievements WHERE code = ?1", [&code], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((id, reward)) = found else { return Err(ApiError::not_found("achievement")) };
            let now = now_ts();
            // The guard makes check-and-mark one statement: writers are
            // serialised, so of concurrent claims exactly one changes the row.
            let claimed = tx.execute(
                "UPDATE achievement_progress SET claimed_at = ?3
                 WHERE user_id = ?1 AND achievement_id = ?2 AND unlocked_at IS NOT NULL AND claimed_at IS NULL",
                params![user.id, id, now],
            )?;
            if claimed == 0 {
                let unlocked: Option<Option<i64>> = tx
                    .query_row(
                        "SELECT unlocked_at FROM achievement_progress WHERE user_id = ?1 AND achievement_id = ?2",
                        [user.id, id],
                        |r| r.get(0),
                    )
                    .optional()?;
                return Err(match unlocked.flatten() {
                    Some(_) => ApiError::conflict("already_claimed", "this reward was already claimed"),
                    None => ApiError::conflict("not_unlocked", "this achievement is not unlocked yet"),
                });
            }
            let balance = if reward > 0 {
                let expires_at = now.saturating_add(i64::from(expiry_days).saturating_mul(DAY_SECS));
                ledger::points_earn(tx, user.id, reward, &format!("achievement:{code}"), Some(expires_at), None)?
            } else {
                ledger::points_balance(tx, user.id)?
            };
            Ok(ClaimOut {
                code: code.clone(),
                points_credited: reward,
                points_balance: balance,
                claimed_at: crate::core::ts_to_rfc3339(now),
            })
        })
        .await?;
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
struct Unlocked {
    user_id: i64,
    achievement_id: i64,
}

/// The job handler for [`UNLOCKED_JOB`]: notifies the rider once.
pub async fn notify_unlocked(state: AppState, payload: Value) -> Result<(), String> {
    let job: Unlocked = serde_json::from_value(payload).map_err(|e| format!("bad payload: {e}"))?;
    state
        .db
        .write(move |tx| {
            let pending: Option<(String, String, i64)> = tx
                .query_row(
                    "SELECT a.code, t.name, a.reward_points
                     FROM achievement_progress p JOIN achievements a ON a.id = p.achievement_id
                     JOIN achievement_texts t ON t.achievement_id = a.id AND t.lang = 'en'
                     WHERE p.user_id = ?1 AND p.achievement_id = ?2 AND p.unlocked_at IS NOT NULL
                       AND p.notified_at IS NULL",
                    [job.user_id, job.achievement_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((code, name, reward)) = pending else { return Ok(()) };
            crate::notifications::notify(
                tx,
                job.user_id,
                "achievement_unlocked",
                json!({"code": code, "name": name, "reward_points": reward}),
            )?;
            tx.execute(
                "UPDATE achievement_progress SET notified_at = ?3 WHERE user_id = ?1 AND achievement_id = ?2",
                params![job.user_id, job.achievement_id, now_ts()],
            )?;
            Ok(())
        })
        .await
        .map_err(|e| e.message)?;
    state.jobs.wake();
    Ok(())
}
