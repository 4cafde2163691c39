//! Plugins of both contract versions through the runtime: the `compat_v0_1_*`
//! fixtures are built from the frozen `wit/compat/0.1.0/`, and must load and
//! answer in the current types next to current plugins; a plugin of a
//! version the host does not speak is refused with a clear reason.

use std::time::Duration;

use crate::common::*;
use powerbank_plugin_runtime::types::*;
use powerbank_plugin_runtime::{Failure, PluginHost, PluginKind, PluginState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn status_of(host: &PluginHost, name: &str) -> powerbank_plugin_runtime::PluginStatus {
    host.status().into_iter().find(|s| s.name == name).expect("plugin in status")
}

async fn start(config: &str) -> (Scratch, PluginHost) {
    let scratch = Scratch::new();
    scratch.write_config(config);
    let (host, report) = scratch.start().await;
    assert!(report.failed.is_empty(), "load failures: {:?}", report.failed);
    (scratch, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_pricing_plugin_prices_through_the_adapter() {
    let (_s, host) = start(&entry(
        "legacy-pricing",
        "pricing",
        "compat_v0_1_pricing.wasm",
        "config = { paisa_per_minute = 50 }\nlimits = { timeout_ms = 10000 }",
    ))
    .await;
    let status = status_of(&host, "legacy-pricing");
    assert_eq!(status.state, PluginState::Active);
    assert_eq!(status.contract.as_deref(), Some("0.1.0"));
    assert_eq!(status.version.as_deref(), Some("0.1.7"));
    // 0.1 had no display name: the plugin's own name stands in.
    assert_eq!(status.display_name.as_deref(), Some("compat-v0-1-pricing"));
    assert_eq!(status.icon_url, None);

    let mut request = quote_request();
    request.requested_minutes = Some(90);
    let quote = host.pricing().quote(request).await.expect("quote");
    assert_eq!(
        quote,
        Quote {
            amount_paisa: 4_500,
            breakdown: vec![BreakdownLine { label: "90 min".into(), amount_paisa: 4_500 }],
            due_minutes: 90,
        }
    );
    let extension = ExtensionRequest {
        package: one_hour_package(),
        current_due_unix_ms: now_ms(),
        extra_minutes: 30,
        context: context(),
    };
    assert_eq!(host.pricing().price_extension(extension).await, Ok(1_500));
    let due = now_ms();
    let overdue = OverdueRequest {
        package: one_hour_package(),
        due_unix_ms: due,
        returned_unix_ms: due + 61 * 60_000,
        context: context(),
    };
    let charge = host.pricing().overdue_charge(overdue).await.expect("overdue");
    assert_eq!((charge.amount_paisa, charge.explanation.as_str()), (6_100, "61 min late at twice the rate"));

    // A 0.1 string error refused the input: `invalid-input`, the host's `Rejected`.
    let mut too_long = quote_request();
    too_long.requested_minutes = Some(2_000);
    let err = host.pricing().quote(too_long).await.expect_err("refused");
    assert_eq!(err.failure, Failure::Rejected("2000 minutes is longer than a day".into()));
    // The host still checks what a 0.1 plugin answers.
    let mut negative = quote_request();
    negative.package.duration_minutes = 0;
    let err = host.pricing().quote(negative).await.expect_err("zero duration");
    assert!(matches!(err.failure, Failure::MalformedResult(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_0_1_self_check_keeps_it_from_loading_and_config_brands_it() {
    let scratch = Scratch::new();
    scratch.write_config(&entry(
        "legacy-pricing",
        "pricing",
        "compat_v0_1_pricing.wasm",
        "config = { paisa_per_minute = \"lots\" }",
    ));
    let (host, report) = scratch.start().await;
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let reason = &report.failed[0].1;
    assert!(reason.contains("self-check failed") && reason.contains("misconfigured"), "{reason}");
    assert!(reason.contains("`lots` is not a number"), "{reason}");
    assert_eq!(host.pricing().quote(quote_request()).await.map_err(|e| e.failure), Err(Failure::NotLoaded));

    // Fixed, and branded from plugins.toml as 0.2 plugins are by the SDK.
    scratch.write_config(&entry(
        "legacy-pricing",
        "pricing",
        "compat_v0_1_pricing.wasm",
        "config = { paisa_per_minute = 10, display_name = \"Per minute\", icon_url = \"https://cdn.example/pm.svg\" }",
    ));
    let report = host.reload().await.expect("reload");
    assert_eq!(report.loaded, vec!["legacy-pricing".to_string()], "{report:?}");
    let shown = host.display_info("legacy-pricing").expect("display info");
    assert_eq!(shown.display_name, "Per minute");
    assert_eq!(shown.icon_url.as_deref(), Some("https://cdn.example/pm.svg"));
    assert_eq!(host.pricing().quote(quote_request()).await.map(|q| q.amount_paisa), Ok(600));
}

/// A status API for the 0.1 gateway: `paid:10000` for `v01-o1`, another
/// amount for `v01-o2`, HTTP 504 for `v01-slow`, 503 for `v01-down`.
async fn status_api() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match path {
                    "/status/v01-o1" => ("200 OK", "paid:10000"),
                    "/status/v01-o2" => ("200 OK", "paid:500"),
                    "/status/v01-slow" => ("504 Gateway Timeout", ""),
                    "/status/v01-down" => ("503 Service Unavailable", ""),
                    _ => ("404 Not Found", ""),
                };
                let response =
                    format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

fn gateway_entry(name: &str, port: u16, extra: &str) -> String {
    entry(
        name,
        "payment-gateway",
        "compat_v0_1_gateway.wasm",
        &format!(
            "allowed_hosts = [\"http://127.0.0.1:{port}\"]\n\
             secrets = {{ webhook_secret = {{ value = \"s3cret\" }} }}\n\
             limits = {{ timeout_ms = 10000 }}\n\
             config = {{ api_base_url = \"http://127.0.0.1:{port}\"{extra} }}"
        ),
    )
}

fn verify_request(order_id: &str) -> VerifyRequest {
    VerifyRequest {
        order_id: order_id.into(),
        gateway_ref: format!("v01-{order_id}"),
        callback_params: Vec::new(),
        expected_amount_paisa: 10_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_gateway_serves_beside_a_current_one() {
    let port = status_api().await;
    let config = [
        gateway_entry("legacy-pay", port, ""),
        gateway_entry("legacy-norefund", port, ", refunds = \"off\""),
        entry(
            "fake",
            "payment-gateway",
            "fake_gateway.wasm",
            "config = { checkout_base_url = \"https://pay.example\" }",
        ),
    ]
    .concat();
    let (_s, host) = start(&config).await;
    assert_eq!(host.gateway_names(), vec!["fake", "legacy-norefund", "legacy-pay"]);
    assert_eq!(status_of(&host, "legacy-pay").contract.as_deref(), Some("0.1.0"));
    assert_eq!(status_of(&host, "fake").contract.as_deref(), Some("0.4.0"));

    let gw = host.gateway("legacy-pay");
    let intent = CreateIntentRequest {
        order_id: "o1".into(),
        amount_paisa: 10_000,
        description: "top-up".into(),
        return_url: None,
        context: context(),
    };
    let created = gw.create_intent(intent.clone()).await.expect("call").expect("intent");
    assert_eq!(created.gateway_ref, "v01-o1");
    assert_eq!(created.redirect_url, Some(format!("http://127.0.0.1:{port}/pay/v01-o1")));
    assert_eq!(created.status, PaymentStatus::Pending);
    let refused = gw.create_intent(CreateIntentRequest { amount_paisa: 0, ..intent }).await.expect("call");
    assert_eq!(refused, Err(GatewayError::InvalidRequest("amount must be positive".into())));

    // Outbound HTTP through the 0.1 host interface, answers converted back.
    let verified = gw.verify(verify_request("o1")).await.expect("call").expect("verified");
    assert_eq!((verified.status, verified.amount_paisa), (PaymentStatus::Succeeded, 10_000));
    assert_eq!(gw.verify(verify_request("o2")).await.expect("call"), Err(GatewayError::AmountMismatch));
    // 0.1 said "timeout" in an `unavailable` message; 0.2 has a case for it.
    let slow = gw.verify(verify_request("slow")).await.expect("call");
    assert!(matches!(&slow, Err(GatewayError::Timeout(m)) if m.contains("HTTP 504")), "{slow:?}");
    let down = gw.verify(verify_request("down")).await.expect("call");
    assert_eq!(down, Err(GatewayError::Unavailable("status API answered HTTP 503".into())));

    let body = b"ref=v01-o1&amount=10000&status=paid".to_vec();
    let signed = |sig: &str| vec![("X-Signature".to_string(), sig.to_string())];
    let event = gw.parse_webhook(signed("s3cret"), body.clone()).await.expect("call").expect("event");
    assert_eq!(
        event,
        WebhookEvent {
            event_id: "evt-v01-o1".into(),
            order_id: Some("o1".into()),
            gateway_ref: "v01-o1".into(),
            status: PaymentStatus::Succeeded,
            amount_paisa: 10_000,
        }
    );
    assert_eq!(gw.parse_webhook(signed("guess"), body).await.expect("call"), Err(GatewayError::BadSignature));

    let refund = RefundRequest {
        order_id: "o1".into(),
        gateway_ref: "v01-o1".into(),
        amount_paisa: 2_500,
        reason: "faulty bank".into(),
        idempotency_key: "k1".into(),
    };
    let refunded = gw.refund(refund.clone()).await.expect("call").expect("refund");
    assert_eq!((refunded.refund_ref.as_str(), refunded.amount_paisa), ("r-k1", 2_500));
    let unsupported = host.gateway("legacy-norefund").refund(refund).await.expect("call");
    assert_eq!(unsupported, Err(GatewayError::NotSupported));

    // The current gateway beside it answers as before.
    let fake = CreateIntentRequest {
        order_id: "o9".into(),
        amount_paisa: 100,
        description: "x".into(),
        return_url: None,
        context: context(),
    };
    let fake = host.gateway("fake").create_intent(fake).await.expect("call").expect("intent");
    assert_eq!(fake.gateway_ref, "fake-o9");
}

fn eject(slot: u16) -> StationCommand {
    StationCommand::Eject(EjectCommand {
        request_id: "r1".into(),
        slot,
        power_bank: None,
        issued_at_unix_ms: now_ms(),
        ttl_secs: 30,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_station_protocol_gets_its_numeric_qos_checked() {
    let config = [
        entry(
            "legacy-qos2",
            "station-protocol",
            "compat_v0_1_station.wasm",
            "config = { qos = 2 }\nlimits = { timeout_ms = 10000 }",
        ),
        entry(
            "legacy-qos7",
            "station-protocol",
            "compat_v0_1_station.wasm",
            "config = { qos = 7 }\nlimits = { timeout_ms = 10000 }",
        ),
    ]
    .concat();
    let (_s, host) = start(&config).await;
    let station = host.station_protocol("legacy-qos2");
    assert_eq!(station.topic_filters().await, Ok(vec!["compat/+/up".to_string()]));

    let decoded = station.decode("compat/ST-9/up".into(), b"returned:3:PB-1".to_vec()).await.expect("call");
    assert_eq!(
        decoded,
        Ok(DecodedMessage {
            device_id: "ST-9".into(),
            events: vec![StationEvent::Returned(ReturnedEvent { slot: 3, power_bank: "PB-1".into(), battery: None })],
        })
    );
    let other = station.decode("elsewhere/ST-9".into(), Vec::new()).await.expect("call");
    assert_eq!(other, Err(DecodeError::UnknownTopic("elsewhere/ST-9".into())));
    let garbage = station.decode("compat/ST-9/up".into(), b"hello".to_vec()).await.expect("call");
    assert!(matches!(garbage, Err(DecodeError::Malformed(ref m)) if m.device_id.as_deref() == Some("ST-9")));

    let sent = station.encode("ST-9".into(), eject(4)).await.expect("encodes");
    assert_eq!(
        sent,
        vec![OutboundMessage {
            topic: "compat/ST-9/down".into(),
            payload: b"eject:4".to_vec(),
            qos: Qos::ExactlyOnce,
            retain: false,
        }]
    );
    let query = station.encode("ST-9".into(), StationCommand::QueryStatus).await.expect_err("refused");
    assert_eq!(query.failure, Failure::Rejected("this protocol has no status query".into()));
    // A number that is no QoS was the host's check in 0.1; it still is.
    let bad = host.station_protocol("legacy-qos7").encode("ST-9".into(), eject(4)).await.expect_err("malformed");
    assert_eq!(bad.failure, Failure::MalformedResult("QoS 7".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_and_coupons_of_0_1_answer_in_current_types() {
    let config = [
        entry(
            "legacy-points",
            "points-rules",
            "compat_v0_1_points.wasm",
            "config = { expiry_days = 45 }\nlimits = { timeout_ms = 10000 }",
        ),
        entry("legacy-coupons", "promotions", "compat_v0_1_promotions.wasm", "limits = { timeout_ms = 10000 }"),
    ]
    .concat();
    let (_s, host) = start(&config).await;
    let signup = PointsEvent::Signup(SignupEvent { user_id: "user-1".into() });
    let awards = host.points().award(signup, context()).await.expect("award");
    assert_eq!(
        awards,
        vec![Award { role: AwardRole::Subject, user_id: "user-1".into(), points: 7, reason: "0.1".into() }]
    );
    let own = PointsEvent::Referral(ReferralEvent { referrer_id: "u".into(), referee_id: "u".into() });
    let err = host.points().award(own, context()).await.expect_err("self-referral");
    assert_eq!(err.failure, Failure::Rejected("a user cannot refer themselves".into()));
    assert_eq!(host.points().points_to_paisa(30).await, Ok(300));
    assert_eq!(host.points().expiry_days().await, Ok(45));

    let coupon = |discount| Coupon {
        code: "SAVE".into(),
        discount,
        valid_from_unix_ms: 0,
        valid_until_unix_ms: now_ms() + HOUR_MS,
        min_amount_paisa: 0,
        max_uses_total: None,
        max_uses_per_user: None,
        max_discount_paisa: None,
    };
    let order = OrderSummary { amount_paisa: 5_000, package_code: None, context: context() };
    let usage = CouponUsage { total_used: 0, used_by_user: 0 };
    let promotions = host.promotions();
    let applied = promotions.apply_coupon(coupon(CouponDiscount::FixedPaisa(8_000)), order.clone(), usage).await;
    assert_eq!(applied, Ok(Ok(DiscountApplication { discount_paisa: 5_000, final_amount_paisa: 0 })));
    let percent = promotions.apply_coupon(coupon(CouponDiscount::PercentageBp(1_000)), order.clone(), usage).await;
    assert_eq!(percent, Ok(Err(CouponRejection::InvalidCoupon("no percentages here".into()))));
    let mut expired = coupon(CouponDiscount::FixedPaisa(100));
    expired.valid_until_unix_ms = now_ms() - HOUR_MS;
    assert_eq!(host.promotions().apply_coupon(expired, order, usage).await, Ok(Err(CouponRejection::Expired)));
}

/// `bytes` with the version of every `powerbank:plugins/...@{from}` name
/// replaced by `to` (same length, so the component stays well-formed), as if
/// it had been built against `to`.
fn relabelled(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let prefix = b"powerbank:plugins/";
    let mut out = bytes.to_vec();
    let mut replaced = 0;
    let mut i = 0;
    while let Some(at) = out[i..].windows(prefix.len()).position(|w| w == prefix) {
        // Past the interface name to its `@version`.
        let mut end = i + at + prefix.len();
        while end < out.len() && (out[end].is_ascii_lowercase() || out[end] == b'-') {
            end += 1;
        }
        let version = end + 1..end + 1 + from.len();
        if out.get(end) == Some(&b'@') && out.get(version.clone()) == Some(from.as_bytes()) {
            out[version].copy_from_slice(to.as_bytes());
            replaced += 1;
        }
        i = end;
    }
    assert!(replaced > 0, "no version strings in the component");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_negotiated_by_their_compatibility_track() {
    let scratch = Scratch::new();
    let current = std::fs::read(dist("pricing_standard.wasm")).expect("read plugin");
    let path = scratch.dir.path().join("pricing.wasm");
    let config = format!(
        "[plugins.pricing]\nkind = \"pricing\"\npath = \"{}\"\nlimits = {{ timeout_ms = 10000 }}\n",
        path.display()
    );

    // A later patch release of 0.4 (a compatible change) loads on this 0.4.0 host.
    std::fs::write(&path, relabelled(&current, "0.4.0", "0.4.9")).expect("write");
    scratch.write_config(&config);
    let (host, report) = scratch.start().await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(host.pricing().quote(quote_request()).await.map(|q| q.amount_paisa), Ok(5_000));

    // 0.9 is another track: refused, naming what this host speaks; 0.4.9 keeps serving.
    std::fs::write(&path, relabelled(&current, "0.4.0", "0.9.0")).expect("write");
    let report = host.reload().await.expect("reload");
    let reason = &report.failed.first().expect("refused").1;
    assert!(reason.contains("was built against powerbank:plugins@0.9.0"), "{reason}");
    assert!(reason.contains("this host speaks 0.4.0, 0.3.0, 0.2.0, 0.1.0"), "{reason}");
    assert_eq!(host.pricing().quote(quote_request()).await.map(|q| q.amount_paisa), Ok(5_000));
    assert_eq!(host.active(PluginKind::Pricing).map(|(name, _)| name), Some("pricing".to_string()));

    // `validate` says the same without loading.
    let refused = host.validate(&path).await.expect_err("refused");
    assert!(refused.contains("powerbank:plugins@0.9.0"), "{refused}");
    let report = host.validate(dist("compat_v0_1_points.wasm")).await.expect("a valid 0.1 plugin");
    assert_eq!((report.kind, report.contract.as_str()), (PluginKind::PointsRules, "0.1.0"));
    let report = host.validate(dist("compat_v0_1_gateway.wasm")).await;
    assert!(report.is_err_and(|e| e.contains("api_base_url")), "a 0.1 self-check runs in validate too");
    let report = host.validate(dist("compat_v0_2_pricing.wasm")).await.expect("a valid 0.2 plugin");
    assert_eq!((report.kind, report.contract.as_str()), (PluginKind::Pricing, "0.2.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_plugin_swaps_with_a_current_one_under_load() {
    let scratch = Scratch::new();
    let legacy = entry(
        "pricing",
        "pricing",
        "compat_v0_1_pricing.wasm",
        "config = { paisa_per_minute = 100 }\nlimits = { timeout_ms = 10000 }",
    );
    let current = entry("pricing", "pricing", "pricing_standard.wasm", "limits = { timeout_ms = 10000 }");
    scratch.write_config(&legacy);
    let (host, _) = scratch.start().await;
    let caller = {
        let host = host.clone();
        tokio::spawn(async move {
            let mut amounts = std::collections::BTreeSet::new();
            let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
            while tokio::time::Instant::now() < deadline {
                // 60 min: 6000 from the 0.1 plugin, 5000 from the standard one.
                let quote = host.pricing().quote(quote_request()).await.map_err(|e| e.to_string())?;
                amounts.insert(quote.amount_paisa);
            }
            Ok::<_, String>(amounts)
        })
    };
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        scratch.write_config(if round % 2 == 0 { &current } else { &legacy });
        let report = host.reload().await.expect("reload");
        assert!(report.failed.is_empty(), "{report:?}");
    }
    let amounts = caller.await.expect("caller").expect("no call failed");
    assert!(amounts.iter().all(|a| *a == 5_000 || *a == 6_000), "{amounts:?}");
}
