-- The fleet (stations/fleet.rs): power banks an operator takes out of
-- service. `power_banks.status` gains `available` (in service, in no slot:
-- stock, or returned by an operator until the station reports its slot),
-- `damaged` and `retired`; a bank in `maintenance`, `damaged`, `retired` or
-- `lost` is never offered for rent (only `in_slot` banks are).
--
-- SQLite cannot change a CHECK in place: the table is rebuilt with the same
-- columns in the same order, as rentals/lost.sql does. Other tables' foreign
-- keys name `power_banks`; with the checks deferred the same ids come back
-- before the commit.
CREATE TEMP TABLE power_banks_copy AS SELECT * FROM power_banks;
PRAGMA defer_foreign_keys = ON;
DROP TABLE power_banks;
CREATE TABLE power_banks (
    id INTEGER PRIMARY KEY,
    serial_number TEXT NOT NULL UNIQUE,
    capacity_mah INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'in_slot'
        CHECK (status IN ('in_slot', 'rented', 'available', 'maintenance', 'damaged', 'lost', 'retired')),
    battery_level INTEGER NOT NULL DEFAULT 0 CHECK (battery_level BETWEEN 0 AND 100),
    station_id INTEGER REFERENCES stations (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO power_banks SELECT * FROM power_banks_copy;
DROP TABLE power_banks_copy;
CREATE INDEX power_banks_admin_status ON power_banks (status, id);
CREATE INDEX power_banks_admin_station ON power_banks (station_id, id);

-- Every status change of a bank: by an operator (with a reason) or by the
-- system (the lost sweep: no operator).
CREATE TABLE power_bank_status_changes (
    id INTEGER PRIMARY KEY,
    power_bank_id INTEGER NOT NULL REFERENCES power_banks (id),
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    operator_id INTEGER REFERENCES users (id),
    rental_id INTEGER REFERENCES rentals (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX power_bank_status_changes_bank ON power_bank_status_changes (power_bank_id, id);
