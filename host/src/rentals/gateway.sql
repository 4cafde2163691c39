
-- Rentals paid through a payment gateway, coupons on rentals, and late ejects
-- (migration 14, after promotions/schema.sql).

-- The part of the rental's price paid through a gateway (given back to the
-- wallet when the eject fails), the coupon taken off the price, and why a
-- failed rental failed (`eject_timeout`, `eject_failed`), so a late `ejected`
-- can be matched to a rental that timed out.
ALTER TABLE rentals ADD COLUMN gateway_paisa INTEGER NOT NULL DEFAULT 0 CHECK (gateway_paisa >= 0);
ALTER TABLE rentals ADD COLUMN discount_paisa INTEGER NOT NULL DEFAULT 0 CHECK (discount_paisa >= 0);
ALTER TABLE rentals ADD COLUMN coupon_id INTEGER REFERENCES coupons (id);
ALTER TABLE rentals ADD COLUMN failure_code TEXT;
CREATE INDEX rentals_timed_out ON rentals (station_id, updated_at) WHERE failure_code = 'eject_timeout';

-- A rental paid through a gateway before it starts: priced (coupon included)
-- at initiate, paid at the gateway, then started (the `rentals` row is made
-- then, exactly as a wallet rental's).
--   awaiting_payment -> paid -> started
--   awaiting_payment -> expired | cancelled | failed   (the intent ended unpaid)
--   paid -> refunded                                   (not started in time: money to the wallet)
--   expired | cancelled | failed -> refunded           (paid after it ended: money to the wallet)
CREATE TABLE rental_orders (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    package_id INTEGER NOT NULL REFERENCES rental_packages (id),
    station_id INTEGER NOT NULL REFERENCES stations (id),
    gateway TEXT NOT NULL,
    payment_intent_id TEXT NOT NULL UNIQUE REFERENCES payment_intents (id),
    status TEXT NOT NULL CHECK (status IN
        ('awaiting_payment', 'paid', 'started', 'expired', 'cancelled', 'failed', 'refunded')),
    list_amount_paisa INTEGER NOT NULL CHECK (list_amount_paisa >= 0),
    discount_paisa INTEGER NOT NULL DEFAULT 0 CHECK (discount_paisa >= 0),
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa > 0),
    coupon_id INTEGER REFERENCES coupons (id),
    due_minutes INTEGER NOT NULL,
    -- The gateway payment, once it arrived.
    transaction_id INTEGER REFERENCES transactions (id),
    rental_id INTEGER REFERENCES rentals (id),
    paid_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- One rental payment in progress per user.
CREATE UNIQUE INDEX rental_orders_one_open ON rental_orders (user_id) WHERE status IN ('awaiting_payment', 'paid');
CREATE INDEX rental_orders_user ON rental_orders (user_id, id);
CREATE INDEX rental_orders_paid ON rental_orders (paid_at) WHERE status = 'paid';

INSERT INTO notification_templates (key, title_template, body_template, updated_at) VALUES
    ('rental_resumed', 'Your rental is on after all',
     'Power bank {{power_bank}} came out of {{station_name}} after the station stopped answering, so your rental is active. {{payment}}', 0);
INSERT INTO notification_rules (template_key, channel, sms_fallback, updated_at) VALUES
    ('rental_resumed', 'push', 1, 0);
