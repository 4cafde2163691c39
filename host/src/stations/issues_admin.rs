//! Station issues, as operators triage them: a list across stations, and
//! assigning, prioritising and moving an issue open → in_progress →
//! resolved | rejected ([`IssueStatus::may_become`]). The reporter is
//! notified when it is resolved, in the transaction that resolves it.

use axum::{Json, extract::State};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::issues::{IssueStatus, StationRef, check_move, clean_note};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        now_ts, opt_ts,
        text_enum::text_enum,
        ts_to_rfc3339,
    },
    state::AppState,
};

text_enum! {
    /// How urgent an issue is (`station_issues.priority`).
    pub enum IssuePriority {
        Low = "low",
        Normal = "normal",
        High = "high",
        Urgent = "urgent",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationIssueAdminOut {
    pub id: i64,
    pub station: StationRef,
    pub reporter_id: i64,
    pub reporter_phone: Option<String>,
    pub issue_type: String,
    pub description: String,
    pub images: Vec<String>,
    pub status: IssueStatus,
    pub priority: IssuePriority,
    /// The operator working on it.
    pub assignee_id: Option<i64>,
    pub assignee_email: Option<String>,
    /// Why it was resolved or rejected.
    pub resolution_note: Option<String>,
    pub reported_at: String,
    pub updated_at: String,
    pub resolved_at: Option<String>,
}

const ISSUE_SELECT: &str = "
    SELECT i.id, s.serial_number AS station_sn, s.name AS station_name, i.reporter_id, u.phone AS reporter_phone,
           i.issue_type, i.description, i.images, i.status, i.priority, i.assignee_id, a.email AS assignee_email,
           i.resolution_note, i.created_at, i.updated_at, i.resolved_at
    FROM station_issues i
    JOIN stations s ON s.id = i.station_id
    JOIN users u ON u.id = i.reporter_id
    LEFT JOIN users a ON a.id = i.assignee_id";

fn issue_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StationIssueAdminOut> {
    let images: String = r.get("images")?;
    Ok(StationIssueAdminOut {
        id: r.get("id")?,
        station: StationRef { serial_number: r.get("station_sn")?, name: r.get("station_name")? },
        reporter_id: r.get("reporter_id")?,
        reporter_phone: r.get("reporter_phone")?,
        issue_type: r.get("issue_type")?,
        description: r.get("description")?,
        images: serde_json::from_str(&images).unwrap_or_default(),
        status: r.get("status")?,
        priority: r.get("priority")?,
        assignee_id: r.get("assignee_id")?,
        assignee_email: r.get("assignee_email")?,
        resolution_note: r.get("resolution_note")?,
        reported_at: ts_to_rfc3339(r.get("created_at")?),
        updated_at: ts_to_rfc3339(r.get("updated_at")?),
        resolved_at: opt_ts(r.get("resolved_at")?),
    })
}

fn load(c: &Connection, id: i64) -> Result<StationIssueAdminOut, ApiError> {
    c.query_row(&format!("{ISSUE_SELECT} WHERE i.id = ?1"), [id], issue_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("station issue"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StationIssueFilter {
    /// Station serial number.
    pub station: Option<String>,
    /// `open`, `in_progress`, `resolved`, `rejected`, ...
    pub status: Option<String>,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: Option<String>,
    /// Assigned to this operator (user id).
    pub assignee: Option<i64>,
    /// The issue type (`no_power_bank`, `slot_stuck`, ...).
    #[serde(rename = "type")]
    pub issue_type: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Issues reported at every station, newest first, filtered.
#[utoipa::path(
    get, path = "/api/admin/station-issues", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "field_tech"]))),
    params(StationIssueFilter),
    responses(
        (status = 200, description = "A page of issues", body = Page<StationIssueAdminOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn list_station_issues(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<StationIssueFilter>,
) -> Result<Json<Page<StationIssueAdminOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = f
        .status
        .as_deref()
        .map(str::parse::<IssueStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let priority = f
        .priority
        .as_deref()
        .map(str::parse::<IssuePriority>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("priority", e))?;
    let (station, assignee, kind) = (f.station.clone(), f.assignee, f.issue_type.clone());
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{ISSUE_SELECT} WHERE i.id < ?1
                   AND (?2 IS NULL OR i.station_id = (SELECT id FROM stations WHERE serial_number = ?2))
                   AND (?3 IS NULL OR i.status = ?3) AND (?4 IS NULL OR i.priority = ?4)
                   AND (?5 IS NULL OR i.assignee_id = ?5) AND (?6 IS NULL OR i.issue_type = ?6)
                 ORDER BY i.id DESC LIMIT ?7"
            ))?;
            let rows =
                stmt.query_map(params![before, station, status, priority, assignee, kind, limit + 1], issue_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |i| i.id)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StationIssuePatch {
    /// The next status: `in_progress`, then `resolved` or `rejected` (an open
    /// issue may be rejected at once).
    pub status: Option<IssueStatus>,
    pub priority: Option<IssuePriority>,
    /// An enabled operator's user id.
    pub assignee_id: Option<i64>,
    /// 1 to 2000 characters; required to resolve or reject.
    pub resolution_note: Option<String>,
}

/// Assigns, prioritises or moves an issue on. Resolving it notifies the
/// reporter.
#[utoipa::path(
    patch, path = "/api/admin/station-issues/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "field_tech"]))),
    params(("id" = i64, Path, description = "Station issue id")),
    request_body = StationIssuePatch,
    responses(
        (status = 200, description = "The issue", body = StationIssueAdminOut),
        (status = 400, description = "Nothing to change, an unknown operator, or no note to resolve or reject", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
        (status = 409, description = "A move the triage does not allow (`invalid_transition`), the issue is closed (`issue_closed`), or the operator is disabled (`operator_disabled`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn update_station_issue(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<StationIssuePatch>,
) -> Result<Json<StationIssueAdminOut>, ApiError> {
    let note = clean_note(body.resolution_note.as_deref())
        .map_err(|_| ApiError::invalid_field("resolution_note", "1 to 2000 characters of plain text"))?;
    if body.status.is_none() && body.priority.is_none() && body.assignee_id.is_none() && note.is_none() {
        return Err(ApiError::bad_request("give a status, priority, assignee or resolution note"));
    }
    let out = state
        .db
        .write(move |tx| {
            let before = load(tx, id)?;
            let next = check_move(before.status, body.status, note.as_deref())
                .map_err(|e| if e.code == "validation_failed" { note_required(body.status) } else { e })?;
            if let Some(assignee) = body.assignee_id {
                let disabled: Option<Option<i64>> = tx
                    .query_row("SELECT disabled_at FROM operators WHERE user_id = ?1", [assignee], |r| r.get(0))
                    .optional()?;
                match disabled {
                    None => return Err(ApiError::invalid_field("assignee_id", "no such operator")),
                    Some(Some(_)) => {
                        return Err(ApiError::conflict("operator_disabled", "the operator is disabled"));
                    }
                    Some(None) => {}
                }
            }
            let now = now_ts();
            let closing = next != before.status && next.is_closed();
            tx.execute(
                "UPDATE station_issues SET status = ?2, priority = COALESCE(?3, priority),
                    assignee_id = COALESCE(?4, assignee_id), resolution_note = COALESCE(?5, resolution_note),
                    updated_at = ?6, resolved_at = CASE WHEN ?7 THEN ?6 ELSE resolved_at END
                 WHERE id = ?1",
                params![id, next, body.priority, body.assignee_id, note, now, closing],
            )?;
            let after = load(tx, id)?;
            if closing && next == IssueStatus::Resolved {
                crate::notifications::notify(
                    tx,
                    after.reporter_id,
                    "station_issue_resolved",
                    json!({
                        "station_name": after.station.name,
                        "note": after.resolution_note.clone().unwrap_or_default(),
                        "issue_id": id,
                    }),
                )?;
            }
            audit::record(
                tx,
                &operator,
                "station_issue.update",
                Target::new("station_issue", id),
                &before,
                &after,
                None,
            )?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

fn note_required(status: Option<IssueStatus>) -> ApiError {
    let to = status.map(|s| s.to_string()).unwrap_or_default();
    ApiError::invalid_field("resolution_note", format!("required to mark it {to}"))
}
