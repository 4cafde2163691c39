-- Notifications (seed §6): templates, delivery rules, in-app rows, the
-- devices push goes to, and a log of every push and SMS attempt.

CREATE TABLE notification_templates (
    key TEXT PRIMARY KEY,
    -- `{{var}}` placeholders are filled from the variables `notify` is given.
    title_template TEXT NOT NULL,
    body_template TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    updated_at INTEGER NOT NULL
);

CREATE TABLE notification_rules (
    template_key TEXT PRIMARY KEY REFERENCES notification_templates (key),
    -- `in_app`: the in-app row only; `push`: also a push to the user's devices.
    channel TEXT NOT NULL CHECK (channel IN ('in_app', 'push')),
    -- When push cannot reach the user (no device, FCM down), send an SMS instead.
    sms_fallback INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    template_key TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The template variables, as a JSON object, for the app to deep-link with.
    data TEXT NOT NULL DEFAULT '{}',
    read_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_user_unread ON notifications (user_id, id) WHERE read_at IS NULL;

-- One row per app install; an FCM token belongs to one install and so to one
-- account at a time (the unique index enforces it).
CREATE TABLE user_devices (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    device_id TEXT NOT NULL,
    fcm_token TEXT NOT NULL UNIQUE,
    platform TEXT NOT NULL CHECK (platform IN ('android', 'ios')),
    app_version TEXT,
    -- Cleared when FCM says the token is dead; registering again sets it.
    is_active INTEGER NOT NULL DEFAULT 1,
    deactivated_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (user_id, device_id)
);
CREATE INDEX user_devices_active ON user_devices (user_id) WHERE is_active = 1;

CREATE TABLE sms_fcm_log (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    -- Not a foreign key: the user may delete the notification, the log stays.
    notification_id INTEGER,
    channel TEXT NOT NULL CHECK (channel IN ('fcm', 'sms')),
    -- The device row for FCM; the phone number for SMS.
    device_id INTEGER,
    recipient TEXT,
    status TEXT NOT NULL CHECK (status IN ('sent', 'failed', 'invalid_token', 'skipped')),
    -- HTTP status of the provider's answer, when there was one.
    provider_status INTEGER,
    provider_response TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX sms_fcm_log_user ON sms_fcm_log (user_id, id);
CREATE INDEX sms_fcm_log_notification ON sms_fcm_log (notification_id);

INSERT INTO notification_templates (key, title_template, body_template, updated_at) VALUES
    ('rental_started', 'Rental started',
     'Power bank {{power_bank}} is yours from {{station_name}}. Return it to any station.', 0),
    ('rental_ending_soon', 'Rental ending soon',
     'Your rental of {{power_bank}} ends in {{minutes_left}} minutes. Return it to any station to avoid extra charges.', 0),
    ('rental_overdue', 'Rental overdue',
     'Power bank {{power_bank}} is {{overdue_minutes}} minutes overdue. Late charges apply until it is returned.', 0),
    ('rental_returned', 'Power bank returned',
     'Thanks! {{power_bank}} was returned at {{station_name}}. Total: NPR {{amount}}.', 0),
    ('topup_credited', 'Wallet topped up',
     'NPR {{amount}} was added to your wallet. New balance: NPR {{balance}}.', 0),
    ('kyc_approved', 'KYC verified',
     'Your identity documents are verified. You can now rent power banks.', 0),
    ('kyc_rejected', 'KYC not approved',
     'We could not verify your documents: {{reason}}. Please submit them again.', 0),
    ('points_awarded', 'You earned {{points}} points',
     '{{points}} points for {{reason}}. Balance: {{balance}} points.', 0);

INSERT INTO notification_rules (template_key, channel, sms_fallback, updated_at) VALUES
    ('rental_started', 'push', 0, 0),
    ('rental_ending_soon', 'push', 1, 0),
    ('rental_overdue', 'push', 1, 0),
    ('rental_returned', 'push', 0, 0),
    ('topup_credited', 'push', 1, 0),
    ('kyc_approved', 'push', 1, 0),
    ('kyc_rejected', 'push', 1, 0),
    ('points_awarded', 'in_app', 0, 0);
