-- Operators' side of rentals (rentals/admin.rs, rentals/issues_admin.rs).

-- A due reduced or forgiven by an operator: who, why and how much. No money
-- moves; the rental's `unpaid_due_paisa` goes down in the same transaction.
CREATE TABLE rental_due_waivers (
    id INTEGER PRIMARY KEY,
    rental_id INTEGER NOT NULL REFERENCES rentals (id),
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa > 0),
    due_before_paisa INTEGER NOT NULL,
    due_after_paisa INTEGER NOT NULL CHECK (due_after_paisa >= 0),
    reason TEXT NOT NULL,
    operator_id INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX rental_due_waivers_rental ON rental_due_waivers (rental_id, id);

-- Triage of rental issue reports: the operator's note and when it moved.
ALTER TABLE rental_issues ADD COLUMN note TEXT;
ALTER TABLE rental_issues ADD COLUMN handled_by INTEGER REFERENCES users (id);
ALTER TABLE rental_issues ADD COLUMN updated_at INTEGER;
ALTER TABLE rental_issues ADD COLUMN resolved_at INTEGER;
CREATE INDEX rental_issues_rental ON rental_issues (rental_id, id);
CREATE INDEX rental_issues_status ON rental_issues (status, id);

-- The operators' rental list filters by station and package; a rental's
-- timeline reads its ledger rows by rental.
CREATE INDEX rentals_admin_station ON rentals (station_id, id);
CREATE INDEX rentals_admin_package ON rentals (package_id, id);
CREATE INDEX transactions_admin_rental ON transactions (rental_id) WHERE rental_id IS NOT NULL;
CREATE INDEX rentals_admin_bank ON rentals (power_bank_id, id);
