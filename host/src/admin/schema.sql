-- Operator accounts (admin/operators.rs): what each `users` row with role
-- 'admin' may do. The extractor in core/access.rs reads it on every request.
CREATE TABLE operators (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'support', 'finance', 'field_tech')),
    -- Set when disabled: the operator's sessions are revoked in the same transaction.
    disabled_at INTEGER,
    created_by INTEGER REFERENCES users (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX operators_role ON operators (role);

-- Operators from before roles existed keep doing what they did: everything
-- but managing operators.
INSERT INTO operators (user_id, role, created_at, updated_at)
SELECT id, 'admin', created_at, updated_at FROM users WHERE role = 'admin';
