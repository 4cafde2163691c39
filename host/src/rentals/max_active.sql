-- How many rentals a rider may have open at once is an operator setting
-- (`rentals.max_active_per_user`), checked in the writing transaction that
-- starts a rental; the index that allowed only one becomes a plain one.
DROP INDEX rentals_one_open;
CREATE INDEX rentals_open ON rentals (user_id) WHERE status IN ('pending_eject', 'active');
