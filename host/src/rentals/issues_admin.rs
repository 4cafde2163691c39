//! Rental issue reports, as operators triage them: a list across rentals
//! and a status/note change with the transitions of
//! [`IssueStatus::may_become`] (the same as station issues').

use axum::{Json, extract::State};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        now_ts, opt_ts, ts_to_rfc3339,
    },
    state::AppState,
    stations::issues::{IssueStatus, check_move, clean_note},
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RentalIssueAdminOut {
    pub id: i64,
    pub rental_id: i64,
    pub rental_code: String,
    pub user_id: i64,
    pub issue_type: String,
    pub description: String,
    pub images: Vec<String>,
    pub status: IssueStatus,
    /// The operator's triage note.
    pub note: Option<String>,
    /// The operator who last moved it.
    pub handled_by: Option<i64>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub resolved_at: Option<String>,
}

const ISSUE_SELECT: &str = "
    SELECT i.id, i.rental_id, r.code AS rental_code, i.user_id, i.issue_type, i.description, i.images, i.status,
           i.note, i.handled_by, i.created_at, i.updated_at, i.resolved_at
    FROM rental_issues i JOIN rentals r ON r.id = i.rental_id";

fn issue_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RentalIssueAdminOut> {
    let images: String = r.get("images")?;
    Ok(RentalIssueAdminOut {
        id: r.get("id")?,
        rental_id: r.get("rental_id")?,
        rental_code: r.get("rental_code")?,
        user_id: r.get("user_id")?,
        issue_type: r.get("issue_type")?,
        description: r.get("description")?,
        images: serde_json::from_str(&images).unwrap_or_default(),
        status: r.get("status")?,
        note: r.get("note")?,
        handled_by: r.get("handled_by")?,
        created_at: ts_to_rfc3339(r.get("created_at")?),
        updated_at: opt_ts(r.get("updated_at")?),
        resolved_at: opt_ts(r.get("resolved_at")?),
    })
}

fn load(c: &Connection, id: i64) -> Result<RentalIssueAdminOut, ApiError> {
    c.query_row(&format!("{ISSUE_SELECT} WHERE i.id = ?1"), [id], issue_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("rental issue"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RentalIssueFilter {
    /// `open`, `in_progress`, `resolved`, `rejected`, ...
    pub status: Option<String>,
    pub rental_id: Option<i64>,
    pub user_id: Option<i64>,
    /// `not_charging`, `damaged`, `lost`, `stuck_in_slot`, `billing` or `other`.
    pub issue_type: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Rental issue reports, newest first.
#[utoipa::path(
    get, path = "/api/admin/rental-issues", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(RentalIssueFilter),
    responses(
        (status = 200, description = "A page of reports", body = Page<RentalIssueAdminOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn list_rental_issues(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<RentalIssueFilter>,
) -> Result<Json<Page<RentalIssueAdminOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = f
        .status
        .as_deref()
        .map(str::parse::<IssueStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let (rental, user, kind) = (f.rental_id, f.user_id, f.issue_type.clone());
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{ISSUE_SELECT} WHERE i.id < ?1 AND (?2 IS NULL OR i.status = ?2) AND (?3 IS NULL OR i.rental_id = ?3)
                   AND (?4 IS NULL OR i.user_id = ?4) AND (?5 IS NULL OR i.issue_type = ?5)
                 ORDER BY i.id DESC LIMIT ?6"
            ))?;
            let rows = stmt.query_map(params![before, status, rental, user, kind, limit + 1], issue_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |i| i.id)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RentalIssuePatch {
    /// The next status: `in_progress`, then `resolved` or `rejected` (an open
    /// report may be rejected at once).
    pub status: Option<IssueStatus>,
    /// 1 to 2000 characters; required to resolve or reject.
    pub note: Option<String>,
}

/// Triage: moves a report on and/or notes what was done.
#[utoipa::path(
    patch, path = "/api/admin/rental-issues/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path, description = "Rental issue id")),
    request_body = RentalIssuePatch,
    responses(
        (status = 200, description = "The report", body = RentalIssueAdminOut),
        (status = 400, description = "Nothing to change, a bad note, or no note to resolve or reject", body = ErrorBody),
        (status = 404, description = "No such report", body = ErrorBody),
        (status = 409, description = "A move the triage does not allow (`invalid_transition`), or the report is closed (`issue_closed`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn update_rental_issue(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RentalIssuePatch>,
) -> Result<Json<RentalIssueAdminOut>, ApiError> {
    let note = clean_note(body.note.as_deref())?;
    if body.status.is_none() && note.is_none() {
        return Err(ApiError::bad_request("give a status or a note"));
    }
    let out = state
        .db
        .write(move |tx| {
            let before = load(tx, id)?;
            let next = check_move(before.status, body.status, note.as_deref())?;
            let now = now_ts();
            let resolved_at = next.is_closed().then_some(now);
            tx.execute(
                "UPDATE rental_issues SET status = ?2, note = COALESCE(?3, note), handled_by = ?4, updated_at = ?5,
                    resolved_at = COALESCE(?6, resolved_at)
                 WHERE id = ?1",
                params![id, next, note, operator.id, now, resolved_at],
            )?;
            let after = load(tx, id)?;
            audit::record(
                tx,
                &operator,
                "rental_issue.update",
                Target::new("rental_issue", id),
                &before,
                &after,
                None,
            )?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}
