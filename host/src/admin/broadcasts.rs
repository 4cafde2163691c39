//! Broadcasts: one message from the operators to an audience
//! (`crate::audiences::Audience`), now or at `send_at`, in-app and by push
//! through the notifications domain (template `broadcast`).
//!
//! Sending runs in the durable job queue, one batch of riders per job run
//! (`broadcasts.batch_size`, default 500), in rider id order: each run
//! notifies its batch, records how far it got (`last_user_id`) and the
//! counts, and enqueues the next run `broadcasts.batch_interval_seconds`
//! later, all in one transaction. So a restart resumes after the last rider
//! notified, nobody is notified twice, and the interval is the rate limit.
//! The audience is evaluated when sending starts (`targeted` is counted
//! again then), so a scheduled broadcast reaches who matches at that time.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::{
    audiences::Audience,
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, Page,
        audit::{self, Target},
        error::ErrorBody,
        jobs::{self, JobsBuilder, NewJob},
        now_ts, opt_ts,
        pagination::PageParams,
        text::check_user_text,
        text_enum::text_enum,
        ts_to_rfc3339,
    },
    notifications,
    settings::{IntKey, Kind, SettingDef, SettingsBuilder, Unit},
    state::AppState,
};

/// The job kind that sends one batch.
pub const BATCH_JOB: &str = "admin.broadcast_batch";
/// The notification template every broadcast uses (its title and body are
/// the operator's text).
const TEMPLATE: &str = "broadcast";
/// The furthest ahead a broadcast may be scheduled.
const MAX_SCHEDULE_SECS: i64 = 90 * 86_400;

/// Riders notified per job run.
pub const BATCH_SIZE: IntKey = IntKey("broadcasts.batch_size");
/// Pause between two batches: the rate limit of a broadcast.
pub const BATCH_INTERVAL_SECONDS: IntKey = IntKey("broadcasts.batch_interval_seconds");

/// Registers the broadcast settings (`server::settings`).
pub fn register_settings(settings: SettingsBuilder) -> SettingsBuilder {
    settings
        .int(
            SettingDef {
                key: BATCH_SIZE.0,
                description: "Riders a broadcast notifies per batch.",
                kind: Kind::Integer { min: 1, max: 5_000, unit: Unit::Count },
                public: false,
            },
            500,
        )
        .int(
            SettingDef {
                key: BATCH_INTERVAL_SECONDS.0,
                description: "Pause between two batches of a broadcast (its rate limit).",
                kind: Kind::Integer { min: 0, max: 600, unit: Unit::Seconds },
                public: false,
            },
            1,
        )
}

/// The job handler (`admin::jobs`).
pub fn register_jobs(builder: JobsBuilder<AppState>) -> JobsBuilder<AppState> {
    builder.handle(BATCH_JOB, send_batch)
}

