-- Rentals and what hangs off them: extensions, the GPS trail, issues.

CREATE TABLE rentals (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    package_id INTEGER NOT NULL REFERENCES rental_packages (id),
    -- pending_eject: paid, eject command sent; active: the bank is out;
    -- completed: returned; failed: eject failed or timed out (refunded);
    -- cancelled: returned within the grace window (refunded).
    status TEXT NOT NULL CHECK (status IN ('pending_eject', 'active', 'completed', 'failed', 'cancelled')),
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
    updated_at INTEGER NOT NULL
);
-- One rental in progress per user, enforced by the database itself.
CREATE UNIQUE INDEX rentals_one_open ON rentals (user_id) WHERE status IN ('pending_eject', 'active');
CREATE INDEX rentals_user ON rentals (user_id, id);
CREATE INDEX rentals_active_bank ON rentals (power_bank_id) WHERE status = 'active';
CREATE INDEX rentals_due ON rentals (status, due_at);
CREATE INDEX rentals_unpaid ON rentals (user_id) WHERE unpaid_due_paisa > 0;

CREATE TABLE rental_extensions (
    id INTEGER PRIMARY KEY,
    rental_id INTEGER NOT NULL REFERENCES rentals (id),
    extra_minutes INTEGER NOT NULL CHECK (extra_minutes > 0),
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa >= 0),
    transaction_id INTEGER REFERENCES transactions (id),
    previous_due_at INTEGER NOT NULL,
    new_due_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX rental_extensions_rental ON rental_extensions (rental_id);

CREATE TABLE rental_locations (
    id INTEGER PRIMARY KEY,
    rental_id INTEGER NOT NULL REFERENCES rentals (id),
    latitude REAL NOT NULL,
    longitude REAL NOT NULL,
    accuracy_m REAL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX rental_locations_rental ON rental_locations (rental_id, id);

CREATE TABLE rental_issues (
    id INTEGER PRIMARY KEY,
    rental_id INTEGER NOT NULL REFERENCES rentals (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    issue_type TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    created_at INTEGER NOT NULL
);
