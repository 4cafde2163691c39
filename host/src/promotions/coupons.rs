//! Coupons as the rest of the host uses them: found by code (any case),
//! applied through the promotions plugin with usage counts read from the
//! database, redeemed in the transaction that charges the discounted price,
//! and released when that payment is given back.
//!
//! Why the limits are checked twice: the plugin call is async and runs before
//! the paying transaction, so two users may both be told "one use left". The
//! paying transaction checks the counts again (writers are serialised, so it
//! sees every redemption committed before it) and refuses the second one.

use axum::http::StatusCode;
use powerbank_plugin_runtime::types::{
    CallContext, Coupon, CouponDiscount, CouponRejection, CouponUsage, OrderSummary,
};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::{
    core::{ApiError, money::format_npr, now_ts, ts_to_rfc3339},
    state::AppState,
};

/// A `coupons` row.
#[derive(Debug, Clone)]
pub struct CouponRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub description: String,
    /// `percentage` or `fixed`.
    pub discount_type: String,
    /// Basis points (percentage) or paisa (fixed).
    pub discount_value: i64,
    pub max_discount_paisa: Option<i64>,
    pub min_amount_paisa: i64,
    pub valid_from: i64,
    pub valid_until: i64,
    pub max_uses_total: Option<i64>,
    pub max_uses_per_user: Option<i64>,
    pub is_public: bool,
    pub is_active: bool,
    /// A campaign's personal coupon: only this rider may use it.
    pub owner_user_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const COUPON_COLUMNS: &str = "id, code, name, description, discount_type, discount_value, max_discount_paisa,
    min_amount_paisa, valid_from, valid_until, max_uses_total, max_uses_per_user, is_public, is_active, owner_user_id,
    created_at, updated_at";

