-- Analytics (issue 13): daily and hourly rollups behind the operators'
-- dashboard, time series and station performance, and the record of each
-- station's online/offline transitions (for uptime).
--
-- As for the leaderboards (social/schema.sql), the rollups are kept by
-- triggers on the tables where the counted events are written (users,
-- rentals, transactions, points_transactions): a trigger runs inside the
-- transaction that writes its row, so a change and its rollup commit
-- together and no code path can forget one. Each source trigger writes a row
-- into `analytics_events`, whose trigger adds it to the day and hour buckets
-- of every dimension it has, then deletes it. `rebuild.sql` is the recount.
--
-- Buckets are Asia/Kathmandu calendar days ('YYYY-MM-DD') and hours
-- ('YYYY-MM-DD HH'): UTC+5:45 = 20700 s, no daylight saving.
-- Dimensions: '' (the whole network), 's' || station id (the rental's
-- station), 'g' || gateway or 'wallet' (how the money moved).

CREATE TABLE analytics_rollups (
    metric TEXT NOT NULL,
    grain TEXT NOT NULL CHECK (grain IN ('day', 'hour')),
    bucket TEXT NOT NULL,
    dim TEXT NOT NULL,
    value INTEGER NOT NULL,
    -- A series is one range of this key.
    PRIMARY KEY (metric, grain, dim, bucket)
) WITHOUT ROWID;

-- Per station and day, every figure of station performance in one row, so
-- that all stations over a month are one range of 30 x stations rows.
CREATE TABLE analytics_station_days (
    day TEXT NOT NULL,
    station_id INTEGER NOT NULL,
    rentals INTEGER NOT NULL DEFAULT 0,
    rentals_completed INTEGER NOT NULL DEFAULT 0,
    rentals_failed INTEGER NOT NULL DEFAULT 0,
    rented_seconds INTEGER NOT NULL DEFAULT 0,
    rental_charges INTEGER NOT NULL DEFAULT 0,
    refunds INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, station_id)
) WITHOUT ROWID;

-- The funnel: one row per counted event, removed by its own trigger.
CREATE TABLE analytics_events (
    id INTEGER PRIMARY KEY,
    metric TEXT NOT NULL,
    at INTEGER NOT NULL,
    station_id INTEGER,
    channel TEXT,
    value INTEGER NOT NULL
);

CREATE TRIGGER analytics_events_apply AFTER INSERT ON analytics_events BEGIN
    INSERT INTO analytics_rollups (metric, grain, bucket, dim, value)
    SELECT new.metric, g.grain, g.bucket, d.dim, new.value
    FROM (SELECT 'day' AS grain, date(new.at + 20700, 'unixepoch') AS bucket
          UNION ALL SELECT 'hour', strftime('%Y-%m-%d %H', new.at + 20700, 'unixepoch')) g,
         (SELECT '' AS dim
          UNION ALL SELECT 's' || new.station_id WHERE new.station_id IS NOT NULL
          UNION ALL SELECT 'g' || new.channel WHERE new.channel IS NOT NULL) d
    WHERE new.value <> 0
    ON CONFLICT (metric, grain, dim, bucket) DO UPDATE SET value = value + excluded.value;
    INSERT INTO analytics_station_days (day, station_id, rentals, rentals_completed, rentals_failed, rented_seconds,
        rental_charges, refunds)
    SELECT date(new.at + 20700, 'unixepoch'), new.station_id,
           iif(new.metric = 'rentals', new.value, 0), iif(new.metric = 'rentals_completed', new.value, 0),
           iif(new.metric = 'rentals_failed', new.value, 0), iif(new.metric = 'rented_seconds', new.value, 0),
           iif(new.metric = 'rental_charges', new.value, 0), iif(new.metric = 'refunds', new.value, 0)
    WHERE new.station_id IS NOT NULL AND new.value <> 0
    ON CONFLICT (day, station_id) DO UPDATE SET
        rentals = rentals + excluded.rentals, rentals_completed = rentals_completed + excluded.rentals_completed,
        rentals_failed = rentals_failed + excluded.rentals_failed,
        rented_seconds = rented_seconds + excluded.rented_seconds,
        rental_charges = rental_charges + excluded.rental_charges, refunds = refunds + excluded.refunds;
    DELETE FROM analytics_events WHERE id = new.id;
