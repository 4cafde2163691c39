-- Builds uploaded for a plugins.toml slot (issue 17). The component itself
-- is stored under the data dir by its sha256; a rejected upload keeps only
-- its row, with the reason.
CREATE TABLE plugin_releases (
    id INTEGER PRIMARY KEY,
    plugin TEXT NOT NULL,
    -- staged: checked and kept; rejected: refused at upload (see reason);
    -- active: serving the slot; retired: served once, kept for rollback.
    state TEXT NOT NULL CHECK (state IN ('staged', 'rejected', 'active', 'retired')),
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    -- The plugin's config table, as a JSON object of strings.
    config TEXT NOT NULL,
    -- What the build reported in `info` (NULL when rejected before it ran).
    plugin_name TEXT,
    version TEXT,
    contract TEXT,
    -- Hex ed25519 signature over the sha256, and the trusted key that verified it.
    signature TEXT,
    signed_by TEXT,
    reason TEXT,
    created_by INTEGER REFERENCES users (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX plugin_releases_by_plugin ON plugin_releases (plugin, id);

-- Every change of what serves a slot, newest last: the last row of a plugin
-- is what serves it (release_id NULL: the file plugins.toml names).
CREATE TABLE plugin_promotions (
    id INTEGER PRIMARY KEY,
    plugin TEXT NOT NULL,
    -- No foreign key: an old release may be pruned while its history stays.
    release_id INTEGER,
    by_user INTEGER REFERENCES users (id),
    at INTEGER NOT NULL
);
CREATE INDEX plugin_promotions_by_plugin ON plugin_promotions (plugin, id);
