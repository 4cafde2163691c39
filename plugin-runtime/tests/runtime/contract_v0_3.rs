//! A promotions plugin built against contract 0.3.0
//! (`plugins/testing/contract-0.3/`, from the frozen `wit/compat/0.3.0/`) on
//! this 0.4 host: it loads and applies coupons in the current types, and the
//! campaign exports 0.4 added get the host's answer without a call: a
//! campaign is refused as unsupported, an offer is not applicable.

use crate::common::*;
use powerbank_plugin_runtime::PluginState;
use powerbank_plugin_runtime::types::*;

fn campaign() -> Campaign {
    let now = now_ms();
    Campaign {
        id: 1,
        name: "Dashain".into(),
        starts_unix_ms: now - HOUR_MS,
        ends_unix_ms: now + HOUR_MS,
        offer: CampaignOffer::RentalDiscount(RentalDiscount {
            discount: CouponDiscount::PercentageBp(2_000),
            max_discount_paisa: None,
            station_sns: vec![],
            package_codes: vec![],
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_3_promotions_plugin_applies_coupons_and_runs_no_campaign() {
    let scratch = Scratch::new();
    scratch.write_config(&entry(
        "promotions-03",
        "promotions",
        "compat_v0_3_promotions.wasm",
        "limits = { timeout_ms = 10000 }",
    ));
    let (host, report) = scratch.start().await;
    assert!(report.failed.is_empty(), "load failures: {:?}", report.failed);
    let status = host.status().into_iter().find(|s| s.name == "promotions-03").expect("status");
    assert_eq!(status.state, PluginState::Active);
    assert_eq!(status.contract.as_deref(), Some("0.3.0"));
    assert_eq!(status.display_name.as_deref(), Some("Coupons (0.3)"));

    let now = now_ms();
    let coupon = Coupon {
        code: "FIVE".into(),
        discount: CouponDiscount::FixedPaisa(500),
        valid_from_unix_ms: now - HOUR_MS,
        valid_until_unix_ms: now + HOUR_MS,
        min_amount_paisa: 0,
        max_uses_total: None,
        max_uses_per_user: None,
        max_discount_paisa: None,
    };
    let order = OrderSummary { amount_paisa: 5_000, package_code: Some("HOUR1".into()), context: context() };
    let applied = host
        .promotions()
        .apply_coupon(coupon, order.clone(), CouponUsage { total_used: 0, used_by_user: 0 })
        .await
        .expect("call")
        .expect("applied");
    assert_eq!((applied.discount_paisa, applied.final_amount_paisa), (500, 4_500));

    // No campaigns in 0.3: refused as unsupported, and nothing offered.
    let refused = host.promotions().validate_campaign(campaign()).await.expect("call");
    assert!(matches!(refused, Err(CampaignRejection::UnsupportedOffer(_))), "{refused:?}");
    let decision =
        host.promotions().decide_campaign_offer(campaign(), CampaignEvent::Rental(order)).await.expect("call");
    assert_eq!(decision, OfferDecision::NotApplicable);
}
