-- Users, profiles, balances, OTP codes and refresh-token families.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    phone TEXT UNIQUE,
    email TEXT UNIQUE,
    username TEXT UNIQUE,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    -- Only admins sign in with a password; app users sign in with OTPs.
    password_hash TEXT,
    referral_code TEXT NOT NULL UNIQUE,
    -- Kept at registration for the points domain to settle.
    signup_referral_code TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_login_at INTEGER,
    deleted_at INTEGER,
    CHECK (phone IS NOT NULL OR email IS NOT NULL OR status = 'deleted')
);

CREATE TABLE user_profiles (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    full_name TEXT,
    date_of_birth TEXT,
    address TEXT,
    avatar_url TEXT,
    updated_at INTEGER NOT NULL
);

CREATE TABLE wallets (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    balance_paisa INTEGER NOT NULL DEFAULT 0 CHECK (balance_paisa >= 0),
    currency TEXT NOT NULL DEFAULT 'NPR',
    updated_at INTEGER NOT NULL
);

CREATE TABLE user_points (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    balance INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    total_earned INTEGER NOT NULL DEFAULT 0,
    total_spent INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

-- Seed: OTPs lived in Redis with a TTL; here an expiring table.
CREATE TABLE otp_codes (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER,
    -- Set when register or login accepts the verification token minted from this code.
    verification_spent_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX otp_codes_target ON otp_codes (target, purpose, id);

-- One family per sign-in; every refresh rotates the token inside its family.
CREATE TABLE token_families (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_reason TEXT
);
CREATE INDEX token_families_user ON token_families (user_id);

CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES token_families (id),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    created_at INTEGER NOT NULL
);