END;

-- Users: app accounts only (operators are not customers).
CREATE TRIGGER analytics_user_created AFTER INSERT ON users WHEN new.role = 'user' BEGIN
    INSERT INTO analytics_events (metric, at, value) VALUES ('new_users', new.created_at, 1);
END;

-- Rentals: started (every rental initiated, at its creation), completed and
-- the seconds the bank was out (at the return), failed (at the failure: an
-- eject that failed or timed out), by the station the bank left. A row may be
-- written already finished (an import): the insert trigger counts its status.
CREATE TRIGGER analytics_rental_created AFTER INSERT ON rentals BEGIN
    INSERT INTO analytics_events (metric, at, station_id, value)
    SELECT 'rentals', new.created_at, new.station_id, 1 WHERE 1
    UNION ALL SELECT 'rentals_completed', COALESCE(new.returned_at, new.updated_at), new.station_id, 1
        WHERE new.status = 'completed'
    UNION ALL SELECT 'rented_seconds', COALESCE(new.returned_at, new.updated_at), new.station_id,
        max(new.returned_at - new.started_at, 0)
        WHERE new.status = 'completed' AND new.started_at IS NOT NULL AND new.returned_at IS NOT NULL
    UNION ALL SELECT 'rentals_failed', new.updated_at, new.station_id, 1 WHERE new.status = 'failed';
END;

-- A status change takes back what the old status counted (a timed-out
-- eject that came out after all goes from failed to active) and counts the new.
CREATE TRIGGER analytics_rental_status AFTER UPDATE OF status ON rentals
WHEN new.status <> old.status AND (new.status IN ('completed', 'failed') OR old.status IN ('completed', 'failed')) BEGIN
    INSERT INTO analytics_events (metric, at, station_id, value)
    SELECT 'rentals_completed', COALESCE(old.returned_at, old.updated_at), old.station_id, -1
        WHERE old.status = 'completed'
    UNION ALL SELECT 'rented_seconds', COALESCE(old.returned_at, old.updated_at), old.station_id,
        -max(old.returned_at - old.started_at, 0)
        WHERE old.status = 'completed' AND old.started_at IS NOT NULL AND old.returned_at IS NOT NULL
    UNION ALL SELECT 'rentals_failed', old.updated_at, old.station_id, -1 WHERE old.status = 'failed'
    UNION ALL SELECT 'rentals_completed', COALESCE(new.returned_at, new.updated_at), new.station_id, 1
        WHERE new.status = 'completed'
    UNION ALL SELECT 'rented_seconds', COALESCE(new.returned_at, new.updated_at), new.station_id,
        max(new.returned_at - new.started_at, 0)
        WHERE new.status = 'completed' AND new.started_at IS NOT NULL AND new.returned_at IS NOT NULL
    UNION ALL SELECT 'rentals_failed', new.updated_at, new.station_id, 1 WHERE new.status = 'failed';
END;

-- Points: issued (every credit), spent (debits but expiry), expired.
CREATE TRIGGER analytics_points AFTER INSERT ON points_transactions BEGIN
    INSERT INTO analytics_events (metric, at, value)
    VALUES (CASE WHEN new.direction = 'credit' THEN 'points_issued'
                 WHEN new.kind = 'expired' THEN 'points_expired' ELSE 'points_spent' END,
            new.created_at, new.points);
END;

-- Money, in paisa (the value of points spent is not money): a payment counts
-- when it succeeds, on the day it was made; top-ups, rental charges
-- (rental, extension, overdue) and refunds. A charge given back whole
-- (a failed eject, a cancellation) leaves `success` for `refunded` without a
-- refund request: that is a refund on the day it happens. An operator's
-- refund is its own `refund` transaction, counted when it succeeds.
CREATE TRIGGER analytics_payment_made AFTER INSERT ON transactions WHEN new.status = 'success' BEGIN
    INSERT INTO analytics_events (metric, at, station_id, channel, value)
    VALUES (CASE new.kind WHEN 'topup' THEN 'topups' WHEN 'refund' THEN 'refunds' ELSE 'rental_charges' END,
            new.created_at,
            CASE WHEN new.kind IN ('rental', 'rental_extension', 'overdue')
                 THEN (SELECT station_id FROM rentals WHERE id = new.rental_id) END,
            COALESCE(new.gateway, 'wallet'), new.amount_paisa - new.points_value_paisa);
