//! Seed coupon rules: percentage or fixed discounts, a validity window, a
//! minimum amount, total and per-user usage limits, and a discount that never
//! exceeds the amount. The host supplies usage counts from its database.
//!
//! Campaigns (contract 0.4): an automatic rental discount (percentage or
//! fixed, optionally capped, limited to listed stations and/or packages), a
//! points multiplier on top-ups and/or rentals (more than 1x, at most 10x), or
//! a coupon grant (the host issues the coupons; valid 1 to 365 days).
//!
//! Config (optional): `rounding` = `down` (default) or `nearest` for the
//! paisa fraction of a percentage discount.

use powerbank_plugin_sdk::promotions::{
    Campaign, CampaignEvent, CampaignOffer, CampaignRejection, Coupon, CouponDecision, CouponDiscount, CouponRejection,
    CouponUsage, DiscountApplication, Guest, OfferDecision, OrderSummary,
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

/// Most points a campaign may multiply by: 10x, in basis points.
const MAX_MULTIPLIER_BP: u32 = 100_000;

fn check_discount(discount: &CouponDiscount, cap: Option<i64>) -> Result<(), CampaignRejection> {
    let invalid = |m: &str| Err(CampaignRejection::InvalidOffer(m.to_string()));
    match *discount {
        CouponDiscount::PercentageBp(bp) if bp == 0 || bp > 10_000 => invalid("percentage must be 0.01 % to 100 %"),
        CouponDiscount::FixedPaisa(paisa) if paisa <= 0 => invalid("fixed discount must be positive"),
        _ if cap.is_some_and(|c| c <= 0) => invalid("discount cap must be positive"),
        _ => Ok(()),
    }
}

fn validate_campaign(campaign: &Campaign) -> Result<(), CampaignRejection> {
    let invalid = |m: &str| Err(CampaignRejection::InvalidOffer(m.to_string()));
    match &campaign.offer {
        CampaignOffer::RentalDiscount(d) => check_discount(&d.discount, d.max_discount_paisa),
        CampaignOffer::PointsMultiplier(m) if !m.on_top_ups && !m.on_rentals => {
            invalid("a points multiplier must apply to top-ups, rentals or both")
        }
        CampaignOffer::PointsMultiplier(m) if m.multiplier_bp <= 10_000 || m.multiplier_bp > MAX_MULTIPLIER_BP => {
            invalid("multiplier must be above 1x (10000) and at most 10x (100000)")
        }
        CampaignOffer::PointsMultiplier(_) => Ok(()),
        CampaignOffer::CouponGrant(g) if g.min_amount_paisa < 0 => invalid("minimum amount must not be negative"),
        CampaignOffer::CouponGrant(g) if !(1..=365).contains(&g.valid_days) => {
            invalid("issued coupons must be valid 1 to 365 days")
        }
        CampaignOffer::CouponGrant(g) => check_discount(&g.discount, g.max_discount_paisa),
    }
}

fn decide(campaign: &Campaign, event: &CampaignEvent, rounding: Rounding) -> OfferDecision {
    match (&campaign.offer, event) {
        (CampaignOffer::RentalDiscount(d), CampaignEvent::Rental(order)) => {
            let at_station = d.station_sns.is_empty()
                || order.context.station_sn.as_ref().is_some_and(|sn| d.station_sns.iter().any(|s| s == sn));
            let for_package = d.package_codes.is_empty()
                || order.package_code.as_ref().is_some_and(|code| d.package_codes.iter().any(|c| c == code));
            if !at_station || !for_package || order.amount_paisa <= 0 {
                return OfferDecision::NotApplicable;
            }
            let mut discount = match d.discount {
                CouponDiscount::PercentageBp(bp) => percentage_of(order.amount_paisa, bp.min(10_000), rounding),
                CouponDiscount::FixedPaisa(paisa) => paisa.max(0),
            };
            if let Some(cap) = d.max_discount_paisa {
                discount = discount.min(cap.max(0));
            }
            discount = discount.min(order.amount_paisa);
            OfferDecision::Discount(DiscountApplication {
                discount_paisa: discount,
                final_amount_paisa: order.amount_paisa - discount,
            })
        }
        (CampaignOffer::PointsMultiplier(m), CampaignEvent::TopUp(_)) if m.on_top_ups => {
            OfferDecision::PointsMultiplierBp(m.multiplier_bp.min(MAX_MULTIPLIER_BP))
        }
        (CampaignOffer::PointsMultiplier(m), CampaignEvent::Rental(_)) if m.on_rentals => {
            OfferDecision::PointsMultiplierBp(m.multiplier_bp.min(MAX_MULTIPLIER_BP))
        }
        _ => OfferDecision::NotApplicable,
    }
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

    fn decide_campaign_offer(campaign: Campaign, event: CampaignEvent) -> Result<OfferDecision, CallError> {
        Ok(decide(&campaign, &event, rounding()?))
    }

    fn validate_campaign(campaign: Campaign) -> Result<(), CampaignRejection> {
        validate_campaign(&campaign)
    }
}

powerbank_plugin_sdk::export_promotions!(StandardPromotions);
