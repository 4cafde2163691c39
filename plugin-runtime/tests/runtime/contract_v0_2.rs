//! Plugins built against contract 0.2.0 (`plugins/testing/contract-0.2/`,
//! from the frozen `wit/compat/0.2.0/`) on this 0.3 host: they load, answer
//! in the current types, and what 0.3 added that they cannot answer gets the
//! host's default (`lost-penalty`) or no awards (the new points events).

use crate::common::*;
use powerbank_plugin_runtime::types::*;
use powerbank_plugin_runtime::{Failure, PluginState};

async fn start(config: &str) -> (Scratch, powerbank_plugin_runtime::PluginHost) {
    let scratch = Scratch::new();
    scratch.write_config(config);
    let (host, report) = scratch.start().await;
    assert!(report.failed.is_empty(), "load failures: {:?}", report.failed);
    (scratch, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_2_pricing_plugin_prices_and_gets_the_default_lost_policy() {
    let (_s, host) = start(&entry(
        "pricing-02",
        "pricing",
        "compat_v0_2_pricing.wasm",
        "config = { paisa_per_minute = 40 }\nlimits = { timeout_ms = 10000 }",
    ))
    .await;
    let status = host.status().into_iter().find(|s| s.name == "pricing-02").expect("status");
    assert_eq!(status.state, PluginState::Active);
    assert_eq!(status.contract.as_deref(), Some("0.2.0"));
    assert_eq!(status.version.as_deref(), Some("0.2.4"));
    assert_eq!(status.display_name.as_deref(), Some("Per minute (0.2)"));

    let mut request = quote_request();
    request.requested_minutes = Some(30);
    let quote = host.pricing().quote(request).await.expect("quote");
    assert_eq!(
        quote,
        Quote {
            amount_paisa: 1_200,
            breakdown: vec![BreakdownLine { label: "30 min".into(), amount_paisa: 1_200 }],
            due_minutes: 30,
        }
    );
    let due = now_ms();
    let overdue = OverdueRequest {
        package: one_hour_package(),
        due_unix_ms: due,
        returned_unix_ms: due + 10 * 60_000,
        context: context(),
    };
    let charge = host.pricing().overdue_charge(overdue).await.expect("overdue");
    assert_eq!((charge.amount_paisa, charge.explanation.as_str()), (1_200, "10 min late at three times the rate"));
    // 0.2 errors are the same variant: `invalid-input` is still `Rejected`.
    let mut too_long = quote_request();
    too_long.requested_minutes = Some(2_000);
    let err = host.pricing().quote(too_long).await.expect_err("refused");
    assert_eq!(err.failure, Failure::Rejected("2000 minutes is longer than a day".into()));

    // No `lost-penalty` in 0.2: the host's default, documented in docs/plugins.md.
    let lost = LostRequest { package: one_hour_package(), due_unix_ms: due, context: context() };
    let policy = host.pricing().lost_penalty(lost).await.expect("default policy");
    assert_eq!((policy.lost_after_minutes, policy.penalty_paisa), (24 * 60, 500_000));
    assert_eq!(policy.reminder_minutes, vec![0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_2_points_plugin_awards_what_it_knows_and_nothing_for_new_events() {
    let (_s, host) =
        start(&entry("points-02", "points-rules", "compat_v0_2_points.wasm", "limits = { timeout_ms = 10000 }")).await;
    let points = host.points();
    let signup = PointsEvent::Signup(SignupEvent { user_id: "user-1".into() });
    assert_eq!(
        points.award(signup, context()).await.expect("award"),
        vec![Award { role: AwardRole::Subject, user_id: "user-1".into(), points: 11, reason: "0.2".into() }]
    );
    let rental = PointsEvent::RentalCompleted(RentalCompletedEvent {
        user_id: "user-1".into(),
        rental_id: "9".into(),
        package_code: "HOUR1".into(),
        amount_paisa: 5_000,
        duration_minutes: 60,
        returned_late: false,
    });
    assert_eq!(points.award(rental, context()).await.expect("award").len(), 1);
    let own = PointsEvent::Referral(ReferralEvent { referrer_id: "u".into(), referee_id: "u".into() });
    let err = points.award(own, context()).await.expect_err("self-referral");
    assert_eq!(err.failure, Failure::Rejected("a user cannot refer themselves".into()));
    // The four events of 0.3: not called, no awards.
    for event in [
        PointsEvent::ProfileCompleted(ProfileCompletedEvent { user_id: "user-1".into() }),
        PointsEvent::KycApproved(KycApprovedEvent { user_id: "user-1".into() }),
        PointsEvent::OnTimeReturn(OnTimeReturnEvent {
            user_id: "user-1".into(),
            rental_id: "9".into(),
            package_code: "HOUR1".into(),
        }),
        PointsEvent::RefereeFirstRental(RefereeFirstRentalEvent {
            referrer_id: "user-2".into(),
            referee_id: "user-1".into(),
            rental_id: "9".into(),
        }),
    ] {
        assert_eq!(points.award(event, context()).await, Ok(Vec::new()));
    }
    assert_eq!(points.points_to_paisa(5).await, Ok(100));
    assert_eq!(points.expiry_days().await, Ok(90));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_plugins_answer_the_0_3_calls() {
    let pricing_config = "config = { lost_after_hours = 6, lost_penalty_paisa = 300000, \
                          overdue_reminder_minutes = \"720, 0,30\" }";
    let points_config = "config = { referral_payout = \"first_rental\", kyc_approved_points = 25 }";
    let (_s, host) = start(
        &[
            entry("pricing-standard", "pricing", "pricing_standard.wasm", pricing_config),
            entry("points-standard", "points-rules", "points_standard.wasm", points_config),
        ]
        .concat(),
    )
    .await;
    let lost = LostRequest { package: one_hour_package(), due_unix_ms: now_ms(), context: context() };
    let policy = host.pricing().lost_penalty(lost).await.expect("policy");
    assert_eq!((policy.lost_after_minutes, policy.penalty_paisa), (360, 300_000));
    // Sorted, and a reminder after the bank is lost is dropped by the host.
    assert_eq!(policy.reminder_minutes, vec![0, 30]);

    let points = host.points();
    let referral = PointsEvent::Referral(ReferralEvent { referrer_id: "a".into(), referee_id: "b".into() });
    assert_eq!(points.award(referral, context()).await, Ok(Vec::new()), "pays at the first rental instead");
    let first = PointsEvent::RefereeFirstRental(RefereeFirstRentalEvent {
        referrer_id: "a".into(),
        referee_id: "b".into(),
        rental_id: "1".into(),
    });
    let awards = points.award(first, context()).await.expect("award");
    assert_eq!(awards.iter().map(|a| (a.user_id.as_str(), a.points)).collect::<Vec<_>>(), vec![("a", 100), ("b", 50)]);
    let kyc = PointsEvent::KycApproved(KycApprovedEvent { user_id: "b".into() });
    assert_eq!(points.award(kyc, context()).await.expect("award")[0].points, 25);
    let profile = PointsEvent::ProfileCompleted(ProfileCompletedEvent { user_id: "b".into() });
    assert_eq!(points.award(profile, context()).await, Ok(Vec::new()), "off unless configured");
}