END;

CREATE TRIGGER analytics_payment_settled AFTER UPDATE OF status ON transactions
WHEN old.status = 'pending' AND new.status = 'success' BEGIN
    INSERT INTO analytics_events (metric, at, station_id, channel, value)
    VALUES (CASE new.kind WHEN 'topup' THEN 'topups' WHEN 'refund' THEN 'refunds' ELSE 'rental_charges' END,
            new.created_at,
            CASE WHEN new.kind IN ('rental', 'rental_extension', 'overdue')
                 THEN (SELECT station_id FROM rentals WHERE id = new.rental_id) END,
            COALESCE(new.gateway, 'wallet'), new.amount_paisa - new.points_value_paisa);
END;

CREATE TRIGGER analytics_payment_given_back AFTER UPDATE OF status ON transactions
WHEN old.status = 'success' AND new.status = 'refunded' AND new.kind <> 'refund'
     AND NOT EXISTS (SELECT 1 FROM refunds WHERE transaction_id = new.id) BEGIN
    INSERT INTO analytics_events (metric, at, station_id, channel, value)
    VALUES ('refunds', new.updated_at,
            CASE WHEN new.kind IN ('rental', 'rental_extension', 'overdue')
                 THEN (SELECT station_id FROM rentals WHERE id = new.rental_id) END,
            COALESCE(new.gateway, 'wallet'), new.amount_paisa - new.points_value_paisa);
END;

-- A gateway payment is made before its rental exists: when it is linked,
-- its station's share is added (the network and gateway totals have it).
CREATE TRIGGER analytics_payment_linked AFTER UPDATE OF rental_id ON transactions
WHEN old.rental_id IS NULL AND new.rental_id IS NOT NULL AND new.status = 'success'
     AND new.kind IN ('rental', 'rental_extension', 'overdue')
     AND new.amount_paisa - new.points_value_paisa <> 0 BEGIN
    INSERT INTO analytics_rollups (metric, grain, bucket, dim, value)
    SELECT 'rental_charges', g.grain, g.bucket, 's' || r.station_id, new.amount_paisa - new.points_value_paisa
    FROM rentals r,
         (SELECT 'day' AS grain, date(new.created_at + 20700, 'unixepoch') AS bucket
          UNION ALL SELECT 'hour', strftime('%Y-%m-%d %H', new.created_at + 20700, 'unixepoch')) g
    WHERE r.id = new.rental_id
    ON CONFLICT (metric, grain, dim, bucket) DO UPDATE SET value = value + excluded.value;
    INSERT INTO analytics_station_days (day, station_id, rental_charges)
    SELECT date(new.created_at + 20700, 'unixepoch'), r.station_id, new.amount_paisa - new.points_value_paisa
    FROM rentals r WHERE r.id = new.rental_id
    ON CONFLICT (day, station_id) DO UPDATE SET rental_charges = rental_charges + excluded.rental_charges;
END;

-- Station link: every change of a station's status, whoever made it (the
-- link going up or down, heartbeats expiring, an operator's maintenance).
CREATE TABLE station_status_events (
    id INTEGER PRIMARY KEY,
    -- A deleted station (tests, never the API: stations retire) takes its history with it.
    station_id INTEGER NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX station_status_events_station ON station_status_events (station_id, at);
CREATE INDEX station_status_events_at ON station_status_events (at);

CREATE TRIGGER station_status_created AFTER INSERT ON stations BEGIN
    INSERT INTO station_status_events (station_id, status, at) VALUES (new.id, new.status, new.created_at);
END;

CREATE TRIGGER station_status_changed AFTER UPDATE OF status ON stations WHEN new.status <> old.status BEGIN
    INSERT INTO station_status_events (station_id, status, at)
    VALUES (new.id, new.status, CASE WHEN new.updated_at <> old.updated_at THEN new.updated_at ELSE unixepoch() END);
END;

-- Stations from before: their status as of their last change.
INSERT INTO station_status_events (station_id, status, at) SELECT id, status, updated_at FROM stations;

-- Dashboard counts that would otherwise scan.
CREATE INDEX analytics_sms_failed ON sms_fcm_log (created_at) WHERE status = 'failed';
CREATE INDEX analytics_power_banks_status ON power_banks (status);
