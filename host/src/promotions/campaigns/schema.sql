-- Campaigns (migration 32): a time window, an audience, an offer the
-- promotions plugin judges and prices, limits, and one row per redemption.
-- The host owns the window, the audience (evaluated when an offer is asked
-- for), the status and the counts; the plugin decides what an offer is worth.

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    -- `crate::audiences::Audience` as JSON.
    audience_json TEXT NOT NULL,
    offer_kind TEXT NOT NULL CHECK (offer_kind IN ('rental_discount', 'points_multiplier', 'coupon_grant')),
    -- The offer as the admin API takes it (`OfferIn`).
    offer_json TEXT NOT NULL,
    -- NULL: unlimited.
    limit_total INTEGER CHECK (limit_total IS NULL OR limit_total > 0),
    limit_per_user INTEGER CHECK (limit_per_user IS NULL OR limit_per_user > 0),
    banner_title TEXT,
    banner_image_url TEXT,
    push_at_start INTEGER NOT NULL DEFAULT 0,
    -- What operators set; `scheduled`, `running` and `ended` follow from the window.
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'stopped')),
    -- Set by the start job once coupons are issued and the push is sent.
    started_job_at INTEGER,
    created_by INTEGER REFERENCES users (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX campaigns_live ON campaigns (ends_at) WHERE status = 'active';

-- One row per redemption, written in the transaction that charges the
-- discounted rental or credits the top-up; limits count the rows that are
-- not released (a rental refunded after a failed eject releases its row).
CREATE TABLE campaign_redemptions (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    rental_id INTEGER REFERENCES rentals (id),
    -- The top-up's `transactions` row.
    transaction_id INTEGER REFERENCES transactions (id),
    -- A gateway-paid rental is redeemed when its order opens.
    rental_order_id INTEGER REFERENCES rental_orders (id),
    -- The personal coupon issued by a coupon grant.
    coupon_id INTEGER REFERENCES coupons (id),
    discount_paisa INTEGER NOT NULL DEFAULT 0 CHECK (discount_paisa >= 0),
    points INTEGER NOT NULL DEFAULT 0 CHECK (points >= 0),
    created_at INTEGER NOT NULL,
    released_at INTEGER
);
CREATE INDEX campaign_redemptions_counted ON campaign_redemptions (campaign_id, user_id) WHERE released_at IS NULL;
CREATE INDEX campaign_redemptions_rental ON campaign_redemptions (rental_id);
CREATE INDEX campaign_redemptions_order ON campaign_redemptions (rental_order_id);

-- A coupon issued by a campaign belongs to one rider: nobody else can use it.
ALTER TABLE coupons ADD COLUMN owner_user_id INTEGER REFERENCES users (id);
ALTER TABLE coupons ADD COLUMN campaign_id INTEGER REFERENCES campaigns (id);
CREATE INDEX coupons_owner ON coupons (owner_user_id) WHERE owner_user_id IS NOT NULL;

INSERT INTO notification_templates (key, title_template, body_template, updated_at) VALUES
    ('campaign_started', '{{name}}', '{{message}}', 0);