/// The one mapping of a `coupons` row ([`COUPON_COLUMNS`]), by column name.
pub fn coupon_from_row(r: &Row<'_>) -> rusqlite::Result<CouponRow> {
    Ok(CouponRow {
        id: r.get("id")?,
        code: r.get("code")?,
        name: r.get("name")?,
        description: r.get("description")?,
        discount_type: r.get("discount_type")?,
        discount_value: r.get("discount_value")?,
        max_discount_paisa: r.get("max_discount_paisa")?,
        min_amount_paisa: r.get("min_amount_paisa")?,
        valid_from: r.get("valid_from")?,
        valid_until: r.get("valid_until")?,
        max_uses_total: r.get("max_uses_total")?,
        max_uses_per_user: r.get("max_uses_per_user")?,
        is_public: r.get("is_public")?,
        is_active: r.get("is_active")?,
        owner_user_id: r.get("owner_user_id")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// The coupon with this code, whatever its case (the column is NOCASE).
pub fn find_by_code(c: &Connection, code: &str) -> Result<Option<CouponRow>, ApiError> {
    Ok(c.query_row(&format!("SELECT {COUPON_COLUMNS} FROM coupons WHERE code = ?1"), [code.trim()], coupon_from_row)
        .optional()?)
}

fn find_by_id(c: &Connection, id: i64) -> Result<Option<CouponRow>, ApiError> {
    Ok(c.query_row(&format!("SELECT {COUPON_COLUMNS} FROM coupons WHERE id = ?1"), [id], coupon_from_row).optional()?)
}

/// Redemptions that count: (all users, this user).
pub fn usage_counts(c: &Connection, coupon_id: i64, user_id: i64) -> Result<(i64, i64), ApiError> {
    Ok(c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(user_id = ?2), 0) FROM coupon_usages
         WHERE coupon_id = ?1 AND released_at IS NULL",
        params![coupon_id, user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

fn as_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

impl CouponRow {
    /// The coupon as the promotions plugin takes it.
    pub fn to_plugin(&self) -> Coupon {
        let discount = if self.discount_type == "percentage" {
            CouponDiscount::PercentageBp(as_u32(self.discount_value))
        } else {
            CouponDiscount::FixedPaisa(self.discount_value)
        };
        Coupon {
            code: self.code.clone(),
            discount,
            valid_from_unix_ms: self.valid_from.saturating_mul(1000),
            valid_until_unix_ms: self.valid_until.saturating_mul(1000),
            min_amount_paisa: self.min_amount_paisa,
            max_uses_total: self.max_uses_total.map(as_u32),
            max_uses_per_user: self.max_uses_per_user.map(as_u32),
            max_discount_paisa: self.max_discount_paisa,
        }
    }
}

/// A 422 with a code the app can act on.
fn refused(code: &'static str, coupon: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).with_details(json!({ "coupon_code": coupon }))
}

pub fn unknown(coupon: &str) -> ApiError {
    refused("coupon_invalid", coupon, format!("{coupon} is not a valid coupon code"))
}

/// The plugin's (or the paying transaction's) reason to refuse a coupon.
pub fn rejection_error(coupon: &str, rejection: CouponRejection) -> ApiError {
    match rejection {
        CouponRejection::NotYetValid => {
            refused("coupon_not_yet_valid", coupon, format!("coupon {coupon} cannot be used yet"))
        }
        CouponRejection::Expired => refused("coupon_expired", coupon, format!("coupon {coupon} has expired")),
        CouponRejection::BelowMinimumAmount(min) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "coupon_below_minimum",
            format!("coupon {coupon} needs an amount of at least NPR {}", format_npr(min)),
        )
        .with_details(json!({ "coupon_code": coupon, "min_amount_paisa": min })),
        CouponRejection::UsageLimitReached => {
            refused("coupon_usage_limit_reached", coupon, format!("coupon {coupon} has been used up"))
        }
        CouponRejection::UserLimitReached => refused(
            "coupon_user_limit_reached",
            coupon,
            format!("you have already used coupon {coupon} as many times as it allows"),
        ),
        CouponRejection::InvalidCoupon(reason) => {
            refused("coupon_invalid", coupon, format!("coupon {coupon} cannot be applied: {reason}"))
        }
    }
}

/// A coupon the plugin accepted for an amount.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppliedCoupon {
    #[serde(skip)]
    pub coupon_id: i64,
    pub coupon_code: String,
    /// The price before the coupon, paisa.
    pub amount_paisa: i64,
    pub discount_paisa: i64,
    /// What is left to pay, paisa.
    pub final_amount_paisa: i64,
}

/// Applies `code` to `amount_paisa` through the promotions plugin, with the
/// caller's and everyone's redemptions so far. Refusals are 422s with a
/// `coupon_*` code. Nothing is recorded: [`redeem`] does that when the
/// discounted price is paid.
pub async fn apply(
    state: &AppState,
    user_id: i64,
    code: &str,
    amount_paisa: i64,
    package_code: Option<String>,
    station_sn: Option<String>,
) -> Result<AppliedCoupon, ApiError> {
    let code = code.trim().to_uppercase();
    let lookup = code.clone();
    let found = state
        .db
        .read(move |c| match find_by_code(c, &lookup)? {
            // Another rider's personal coupon is as good as an unknown code.
            Some(coupon) if coupon.is_active && coupon.owner_user_id.is_none_or(|o| o == user_id) => {
                let counts = usage_counts(c, coupon.id, user_id)?;
                Ok(Some((coupon, counts)))
            }
            _ => Ok(None),
        })
        .await?;
    let (coupon, (total, mine)) = found.ok_or_else(|| unknown(&code))?;
    let order = OrderSummary {
        amount_paisa,
        package_code,
        context: CallContext {
            user_id: Some(user_id.to_string()),
            station_sn,
            now_unix_ms: chrono::Utc::now().timestamp_millis(),
        },
    };
    let usage = CouponUsage { total_used: as_u32(total), used_by_user: as_u32(mine) };
    let applied = state
        .plugins
        .promotions()
        .apply_coupon(coupon.to_plugin(), order, usage)
        .await?
        .map_err(|r| rejection_error(&coupon.code, r))?;
    Ok(AppliedCoupon {
        coupon_id: coupon.id,
        coupon_code: coupon.code,
        amount_paisa,
        discount_paisa: applied.discount_paisa,
        final_amount_paisa: applied.final_amount_paisa,
    })
}

/// Records a redemption inside the paying transaction, after checking again
/// that the coupon is live and its limits hold counting every redemption
/// committed so far.
pub fn redeem(
    tx: &Transaction<'_>,
    user_id: i64,
    applied: &AppliedCoupon,
    rental_id: Option<i64>,
    rental_order_id: Option<i64>,
) -> Result<(), ApiError> {
    let now = now_ts();
    let code = applied.coupon_code.as_str();
    let coupon = find_by_id(tx, applied.coupon_id)?
        .filter(|c| c.is_active && c.owner_user_id.is_none_or(|o| o == user_id))
        .ok_or_else(|| unknown(code))?;
    if now < coupon.valid_from {
        return Err(rejection_error(code, CouponRejection::NotYetValid));
    }
    if now > coupon.valid_until {
        return Err(rejection_error(code, CouponRejection::Expired));
    }
    let (total, mine) = usage_counts(tx, coupon.id, user_id)?;
    if coupon.max_uses_total.is_some_and(|max| total >= max) {
        return Err(rejection_error(code, CouponRejection::UsageLimitReached));
    }
    if coupon.max_uses_per_user.is_some_and(|max| mine >= max) {
        return Err(rejection_error(code, CouponRejection::UserLimitReached));
    }
    tx.execute(
        "INSERT INTO coupon_usages (coupon_id, user_id, rental_id, rental_order_id, amount_paisa, discount_paisa,
            created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![coupon.id, user_id, rental_id, rental_order_id, applied.amount_paisa, applied.discount_paisa, now],
    )?;
    Ok(())
}

/// Releases the redemptions (coupon and campaign) of a rental whose payment
/// was given back.
pub fn release_for_rental(tx: &Transaction<'_>, rental_id: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE coupon_usages SET released_at = ?2 WHERE rental_id = ?1 AND released_at IS NULL",
        params![rental_id, now_ts()],
    )?;
    super::campaigns::apply::release_for_rental(tx, rental_id)
}

/// Releases the redemptions (coupon and campaign) of a gateway rental order
/// that was never used.
pub fn release_for_order(tx: &Transaction<'_>, order_id: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE coupon_usages SET released_at = ?2 WHERE rental_order_id = ?1 AND released_at IS NULL",
        params![order_id, now_ts()],
    )?;
    super::campaigns::apply::release_for_order(tx, order_id)
}

/// Counts a released rental redemption again: the rental was charged after
/// all (a late eject). Not limit-checked: the user held the coupon already.
pub fn restore_for_rental(tx: &Transaction<'_>, rental_id: i64) -> Result<(), ApiError> {
    tx.execute("UPDATE coupon_usages SET released_at = NULL WHERE rental_id = ?1", [rental_id])?;
    super::campaigns::apply::restore_for_rental(tx, rental_id)
}

/// Links an order's redemption to the rental the order started.
pub fn attach_rental(tx: &Transaction<'_>, rental_order_id: i64, rental_id: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE coupon_usages SET rental_id = ?2 WHERE rental_order_id = ?1",
        params![rental_order_id, rental_id],
    )?;
    super::campaigns::apply::attach_rental(tx, rental_order_id, rental_id)
}

