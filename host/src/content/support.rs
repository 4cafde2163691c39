//! Contact: a rider's support message opens a thread, optionally about one
//! of their rentals or a station, with their own uploads attached. They read
//! the thread and add to it; operators list threads, reply (the rider is
//! notified) and close them.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, AuthUser, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        now_ts, opt_ts, rate_limit,
        text::check_user_text,
        text_enum::text_enum,
        ts_to_rfc3339,
    },
    state::AppState,
};

const MAX_ATTACHMENTS: usize = 5;
const THREADS_PER_HOUR: u32 = 10;
const MESSAGE_CHARS: std::ops::RangeInclusive<usize> = 2..=5000;

text_enum! {
    /// Where a support thread stands (`support_threads.status`).
    pub enum ThreadStatus {
        /// Waiting for an operator.
        Open = "open",
        /// An operator replied last.
        Answered = "answered",
        Closed = "closed",
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewThread {
    /// 3 to 150 characters.
    pub subject: String,
    /// 2 to 5000 characters.
    pub message: String,
    /// One of the caller's rentals (its id).
    pub rental_id: Option<i64>,
    /// A station's serial number.
    pub station_sn: Option<String>,
    /// Up to 5 of the caller's uploads (`POST /api/upload`).
    #[serde(default)]
    pub upload_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// 2 to 5000 characters.
    pub message: String,
    /// Up to 5 of the caller's uploads (riders only).
    #[serde(default)]
    pub upload_ids: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentOut {
    pub upload_id: i64,
    pub url: String,
    pub content_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SupportMessageOut {
    pub id: i64,
    pub from_operator: bool,
    pub body: String,
    pub attachments: Vec<AttachmentOut>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadSummary {
    pub id: i64,
    pub user_id: i64,
    pub subject: String,
    pub status: ThreadStatus,
    pub rental_id: Option<i64>,
    pub station_sn: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadOut {
    #[serde(flatten)]
    pub thread: ThreadSummary,
    /// Oldest first.
    pub messages: Vec<SupportMessageOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminThreadQuery {
    /// Only threads in this status.
    pub status: Option<ThreadStatus>,
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

const SUMMARY_COLUMNS: &str = "SELECT t.id, t.user_id, t.subject, t.status, t.rental_id, s.serial_number,
        t.created_at, t.updated_at, t.closed_at
    FROM support_threads t LEFT JOIN stations s ON s.id = t.station_id";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ThreadSummary> {
    Ok(ThreadSummary {
        id: r.get(0)?,
        user_id: r.get(1)?,
        subject: r.get(2)?,
        status: r.get(3)?,
        rental_id: r.get(4)?,
        station_sn: r.get(5)?,
        created_at: ts_to_rfc3339(r.get(6)?),
        updated_at: ts_to_rfc3339(r.get(7)?),
        closed_at: opt_ts(r.get(8)?),
    })
}

/// The thread `id`; a rider's (`owner`) only when given.
fn load_thread(c: &Connection, id: i64, owner: Option<i64>) -> Result<ThreadOut, ApiError> {
    let thread = c
        .query_row(
            &format!("{SUMMARY_COLUMNS} WHERE t.id = ?1 AND (?2 IS NULL OR t.user_id = ?2)"),
            params![id, owner],
            summary_from_row,
        )
        .optional()?
        .ok_or_else(|| ApiError::not_found("support thread"))?;
    let mut stmt = c.prepare_cached(
        "SELECT m.id, m.from_operator, m.body, m.created_at,
                (SELECT json_group_array(json_array(u.id, u.url, u.content_type))
                 FROM support_message_uploads a JOIN media_uploads u ON u.id = a.upload_id WHERE a.message_id = m.id)
         FROM support_messages m WHERE m.thread_id = ?1 ORDER BY m.id",
    )?;
    let messages = stmt
        .query_map([id], |r| {
            let attachments: String = r.get(4)?;
            let attachments: Vec<(i64, String, String)> = serde_json::from_str(&attachments).unwrap_or_default();
            Ok(SupportMessageOut {
                id: r.get(0)?,
                from_operator: r.get(1)?,
                body: r.get(2)?,
                created_at: ts_to_rfc3339(r.get(3)?),
                attachments: attachments
                    .into_iter()
                    .map(|(upload_id, url, content_type)| AttachmentOut { upload_id, url, content_type })
                    .collect(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ThreadOut { thread, messages })
}

fn checked_message(message: &str, uploads: &[i64]) -> Result<String, ApiError> {
    let message = message.trim();
    if !MESSAGE_CHARS.contains(&message.chars().count()) {
        return Err(ApiError::invalid_field("message", "must be 2 to 5000 characters"));
    }
    check_user_text("message", message, true)?;
    if uploads.len() > MAX_ATTACHMENTS {
        return Err(ApiError::invalid_field("upload_ids", format!("at most {MAX_ATTACHMENTS}")));
    }
    Ok(message.to_string())
}

/// Adds a message with its attachments; attachments must be the author's own
/// uploads (someone else's is refused exactly like a missing one).
fn add_message(
    tx: &Transaction<'_>,
    thread: i64,
    author: i64,
    from_operator: bool,
    body: &str,
    uploads: &[i64],
    now: i64,
) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO support_messages (thread_id, author_id, from_operator, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![thread, author, from_operator, body, now],
    )?;
    let message = tx.last_insert_rowid();
    for upload in uploads {
        let owner: Option<Option<i64>> =
            tx.query_row("SELECT user_id FROM media_uploads WHERE id = ?1", [upload], |r| r.get(0)).optional()?;
        if owner.flatten() != Some(author) {
            return Err(ApiError::invalid_field("upload_ids", format!("{upload} is not one of your uploads")));
        }
        tx.execute(
            "INSERT OR IGNORE INTO support_message_uploads (message_id, upload_id) VALUES (?1, ?2)",
            params![message, upload],
        )?;
    }
    tx.execute("UPDATE support_threads SET updated_at = ?2 WHERE id = ?1", params![thread, now])?;
    Ok(())
}

/// Sends a message to support; it opens a thread the caller can follow.
#[utoipa::path(
    post, path = "/api/content/contact", tag = "content",
    security(("bearer" = [])),
    request_body = NewThread,
    responses(
        (status = 201, description = "Thread opened", body = ThreadOut),
        (status = 400, description = "Bad subject or message, not the caller's rental or upload, unknown station", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 429, description = "Too many messages this hour", body = ErrorBody),
    )
)]
pub async fn open_thread(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<NewThread>,
) -> Result<(StatusCode, Json<ThreadOut>), ApiError> {
    let subject = req.subject.trim().to_string();
    if !(3..=150).contains(&subject.chars().count()) {
        return Err(ApiError::invalid_field("subject", "must be 3 to 150 characters"));
    }
    check_user_text("subject", &subject, false)?;
    let message = checked_message(&req.message, &req.upload_ids)?;
    let out = state
        .db
        .write(move |tx| {
            let now = now_ts();
            rate_limit::hit(tx, &format!("support_thread:user:{}", user.id), THREADS_PER_HOUR, 3600, now)?;
            if let Some(rental) = req.rental_id {
                let own: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM rentals WHERE id = ?1 AND user_id = ?2)",
                    [rental, user.id],
                    |r| r.get(0),
                )?;
                if !own {
                    return Err(ApiError::invalid_field("rental_id", "not one of your rentals"));
                }
            }
            let station: Option<i64> = match &req.station_sn {
                None => None,
                Some(sn) => Some(
                    tx.query_row("SELECT id FROM stations WHERE serial_number = ?1", [sn.trim()], |r| r.get(0))
                        .optional()?
                        .ok_or_else(|| ApiError::invalid_field("station_sn", "no such station"))?,
                ),
            };
            tx.execute(
                "INSERT INTO support_threads (user_id, subject, status, rental_id, station_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![user.id, subject, ThreadStatus::Open, req.rental_id, station, now],
            )?;
            let id = tx.last_insert_rowid();
            add_message(tx, id, user.id, false, &message, &req.upload_ids, now)?;
            load_thread(tx, id, Some(user.id))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// The caller's support threads, newest first.
#[utoipa::path(
    get, path = "/api/content/contact", tag = "content",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "Threads", body = Page<ThreadSummary>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn my_threads(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<ThreadSummary>>, ApiError> {
    let (limit, before) = (page.limit()?, page.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{SUMMARY_COLUMNS} WHERE t.user_id = ?1 AND t.id < ?2 ORDER BY t.id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![user.id, before, limit + 1], summary_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |t| t.id)))
}

/// One of the caller's threads with its messages.
#[utoipa::path(
    get, path = "/api/content/contact/{id}", tag = "content",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The thread", body = ThreadOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such thread of the caller's", body = ErrorBody),
    )
)]
pub async fn my_thread(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ThreadOut>, ApiError> {
    Ok(Json(state.db.read(move |c| load_thread(c, id, Some(user.id))).await?))
}

fn status_of(tx: &Transaction<'_>, id: i64, owner: Option<i64>) -> Result<ThreadStatus, ApiError> {
    tx.query_row(
        "SELECT status FROM support_threads WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)",
        params![id, owner],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found("support thread"))
}

fn closed() -> ApiError {
    ApiError::conflict("thread_closed", "this thread is closed; send a new message instead")
}

/// Adds the caller's message to one of their open threads.
#[utoipa::path(
    post, path = "/api/content/contact/{id}/messages", tag = "content",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = NewMessage,
    responses(
        (status = 201, description = "Added; the thread waits for an operator again", body = ThreadOut),
        (status = 400, description = "Bad message or not the caller's upload", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such thread of the caller's", body = ErrorBody),
        (status = 409, description = "Thread closed (`thread_closed`)", body = ErrorBody),
    )
)]
pub async fn rider_message(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<NewMessage>,
) -> Result<(StatusCode, Json<ThreadOut>), ApiError> {
    let message = checked_message(&req.message, &req.upload_ids)?;
    let out = state
        .db
        .write(move |tx| {
            if status_of(tx, id, Some(user.id))? == ThreadStatus::Closed {
                return Err(closed());
            }
            let now = now_ts();
            add_message(tx, id, user.id, false, &message, &req.upload_ids, now)?;
            tx.execute("UPDATE support_threads SET status = ?2 WHERE id = ?1", params![id, ThreadStatus::Open])?;
            load_thread(tx, id, Some(user.id))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Support threads, newest first, optionally by status.
#[utoipa::path(
    get, path = "/api/admin/support/threads", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(AdminThreadQuery),
    responses(
        (status = 200, description = "Threads", body = Page<ThreadSummary>),
        (status = 400, description = "Bad status, cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    )
)]
pub async fn admin_threads(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(q): ApiQuery<AdminThreadQuery>,
) -> Result<Json<Page<ThreadSummary>>, ApiError> {
    let page = PageParams { cursor: q.cursor, limit: q.limit };
    let (limit, before) = (page.limit()?, page.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{SUMMARY_COLUMNS} WHERE (?1 IS NULL OR t.status = ?1) AND t.id < ?2 ORDER BY t.id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![q.status, before, limit + 1], summary_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |t| t.id)))
}

/// A support thread with its messages.
#[utoipa::path(
    get, path = "/api/admin/support/threads/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The thread", body = ThreadOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such thread", body = ErrorBody),
    )
)]
pub async fn admin_thread(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ThreadOut>, ApiError> {
    Ok(Json(state.db.read(move |c| load_thread(c, id, None)).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyIn {
    /// 2 to 5000 characters.
    pub message: String,
}

/// Replies to a thread; the rider is notified and sees the reply in the thread.
#[utoipa::path(
    post, path = "/api/admin/support/threads/{id}/reply", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path)),
    request_body = ReplyIn,
    responses(
        (status = 201, description = "Replied", body = ThreadOut),
        (status = 400, description = "Bad message", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such thread", body = ErrorBody),
        (status = 409, description = "Thread closed (`thread_closed`)", body = ErrorBody),
    )
)]
pub async fn reply(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReplyIn>,
) -> Result<(StatusCode, Json<ThreadOut>), ApiError> {
    let message = checked_message(&req.message, &[])?;
    let out = state
        .db
        .write(move |tx| {
            if status_of(tx, id, None)? == ThreadStatus::Closed {
                return Err(closed());
            }
            let now = now_ts();
            add_message(tx, id, operator.id, true, &message, &[], now)?;
            let (rider, subject): (i64, String) = tx.query_row(
                "UPDATE support_threads SET status = ?2 WHERE id = ?1 RETURNING user_id, subject",
                params![id, ThreadStatus::Answered],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let preview: String = message.chars().take(140).collect();
            crate::notifications::notify(
                tx,
                rider,
                "support_reply",
                serde_json::json!({"thread_id": id, "subject": subject, "preview": preview}),
            )?;
            let audited = load_thread(tx, id, None)?;
            audit::record(
                tx,
                &operator,
                "support.thread.reply",
                Target::new("support_thread", id),
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

/// Closes a thread: no more messages from either side.
#[utoipa::path(
    post, path = "/api/admin/support/threads/{id}/close", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "Closed", body = ThreadOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such thread", body = ErrorBody),
        (status = 409, description = "Already closed (`thread_closed`)", body = ErrorBody),
    )
)]
pub async fn close(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ThreadOut>, ApiError> {
    let out = state
        .db
        .write(move |tx| {
            if status_of(tx, id, None)? == ThreadStatus::Closed {
                return Err(closed());
            }
            let now = now_ts();
            tx.execute(
                "UPDATE support_threads SET status = ?2, closed_by = ?3, closed_at = ?4, updated_at = ?4 WHERE id = ?1",
                params![id, ThreadStatus::Closed, operator.id, now],
            )?;
            let audited = load_thread(tx, id, None)?;
            audit::record(
                tx,
                &operator,
                "support.thread.close",
                Target::new("support_thread", id),
                &serde_json::Value::Null,
                &audited,
                None,
            )?;
            Ok(audited)
        })
        .await?;
    Ok(Json(out))
}
