//! The user's in-app notifications: list, mark read, mark all read, delete.
//!
//! Every query is scoped to the caller, so another user's notification is
//! simply not found (404): its existence is not revealed by a 403.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::{
    core::{ApiError, ApiPath, ApiQuery, AuthUser, Page, PageParams, error::ErrorBody, now_ts, opt_ts, ts_to_rfc3339},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationOut {
    pub id: i64,
    /// The template it was made from, e.g. `rental_started`.
    pub template: String,
    pub title: String,
    pub body: String,
    /// The event's variables (rental id, amounts...) for deep links.
    #[schema(value_type = Object)]
    pub data: Value,
    pub is_read: bool,
    pub read_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// `true`: unread notifications only.
    pub unread: Option<bool>,
    /// `next_cursor` from the previous page; omit for the first page.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedRead {
    /// How many notifications changed from unread to read.
    pub updated: i64,
}

const SELECT: &str = "SELECT id, template_key, title, body, data, read_at, created_at FROM notifications";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NotificationOut> {
    let data: String = r.get(4)?;
    let read_at: Option<i64> = r.get(5)?;
    Ok(NotificationOut {
        id: r.get(0)?,
        template: r.get(1)?,
        title: r.get(2)?,
        body: r.get(3)?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
        is_read: read_at.is_some(),
        read_at: opt_ts(read_at),
        created_at: ts_to_rfc3339(r.get(6)?),
    })
}

fn load_own(c: &Connection, user_id: i64, id: i64) -> Result<NotificationOut, ApiError> {
    c.query_row(&format!("{SELECT} WHERE id = ?1 AND user_id = ?2"), params![id, user_id], from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("notification"))
}

/// The caller's notifications, newest first.
#[utoipa::path(
    get, path = "/api/user/notifications", tag = "notifications",
    security(("bearer" = [])),
    params(NotificationQuery),
    responses(
        (status = 200, description = "A page of notifications", body = Page<NotificationOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_notifications(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> Result<Json<Page<NotificationOut>>, ApiError> {
    let paging = PageParams { cursor: q.cursor, limit: q.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let unread_only = q.unread.unwrap_or(false);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{SELECT} WHERE user_id = ?1 AND id < ?2 AND (?3 = 0 OR read_at IS NULL) ORDER BY id DESC LIMIT ?4"
            ))?;
            let rows = stmt.query_map(params![user.id, before, unread_only, limit + 1], from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |n| n.id)))
}

/// Marks one of the caller's notifications read (idempotent).
#[utoipa::path(
    post, path = "/api/user/notification/{id}", tag = "notifications",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Notification id")),
    responses(
        (status = 200, description = "The notification, read", body = NotificationOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such notification of yours", body = ErrorBody),
    )
)]
pub async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<NotificationOut>, ApiError> {
    let out = state
        .db
        .write(move |tx| {
            tx.execute(
                "UPDATE notifications SET read_at = ?3 WHERE id = ?1 AND user_id = ?2 AND read_at IS NULL",
                params![id, user.id, now_ts()],
            )?;
            load_own(tx, user.id, id)
        })
        .await?;
    Ok(Json(out))
}

/// Deletes one of the caller's notifications.
#[utoipa::path(
    delete, path = "/api/user/notification/{id}", tag = "notifications",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Notification id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such notification of yours", body = ErrorBody),
    )
)]
pub async fn delete_notification(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let deleted = state
        .db
        .write(move |tx| {
            Ok(tx.execute("DELETE FROM notifications WHERE id = ?1 AND user_id = ?2", params![id, user.id])?)
        })
        .await?;
    if deleted == 0 {
        return Err(ApiError::not_found("notification"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Marks every unread notification of the caller read.
#[utoipa::path(
    post, path = "/api/user/notifications/mark-all-read", tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many were marked", body = MarkedRead),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn mark_all_read(State(state): State<AppState>, user: AuthUser) -> Result<Json<MarkedRead>, ApiError> {
    let updated = state
        .db
        .write(move |tx| {
            Ok(tx.execute(
                "UPDATE notifications SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL",
                params![user.id, now_ts()],
            )?)
        })
        .await?;
    Ok(Json(MarkedRead { updated: i64::try_from(updated).unwrap_or(i64::MAX) }))
}