text_enum! {
    /// Where a broadcast is (`broadcasts.status`).
    pub enum BroadcastStatus {
        /// Waiting for `send_at`; may be cancelled.
        Scheduled = "scheduled",
        /// Batches are going out.
        Sending = "sending",
        /// Every matching rider was notified.
        Completed = "completed",
        /// Cancelled before it started: nobody was notified.
        Cancelled = "cancelled",
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BroadcastOut {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub audience: Audience,
    pub status: BroadcastStatus,
    pub send_at: String,
    /// Riders matching the audience when sending started (when it was
    /// created, until then).
    pub targeted: i64,
    /// Riders given the in-app notification (push follows through the
    /// delivery log).
    pub sent: i64,
    /// Riders the sender could not notify.
    pub failed: i64,
    pub created_by: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

const SELECT: &str = "SELECT id, title, body, audience, status, send_at, targeted, sent, failed, last_user_id,
        created_by, created_at, started_at, finished_at FROM broadcasts";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BroadcastOut> {
    let audience: String = r.get("audience")?;
    let audience = serde_json::from_str(&audience)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(BroadcastOut {
        id: r.get("id")?,
        title: r.get("title")?,
        body: r.get("body")?,
        audience,
        status: r.get("status")?,
        send_at: ts_to_rfc3339(r.get("send_at")?),
        targeted: r.get("targeted")?,
        sent: r.get("sent")?,
        failed: r.get("failed")?,
        created_by: r.get("created_by")?,
        created_at: ts_to_rfc3339(r.get("created_at")?),
        started_at: opt_ts(r.get("started_at")?),
        finished_at: opt_ts(r.get("finished_at")?),
    })
}

fn load(c: &Connection, id: i64) -> Result<BroadcastOut, ApiError> {
    c.query_row(&format!("{SELECT} WHERE id = ?1"), [id], from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("broadcast"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastIn {
    /// 1 to 100 characters.
    pub title: String,
    /// 1 to 1000 characters.
    pub body: String,
    pub audience: Audience,
    /// RFC 3339, up to 90 days ahead; now when absent.
    pub send_at: Option<String>,
    /// Why (kept in the audit log).
    pub reason: Option<String>,
}

fn text(field: &str, raw: &str, max: usize, multiline: bool) -> Result<String, ApiError> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(ApiError::invalid_field(field, format!("1 to {max} characters")));
    }
    check_user_text(field, t, multiline)?;
    Ok(t.to_string())
}

/// Sends a notification to an audience, now or at `send_at`.
#[utoipa::path(
    post, path = "/api/admin/broadcasts", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = BroadcastIn,
    responses(
        (status = 201, description = "The broadcast, scheduled", body = BroadcastOut),
        (status = 400, description = "Invalid title, body or `send_at` (`validation_failed`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "No rider matches (`empty_audience`), or a rule that cannot be evaluated (`invalid_audience`)", body = ErrorBody),
    )
)]
pub async fn create_broadcast(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(b): ApiJson<BroadcastIn>,
) -> Result<(StatusCode, Json<BroadcastOut>), ApiError> {
    let title = text("title", &b.title, 100, false)?;
    let body = text("body", &b.body, 1000, true)?;
    let reason = audit::optional_reason(b.reason.as_deref())?;
    b.audience.validate()?;
    let now = now_ts();
    let send_at = match b.send_at.as_deref() {
        None => now,
        Some(raw) => {
            let at = chrono::DateTime::parse_from_rfc3339(raw.trim())
                .map(|t| t.timestamp())
                .map_err(|_| ApiError::invalid_field("send_at", "must be an RFC 3339 date-time"))?;
            // A minute of clock skew is allowed; further back is a mistake.
            if at < now - 60 || at > now + MAX_SCHEDULE_SECS {
                return Err(ApiError::invalid_field("send_at", "must be from now to 90 days ahead"));
            }
            at.max(now)
        }
    };
    let audience = b.audience;
    let out = state
        .db
        .write(move |tx| {
            let targeted = audience.count(tx, now)?;
            if targeted == 0 {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "empty_audience",
                    "no rider matches this audience",
                ));
            }
            let audience_json =
                serde_json::to_string(&audience).map_err(|e| ApiError::internal(format!("audience to JSON: {e}")))?;
            tx.execute(
                "INSERT INTO broadcasts (title, body, audience, status, send_at, targeted, created_by, created_at,
                                         updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![title, body, audience_json, BroadcastStatus::Scheduled, send_at, targeted, operator.id, now],
            )?;
            let id = tx.last_insert_rowid();
            jobs::enqueue(tx, next_batch(id, 0).at(send_at))?;
            let out = load(tx, id)?;
            audit::record(
                tx,
                &operator,
                "broadcast.create",
                Target::new("broadcast", id),
                &(),
                &out,
                reason.as_deref(),
            )?;
            Ok(out)
        })
        .await?;
    state.jobs.wake();
    Ok((StatusCode::CREATED, Json(out)))
}

fn next_batch(id: i64, after_user: i64) -> NewJob<'static> {
    // The key names the resume point: the running job holds the key of its
    // own batch, so the next one must differ.
    NewJob::new(BATCH_JOB, json!({ "broadcast_id": id })).dedupe(format!("broadcast:{id}:{after_user}"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BroadcastFilter {
    /// `scheduled`, `sending`, `completed` or `cancelled`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Broadcasts, newest first, with their counts.
#[utoipa::path(
    get, path = "/api/admin/broadcasts", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(BroadcastFilter),
    responses(
        (status = 200, description = "A page of broadcasts", body = Page<BroadcastOut>),
        (status = 400, description = "Bad filter, cursor or limit", body = ErrorBody),
    )
)]
pub async fn list_broadcasts(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<BroadcastFilter>,
) -> Result<Json<Page<BroadcastOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor, limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = f
        .status
        .as_deref()
        .map(str::parse::<BroadcastStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{SELECT} WHERE id < ?1 AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![before, status, limit + 1], from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |b| b.id)))
}

