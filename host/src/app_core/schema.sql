-- App core: versions, banners, countries, uploads, and shared infrastructure tables.

CREATE TABLE app_versions (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL CHECK (platform IN ('android', 'ios')),
    version TEXT NOT NULL,
    min_supported_version TEXT NOT NULL,
    download_url TEXT NOT NULL,
    is_mandatory INTEGER NOT NULL DEFAULT 0,
    release_notes TEXT NOT NULL DEFAULT '',
    released_at INTEGER NOT NULL,
    UNIQUE (platform, version)
);

CREATE TABLE banners (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    image_url TEXT NOT NULL,
    link_url TEXT,
    display_order INTEGER NOT NULL DEFAULT 0,
    is_active INTEGER NOT NULL DEFAULT 1,
    valid_from INTEGER NOT NULL,
    valid_until INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX banners_active ON banners (is_active, valid_from, valid_until);

CREATE TABLE countries (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    code TEXT NOT NULL UNIQUE,
    dial_code TEXT NOT NULL,
    flag_url TEXT,
    is_active INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE media_uploads (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users (id),
    storage_key TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    original_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX media_uploads_user ON media_uploads (user_id, id);

-- Seed's AppConfig: operator-tunable settings.
CREATE TABLE app_config (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Server secrets generated on first start (JWT signing key, OTP pepper).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Fixed-window rate limit counters, shared by every limiter in the host.
CREATE TABLE rate_limit_windows (
    key TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    hits INTEGER NOT NULL
);
