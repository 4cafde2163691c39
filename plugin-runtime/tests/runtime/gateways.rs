//! Payment gateways: several by name, each with its own config and secrets.

use crate::common::*;
use powerbank_plugin_runtime::types::*;
use powerbank_plugin_runtime::{Failure, PluginHost};

async fn two_gateways() -> (Scratch, PluginHost) {
    // SAFETY of the test: the variable name is unique to this test. set_var is
    // unsafe in edition 2024 because other threads may read the environment;
    // the other tests of this binary read it only through std, which takes the
    // same lock as set_var, and no C code here calls getenv.
    unsafe { std::env::set_var("POWERBANK_TEST_FAKE_B_SECRET", "from-env") };
    let scratch = Scratch::new();
    let config = [
        entry(
            "fake-a",
            "payment-gateway",
            "fake_gateway.wasm",
            "config = { checkout_base_url = \"https://pay-a.example\" }\n\
             secrets = { webhook_secret = { value = \"inline-secret\" } }",
        ),
        entry(
            "fake-b",
            "payment-gateway",
            "fake_gateway.wasm",
            "config = { checkout_base_url = \"https://pay-b.example\" }\n\
             secrets = { webhook_secret = { env = \"POWERBANK_TEST_FAKE_B_SECRET\" } }",
        ),
    ]
    .concat();
    scratch.write_config(&config);
    let (host, report) = scratch.start().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    (scratch, host)
}

fn intent(order_id: &str, amount_paisa: i64) -> CreateIntentRequest {
    CreateIntentRequest {
        order_id: order_id.into(),
        amount_paisa,
        description: "Wallet top-up".into(),
        return_url: None,
        context: context(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_are_addressed_by_name() {
    let (_s, host) = two_gateways().await;
    assert_eq!(host.gateway_names(), vec!["fake-a", "fake-b"]);

    let a = host.gateway("fake-a").create_intent(intent("o1", 10_000)).await;
    let a = a.expect("call").expect("intent");
    assert_eq!(a.redirect_url.as_deref(), Some("https://pay-a.example/pay/fake-o1"));
    let b = host.gateway("fake-b").create_intent(intent("o2", 10_000)).await;
    let b = b.expect("call").expect("intent");
    assert_eq!(b.redirect_url.as_deref(), Some("https://pay-b.example/pay/fake-o2"));

    // The gateway's own refusal is the inner error, not a plugin failure.
    let refused = host.gateway("fake-a").create_intent(intent("o3", 0)).await;
    assert!(matches!(refused, Ok(Err(GatewayError::InvalidRequest(_)))));

    let missing = host.gateway("nope").create_intent(intent("o4", 100)).await;
    assert_eq!(missing.err().map(|e| e.failure), Some(Failure::NotLoaded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_refund() {
    let (_s, host) = two_gateways().await;
    let gw = host.gateway("fake-a");
    let verify = |amount: &str| VerifyRequest {
        order_id: "o1".into(),
        gateway_ref: "fake-o1".into(),
        callback_params: vec![("amount".into(), amount.into()), ("status".into(), "paid".into())],
        expected_amount_paisa: 10_000,
    };
    let ok = gw.verify(verify("10000")).await.expect("call").expect("verified");
    assert_eq!((ok.status, ok.amount_paisa), (PaymentStatus::Succeeded, 10_000));
    let tampered = gw.verify(verify("100")).await.expect("call");
    assert_eq!(tampered, Err(GatewayError::AmountMismatch));

    let refund = RefundRequest {
        order_id: "o1".into(),
        gateway_ref: "fake-o1".into(),
        amount_paisa: 2_500,
        reason: "battery faulty".into(),
        idempotency_key: "k1".into(),
    };
    let refunded = gw.refund(refund).await.expect("call").expect("refund");
    assert_eq!(refunded.amount_paisa, 2_500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_check_each_gateways_own_secret() {
    let (_s, host) = two_gateways().await;
    let body = b"order_id=o1&ref=fake-o1&amount=10000&status=paid".to_vec();
    let signed = |sig: &str| vec![("X-Signature".to_string(), sig.to_string())];

    let event = host
        .gateway("fake-a")
        .parse_webhook(signed("inline-secret"), body.clone())
        .await
        .expect("call")
        .expect("valid webhook");
    assert_eq!(event.order_id.as_deref(), Some("o1"));
    assert_eq!((event.status, event.amount_paisa), (PaymentStatus::Succeeded, 10_000));

    let b = host.gateway("fake-b").parse_webhook(signed("from-env"), body.clone()).await.expect("call");
    assert!(b.is_ok(), "{b:?}");

    // fake-a's secret does not open fake-b.
    let crossed = host.gateway("fake-b").parse_webhook(signed("inline-secret"), body).await.expect("call");
    assert_eq!(crossed, Err(GatewayError::BadSignature));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_env_var_fails_only_that_gateway() {
    let scratch = Scratch::new();
    let config = [
        entry(
            "fake-a",
            "payment-gateway",
            "fake_gateway.wasm",
            "config = { checkout_base_url = \"https://pay-a.example\" }",
        ),
        entry(
            "fake-b",
            "payment-gateway",
            "fake_gateway.wasm",
            "config = { checkout_base_url = \"https://pay-b.example\" }\n\
             secrets = { webhook_secret = { env = \"POWERBANK_TEST_SURELY_UNSET_VAR\" } }",
        ),
    ]
    .concat();
    scratch.write_config(&config);
    let (host, report) = scratch.start().await;
    assert_eq!(report.loaded, vec!["fake-a".to_string()]);
    assert!(report.failed[0].1.contains("POWERBANK_TEST_SURELY_UNSET_VAR"));
    assert_eq!(host.gateway_names(), vec!["fake-a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_say_how_to_show_them() {
    let scratch = Scratch::new();
    let config = [
        entry(
            "fake-a",
            "payment-gateway",
            "fake_gateway.wasm",
            "config = { checkout_base_url = \"https://pay-a.example\" }",
        ),
        entry(
            "fake-b",
            "payment-gateway",
            "fake_gateway.wasm",
            "config = { checkout_base_url = \"https://pay-b.example\", display_name = \"Pay B\", \
             icon_url = \"https://cdn.example/pay-b.svg\" }",
        ),
    ]
    .concat();
    scratch.write_config(&config);
    let (host, report) = scratch.start().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    // The plugin's own display name, from its `info`...
    let a = host.display_info("fake-a").expect("fake-a serves");
    assert_eq!((a.name.as_str(), a.display_name.as_str(), a.icon_url), ("fake-a", "Fake Pay", None));
    // ...which plugins.toml can rebrand without a rebuild.
    let b = host.display_info("fake-b").expect("fake-b serves");
    assert_eq!((b.display_name.as_str(), b.icon_url.as_deref()), ("Pay B", Some("https://cdn.example/pay-b.svg")));
    let status = host.status();
    let b = status.iter().find(|s| s.name == "fake-b").expect("status");
    assert_eq!(
        (b.display_name.as_deref(), b.icon_url.as_deref(), b.contract.as_deref()),
        (Some("Pay B"), Some("https://cdn.example/pay-b.svg"), Some("0.4.0"))
    );
    assert_eq!(host.display_info("nope"), None);
}
