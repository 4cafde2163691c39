-- Station issue triage (stations/issues_admin.rs): priority, an assignee,
-- a resolution note, and `rejected` as an end state next to `resolved`.
-- The CHECK changes, so the table is rebuilt (rows and ids kept; nothing
-- references it) and its indexes recreated.
CREATE TABLE station_issues_new (
    id INTEGER PRIMARY KEY,
    station_id INTEGER NOT NULL REFERENCES stations (id),
    reporter_id INTEGER NOT NULL REFERENCES users (id),
    issue_type TEXT NOT NULL CHECK (issue_type IN
        ('no_power_bank', 'slot_stuck', 'damaged', 'offline', 'payment', 'dirty', 'location_wrong', 'other')),
    description TEXT NOT NULL,
    images TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(images) AND json_type(images) = 'array'),
    status TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'in_progress', 'resolved', 'dismissed', 'rejected')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    resolved_at INTEGER,
    priority TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    assignee_id INTEGER REFERENCES users (id),
    resolution_note TEXT
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
CREATE INDEX station_issues_admin_status ON station_issues (status, id);
CREATE INDEX station_issues_admin_assignee ON station_issues (assignee_id, id);

INSERT INTO notification_templates (key, title_template, body_template, updated_at) VALUES
    ('station_issue_resolved', 'Your report is resolved',
     'Thank you for reporting a problem at {{station_name}}. It is resolved: {{note}}', 0);
INSERT INTO notification_rules (template_key, channel, sms_fallback, updated_at) VALUES
    ('station_issue_resolved', 'push', 0, 0);
