-- Points for the events of contract 0.3 (profile completed, KYC approved,
-- on-time return, a referee's first rental): one row per event that was
-- awarded, written with its grant, so each event earns once.
CREATE TABLE points_event_grants (
    -- `profile_completed:{user}`, `kyc_approved:{user}`,
    -- `on_time_return:{rental}`, `referee_first_rental:{referee}`.
    event_key TEXT PRIMARY KEY,
    -- What the plugin awarded in all (0 when that award is turned off).
    points INTEGER NOT NULL CHECK (points >= 0),
    created_at INTEGER NOT NULL
);
