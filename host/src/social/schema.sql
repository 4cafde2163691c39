-- Social (issue 16): leaderboard rollups and achievements.
--
-- The rollups are kept by triggers on the tables where the counted events
-- are written (rentals, points_transactions, referrals, wallet_transactions):
-- a trigger runs inside whatever transaction writes its row, so no code
-- path, present or future, can change a source without its rollup, and no
-- other domain's code had to change. Each source trigger writes a row into
-- `social_activity`, whose trigger applies it to the rollups of the three
-- periods and to achievement progress, then deletes it.
--
-- Periods: 'all', 'w' || the Monday of the week and 'm' || the month, both
-- in Asia/Kathmandu (UTC+5:45 = 20700 s, no daylight saving).

CREATE TABLE social_preferences (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    hide_from_leaderboard INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

CREATE TABLE leaderboard_rollups (
    category TEXT NOT NULL CHECK (category IN
        ('rentals_completed', 'on_time_returns', 'points_earned', 'referrals', 'distinct_stations')),
    period TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id),
    value INTEGER NOT NULL,
    -- The user's preference, copied so that a page and a rank are one index range.
    hidden INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (category, period, user_id)
) WITHOUT ROWID;
CREATE INDEX leaderboard_rank ON leaderboard_rollups (category, period, hidden, value DESC, user_id);
CREATE INDEX leaderboard_rollups_user ON leaderboard_rollups (user_id);

-- The stations each user rented from, per period (for distinct stations).
CREATE TABLE social_station_visits (
    user_id INTEGER NOT NULL,
    period TEXT NOT NULL,
    station_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, period, station_id)
) WITHOUT ROWID;

-- Consecutive Kathmandu weeks with a completed rental.
CREATE TABLE social_streaks (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    -- Monday of the last week with a rental, YYYY-MM-DD.
    last_week TEXT NOT NULL,
    current INTEGER NOT NULL
);

CREATE TABLE achievements (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    counter TEXT NOT NULL CHECK (counter IN ('rentals_completed', 'on_time_returns', 'points_earned', 'referrals',
        'distinct_stations', 'topups', 'week_streak')),
    threshold INTEGER NOT NULL CHECK (threshold > 0),
    reward_points INTEGER NOT NULL CHECK (reward_points >= 0),
    icon_upload_id INTEGER REFERENCES media_uploads (id),
    -- Events count while the achievement is active and inside the window.
    starts_at INTEGER,
    ends_at INTEGER,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at)
);

CREATE TABLE achievement_texts (
    achievement_id INTEGER NOT NULL REFERENCES achievements (id),
    lang TEXT NOT NULL CHECK (lang IN ('en', 'ne')),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (achievement_id, lang)
) WITHOUT ROWID;

CREATE TABLE achievement_progress (
    user_id INTEGER NOT NULL REFERENCES users (id),
    achievement_id INTEGER NOT NULL REFERENCES achievements (id),
    progress INTEGER NOT NULL,
    unlocked_at INTEGER,
    notified_at INTEGER,
    claimed_at INTEGER,
    PRIMARY KEY (user_id, achievement_id)
) WITHOUT ROWID;
CREATE INDEX achievement_progress_achievement ON achievement_progress (achievement_id);

-- The funnel: one row per counted event; `period` NULL means every period.
CREATE TABLE social_activity (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    counter TEXT NOT NULL,
    amount INTEGER NOT NULL,
    period TEXT,
    occurred_at INTEGER NOT NULL
);

CREATE TRIGGER social_activity_apply AFTER INSERT ON social_activity BEGIN
    INSERT INTO leaderboard_rollups (category, period, user_id, value, hidden)
    SELECT new.counter, p.period, new.user_id, new.amount,
           COALESCE((SELECT hide_from_leaderboard FROM social_preferences WHERE user_id = new.user_id), 0)
    FROM (SELECT 'all' AS period
          UNION ALL SELECT 'w' || date(new.occurred_at + 20700, 'unixepoch', '-6 days', 'weekday 1')
          UNION ALL SELECT 'm' || strftime('%Y-%m', new.occurred_at + 20700, 'unixepoch')) p
    WHERE new.counter IN ('rentals_completed', 'on_time_returns', 'points_earned', 'referrals', 'distinct_stations')
      AND (new.period IS NULL OR new.period = p.period)
    ON CONFLICT (category, period, user_id) DO UPDATE SET value = value + excluded.value;

    INSERT INTO achievement_progress (user_id, achievement_id, progress)
    SELECT new.user_id, a.id, new.amount FROM achievements a
    WHERE (new.period IS NULL OR new.period = 'all')
      AND a.counter = new.counter AND a.is_active = 1
      AND (a.starts_at IS NULL OR a.starts_at <= new.occurred_at)
      AND (a.ends_at IS NULL OR new.occurred_at < a.ends_at)
    ON CONFLICT (user_id, achievement_id) DO UPDATE SET progress =
        CASE WHEN new.counter = 'week_streak' THEN max(progress, excluded.progress) ELSE progress + excluded.progress END;

    UPDATE achievement_progress SET unlocked_at = new.occurred_at
    WHERE user_id = new.user_id AND unlocked_at IS NULL
      AND progress >= (SELECT threshold FROM achievements a WHERE a.id = achievement_id AND a.counter = new.counter);

    DELETE FROM social_activity WHERE id = new.id;
