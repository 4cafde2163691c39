-- Operators' side of user accounts (admin/users.rs).

-- Why an account is suspended or banned; `users.status` holds whether it is.
CREATE TABLE user_restrictions (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    kind TEXT NOT NULL CHECK (kind IN ('suspended', 'banned')),
    reason TEXT NOT NULL,
    operator_id INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL
);

-- Internal notes operators keep on a user (never shown to the user).
CREATE TABLE user_notes (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    operator_id INTEGER NOT NULL REFERENCES users (id),
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX user_notes_user ON user_notes (user_id, id);

-- Wallet and points corrections by hand. The idempotency key makes a retried
-- request answer the first result instead of moving the balance twice.
CREATE TABLE balance_adjustments (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    ledger TEXT NOT NULL CHECK (ledger IN ('wallet', 'points')),
    amount INTEGER NOT NULL CHECK (amount != 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    reason TEXT NOT NULL,
    operator_id INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX balance_adjustments_user ON balance_adjustments (user_id, id);

-- Search by phone or email prefix uses the UNIQUE indexes; by name, this one.
CREATE INDEX user_profiles_full_name ON user_profiles (full_name COLLATE NOCASE);
CREATE INDEX users_created ON users (created_at);
