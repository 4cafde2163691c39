-- Power banks that never come back: a rental may end `lost` (the periodic
-- sweep declares it after the pricing plugin's `lost-after-minutes`), and is
-- reconciled if the bank is seated again later.
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt
-- with the same columns in the same order (a column added since would make
-- the copy fail loudly rather than vanish). Foreign keys of other tables
-- name `rentals`: with the checks deferred, dropping the table counts their
-- rows as violations and inserting the same ids back resolves each one, so
-- the commit still proves every reference intact.
CREATE TEMP TABLE rentals_copy AS SELECT * FROM rentals;
PRAGMA defer_foreign_keys = ON;
DROP TABLE rentals;
CREATE TABLE rentals (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    package_id INTEGER NOT NULL REFERENCES rental_packages (id),
    -- pending_eject: paid, eject command sent; active: the bank is out;
    -- completed: returned; failed: eject failed or timed out (refunded);
    -- cancelled: returned within the grace window (refunded); lost: not
    -- returned long after its due time, penalty charged.
    status TEXT NOT NULL CHECK (status IN ('pending_eject', 'active', 'completed', 'failed', 'cancelled', 'lost')),
    payment_method TEXT NOT NULL,
    station_id INTEGER NOT NULL REFERENCES stations (id),
    slot_index INTEGER NOT NULL,
    power_bank_id INTEGER REFERENCES power_banks (id),
    eject_request_id TEXT UNIQUE,
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa >= 0),
    wallet_paisa INTEGER NOT NULL DEFAULT 0,
    points_used INTEGER NOT NULL DEFAULT 0,
    transaction_id INTEGER REFERENCES transactions (id),
    due_minutes INTEGER NOT NULL,
    started_at INTEGER,
    due_at INTEGER,
    returned_at INTEGER,
    return_station_id INTEGER REFERENCES stations (id),
    overdue_paisa INTEGER NOT NULL DEFAULT 0,
    -- Overdue charge not yet collected: blocks the next rental until paid.
    unpaid_due_paisa INTEGER NOT NULL DEFAULT 0 CHECK (unpaid_due_paisa >= 0),
    failure_reason TEXT,
    reminded_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ending_soon_notified_at INTEGER,
    gateway_paisa INTEGER NOT NULL DEFAULT 0 CHECK (gateway_paisa >= 0),
    discount_paisa INTEGER NOT NULL DEFAULT 0 CHECK (discount_paisa >= 0),
    coupon_id INTEGER REFERENCES coupons (id),
    failure_code TEXT
);
INSERT INTO rentals SELECT * FROM rentals_copy;
DROP TABLE rentals_copy;
CREATE UNIQUE INDEX rentals_one_open ON rentals (user_id) WHERE status IN ('pending_eject', 'active');
CREATE INDEX rentals_user ON rentals (user_id, id);
CREATE INDEX rentals_active_bank ON rentals (power_bank_id) WHERE status = 'active';
CREATE INDEX rentals_due ON rentals (status, due_at);
CREATE INDEX rentals_unpaid ON rentals (user_id) WHERE unpaid_due_paisa > 0;
CREATE INDEX rentals_timed_out ON rentals (station_id, updated_at) WHERE failure_code = 'eject_timeout';

-- How many of the pricing plugin's overdue reminders went out.
ALTER TABLE rentals ADD COLUMN overdue_reminders_sent INTEGER NOT NULL DEFAULT 0;
-- When the bank was declared lost, and the penalty charged then (on top of
-- `overdue_paisa`, the overdue charge so far).
ALTER TABLE rentals ADD COLUMN lost_at INTEGER;
ALTER TABLE rentals ADD COLUMN lost_penalty_paisa INTEGER NOT NULL DEFAULT 0 CHECK (lost_penalty_paisa >= 0);
-- A lost bank seated again: the literal matches RentalStatus::Lost.
CREATE INDEX rentals_lost_bank ON rentals (power_bank_id) WHERE status = 'lost';

INSERT INTO notification_templates (key, title_template, body_template, updated_at) VALUES
    ('rental_lost', 'Power bank declared lost',
     'Power bank {{power_bank}} was not returned {{hours}} hours after its due time, so it is declared lost: NPR {{penalty}} penalty plus NPR {{overdue}} overdue. {{payment}} Return it to any station and the penalty is given back.', 0),
    ('rental_found', 'Lost power bank returned',
     'Power bank {{power_bank}} is back at {{station_name}}. The penalty is replaced by the overdue charge of NPR {{overdue}}: NPR {{given_back}} given back.', 0);
INSERT INTO notification_rules (template_key, channel, sms_fallback, updated_at) VALUES
    ('rental_lost', 'push', 1, 0),
    ('rental_found', 'push', 1, 0);
