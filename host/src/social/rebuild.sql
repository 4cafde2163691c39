-- Recounts the leaderboard rollups and station visits from their sources.
-- Run by the migration (a database with history gets its rollups) and by
-- `social::rebuild_rollups`; the triggers in schema.sql keep them from then on.
-- Streaks and achievement progress count from the migration on.

DELETE FROM leaderboard_rollups;
DELETE FROM social_station_visits;

INSERT INTO social_station_visits (user_id, period, station_id)
WITH done AS (
    SELECT user_id, station_id, COALESCE(returned_at, updated_at) AS at FROM rentals WHERE status = 'completed'
)
SELECT user_id, 'all', station_id FROM done
UNION SELECT user_id, 'w' || date(at + 20700, 'unixepoch', '-6 days', 'weekday 1'), station_id FROM done
UNION SELECT user_id, 'm' || strftime('%Y-%m', at + 20700, 'unixepoch'), station_id FROM done;

INSERT INTO leaderboard_rollups (category, period, user_id, value, hidden)
WITH events (user_id, category, amount, at) AS (
    SELECT user_id, 'rentals_completed', 1, COALESCE(returned_at, updated_at) FROM rentals WHERE status = 'completed'
    UNION ALL
    SELECT user_id, 'on_time_returns', 1, COALESCE(returned_at, updated_at) FROM rentals
    WHERE status = 'completed' AND (due_at IS NULL OR COALESCE(returned_at, updated_at) <= due_at)
    UNION ALL
    SELECT user_id, 'points_earned', points, created_at FROM points_transactions
    WHERE direction = 'credit' AND kind = 'earned'
    UNION ALL
    SELECT referrer_id, 'referrals', 1, created_at FROM referrals
),
keyed AS (
    SELECT user_id, category, amount, 'all' AS period FROM events
    UNION ALL SELECT user_id, category, amount, 'w' || date(at + 20700, 'unixepoch', '-6 days', 'weekday 1') FROM events
    UNION ALL SELECT user_id, category, amount, 'm' || strftime('%Y-%m', at + 20700, 'unixepoch') FROM events
),
counted AS (
    SELECT category, period, user_id, sum(amount) AS value FROM keyed GROUP BY category, period, user_id
    UNION ALL
    SELECT 'distinct_stations', period, user_id, count(*) FROM social_station_visits GROUP BY period, user_id
)
SELECT c.category, c.period, c.user_id, c.value, COALESCE(p.hide_from_leaderboard, 0)
FROM counted c LEFT JOIN social_preferences p ON p.user_id = c.user_id;
