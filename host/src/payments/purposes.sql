-- Dues and extensions paid through a gateway (migration 31): two more
-- intent purposes, `rental_due` and `rental_extension`.
--
-- SQLite cannot change a CHECK constraint in place, so `payment_intents` is
-- rebuilt with the same columns in the same order (the copy fails loudly if
-- a column was added since). `rental_orders` names it in a foreign key: with
-- the checks deferred, dropping the table counts those rows as violations
-- and inserting the same ids back resolves each one, so the commit still
-- proves every reference intact. No trigger is defined on the table; its
-- indexes are recreated below.
CREATE TEMP TABLE payment_intents_copy AS SELECT * FROM payment_intents;
PRAGMA defer_foreign_keys = ON;
DROP TABLE payment_intents;
CREATE TABLE payment_intents (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('topup', 'rental', 'rental_due', 'rental_extension')),
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
    client_payload TEXT,
    -- Migration 30: the gateway build that created the intent.
    plugin_release TEXT,
    UNIQUE (gateway, gateway_reference)
);
INSERT INTO payment_intents SELECT * FROM payment_intents_copy;
DROP TABLE payment_intents_copy;
CREATE INDEX payment_intents_user ON payment_intents (user_id, created_at);
CREATE INDEX payment_intents_pending ON payment_intents (status, expires_at);
