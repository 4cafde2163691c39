-- Recounts the analytics rollups from their sources. Run by the migration (a
-- database with history gets its rollups), by `analytics::rebuild_rollups`,
-- and by the test that compares it with what the triggers in schema.sql kept.
-- The events are gathered once into a temporary table that both rollups read.

DELETE FROM analytics_rollups;
DELETE FROM analytics_station_days;

DROP TABLE IF EXISTS temp.analytics_recount;
CREATE TEMP TABLE analytics_recount AS
WITH events (metric, at, station_id, channel, value) AS (
    SELECT 'new_users', created_at, NULL, NULL, 1 FROM users WHERE role = 'user'
    UNION ALL
    SELECT 'rentals', created_at, station_id, NULL, 1 FROM rentals
    UNION ALL
    SELECT 'rentals_completed', COALESCE(returned_at, updated_at), station_id, NULL, 1 FROM rentals
    WHERE status = 'completed'
    UNION ALL
    SELECT 'rented_seconds', COALESCE(returned_at, updated_at), station_id, NULL, max(returned_at - started_at, 0)
    FROM rentals WHERE status = 'completed' AND started_at IS NOT NULL AND returned_at IS NOT NULL
    UNION ALL
    SELECT 'rentals_failed', updated_at, station_id, NULL, 1 FROM rentals WHERE status = 'failed'
    UNION ALL
    SELECT CASE WHEN direction = 'credit' THEN 'points_issued'
                WHEN kind = 'expired' THEN 'points_expired' ELSE 'points_spent' END,
           created_at, NULL, NULL, points
    FROM points_transactions
    UNION ALL
    -- Payments that succeeded (a charge given back was one first).
    SELECT CASE t.kind WHEN 'topup' THEN 'topups' WHEN 'refund' THEN 'refunds' ELSE 'rental_charges' END,
           t.created_at,
           CASE WHEN t.kind IN ('rental', 'rental_extension', 'overdue') THEN r.station_id END,
           COALESCE(t.gateway, 'wallet'), t.amount_paisa - t.points_value_paisa
    FROM transactions t LEFT JOIN rentals r ON r.id = t.rental_id
    WHERE t.status = 'success' OR (t.status = 'refunded' AND t.kind <> 'refund')
    UNION ALL
    -- Charges given back whole, without a refund request.
    SELECT 'refunds', t.updated_at,
           CASE WHEN t.kind IN ('rental', 'rental_extension', 'overdue') THEN r.station_id END,
           COALESCE(t.gateway, 'wallet'), t.amount_paisa - t.points_value_paisa
    FROM transactions t LEFT JOIN rentals r ON r.id = t.rental_id
    WHERE t.status = 'refunded' AND t.kind <> 'refund'
      AND NOT EXISTS (SELECT 1 FROM refunds f WHERE f.transaction_id = t.id)
)
SELECT metric, at, station_id, channel, value FROM events WHERE value <> 0;

INSERT INTO analytics_rollups (metric, grain, bucket, dim, value)
WITH bucketed AS (
    SELECT metric, 'day' AS grain, date(at + 20700, 'unixepoch') AS bucket, station_id, channel, value
    FROM temp.analytics_recount
    UNION ALL
    SELECT metric, 'hour', strftime('%Y-%m-%d %H', at + 20700, 'unixepoch'), station_id, channel, value
    FROM temp.analytics_recount
),
dimmed AS (
    SELECT metric, grain, bucket, '' AS dim, value FROM bucketed
    UNION ALL
    SELECT metric, grain, bucket, 's' || station_id, value FROM bucketed WHERE station_id IS NOT NULL
    UNION ALL
    SELECT metric, grain, bucket, 'g' || channel, value FROM bucketed WHERE channel IS NOT NULL
)
SELECT metric, grain, bucket, dim, sum(value) FROM dimmed WHERE value <> 0
GROUP BY metric, grain, bucket, dim
HAVING sum(value) <> 0;

INSERT INTO analytics_station_days (day, station_id, rentals, rentals_completed, rentals_failed, rented_seconds,
    rental_charges, refunds)
SELECT date(at + 20700, 'unixepoch'), station_id,
       sum(iif(metric = 'rentals', value, 0)), sum(iif(metric = 'rentals_completed', value, 0)),
       sum(iif(metric = 'rentals_failed', value, 0)), sum(iif(metric = 'rented_seconds', value, 0)),
       sum(iif(metric = 'rental_charges', value, 0)), sum(iif(metric = 'refunds', value, 0))
FROM temp.analytics_recount
WHERE station_id IS NOT NULL
GROUP BY 1, 2;

DROP TABLE temp.analytics_recount;
