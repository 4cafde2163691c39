//! The audit log: one row per operator action, written by [`record`] inside
//! the transaction of the change it describes, so a change without its row
//! (or a row without its change) cannot be committed.
//!
//! The table is append-only (triggers refuse UPDATE and DELETE), and rows are
//! chained: each row's `hash` is SHA-256 over its content and the previous
//! row's hash. [`verify`] recomputes the chain and names every row that was
//! edited, and every id that is missing (ids come from AUTOINCREMENT, so they
//! are never reused). Anyone with the database file can still rewrite the
//! whole chain; this catches the edit of a row or two, and the triggers stop
//! it from the application's own connections.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{access::Operator, db::now_ts, error::ApiError, text::check_user_text, text_enum::text_enum};

pub const SCHEMA: &str = include_str!("audit.sql");

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an action was done to: a type (`station`, `refund`, `user`, ...) and
/// its id as the API names it.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: &'static str,
    pub id: String,
}

impl Target {
    pub fn new(kind: &'static str, id: impl ToString) -> Self {
        Target { kind, id: id.to_string() }
    }
}

/// The reason an action that moves money or changes an account must give:
/// 400 `reason_required` when missing or blank, 400 `validation_failed` when
/// too long or not plain text.
pub fn required_reason(reason: Option<&str>) -> Result<String, ApiError> {
    optional_reason(reason)?.ok_or_else(|| {
        ApiError::new(axum::http::StatusCode::BAD_REQUEST, "reason_required", "this action needs a reason")
            .with_details(json!({ "fields": { "reason": ["required"] } }))
    })
}

/// A reason given where one is optional: trimmed, blank as none, at most 500
/// characters of plain text.
pub fn optional_reason(reason: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(None) };
    if reason.chars().count() > 500 {
        return Err(ApiError::invalid_field("reason", "at most 500 characters"));
    }
    check_user_text("reason", reason, true)?;
    Ok(Some(reason.to_string()))
}

/// Records `actor`'s `action` on `target` in the caller's transaction. Pass
/// the target as the API shows it before and after the change (`&()` for
/// none: a creation has no before, a deletion no after); only the fields that
/// differ are kept. Returns the row's id.
pub fn record(
    tx: &Transaction<'_>,
    actor: &Operator,
    action: &'static str,
    target: Target,
    before: &impl Serialize,
    after: &impl Serialize,
    reason: Option<&str>,
) -> Result<i64, ApiError> {
    let before = serde_json::to_value(before).map_err(|e| ApiError::internal(format!("audit before: {e}")))?;
    let after = serde_json::to_value(after).map_err(|e| ApiError::internal(format!("audit after: {e}")))?;
    let (before, after) = changed_fields(before, after);
    let (next_id, prev_hash): (i64, Option<String>) = tx.query_row(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'admin_audit_log'), 0),
                    COALESCE((SELECT MAX(id) FROM admin_audit_log), 0)) + 1,
                (SELECT hash FROM admin_audit_log ORDER BY id DESC LIMIT 1)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let row = AuditRow {
        id: next_id,
        created_at: now_ts(),
        operator_id: actor.id,
        operator_role: actor.role.as_str().to_string(),
        action: action.to_string(),
        target_type: target.kind.to_string(),
        target_id: target.id,
        before_json: before.map(|v| v.to_string()),
        after_json: after.map(|v| v.to_string()),
        reason: reason.map(str::to_string),
        request_id: actor.request.request_id.clone(),
        ip: actor.request.ip.clone(),
        user_agent: actor.request.user_agent.clone(),
        prev_hash: prev_hash.unwrap_or_else(|| GENESIS_HASH.to_string()),
    };
    let hash = row.hash();
    tx.execute(
        "INSERT INTO admin_audit_log (id, created_at, operator_id, operator_role, action, target_type, target_id,
                                      before_json, after_json, reason, request_id, ip, user_agent, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            row.id,
            row.created_at,
            row.operator_id,
            row.operator_role,
            row.action,
            row.target_type,
            row.target_id,
            row.before_json,
            row.after_json,
            row.reason,
            row.request_id,
            row.ip,
            row.user_agent,
            row.prev_hash,
            hash
        ],
    )?;
    Ok(row.id)
}