END;

-- An unlock is told to the rider by a durable job (the notifications domain
-- renders and delivers it); the row is what `core::jobs::enqueue` writes.
CREATE TRIGGER achievement_unlocked AFTER UPDATE OF unlocked_at ON achievement_progress
WHEN old.unlocked_at IS NULL AND new.unlocked_at IS NOT NULL BEGIN
    INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_at, dedupe_key, created_at, updated_at)
    VALUES ('social.achievement_unlocked',
            json_object('user_id', new.user_id, 'achievement_id', new.achievement_id),
            'pending', 0, 10, unixepoch(), 'achievement_unlocked:' || new.user_id || ':' || new.achievement_id,
            unixepoch(), unixepoch())
    ON CONFLICT (dedupe_key) WHERE status IN ('pending', 'running') DO NOTHING;
END;

CREATE TRIGGER social_rental_completed AFTER UPDATE OF status ON rentals
WHEN new.status = 'completed' AND old.status <> 'completed' BEGIN
    INSERT INTO social_activity (user_id, counter, amount, occurred_at)
    VALUES (new.user_id, 'rentals_completed', 1, COALESCE(new.returned_at, new.updated_at));

    INSERT INTO social_activity (user_id, counter, amount, occurred_at)
    SELECT new.user_id, 'on_time_returns', 1, COALESCE(new.returned_at, new.updated_at)
    WHERE new.due_at IS NULL OR COALESCE(new.returned_at, new.updated_at) <= new.due_at;

    -- A station counts once per period: the first rental there in it.
    INSERT INTO social_activity (user_id, counter, amount, period, occurred_at)
    SELECT new.user_id, 'distinct_stations', 1, p.period, COALESCE(new.returned_at, new.updated_at)
    FROM (SELECT 'all' AS period
          UNION ALL SELECT 'w' || date(COALESCE(new.returned_at, new.updated_at) + 20700, 'unixepoch', '-6 days', 'weekday 1')
          UNION ALL SELECT 'm' || strftime('%Y-%m', COALESCE(new.returned_at, new.updated_at) + 20700, 'unixepoch')) p
    WHERE NOT EXISTS (SELECT 1 FROM social_station_visits v
                      WHERE v.user_id = new.user_id AND v.period = p.period AND v.station_id = new.station_id);
    INSERT OR IGNORE INTO social_station_visits (user_id, period, station_id)
    SELECT new.user_id, p.period, new.station_id
    FROM (SELECT 'all' AS period
          UNION ALL SELECT 'w' || date(COALESCE(new.returned_at, new.updated_at) + 20700, 'unixepoch', '-6 days', 'weekday 1')
          UNION ALL SELECT 'm' || strftime('%Y-%m', COALESCE(new.returned_at, new.updated_at) + 20700, 'unixepoch')) p;

    -- The streak grows when this week follows the last week with a rental.
    INSERT INTO social_streaks (user_id, last_week, current)
    VALUES (new.user_id, date(COALESCE(new.returned_at, new.updated_at) + 20700, 'unixepoch', '-6 days', 'weekday 1'), 1)
    ON CONFLICT (user_id) DO UPDATE SET
        current = CASE WHEN excluded.last_week <= last_week THEN current
                       WHEN date(last_week, '+7 days') = excluded.last_week THEN current + 1
                       ELSE 1 END,
        last_week = max(last_week, excluded.last_week);
    INSERT INTO social_activity (user_id, counter, amount, period, occurred_at)
    SELECT user_id, 'week_streak', current, 'all', COALESCE(new.returned_at, new.updated_at)
    FROM social_streaks WHERE user_id = new.user_id;
END;

CREATE TRIGGER social_points_earned AFTER INSERT ON points_transactions
WHEN new.direction = 'credit' AND new.kind = 'earned' BEGIN
    INSERT INTO social_activity (user_id, counter, amount, occurred_at)
    VALUES (new.user_id, 'points_earned', new.points, new.created_at);
END;

CREATE TRIGGER social_referral AFTER INSERT ON referrals BEGIN
    INSERT INTO social_activity (user_id, counter, amount, occurred_at)
    VALUES (new.referrer_id, 'referrals', 1, new.created_at);
END;

CREATE TRIGGER social_topup AFTER INSERT ON wallet_transactions
WHEN new.kind = 'topup' AND new.direction = 'credit' BEGIN
    INSERT INTO social_activity (user_id, counter, amount, occurred_at)
    VALUES (new.user_id, 'topups', 1, new.created_at);
END;

INSERT INTO notification_templates (key, title_template, body_template, updated_at) VALUES
    ('achievement_unlocked', 'Achievement unlocked: {{name}}',
     'You unlocked {{name}}. Claim your {{reward_points}} points in the app.', 0);
INSERT INTO notification_rules (template_key, channel, sms_fallback, updated_at) VALUES
    ('achievement_unlocked', 'push', 0, 0);
