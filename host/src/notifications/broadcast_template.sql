-- Operator broadcasts (admin domain): the title and body are the operator's
-- own text; in-app and push.
INSERT INTO notification_templates (key, title_template, body_template, updated_at)
    VALUES ('broadcast', '{{title}}', '{{body}}', 0);
INSERT INTO notification_rules (template_key, channel, sms_fallback, updated_at)
    VALUES ('broadcast', 'push', 0, 0);