/// A coupon as operators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CouponOut {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub description: String,
    /// `percentage` or `fixed`.
    pub discount_type: String,
    /// Percentage coupons: basis points (1000 = 10 %).
    pub percentage_bp: Option<i64>,
    /// Fixed coupons: paisa taken off.
    pub fixed_paisa: Option<i64>,
    pub max_discount_paisa: Option<i64>,
    pub min_amount_paisa: i64,
    pub valid_from: String,
    pub valid_until: String,
    /// Null: unlimited.
    pub max_uses_total: Option<i64>,
    /// Null: unlimited.
    pub max_uses_per_user: Option<i64>,
    pub is_public: bool,
    pub is_active: bool,
    /// Redemptions that count (released ones do not).
    pub times_used: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl CouponOut {
    pub fn new(c: CouponRow, times_used: i64) -> Self {
        let percentage = c.discount_type == "percentage";
        CouponOut {
            id: c.id,
            percentage_bp: percentage.then_some(c.discount_value),
            fixed_paisa: (!percentage).then_some(c.discount_value),
            code: c.code,
            name: c.name,
            description: c.description,
            discount_type: c.discount_type,
            max_discount_paisa: c.max_discount_paisa,
            min_amount_paisa: c.min_amount_paisa,
            valid_from: ts_to_rfc3339(c.valid_from),
            valid_until: ts_to_rfc3339(c.valid_until),
            max_uses_total: c.max_uses_total,
            max_uses_per_user: c.max_uses_per_user,
            is_public: c.is_public,
            is_active: c.is_active,
            times_used,
            created_at: ts_to_rfc3339(c.created_at),
            updated_at: ts_to_rfc3339(c.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_is_a_422_with_its_own_code() {
        let cases = [
            (CouponRejection::NotYetValid, "coupon_not_yet_valid"),
            (CouponRejection::Expired, "coupon_expired"),
            (CouponRejection::BelowMinimumAmount(5_000), "coupon_below_minimum"),
            (CouponRejection::UsageLimitReached, "coupon_usage_limit_reached"),
            (CouponRejection::UserLimitReached, "coupon_user_limit_reached"),
            (CouponRejection::InvalidCoupon("x".into()), "coupon_invalid"),
        ];
        for (rejection, code) in cases {
            let e = rejection_error("SAVE10", rejection);
            assert_eq!((e.status, e.code), (StatusCode::UNPROCESSABLE_ENTITY, code));
            assert_eq!(e.details.as_ref().unwrap()["coupon_code"], "SAVE10");
        }
        let e = rejection_error("SAVE10", CouponRejection::BelowMinimumAmount(5_000));
        assert_eq!(e.details.unwrap()["min_amount_paisa"], 5_000);
    }

    /// The paying transaction's own check, without the plugin: two
    /// redemptions told "one use left" cannot both be written.
    #[tokio::test]
    async fn the_paying_transaction_rechecks_the_limits() {
        use crate::{
            core::Role,
            users::{auth::create_user, identifier::Identifier},
        };
        let dir = tempfile::tempdir().unwrap();
        let db = crate::schema::open_db(&dir.path().join("coupons.db"), 1).unwrap();
        let (a, b, coupon_id) = db
            .write(|tx| {
                let now = now_ts();
                let user =
                    |phone: &str| create_user(tx, &Identifier::Phone(phone.into()), Role::User, None, None, None, now);
                let (a, b) = (user("+9779800000201")?, user("+9779800000202")?);
                tx.execute(
                    "INSERT INTO coupons (code, discount_type, discount_value, valid_from, valid_until,
                        max_uses_total, max_uses_per_user, created_at, updated_at)
                     VALUES ('ONE', 'fixed', 500, ?1, ?2, 2, 1, ?1, ?1)",
                    params![now - 10, now + 3600],
                )?;
                Ok((a, b, tx.last_insert_rowid()))
            })
            .await
            .unwrap();
        let applied = AppliedCoupon {
            coupon_id,
            coupon_code: "ONE".into(),
            amount_paisa: 5_000,
            discount_paisa: 500,
            final_amount_paisa: 4_500,
        };
        let redeem_as = |user: i64| {
            let applied = applied.clone();
            db.write(move |tx| redeem(tx, user, &applied, None, None))
        };
        redeem_as(a).await.unwrap();
        assert_eq!(redeem_as(a).await.unwrap_err().code, "coupon_user_limit_reached");
        redeem_as(b).await.unwrap();
        let c = db
            .write(|tx| {
                create_user(tx, &Identifier::Phone("+9779800000203".into()), Role::User, None, None, None, now_ts())
            })
            .await
            .unwrap();
        assert_eq!(redeem_as(c).await.unwrap_err().code, "coupon_usage_limit_reached");
        // A released redemption no longer counts.
        db.write(move |tx| {
            tx.execute("UPDATE coupon_usages SET released_at = 1 WHERE user_id = ?1", [b])?;
            Ok(())
        })
        .await
        .unwrap();
        redeem_as(c).await.unwrap();
        assert_eq!(db.read(move |conn| usage_counts(conn, coupon_id, c)).await.unwrap(), (2, 1));
    }

    #[test]
    fn rows_become_the_plugin_coupon() {
        let row = CouponRow {
            id: 1,
            code: "SAVE10".into(),
            name: String::new(),
            description: String::new(),
            discount_type: "percentage".into(),
            discount_value: 1_000,
            max_discount_paisa: Some(2_000),
            min_amount_paisa: 0,
            valid_from: 10,
            valid_until: 20,
            max_uses_total: None,
            max_uses_per_user: Some(1),
            is_public: true,
            is_active: true,
            owner_user_id: None,
            created_at: 0,
            updated_at: 0,
        };
        let c = row.to_plugin();
        assert!(matches!(c.discount, CouponDiscount::PercentageBp(1_000)));
        assert_eq!((c.valid_from_unix_ms, c.valid_until_unix_ms), (10_000, 20_000));
        assert_eq!((c.max_uses_total, c.max_uses_per_user), (None, Some(1)));
    }
}