/// One broadcast with its counts and status.
#[utoipa::path(
    get, path = "/api/admin/broadcasts/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path, description = "Broadcast id")),
    responses(
        (status = 200, description = "The broadcast", body = BroadcastOut),
        (status = 404, description = "No such broadcast", body = ErrorBody),
    )
)]
pub async fn get_broadcast(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<BroadcastOut>, ApiError> {
    Ok(Json(state.db.read(move |c| load(c, id)).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelIn {
    /// Why (kept in the audit log).
    pub reason: Option<String>,
}

/// Cancels a broadcast that has not started sending.
#[utoipa::path(
    post, path = "/api/admin/broadcasts/{id}/cancel", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Broadcast id")),
    request_body = CancelIn,
    responses(
        (status = 200, description = "The broadcast, cancelled", body = BroadcastOut),
        (status = 400, description = "Malformed body or reason", body = ErrorBody),
        (status = 404, description = "No such broadcast", body = ErrorBody),
        (status = 409, description = "Sending or sent (`already_started`), or already cancelled (`already_cancelled`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn cancel_broadcast(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CancelIn>,
) -> Result<Json<BroadcastOut>, ApiError> {
    let reason = audit::optional_reason(body.reason.as_deref())?;
    let out = state
        .db
        .write(move |tx| {
            let before = load(tx, id)?;
            match before.status {
                BroadcastStatus::Scheduled => {}
                BroadcastStatus::Sending | BroadcastStatus::Completed => {
                    return Err(ApiError::conflict("already_started", "the broadcast has started sending")
                        .with_details(json!({ "status": before.status })));
                }
                BroadcastStatus::Cancelled => {
                    return Err(ApiError::conflict("already_cancelled", "the broadcast is already cancelled"));
                }
            }
            let now = now_ts();
            // The waiting job finds it cancelled and ends without sending.
            tx.execute(
                "UPDATE broadcasts SET status = ?2, finished_at = ?3, updated_at = ?3 WHERE id = ?1",
                params![id, BroadcastStatus::Cancelled, now],
            )?;
            let after = load(tx, id)?;
            audit::record(
                tx,
                &operator,
                "broadcast.cancel",
                Target::new("broadcast", id),
                &before,
                &after,
                reason.as_deref(),
            )?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

/// What one batch did.
enum Batch {
    /// Nothing to do: cancelled or already completed.
    Idle,
    Sent,
}

/// One job run: the next batch of riders after `last_user_id`.
async fn send_batch(state: AppState, payload: Value) -> Result<(), String> {
    let id = payload["broadcast_id"].as_i64().ok_or("payload without broadcast_id")?;
    let settings = state.settings.clone();
    let outcome = state
        .db
        .write(move |tx| {
            let size = settings.int(tx, BATCH_SIZE)?;
            let interval = settings.int(tx, BATCH_INTERVAL_SECONDS)?;
            run_batch(tx, id, size, interval)
        })
        .await
        .map_err(|e| e.to_string())?;
    if let Batch::Sent = outcome {
        // Push deliveries were enqueued with the batch.
        state.jobs.wake();
    }
    Ok(())
}

fn run_batch(tx: &Transaction<'_>, id: i64, size: i64, interval: i64) -> Result<Batch, ApiError> {
    let b = load(tx, id)?;
    let (last_user_id, started_at): (i64, Option<i64>) =
        tx.query_row("SELECT last_user_id, started_at FROM broadcasts WHERE id = ?1", [id], |r| {
            Ok((r.get("last_user_id")?, r.get("started_at")?))
        })?;
    let now = now_ts();
    // Every batch evaluates the audience at the same instant: the start.
    let started = match b.status {
        BroadcastStatus::Cancelled | BroadcastStatus::Completed => return Ok(Batch::Idle),
        BroadcastStatus::Scheduled => {
            let targeted = b.audience.count(tx, now)?;
            tx.execute(
                "UPDATE broadcasts SET status = ?2, started_at = ?3, targeted = ?4, updated_at = ?3 WHERE id = ?1",
                params![id, BroadcastStatus::Sending, now, targeted],
            )?;
            now
        }
        BroadcastStatus::Sending => started_at.unwrap_or(now),
    };
    let riders = b.audience.batch(tx, started, last_user_id, size)?;
    let vars = json!({ "title": b.title, "body": b.body, "broadcast_id": id });
    let (mut sent, mut failed) = (0_i64, 0_i64);
    for rider in &riders {
        // One rider's failure must not undo the others' notifications.
        tx.execute_batch("SAVEPOINT broadcast_rider")?;
        match notifications::notify(tx, *rider, TEMPLATE, vars.clone()) {
            Ok(()) => {
                tx.execute_batch("RELEASE broadcast_rider")?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(broadcast_id = id, user_id = *rider, error = %e, "broadcast could not notify a rider");
                tx.execute_batch("ROLLBACK TO broadcast_rider; RELEASE broadcast_rider")?;
                failed += 1;
            }
        }
    }
    let last = riders.last().copied().unwrap_or(last_user_id);
    let done = i64::try_from(riders.len()).unwrap_or(i64::MAX) < size;
    let status = if done { BroadcastStatus::Completed } else { BroadcastStatus::Sending };
    tx.execute(
        "UPDATE broadcasts SET sent = sent + ?2, failed = failed + ?3, last_user_id = ?4, status = ?5,
            finished_at = CASE WHEN ?6 THEN ?7 END, updated_at = ?7
         WHERE id = ?1",
        params![id, sent, failed, last, status, done, now],
    )?;
    if !done {
        jobs::enqueue(tx, next_batch(id, last).at(now + interval))?;
    }
    Ok(Batch::Sent)
}