/// Keeps only what changed: for two objects, the keys whose values differ
/// (each side with its own value); otherwise each side whole, `None` for null.
fn changed_fields(before: Value, after: Value) -> (Option<Value>, Option<Value>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let (mut was, mut is) = (Map::new(), Map::new());
            for key in b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))) {
                let (old, new) = (b.get(key), a.get(key));
                if old != new {
                    if let Some(v) = old {
                        was.insert(key.clone(), v.clone());
                    }
                    if let Some(v) = new {
                        is.insert(key.clone(), v.clone());
                    }
                }
            }
            (Some(Value::Object(was)), Some(Value::Object(is)))
        }
        (b, a) => ((!b.is_null()).then_some(b), (!a.is_null()).then_some(a)),
    }
}

/// One row as stored, the hash aside.
struct AuditRow {
    id: i64,
    created_at: i64,
    operator_id: i64,
    operator_role: String,
    action: String,
    target_type: String,
    target_id: String,
    before_json: Option<String>,
    after_json: Option<String>,
    reason: Option<String>,
    request_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    prev_hash: String,
}

impl AuditRow {
    /// SHA-256 (hex) over the row's fields, in a fixed order, and the
    /// previous row's hash: a JSON array, so no field can run into the next.
    fn hash(&self) -> String {
        let content = json!([
            self.id,
            self.created_at,
            self.operator_id,
            self.operator_role,
            self.action,
            self.target_type,
            self.target_id,
            self.before_json,
            self.after_json,
            self.reason,
            self.request_id,
            self.ip,
            self.user_agent,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(content.to_string().as_bytes()))
    }

    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Self, String)> {
        Ok((
            AuditRow {
                id: r.get(0)?,
                created_at: r.get(1)?,
                operator_id: r.get(2)?,
                operator_role: r.get(3)?,
                action: r.get(4)?,
                target_type: r.get(5)?,
                target_id: r.get(6)?,
                before_json: r.get(7)?,
                after_json: r.get(8)?,
                reason: r.get(9)?,
                request_id: r.get(10)?,
                ip: r.get(11)?,
                user_agent: r.get(12)?,
                prev_hash: r.get(13)?,
            },
            r.get(14)?,
        ))
    }
}

