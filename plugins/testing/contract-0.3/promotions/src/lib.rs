//! A promotions plugin built against contract 0.3.0, which had no campaigns:
//! a fixed coupon takes its amount off (up to the order), a percentage coupon
//! is refused as invalid (this fixture does not do them).

use contract_v0_3_bindings::plugin_info;
use contract_v0_3_bindings::promotions::{
    CallError, Coupon, CouponDecision, CouponDiscount, CouponRejection, CouponUsage, DiscountApplication, Guest,
    OrderSummary, PluginInfo, PluginKind,
};

struct Promotions;

impl Guest for Promotions {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Promotions, "Coupons (0.3)")
    }

    fn self_check() -> Result<(), CallError> {
        Ok(())
    }

    fn apply_coupon(coupon: Coupon, order: OrderSummary, _usage: CouponUsage) -> Result<CouponDecision, CallError> {
        Ok(match coupon.discount {
            CouponDiscount::FixedPaisa(paisa) => {
                let discount = paisa.clamp(0, order.amount_paisa.max(0));
                CouponDecision::Applied(DiscountApplication {
                    discount_paisa: discount,
                    final_amount_paisa: order.amount_paisa - discount,
                })
            }
            CouponDiscount::PercentageBp(_) => {
                CouponDecision::Rejected(CouponRejection::InvalidCoupon("0.3 fixture: fixed only".to_string()))
            }
        })
    }
}

contract_v0_3_bindings::export_promotions!(Promotions);
