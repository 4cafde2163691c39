-- The append-only log of operator actions (core/audit.rs). Rows are chained:
-- each hash covers the row and the previous row's hash, so an edited or
-- deleted row shows in `powerbank audit verify`.
CREATE TABLE admin_audit_log (
    -- AUTOINCREMENT: an id is never reused, so a deleted row leaves a gap.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    operator_id INTEGER NOT NULL REFERENCES users (id),
    operator_role TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    -- Only the fields that changed (JSON), NULL when there was no before/after.
    before_json TEXT,
    after_json TEXT,
    reason TEXT,
    request_id TEXT,
    ip TEXT,
    user_agent TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX admin_audit_log_operator ON admin_audit_log (operator_id, id);
CREATE INDEX admin_audit_log_action ON admin_audit_log (action, id);
CREATE INDEX admin_audit_log_target ON admin_audit_log (target_type, target_id, id);
CREATE INDEX admin_audit_log_time ON admin_audit_log (created_at);

CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log
BEGIN
    SELECT RAISE(ABORT, 'admin_audit_log is append-only');
END;
CREATE TRIGGER admin_audit_log_no_delete BEFORE DELETE ON admin_audit_log
BEGIN
    SELECT RAISE(ABORT, 'admin_audit_log is append-only');
END;
