//! A promotions plugin built against contract 0.1.0, where `apply-coupon`
//! answered `result<discount-application, coupon-rejection>`: expired
//! coupons are refused, a fixed discount is applied up to the amount, and a
//! percentage coupon is refused as invalid (this fixture does not do them).

use contract_v0_1_bindings::plugin_info;
use contract_v0_1_bindings::promotions::{
    Coupon, CouponDiscount, CouponRejection, CouponUsage, DiscountApplication, Guest, OrderSummary, PluginInfo,
    PluginKind,
};

struct Promotions;

impl Guest for Promotions {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Promotions)
    }

    fn self_check() -> Result<(), String> {
        Ok(())
    }

    fn apply_coupon(
        coupon: Coupon,
        order: OrderSummary,
        _usage: CouponUsage,
    ) -> Result<DiscountApplication, CouponRejection> {
        if order.context.now_unix_ms > coupon.valid_until_unix_ms {
            return Err(CouponRejection::Expired);
        }
        match coupon.discount {
            CouponDiscount::FixedPaisa(paisa) => {
                let discount = paisa.clamp(0, order.amount_paisa);
                Ok(DiscountApplication { discount_paisa: discount, final_amount_paisa: order.amount_paisa - discount })
            }
            CouponDiscount::PercentageBp(_) => Err(CouponRejection::InvalidCoupon("no percentages here".into())),
        }
    }
}

contract_v0_1_bindings::export_promotions!(Promotions);
