-- Promotions (migration 14, with rentals/gateway.sql): coupons and their
-- redemptions. The promotions plugin decides whether a coupon applies and
-- what it takes off; these tables hold the coupons and the usage counts the
-- host hands it.

CREATE TABLE coupons (
    id INTEGER PRIMARY KEY,
    -- Stored upper case; unique whatever the case.
    code TEXT NOT NULL COLLATE NOCASE UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    -- percentage: discount_value is basis points (1000 = 10 %);
    -- fixed: discount_value is paisa.
    discount_type TEXT NOT NULL CHECK (discount_type IN ('percentage', 'fixed')),
    discount_value INTEGER NOT NULL CHECK (discount_value > 0),
    -- Cap on a percentage discount, paisa.
    max_discount_paisa INTEGER CHECK (max_discount_paisa IS NULL OR max_discount_paisa > 0),
    min_amount_paisa INTEGER NOT NULL DEFAULT 0 CHECK (min_amount_paisa >= 0),
    valid_from INTEGER NOT NULL,
    valid_until INTEGER NOT NULL,
    -- NULL: unlimited.
    max_uses_total INTEGER CHECK (max_uses_total IS NULL OR max_uses_total > 0),
    max_uses_per_user INTEGER CHECK (max_uses_per_user IS NULL OR max_uses_per_user > 0),
    -- Listed by GET /api/promotions/coupons/active (a private code still works).
    is_public INTEGER NOT NULL DEFAULT 1,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK (valid_until > valid_from),
    CHECK (discount_type = 'fixed' OR discount_value <= 10000)
);
CREATE INDEX coupons_listed ON coupons (valid_until) WHERE is_active = 1 AND is_public = 1;

-- One row per redemption, written in the transaction that charges the
-- discounted amount (or opens the gateway payment for it). A redemption whose
-- payment was given back (failed eject, unpaid gateway payment) is released:
-- it stays for the record and no longer counts.
CREATE TABLE coupon_usages (
    id INTEGER PRIMARY KEY,
    coupon_id INTEGER NOT NULL REFERENCES coupons (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    rental_id INTEGER REFERENCES rentals (id),
    rental_order_id INTEGER REFERENCES rental_orders (id),
    -- The price before and the discount taken off it.
    amount_paisa INTEGER NOT NULL CHECK (amount_paisa >= 0),
    discount_paisa INTEGER NOT NULL CHECK (discount_paisa >= 0),
    created_at INTEGER NOT NULL,
    released_at INTEGER
);
CREATE INDEX coupon_usages_counted ON coupon_usages (coupon_id, user_id) WHERE released_at IS NULL;
CREATE INDEX coupon_usages_user ON coupon_usages (user_id, id);
CREATE INDEX coupon_usages_rental ON coupon_usages (rental_id);
CREATE INDEX coupon_usages_order ON coupon_usages (rental_order_id);
