-- Payments: the wallet and points ledgers, transactions, payment intents,
-- gateway webhooks, refunds and idempotency keys. Every balance change in
-- `wallets` / `user_points` is written in the same transaction as its row here.

CREATE TABLE wallet_transactions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    direction TEXT NOT NULL CHECK (direction IN ('credit', 'debit')),
    kind TEXT NOT NULL,
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa > 0),
    balance_after_paisa INTEGER NOT NULL CHECK (balance_after_paisa >= 0),
    transaction_id INTEGER REFERENCES transactions (id),
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX wallet_transactions_user ON wallet_transactions (user_id, id);

CREATE TABLE points_transactions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    direction TEXT NOT NULL CHECK (direction IN ('credit', 'debit')),
    kind TEXT NOT NULL,
    points INTEGER NOT NULL CHECK (points > 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    reason TEXT NOT NULL,
    -- Earned points expire; `remaining` is what is left of this grant after
    -- spending (oldest grants are spent first) and expiry.
    expires_at INTEGER,
    remaining INTEGER,
    transaction_id INTEGER REFERENCES transactions (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX points_transactions_user ON points_transactions (user_id, id);
CREATE INDEX points_transactions_expiry ON points_transactions (expires_at) WHERE remaining > 0;

-- Every payment the user makes or receives, whatever paid for it.
CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL CHECK (kind IN ('topup', 'rental', 'rental_extension', 'overdue', 'refund')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'success', 'failed', 'refunded')),
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa >= 0),
    wallet_paisa INTEGER NOT NULL DEFAULT 0,
    points_used INTEGER NOT NULL DEFAULT 0,
    points_value_paisa INTEGER NOT NULL DEFAULT 0,
    gateway TEXT,
    payment_intent_id TEXT,
    rental_id INTEGER,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX transactions_user ON transactions (user_id, id);

CREATE TABLE payment_intents (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('topup', 'rental')),
    gateway TEXT NOT NULL,
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa > 0),
    currency TEXT NOT NULL DEFAULT 'NPR',
    status TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'failed', 'cancelled', 'expired')),
    gateway_reference TEXT,
    payment_url TEXT,
    client_secret TEXT,
    transaction_id INTEGER REFERENCES transactions (id),
    last_error TEXT,
    expires_at INTEGER NOT NULL,
    completed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (gateway, gateway_reference)
);
CREATE INDEX payment_intents_user ON payment_intents (user_id, created_at);
CREATE INDEX payment_intents_pending ON payment_intents (status, expires_at);

CREATE TABLE payment_webhooks (
    id INTEGER PRIMARY KEY,
    gateway TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (gateway, event_id)
);

CREATE TABLE refunds (
    id INTEGER PRIMARY KEY,
    transaction_id INTEGER NOT NULL UNIQUE REFERENCES transactions (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa > 0),
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'processed', 'failed')),
    review_note TEXT,
    reviewed_by INTEGER REFERENCES users (id),
    gateway_refund_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX refunds_user ON refunds (user_id, id);

-- A retried money-moving POST returns the first answer instead of acting twice.
CREATE TABLE idempotency_keys (
    user_id INTEGER NOT NULL REFERENCES users (id),
    key TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
