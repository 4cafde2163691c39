-- Referrals (seed §7): who brought whom, one row per referee, written in the
-- same transaction as both sides' points. Following `referrer_id` from a user
-- walks the referral chain; a referrer is always an older account than its
-- referee, so the chain has no cycles.
CREATE TABLE referrals (
    id INTEGER PRIMARY KEY,
    referrer_id INTEGER NOT NULL REFERENCES users (id),
    referee_id INTEGER NOT NULL UNIQUE REFERENCES users (id),
    -- The referrer's code as the referee gave it.
    code TEXT NOT NULL,
    -- Rewards are paid at once, so a recorded referral is complete.
    status TEXT NOT NULL DEFAULT 'completed' CHECK (status IN ('completed')),
    -- 'signup': the code was given at registration; 'claim': claimed afterwards.
    source TEXT NOT NULL CHECK (source IN ('signup', 'claim')),
    referrer_points INTEGER NOT NULL DEFAULT 0 CHECK (referrer_points >= 0),
    referee_points INTEGER NOT NULL DEFAULT 0 CHECK (referee_points >= 0),
    created_at INTEGER NOT NULL,
    CHECK (referrer_id < referee_id)
);
CREATE INDEX referrals_referrer ON referrals (referrer_id, id);
