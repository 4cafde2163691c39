//! The seed rules of the three standard plugins, through the runtime.

use crate::common::*;
use powerbank_plugin_runtime::types::*;
use powerbank_plugin_runtime::{Failure, PluginHost, PluginHostOptions, PluginKind, PluginState};

async fn standard_host() -> (Scratch, PluginHost) {
    let scratch = Scratch::new();
    scratch.write_config(&standard_plugins());
    let (host, report) = scratch.start().await;
    assert!(report.failed.is_empty(), "load failures: {:?}", report.failed);
    assert_eq!(report.loaded.len(), 3);
    (scratch, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pricing_charges_the_package_price_for_its_duration() {
    let (_s, host) = standard_host().await;
    let quote = host.pricing().quote(quote_request()).await.expect("quote");
    assert_eq!(quote.amount_paisa, 5_000);
    assert_eq!(quote.due_minutes, 60);
    assert_eq!(quote.breakdown.len(), 1);

    // Asking for 90 minutes of a 60-minute package buys two packages.
    let mut longer = quote_request();
    longer.requested_minutes = Some(90);
    let quote = host.pricing().quote(longer).await.expect("quote");
    assert_eq!(quote.amount_paisa, 10_000);
    assert_eq!(quote.due_minutes, 120);

    let extension = ExtensionRequest {
        package: one_hour_package(),
        current_due_unix_ms: now_ms(),
        extra_minutes: 30,
        context: context(),
    };
    let paisa = host.pricing().price_extension(extension).await.expect("extension");
    assert_eq!(paisa, 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pricing_charges_npr_5_per_started_hour_late() {
    let (_s, host) = standard_host().await;
    let due = now_ms();
    let overdue = |returned: i64| OverdueRequest {
        package: one_hour_package(),
        due_unix_ms: due,
        returned_unix_ms: returned,
        context: context(),
    };
    let cases = [
        (due - 60_000, 0),          // early
        (due, 0),                   // on time
        (due + 1, 500),             // 1 ms late: one started hour
        (due + HOUR_MS, 500),       // exactly one hour
        (due + HOUR_MS + 1, 1_000), // into the second hour
        (due + 5 * HOUR_MS - 1, 2_500),
    ];
    for (returned, expected) in cases {
        let charge = host.pricing().overdue_charge(overdue(returned)).await.expect("overdue charge");
        assert_eq!(charge.amount_paisa, expected, "returned {} ms after due: {}", returned - due, charge.explanation);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pricing_config_changes_the_rules() {
    let scratch = Scratch::new();
    scratch.write_config(&entry(
        "pricing-standard",
        "pricing",
        "pricing_standard.wasm",
        "config = { overdue_paisa_per_hour = 1000, overdue_grace_minutes = 15, service_fee_paisa = 200 }",
    ));
    let (host, _) = scratch.start().await;
    let quote = host.pricing().quote(quote_request()).await.expect("quote");
    assert_eq!(quote.amount_paisa, 5_200);
    assert_eq!(quote.breakdown.len(), 2);

    let due = now_ms();
    let overdue = |late_ms: i64| OverdueRequest {
        package: one_hour_package(),
        due_unix_ms: due,
        returned_unix_ms: due + late_ms,
        context: context(),
    };
    let within_grace = host.pricing().overdue_charge(overdue(14 * 60_000)).await;
    assert_eq!(within_grace.expect("charge").amount_paisa, 0);
    let past_grace = host.pricing().overdue_charge(overdue(16 * 60_000)).await;
    assert_eq!(past_grace.expect("charge").amount_paisa, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pricing_rejects_invalid_config_at_load() {
    let scratch = Scratch::new();
    scratch.write_config(&entry(
        "pricing-standard",
        "pricing",
        "pricing_standard.wasm",
        "config = { overdue_paisa_per_hour = \"five\" }",
    ));
    let (host, report) = scratch.start().await;
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].1.contains("overdue_paisa_per_hour"), "{:?}", report.failed);
    let err = host.pricing().quote(quote_request()).await.expect_err("not loaded");
    assert_eq!(err.failure, Failure::NotLoaded);
    let status = host.status();
    assert_eq!(status[0].state, PluginState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_follow_the_seed_rules() {
    let (_s, host) = standard_host().await;
    let points = host.points();

    let signup =
        points.award(PointsEvent::Signup(SignupEvent { user_id: "u1".into() }), context()).await.expect("signup");
    assert_eq!(signup.len(), 1);
    assert_eq!((signup[0].role, signup[0].points), (AwardRole::Subject, 50));

    let referral = points
        .award(PointsEvent::Referral(ReferralEvent { referrer_id: "old".into(), referee_id: "new".into() }), context())
        .await
        .expect("referral");
    let by_role: Vec<_> = referral.iter().map(|a| (a.role, a.user_id.as_str(), a.points)).collect();
    assert_eq!(by_role, vec![(AwardRole::Referrer, "old", 100), (AwardRole::Referee, "new", 50)]);

    // 10 points per whole NPR 100 topped up.
    for (paisa, expected) in [(10_000, Some(10)), (25_000, Some(20)), (9_999, None)] {
        let awards = points
            .award(PointsEvent::TopUp(TopUpEvent { user_id: "u1".into(), amount_paisa: paisa }), context())
            .await
            .expect("top-up");
        assert_eq!(awards.first().map(|a| a.points), expected, "top-up of {paisa}");
    }

    let rental = points
        .award(
            PointsEvent::RentalCompleted(RentalCompletedEvent {
                user_id: "u1".into(),
                rental_id: "r1".into(),
                package_code: "HOUR1".into(),
                amount_paisa: 5_000,
                duration_minutes: 60,
                returned_late: false,
            }),
            context(),
        )
        .await
        .expect("rental");
    assert_eq!(rental[0].points, 5);

    // 10 points = NPR 1 = 100 paisa.
    assert_eq!(points.points_to_paisa(10).await.expect("convert"), 100);
    assert_eq!(points.points_to_paisa(15).await.expect("convert"), 150);
    assert_eq!(points.expiry_days().await.expect("expiry"), 365);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_config_is_honoured() {
    let scratch = Scratch::new();
    scratch.write_config(&entry(
        "points-standard",
        "points-rules",
        "points_standard.wasm",
        "config = { signup_points = 75, points_per_npr = 20, expiry_days = 30 }",
    ));
    let (host, _) = scratch.start().await;
    let signup =
        host.points().award(PointsEvent::Signup(SignupEvent { user_id: "u".into() }), context()).await.expect("signup");
    assert_eq!(signup[0].points, 75);
    assert_eq!(host.points().points_to_paisa(10).await.expect("convert"), 50);
    assert_eq!(host.points().expiry_days().await.expect("expiry"), 30);
}

fn coupon(discount: CouponDiscount) -> Coupon {
    let now = now_ms();
    Coupon {
        code: "WELCOME".into(),
        discount,
        valid_from_unix_ms: now - HOUR_MS,
        valid_until_unix_ms: now + HOUR_MS,
        min_amount_paisa: 0,
        max_uses_total: None,
        max_uses_per_user: None,
        max_discount_paisa: None,
    }
}

fn order(amount_paisa: i64) -> OrderSummary {
    OrderSummary { amount_paisa, package_code: Some("HOUR1".into()), context: context() }
}

const UNUSED: CouponUsage = CouponUsage { total_used: 0, used_by_user: 0 };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_apply_percentage_and_fixed_coupons() {
    let (_s, host) = standard_host().await;
    let promo = host.promotions();

    // 10 % of NPR 50.
    let applied =
        promo.apply_coupon(coupon(CouponDiscount::PercentageBp(1_000)), order(5_000), UNUSED).await.expect("call");
    assert_eq!(applied, Ok(DiscountApplication { discount_paisa: 500, final_amount_paisa: 4_500 }));

    // 12.5 % of 333 paisa = 41.6, rounded down.
    let applied =
        promo.apply_coupon(coupon(CouponDiscount::PercentageBp(1_250)), order(333), UNUSED).await.expect("call");
    assert_eq!(applied.map(|d| d.discount_paisa), Ok(41));

    // A percentage capped by max_discount.
    let mut capped = coupon(CouponDiscount::PercentageBp(5_000));
    capped.max_discount_paisa = Some(1_000);
    let applied = promo.apply_coupon(capped, order(5_000), UNUSED).await.expect("call");
    assert_eq!(applied.map(|d| d.discount_paisa), Ok(1_000));

    // A fixed discount larger than the amount stops at the amount.
    let applied =
        promo.apply_coupon(coupon(CouponDiscount::FixedPaisa(10_000)), order(5_000), UNUSED).await.expect("call");
    assert_eq!(applied, Ok(DiscountApplication { discount_paisa: 5_000, final_amount_paisa: 0 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_enforce_window_limits_and_minimum() {
    let (_s, host) = standard_host().await;
    let promo = host.promotions();
    let fixed = || coupon(CouponDiscount::FixedPaisa(500));

    let mut future = fixed();
    future.valid_from_unix_ms = now_ms() + HOUR_MS;
    let r = promo.apply_coupon(future, order(5_000), UNUSED).await.expect("call");
    assert_eq!(r, Err(CouponRejection::NotYetValid));

    let mut past = fixed();
    past.valid_until_unix_ms = now_ms() - 1;
    let r = promo.apply_coupon(past, order(5_000), UNUSED).await.expect("call");
    assert_eq!(r, Err(CouponRejection::Expired));

    let mut minimum = fixed();
    minimum.min_amount_paisa = 10_000;
    let r = promo.apply_coupon(minimum, order(5_000), UNUSED).await.expect("call");
    assert_eq!(r, Err(CouponRejection::BelowMinimumAmount(10_000)));

    let mut limited = fixed();
    limited.max_uses_total = Some(100);
    limited.max_uses_per_user = Some(1);
    let used_up = CouponUsage { total_used: 100, used_by_user: 0 };
    let r = promo.apply_coupon(limited.clone(), order(5_000), used_up).await.expect("call");
    assert_eq!(r, Err(CouponRejection::UsageLimitReached));
    let used_by_user = CouponUsage { total_used: 5, used_by_user: 1 };
    let r = promo.apply_coupon(limited.clone(), order(5_000), used_by_user).await.expect("call");
    assert_eq!(r, Err(CouponRejection::UserLimitReached));
    let fresh = CouponUsage { total_used: 5, used_by_user: 0 };
    let r = promo.apply_coupon(limited, order(5_000), fresh).await.expect("call");
    assert_eq!(r.map(|d| d.final_amount_paisa), Ok(4_500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_plugins_toml_loads_all_three() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in ["pricing_standard.wasm", "points_standard.wasm", "promotions_standard.wasm"] {
        dist(file);
    }
    let (host, report) = PluginHost::start(root.join("plugins.toml"), PluginHostOptions::default())
        .await
        .expect("plugins.toml is valid");
    // Gateways read their keys from the environment; where a variable is not
    // set, that gateway alone fails to load.
    let gateways = ["khalti", "esewa", "stripe"];
    assert!(report.failed.iter().all(|(name, _)| gateways.contains(&name.as_str())), "{:?}", report.failed);
    for kind in [PluginKind::Pricing, PluginKind::PointsRules, PluginKind::Promotions] {
        let (name, version) = host.active(kind).expect("a plugin serves each kind");
        assert!(name.ends_with("-standard"));
        assert_eq!(version, "0.1.0");
    }
    let quote = host.pricing().quote(quote_request()).await.expect("quote");
    assert_eq!(quote.amount_paisa, 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_calls_and_latency() {
    let (_s, host) = standard_host().await;
    for _ in 0..20 {
        host.pricing().quote(quote_request()).await.expect("quote");
    }
    let status = host.status();
    let pricing = status.iter().find(|s| s.name == "pricing-standard").expect("pricing status");
    assert_eq!(pricing.state, PluginState::Active);
    assert_eq!(pricing.kind, PluginKind::Pricing);
    assert_eq!(pricing.version.as_deref(), Some("0.1.0"));
    assert_eq!(pricing.sha256.as_ref().map(String::len), Some(64));
    assert_eq!((pricing.calls, pricing.failures), (20, 0));
    assert!(pricing.p50_us.is_some() && pricing.p99_us >= pricing.p50_us);
    assert!(pricing.last_error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_identifies_the_world_and_runs_self_check() {
    let (_s, host) = standard_host().await;
    let report = host.validate(dist("points_standard.wasm")).await.expect("valid plugin");
    assert_eq!(report.kind, PluginKind::PointsRules);
    assert_eq!(report.version, "0.1.0");

    let bad = host.validate(dist("bad_self_check.wasm")).await;
    assert!(bad.as_ref().is_err_and(|e| e.contains("self-check")), "{bad:?}");

    // The CLI path, without a running host.
    let report = powerbank_plugin_runtime::validate_file(dist("pricing_standard.wasm")).await.expect("valid plugin");
    assert_eq!(report.kind, PluginKind::Pricing);
}

/// Compile-time check: every call future is `Send`, as axum handlers need.
#[allow(dead_code)]
fn call_futures_are_send(host: &PluginHost, coupon: Coupon, order: OrderSummary) {
    fn is_send<T: Send>(_: T) {}
    is_send(host.pricing().quote(quote_request()));
    is_send(host.points().award(PointsEvent::Signup(SignupEvent { user_id: "u".into() }), context()));
    is_send(host.promotions().apply_coupon(coupon, order, UNUSED));
    is_send(host.gateway("g").refund(RefundRequest {
        order_id: String::new(),
        gateway_ref: String::new(),
        amount_paisa: 0,
        reason: String::new(),
        idempotency_key: String::new(),
    }));
    is_send(host.reload());
    is_send(powerbank_plugin_runtime::validate_file("x.wasm"));
    fn is_sync_clone<T: Send + Sync + Clone + 'static>() {}
    is_sync_clone::<PluginHost>();
}

fn campaign(offer: CampaignOffer) -> Campaign {
    let now = now_ms();
    Campaign { id: 7, name: "Tihar".into(), starts_unix_ms: now - HOUR_MS, ends_unix_ms: now + HOUR_MS, offer }
}

fn rental_discount(discount: CouponDiscount, stations: &[&str], packages: &[&str]) -> CampaignOffer {
    CampaignOffer::RentalDiscount(RentalDiscount {
        discount,
        max_discount_paisa: None,
        station_sns: stations.iter().map(|s| s.to_string()).collect(),
        package_codes: packages.iter().map(|s| s.to_string()).collect(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_judge_and_price_campaign_offers() {
    let (_s, host) = standard_host().await;
    let promo = host.promotions();
    let rental = |amount| CampaignEvent::Rental(order(amount));
    let top_up = CampaignEvent::TopUp(TopUpSummary { amount_paisa: 10_000, context: context() });

    // 20 % at the rider's station (ST-0001) for HOUR1; elsewhere, nothing.
    let here = campaign(rental_discount(CouponDiscount::PercentageBp(2_000), &["ST-0001"], &["HOUR1"]));
    promo.validate_campaign(here.clone()).await.expect("call").expect("valid");
    let d = promo.decide_campaign_offer(here.clone(), rental(5_000)).await.expect("call");
    assert_eq!(d, OfferDecision::Discount(DiscountApplication { discount_paisa: 1_000, final_amount_paisa: 4_000 }));
    let elsewhere = campaign(rental_discount(CouponDiscount::FixedPaisa(300), &["ST-0999"], &[]));
    let d = promo.decide_campaign_offer(elsewhere, rental(5_000)).await.expect("call");
    assert_eq!(d, OfferDecision::NotApplicable);
    assert_eq!(promo.decide_campaign_offer(here, top_up.clone()).await.expect("call"), OfferDecision::NotApplicable);

    // Double points on top-ups only.
    let double = campaign(CampaignOffer::PointsMultiplier(PointsMultiplier {
        multiplier_bp: 20_000,
        on_top_ups: true,
        on_rentals: false,
    }));
    promo.validate_campaign(double.clone()).await.expect("call").expect("valid");
    let d = promo.decide_campaign_offer(double.clone(), top_up).await.expect("call");
    assert_eq!(d, OfferDecision::PointsMultiplierBp(20_000));
    assert_eq!(promo.decide_campaign_offer(double, rental(5_000)).await.expect("call"), OfferDecision::NotApplicable);

    // Offers the plugin will not run.
    for bad in [
        rental_discount(CouponDiscount::PercentageBp(12_000), &[], &[]),
        CampaignOffer::PointsMultiplier(PointsMultiplier { multiplier_bp: 9_000, on_top_ups: true, on_rentals: true }),
        CampaignOffer::CouponGrant(CouponGrant {
            discount: CouponDiscount::FixedPaisa(500),
            max_discount_paisa: None,
            min_amount_paisa: 0,
            valid_days: 0,
        }),
    ] {
        let refused = promo.validate_campaign(campaign(bad)).await.expect("call");
        assert!(matches!(refused, Err(CampaignRejection::InvalidOffer(_))), "{refused:?}");
    }
}
