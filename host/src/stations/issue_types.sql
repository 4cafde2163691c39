-- The spec's station issue types `dirty` and `location_wrong` join ours.
-- SQLite cannot change a CHECK in place: the table is rebuilt, rows and ids kept.
CREATE TABLE station_issues_new (
    id INTEGER PRIMARY KEY,
    station_id INTEGER NOT NULL REFERENCES stations (id),
    reporter_id INTEGER NOT NULL REFERENCES users (id),
    issue_type TEXT NOT NULL CHECK (issue_type IN
        ('no_power_bank', 'slot_stuck', 'damaged', 'offline', 'payment', 'dirty', 'location_wrong', 'other')),
    description TEXT NOT NULL,
    -- JSON array of image URLs, each one of the reporter's own uploads.
    images TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(images) AND json_type(images) = 'array'),
    status TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'in_progress', 'resolved', 'dismissed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    resolved_at INTEGER
);
INSERT INTO station_issues_new (id, station_id, reporter_id, issue_type, description, images, status, created_at,
    updated_at, resolved_at)
SELECT id, station_id, reporter_id, issue_type, description, images, status, created_at, updated_at, resolved_at
FROM station_issues;
DROP TABLE station_issues;
ALTER TABLE station_issues_new RENAME TO station_issues;
CREATE INDEX station_issues_reporter ON station_issues (reporter_id, id);
-- The public list shows only unresolved issues of one station.
CREATE INDEX station_issues_station_open ON station_issues (station_id, id)
    WHERE status IN ('open', 'acknowledged', 'in_progress');
