//! Plugins that loop, hog memory, trap or reach for forbidden hosts get a
//! clean error within their budget, while other calls keep succeeding.

use std::time::{Duration, Instant};

use crate::common::*;
use powerbank_plugin_runtime::types::*;
use powerbank_plugin_runtime::{Failure, PluginError, PluginHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A host whose pricing plugin is `file`, beside the standard points and
/// promotions plugins that serve the "ordinary" calls.
async fn host_with_pricing(file: &str, extra: &str) -> (Scratch, PluginHost) {
    let scratch = Scratch::new();
    let config = [
        entry("misbehaving", "pricing", file, extra),
        entry("points-standard", "points-rules", "points_standard.wasm", ""),
        entry("promotions-standard", "promotions", "promotions_standard.wasm", ""),
    ]
    .concat();
    scratch.write_config(&config);
    let (host, report) = scratch.start().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    (scratch, host)
}

/// Runs ordinary points/promotions calls in a loop until `stop`, returning
/// (successes, failures).
fn ordinary_traffic(
    host: &PluginHost,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<(u32, u32)> {
    let host = host.clone();
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0, 0);
        // At least one round, so a fast misbehaving test still sees traffic.
        loop {
            let award = host.points().award(PointsEvent::Signup(SignupEvent { user_id: "u".into() }), context()).await;
            match award {
                Ok(a) if a.len() == 1 && a[0].points == 50 => ok += 1,
                _ => failed += 1,
            }
            match host.points().points_to_paisa(10).await {
                Ok(100) => ok += 1,
                _ => failed += 1,
            }
            if *stop.borrow() {
                break;
            }
        }
        (ok, failed)
    })
}

/// Calls `bad` a few times concurrently with ordinary traffic, checks each bad
/// call fails with `expected` within `budget`, and that ordinary calls all succeed.
async fn assert_contained<F, Fut>(host: &PluginHost, budget: Duration, bad: F, expected: fn(&Failure) -> bool)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), PluginError>>,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let traffic = [ordinary_traffic(host, stop_rx.clone()), ordinary_traffic(host, stop_rx)];
    for _ in 0..3 {
        let started = Instant::now();
        let err = bad().await.expect_err("the misbehaving call must fail");
        let took = started.elapsed();
        assert!(expected(&err.failure), "unexpected failure: {err}");
        assert!(took < budget, "{err} took {took:?}, budget {budget:?}");
        // The message names the plugin and its version.
        let message = err.to_string();
        assert!(message.contains("misbehaving@0.1.0"), "{message}");
    }
    stop_tx.send(true).expect("traffic tasks alive");
    for t in traffic {
        let (ok, failed) = t.await.expect("traffic task");
        assert_eq!(failed, 0, "ordinary calls failed while a plugin misbehaved");
        assert!(ok > 0, "no ordinary call completed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_interrupted_at_the_timeout() {
    let (_s, host) = host_with_pricing("spin_forever.wasm", "limits = { timeout_ms = 50 }").await;
    // 50 ms budget; generous slack for a loaded debug-build test machine.
    assert_contained(
        &host,
        Duration::from_millis(1_000),
        || async { host.pricing().quote(quote_request()).await.map(|_| ()) },
        |f| matches!(f, Failure::Timeout { timeout_ms: 50 }),
    )
    .await;
    // A fresh store per call: the plugin's other exports still work.
    let extension = ExtensionRequest {
        package: one_hour_package(),
        current_due_unix_ms: now_ms(),
        extra_minutes: 10,
        context: context(),
    };
    assert_eq!(host.pricing().price_extension(extension).await, Ok(0));
    let status = host.status();
    let bad = status.iter().find(|s| s.name == "misbehaving").expect("status");
    assert_eq!((bad.calls, bad.failures), (4, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_allocation_is_refused() {
    let (_s, host) = host_with_pricing("alloc_1gib.wasm", "limits = { memory_mb = 64 }").await;
    // A plain `vec!` aborts on the refusal: reported as out of memory.
    assert_contained(
        &host,
        Duration::from_millis(2_000),
        || async { host.pricing().quote(quote_request()).await.map(|_| ()) },
        |f| matches!(f, Failure::OutOfMemory { memory_mb: 64 }),
    )
    .await;
    // `try_reserve` sees the refusal as an error and the plugin reports it.
    let extension = ExtensionRequest {
        package: one_hour_package(),
        current_due_unix_ms: now_ms(),
        extra_minutes: 10,
        context: context(),
    };
    let err = host.pricing().price_extension(extension).await.expect_err("cannot reserve 1 GiB");
    assert!(matches!(&err.failure, Failure::Unavailable(m) if m.contains("could not reserve")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_a_clean_error() {
    let (_s, host) = host_with_pricing("trap.wasm", "").await;
    assert_contained(
        &host,
        Duration::from_millis(2_000),
        || async { host.pricing().quote(quote_request()).await.map(|_| ()) },
        |f| matches!(f, Failure::Trap(_)),
    )
    .await;
    let overdue = OverdueRequest {
        package: one_hour_package(),
        due_unix_ms: now_ms(),
        returned_unix_ms: now_ms() + HOUR_MS,
        context: context(),
    };
    let err = host.pricing().overdue_charge(overdue).await.expect_err("unreachable");
    assert!(matches!(err.failure, Failure::Trap(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_off_the_allowlist_is_refused() {
    let (_s, host) = host_with_pricing("forbidden_host.wasm", "allowed_hosts = [\"api.example.com\"]").await;
    assert_contained(
        &host,
        Duration::from_millis(2_000),
        || async { host.pricing().quote(quote_request()).await.map(|_| ()) },
        |f| matches!(f, Failure::ForbiddenHost(h) if h == "https://exfiltrate.example.net:443"),
    )
    .await;
}

/// Serves one fixed HTTP response per connection on a local port.
async fn tiny_http_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_host_is_reachable_within_the_call_budget() {
    let port = tiny_http_server().await;
    let extra = format!(
        "allowed_hosts = [\"http://127.0.0.1:{port}\"]\n\
         config = {{ target_url = \"http://127.0.0.1:{port}/ping\" }}\n\
         limits = {{ max_outbound_calls = 1, timeout_ms = 2000 }}"
    );
    let (_s, host) = host_with_pricing("forbidden_host.wasm", &extra).await;
    let quote = host.pricing().quote(quote_request()).await.expect("allowed fetch");
    assert!(quote.breakdown[0].label.contains("status 204"), "{quote:?}");

    // Same host, but no outbound calls allowed: the plugin is told so.
    let scratch = Scratch::new();
    scratch.write_config(&entry(
        "misbehaving",
        "pricing",
        "forbidden_host.wasm",
        &extra.replace("max_outbound_calls = 1", "max_outbound_calls = 0"),
    ));
    let (host, _) = scratch.start().await;
    let err = host.pricing().quote(quote_request()).await.expect_err("no budget");
    assert!(matches!(&err.failure, Failure::Unavailable(m) if m.contains("TooManyCalls")), "{err}");
}
