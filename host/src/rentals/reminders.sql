-- When the "ending soon" reminder went out, so it goes out once per due time.
ALTER TABLE rentals ADD COLUMN ending_soon_notified_at INTEGER;