text_enum! {
    /// What [`verify`] found wrong with a row.
    pub enum AuditProblemKind {
        /// The row's content no longer matches its hash.
        Edited = "edited",
        /// Rows with these ids were deleted.
        Deleted = "deleted",
        /// The row does not name the previous row's hash (rows reordered or
        /// the previous one rewritten with a new hash).
        ChainBroken = "chain_broken",
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditProblem {
    /// The row concerned (for `deleted`: the first missing id).
    pub id: i64,
    pub problem: AuditProblemKind,
    pub detail: String,
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditVerification {
    /// True when every row matches its hash and the chain has no gap.
    pub ok: bool,
    pub rows_checked: i64,
    pub last_id: Option<i64>,
    /// The newest row's hash: note it down, and a rewrite of the whole chain
    /// shows as a different head.
    pub head_hash: Option<String>,
    pub problems: Vec<AuditProblem>,
}

/// Recomputes every row's hash and the links between rows.
pub fn verify(conn: &Connection) -> Result<AuditVerification, ApiError> {
    let mut stmt = conn.prepare(
        "SELECT id, created_at, operator_id, operator_role, action, target_type, target_id, before_json,
                after_json, reason, request_id, ip, user_agent, prev_hash, hash
         FROM admin_audit_log ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let (mut problems, mut checked) = (Vec::new(), 0_i64);
    let (mut last_id, mut last_hash) = (0_i64, GENESIS_HASH.to_string());
    while let Some(r) = rows.next()? {
        let (row, stored_hash) = AuditRow::from_row(r)?;
        checked += 1;
        if row.id != last_id + 1 {
            problems.push(AuditProblem {
                id: last_id + 1,
                problem: AuditProblemKind::Deleted,
                detail: format!("rows {} to {} are missing", last_id + 1, row.id - 1),
            });
        } else if row.prev_hash != last_hash {
            problems.push(AuditProblem {
                id: row.id,
                problem: AuditProblemKind::ChainBroken,
                detail: format!("prev_hash does not match row {last_id}"),
            });
        }
        if row.hash() != stored_hash {
            problems.push(AuditProblem {
                id: row.id,
                problem: AuditProblemKind::Edited,
                detail: "the row's content does not match its hash".into(),
            });
        }
        last_id = row.id;
        last_hash = stored_hash;
    }
    let issued: Option<i64> = conn
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'admin_audit_log'", [], |r| r.get(0))
        .optional()?;
    if let Some(issued) = issued.filter(|s| *s > last_id) {
        problems.push(AuditProblem {
            id: last_id + 1,
            problem: AuditProblemKind::Deleted,
            detail: format!("rows {} to {issued} (the newest) are missing", last_id + 1),
        });
    }
    Ok(AuditVerification {
        ok: problems.is_empty(),
        rows_checked: checked,
        last_id: (checked > 0).then_some(last_id),
        head_hash: (checked > 0).then_some(last_hash),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::access::{OperatorRole, RequestMeta};

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY);
             INSERT INTO users (id) VALUES (1);",
        )
        .unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn
    }

    fn actor() -> Operator {
        Operator {
            id: 1,
            role: OperatorRole::Admin,
            session_id: "s".into(),
            request: RequestMeta { request_id: Some("req-1".into()), ip: Some("127.0.0.1".into()), user_agent: None },
        }
    }

    fn write(conn: &mut Connection, n: usize) {
        let tx = conn.transaction().unwrap();
        for i in 0..n {
            record(
                &tx,
                &actor(),
                "station.update",
                Target::new("station", format!("ST{i}")),
                &json!({"name": "a", "city": "x"}),
                &json!({"name": "b", "city": "x"}),
                None,
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn keeps_changed_fields_only() {
        let (b, a) = changed_fields(json!({"a": 1, "b": 2, "c": 3}), json!({"a": 1, "b": 5, "d": 4}));
        assert_eq!(b, Some(json!({"b": 2, "c": 3})));
        assert_eq!(a, Some(json!({"b": 5, "d": 4})));
        assert_eq!(changed_fields(Value::Null, json!({"a": 1})), (None, Some(json!({"a": 1}))));
    }

    #[test]
    fn a_clean_chain_verifies_and_updates_and_deletes_are_refused() {
        let mut conn = db();
        write(&mut conn, 3);
        let check = verify(&conn).unwrap();
        assert!(check.ok, "{check:?}");
        assert_eq!((check.rows_checked, check.last_id), (3, Some(3)));
        assert!(conn.execute("UPDATE admin_audit_log SET reason = 'x' WHERE id = 2", []).is_err());
        assert!(conn.execute("DELETE FROM admin_audit_log WHERE id = 2", []).is_err());
    }

    #[test]
    fn finds_edited_and_deleted_rows() {
        let mut conn = db();
        write(&mut conn, 5);
        conn.execute_batch(
            "DROP TRIGGER admin_audit_log_no_update; DROP TRIGGER admin_audit_log_no_delete;
             UPDATE admin_audit_log SET target_id = 'OTHER' WHERE id = 2;
             DELETE FROM admin_audit_log WHERE id = 4;
             DELETE FROM admin_audit_log WHERE id = 5;",
        )
        .unwrap();
        let check = verify(&conn).unwrap();
        assert!(!check.ok);
        let found: Vec<(i64, AuditProblemKind)> = check.problems.iter().map(|p| (p.id, p.problem)).collect();
        assert_eq!(found, vec![(2, AuditProblemKind::Edited), (4, AuditProblemKind::Deleted)], "{check:?}");
    }
}
