-- Swaps of a rental's power bank at its station (see rentals/swap.rs), and
-- postpaid rentals, priced and charged at return (see rentals/postpaid.rs).

CREATE TABLE rental_swaps (
    id INTEGER PRIMARY KEY,
    rental_id INTEGER NOT NULL REFERENCES rentals (id),
    station_id INTEGER NOT NULL REFERENCES stations (id),
    old_power_bank_id INTEGER NOT NULL REFERENCES power_banks (id),
    new_power_bank_id INTEGER REFERENCES power_banks (id),
    status TEXT NOT NULL CHECK (status IN ('awaiting_return', 'ejecting', 'completed', 'failed', 'expired')),
    -- Where the old bank was seated, and the slot the new one came from.
    return_slot INTEGER,
    eject_slot INTEGER,
    eject_request_id TEXT UNIQUE,
    failure_reason TEXT,
    requested_at INTEGER NOT NULL,
    returned_at INTEGER,
    finished_at INTEGER,
    updated_at INTEGER NOT NULL
);
-- One swap in progress per rental.
CREATE UNIQUE INDEX rental_swaps_one_open ON rental_swaps (rental_id) WHERE status IN ('awaiting_return', 'ejecting');
CREATE INDEX rental_swaps_rental ON rental_swaps (rental_id, id);

-- `postpaid`: nothing charged at start; the pricing plugin's price is charged at return.
ALTER TABLE rentals ADD COLUMN payment_model TEXT NOT NULL DEFAULT 'prepaid'
    CHECK (payment_model IN ('prepaid', 'postpaid'));

INSERT INTO notification_templates (key, title_template, body_template, updated_at) VALUES
    ('rental_swapped', 'Power bank swapped',
     'You now have {{power_bank}} from {{station_name}}. Your rental goes on as before, at no extra charge.', 0),
    ('rental_swap_failed', 'Swap failed: rental refunded',
     '{{station_name}} could not give you another power bank, so your rental ended when you put {{power_bank}} back. Everything you paid was refunded.', 0);
INSERT INTO notification_rules (template_key, channel, sms_fallback, updated_at) VALUES
    ('rental_swapped', 'push', 0, 0),
    ('rental_swap_failed', 'push', 1, 0);
