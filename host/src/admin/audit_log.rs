//! Reading the audit log: `GET /api/admin/audit` (filtered, newest first)
//! and `GET /api/admin/audit/verify` (the hash chain recomputed). Rows are
//! written by `core::audit::record` in each admin mutation's transaction.

use axum::{Json, extract::State};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::{
    core::{
        ApiError, ApiQuery, Operator, Page, PageParams,
        audit::{self, AuditVerification},
        error::ErrorBody,
        pagination::date_filter,
        ts_to_rfc3339,
    },
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryOut {
    pub id: i64,
    pub at: String,
    pub operator_id: i64,
    pub operator_email: Option<String>,
    /// The operator's role when it acted.
    pub operator_role: String,
    /// `domain.verb`, e.g. `refund.approve`, `station.update`.
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    /// The fields that changed, as they were (null for a creation).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The fields that changed, as they became (null for a deletion).
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntryOut> {
    let json = |i: usize| -> rusqlite::Result<Option<Value>> {
        Ok(r.get::<_, Option<String>>(i)?.and_then(|t| serde_json::from_str(&t).ok()))
    };
    Ok(AuditEntryOut {
        id: r.get(0)?,
        at: ts_to_rfc3339(r.get(1)?),
        operator_id: r.get(2)?,
        operator_email: r.get(3)?,
        operator_role: r.get(4)?,
        action: r.get(5)?,
        target_type: r.get(6)?,
        target_id: r.get(7)?,
        before: json(8)?,
        after: json(9)?,
        reason: r.get(10)?,
        request_id: r.get(11)?,
        ip: r.get(12)?,
        user_agent: r.get(13)?,
        prev_hash: r.get(14)?,
        hash: r.get(15)?,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Rows of this operator (user id).
    pub operator_id: Option<i64>,
    /// Exact action, e.g. `refund.approve`.
    pub action: Option<String>,
    /// e.g. `refund`, `station`, `user`.
    pub target_type: Option<String>,
    /// With `target_type`: one object's history.
    pub target_id: Option<String>,
    /// From this day (`YYYY-MM-DD`, UTC), inclusive.
    pub from: Option<String>,
    /// To this day (`YYYY-MM-DD`, UTC), inclusive.
    pub to: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn short_filter(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() || v.chars().count() > 100 => {
            Err(ApiError::invalid_field(field, "1 to 100 characters"))
        }
        v => Ok(v),
    }
}

/// The audit log, newest first, filtered by operator, action, target and day.
#[utoipa::path(
    get, path = "/api/admin/audit", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(AuditFilter),
    responses(
        (status = 200, description = "A page of audit rows", body = Page<AuditEntryOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<AuditFilter>,
) -> Result<Json<Page<AuditEntryOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let from = date_filter("from", &f.from, false)?;
    let to = date_filter("to", &f.to, true)?;
    let action = short_filter("action", f.action)?;
    let target_type = short_filter("target_type", f.target_type)?;
    let target_id = short_filter("target_id", f.target_id)?;
    let operator_id = f.operator_id;
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT a.id, a.created_at, a.operator_id, u.email, a.operator_role, a.action, a.target_type,
                        a.target_id, a.before_json, a.after_json, a.reason, a.request_id, a.ip, a.user_agent,
                        a.prev_hash, a.hash
                 FROM admin_audit_log a LEFT JOIN users u ON u.id = a.operator_id
                 WHERE a.id < ?1
                   AND (?2 IS NULL OR a.operator_id = ?2)
                   AND (?3 IS NULL OR a.action = ?3)
                   AND (?4 IS NULL OR a.target_type = ?4)
                   AND (?5 IS NULL OR a.target_id = ?5)
                   AND (?6 IS NULL OR a.created_at >= ?6)
                   AND (?7 IS NULL OR a.created_at <= ?7)
                 ORDER BY a.id DESC LIMIT ?8",
            )?;
            let rows = stmt.query_map(
                params![before, operator_id, action, target_type, target_id, from, to, limit + 1],
                entry_from_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |e| e.id)))
}

/// Recomputes the audit log's hash chain: `ok` is false, and `problems` name
/// the rows, when a row was edited or deleted outside the server.
#[utoipa::path(
    get, path = "/api/admin/audit/verify", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    responses(
        (status = 200, description = "The check (look at `ok`)", body = AuditVerification),
    )
)]
pub async fn verify_audit(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<AuditVerification>, ApiError> {
    Ok(Json(state.db.read(audit::verify).await?))
}
