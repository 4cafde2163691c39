-- Operators hear about a new KYC submission in their in-app inbox, so the
-- review queue does not depend on someone polling it.
INSERT INTO notification_templates (key, title_template, body_template, updated_at) VALUES
    ('kyc_review_requested', 'KYC waiting for review',
     'A {{document_type}} was submitted for review; {{pending}} submission(s) waiting.', 0);
INSERT INTO notification_rules (template_key, channel, sms_fallback, updated_at) VALUES
    ('kyc_review_requested', 'in_app', 0, 0);
