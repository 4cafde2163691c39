-- Broadcasts: one message to an audience (`crate::audiences::Audience`,
-- stored as JSON and evaluated when sending starts), sent in batches by the
-- job queue. `last_user_id` is where the next batch resumes.
CREATE TABLE broadcasts (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    audience TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'sending', 'completed', 'cancelled')),
    send_at INTEGER NOT NULL,
    -- Riders matching the audience when sending started (at creation until then).
    targeted INTEGER NOT NULL DEFAULT 0,
    sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    last_user_id INTEGER NOT NULL DEFAULT 0,
    created_by INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    updated_at INTEGER NOT NULL
);
