//! Seed coupon rules: percentage or fixed discounts, a validity window, a
//! minimum amount, total and per-user usage limits, and a discount that never
//! exceeds the amount. The host supplies usage counts from its database.
//!
//! Config (optional): `rounding` = `down` (default) or `nearest` for the
//! paisa fraction of a percentage discount.

use powerbank_plugin_sdk::promotions::{
    Coupon, CouponDecision, CouponDiscount, CouponRejection, CouponUsage, DiscountApplication, Guest, OrderSummary,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, plugin_info};

#[derive(Clone, Copy)]
enum Rounding {
    Down,
    Nearest,
}

fn rounding() -> Result<Rounding, CallError> {
    match config::get("rounding").as_deref().map(str::trim) {
        None | Some("down") => Ok(Rounding::Down),
        Some("nearest") => Ok(Rounding::Nearest),
        Some(other) => Err(config::misconfigured("rounding", format!("expected down or nearest, got `{other}`"))),
    }
}

fn percentage_of(amount: i64, basis_points: u32, rounding: Rounding) -> i64 {
    // i128 so a large amount times 10000 cannot overflow.
    let product = i128::from(amount) * i128::from(basis_points);
    let discount = match rounding {
        Rounding::Down => product / 10_000,
        Rounding::Nearest => (product + 5_000) / 10_000,
    };
    i64::try_from(discount).unwrap_or(i64::MAX)
}

fn apply(
    coupon: &Coupon,
    order: &OrderSummary,
    usage: &CouponUsage,
    rounding: Rounding,
) -> Result<DiscountApplication, CouponRejection> {
    let now = order.context.now_unix_ms;
    if now < coupon.valid_from_unix_ms {
        return Err(CouponRejection::NotYetValid);
    }
    if now > coupon.valid_until_unix_ms {
        return Err(CouponRejection::Expired);
    }
    if coupon.max_uses_total.is_some_and(|max| usage.total_used >= max) {
        return Err(CouponRejection::UsageLimitReached);
    }
    if coupon.max_uses_per_user.is_some_and(|max| usage.used_by_user >= max) {
        return Err(CouponRejection::UserLimitReached);
    }
    if order.amount_paisa < 0 {
        return Err(CouponRejection::InvalidCoupon("negative order amount".to_string()));
    }
    if order.amount_paisa < coupon.min_amount_paisa {
        return Err(CouponRejection::BelowMinimumAmount(coupon.min_amount_paisa));
    }

    let mut discount = match coupon.discount {
        CouponDiscount::PercentageBp(bp) => {
            if bp > 10_000 {
                return Err(CouponRejection::InvalidCoupon("percentage above 100 %".to_string()));
            }
            percentage_of(order.amount_paisa, bp, rounding)
        }
        CouponDiscount::FixedPaisa(paisa) => {
            if paisa < 0 {
                return Err(CouponRejection::InvalidCoupon("negative discount".to_string()));
            }
            paisa
        }
    };
    if let Some(cap) = coupon.max_discount_paisa {
        discount = discount.min(cap.max(0));
    }
    discount = discount.min(order.amount_paisa);
    Ok(DiscountApplication { discount_paisa: discount, final_amount_paisa: order.amount_paisa - discount })
}

struct StandardPromotions;

impl Guest for StandardPromotions {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Promotions, "Standard coupons")
    }

    fn self_check() -> Result<(), CallError> {
        rounding().map(|_| ())
    }

    fn apply_coupon(coupon: Coupon, order: OrderSummary, usage: CouponUsage) -> Result<CouponDecision, CallError> {
        let rounding = rounding()?;
        Ok(match apply(&coupon, &order, &usage, rounding) {
            Ok(applied) => CouponDecision::Applied(applied),
            Err(rejection) => CouponDecision::Rejected(rejection),
        })
    }
}

powerbank_plugin_sdk::export_promotions!(StandardPromotions);
