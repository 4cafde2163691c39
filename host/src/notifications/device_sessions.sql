-- The sign-in session (token family) that last registered each device, so
-- signing out of that session stops its pushes.
ALTER TABLE user_devices ADD COLUMN session_id TEXT;
