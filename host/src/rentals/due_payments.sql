-- A rental's due or an extension paid through a gateway (migration 31,
-- after payments/purposes.sql). The payment intent (purpose `rental_due` or
-- `rental_extension`) carries the money; this row says what it pays for and
-- what became of it:
--   awaiting_payment -> applied              (paid while it still applied: due settled, extension made)
--   awaiting_payment -> credited_to_wallet   (paid, but the due was paid otherwise, the rental
--                                             ended, or the intent had expired: money to the wallet)
--   awaiting_payment -> expired | cancelled | failed   (the intent ended unpaid)
--   expired | cancelled | failed -> credited_to_wallet (paid after all)
CREATE TABLE rental_gateway_payments (
    id INTEGER PRIMARY KEY,
    rental_id INTEGER NOT NULL REFERENCES rentals (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    payment_intent_id TEXT NOT NULL UNIQUE REFERENCES payment_intents (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('rental_due', 'rental_extension')),
    gateway TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('awaiting_payment', 'applied', 'credited_to_wallet', 'expired', 'cancelled', 'failed')),
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa > 0),
    -- Extensions: the minutes bought.
    extra_minutes INTEGER CHECK (extra_minutes > 0),
    -- After this the payment no longer applies, whatever the gateway says
    -- (the intent's own expiry).
    expires_at INTEGER NOT NULL,
    -- The gateway payment, once it arrived.
    transaction_id INTEGER REFERENCES transactions (id),
    settled_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((purpose = 'rental_extension') = (extra_minutes IS NOT NULL))
);
CREATE INDEX rental_gateway_payments_rental ON rental_gateway_payments (rental_id, id);
-- One payment of each kind waiting at a gateway per rental (the literals
-- match RentalPaymentStatus::AwaitingPayment).
CREATE UNIQUE INDEX rental_gateway_payments_one_open
    ON rental_gateway_payments (rental_id, purpose) WHERE status = 'awaiting_payment';
