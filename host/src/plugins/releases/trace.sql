-- Which plugin build decided a price, an award or a payment intent (issue
-- 17: canaries): `<slot>@<version>#<sha256 first 8>`, with `+r<release id>`
-- when a release decided, so a disputed charge is traced to the build that
-- made it. NULL on rows written before this column, or not decided by a plugin.
ALTER TABLE rentals ADD COLUMN plugin_release TEXT;
ALTER TABLE points_transactions ADD COLUMN plugin_release TEXT;
ALTER TABLE payment_intents ADD COLUMN plugin_release TEXT;
