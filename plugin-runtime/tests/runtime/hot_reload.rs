//! Swapping plugins under load, and refusing broken replacements.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::common::*;
use powerbank_plugin_runtime::{PluginHostOptions, PluginKind, PluginState};

/// A pricing plugin with a service fee. Its time budget is generous: these
/// tests are about swapping, and a loaded machine must not make a call time out.
fn pricing_config(path: &std::path::Path, fee: i64) -> String {
    format!(
        "[plugins.pricing]\nkind = \"pricing\"\npath = \"{}\"\n\
         config = {{ service_fee_paisa = {fee} }}\nlimits = {{ timeout_ms = 10000 }}\n",
        path.display()
    )
}

/// Appends a custom section: a valid component with a new sha256, standing
/// in for "a new version of the same plugin".
fn rebuilt(bytes: &[u8], tag: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let name = b"rebuild";
    let payload = [tag];
    out.push(0); // custom section id
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_under_load_fails_no_call_and_mixes_no_versions() {
    let scratch = Scratch::new();
    let original = std::fs::read(dist("pricing_standard.wasm")).expect("read plugin");
    let v1 = scratch.dir.path().join("pricing_v1.wasm");
    let v2 = scratch.dir.path().join("pricing_v2.wasm");
    std::fs::write(&v1, rebuilt(&original, 1)).expect("write v1");
    std::fs::write(&v2, rebuilt(&original, 2)).expect("write v2");
    scratch.write_config(&pricing_config(&v1, 100));
    let (host, _) = scratch.start().await;

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut callers = Vec::new();
    for _ in 0..8 {
        let (host, stop, calls) = (host.clone(), stop.clone(), calls.clone());
        callers.push(tokio::spawn(async move {
            let mut fees_seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let quote = host.pricing().quote(quote_request()).await.map_err(|e| e.to_string())?;
                // Each answer must come wholly from one config: the fee line
                // and the total agree with each other.
                let fee = quote.amount_paisa - 5_000;
                let fee_line = quote.breakdown.get(1).map(|l| l.amount_paisa);
                if !(fee == 100 || fee == 200) || fee_line != Some(fee) {
                    return Err(format!("mixed answer: {quote:?}"));
                }
                fees_seen.insert(fee);
                calls.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(fees_seen)
        }));
    }

    let mut shas = std::collections::BTreeSet::new();
    for round in 0..12 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let (path, fee) = if round % 2 == 0 { (&v2, 200) } else { (&v1, 100) };
        scratch.write_config(&pricing_config(path, fee));
        let report = host.reload().await.expect("reload");
        assert_eq!(report.loaded, vec!["pricing".to_string()], "{report:?}");
        let status = host.status();
        shas.insert(status[0].sha256.clone());
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    stop.store(true, Ordering::Relaxed);

    let mut fees = std::collections::BTreeSet::new();
    for c in callers {
        let seen = c.await.expect("caller task").expect("no call may fail");
        fees.extend(seen);
    }
    assert_eq!(fees.len(), 2, "both versions served");
    assert_eq!(shas.len(), 2, "both builds were swapped in");
    assert!(calls.load(Ordering::Relaxed) > 100);
    assert_eq!(host.status()[0].failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_self_check_keeps_the_old_plugin_serving() {
    let scratch = Scratch::new();
    let path = scratch.copy_plugin("pricing_standard.wasm", "pricing.wasm");
    scratch.write_config(&pricing_config(&path, 0));
    let (host, _) = scratch.start().await;
    let before = host.status()[0].clone();

    std::fs::copy(dist("bad_self_check.wasm"), &path).expect("replace plugin");
    let report = host.reload().await.expect("reload");
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].1.contains("self-check"), "{report:?}");

    let quote = host.pricing().quote(quote_request()).await.expect("old still serves");
    assert_eq!(quote.amount_paisa, 5_000);
    let status = &host.status()[0];
    assert_eq!(status.state, PluginState::Active);
    assert_eq!(status.sha256, before.sha256);
    assert_eq!(status.loaded_at_unix_ms, before.loaded_at_unix_ms);
    let error = status.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("bad-self-check always fails"), "{error}");

    // Restoring a good build clears the error.
    std::fs::copy(dist("pricing_standard.wasm"), &path).expect("restore plugin");
    let report = host.reload().await.expect("reload");
    assert!(report.failed.is_empty() && report.unchanged == vec!["pricing".to_string()]);
    assert!(host.status()[0].last_error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_and_wrong_worlds_are_refused() {
    let scratch = Scratch::new();
    let path = scratch.copy_plugin("pricing_standard.wasm", "pricing.wasm");
    scratch.write_config(&pricing_config(&path, 0));
    let (host, _) = scratch.start().await;

    std::fs::write(&path, b"\0asm definitely not a component").expect("write garbage");
    let report = host.reload().await.expect("reload");
    assert!(report.failed[0].1.contains("not a valid component"), "{report:?}");
    assert!(host.pricing().quote(quote_request()).await.is_ok());

    // A points plugin configured as pricing does not fit the pricing world.
    std::fs::copy(dist("points_standard.wasm"), &path).expect("copy points");
    let report = host.reload().await.expect("reload");
    assert!(report.failed[0].1.contains("pricing world"), "{report:?}");
    assert!(host.pricing().quote(quote_request()).await.is_ok());
    assert_eq!(host.active(PluginKind::Pricing).map(|(_, v)| v), Some("0.1.0".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_plugins_toml_changes_nothing() {
    let scratch = Scratch::new();
    scratch.write_config(&standard_plugins());
    let (host, _) = scratch.start().await;
    scratch.write_config("[plugins.x]\nkind = \"pricing\"\n");
    let err = host.reload().await.expect_err("invalid config");
    assert!(err.to_string().contains("path"), "{err}");
    assert!(host.pricing().quote(quote_request()).await.is_ok());
    assert_eq!(host.status().len(), 3);
    // A format this host does not read is refused the same way.
    scratch.write_config(&format!("version = 2\n{}", standard_plugins()));
    let err = host.reload().await.expect_err("unknown format");
    assert!(err.to_string().contains("format version 1"), "{err}");
    assert!(host.pricing().quote(quote_request()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_and_disabling_plugins() {
    let scratch = Scratch::new();
    scratch.write_config(&standard_plugins());
    let (host, _) = scratch.start().await;
    let config = [
        entry("pricing-standard", "pricing", "pricing_standard.wasm", "enabled = false"),
        entry("points-standard", "points-rules", "points_standard.wasm", ""),
    ]
    .concat();
    scratch.write_config(&config);
    let report = host.reload().await.expect("reload");
    assert_eq!(report.unchanged, vec!["points-standard".to_string()]);
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, vec!["pricing-standard", "promotions-standard"]);
    let err = host.pricing().quote(quote_request()).await.expect_err("disabled");
    assert_eq!(err.failure, powerbank_plugin_runtime::Failure::NotLoaded);
    let status = host.status();
    assert_eq!(status.len(), 2);
    assert_eq!(status[1].name, "pricing-standard");
    assert_eq!(status[1].state, PluginState::Disabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reloads_on_file_changes() {
    let scratch = Scratch::new();
    let path = scratch.copy_plugin("pricing_standard.wasm", "pricing.wasm");
    scratch.write_config(&pricing_config(&path, 0));
    let options =
        PluginHostOptions { watch: true, watch_debounce: Duration::from_millis(100), ..PluginHostOptions::default() };
    let (host, _) = scratch.start_with(options).await;
    assert_eq!(host.pricing().quote(quote_request()).await.map(|q| q.amount_paisa), Ok(5_000));

    scratch.write_config(&pricing_config(&path, 300));
    let mut served = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        served = host.pricing().quote(quote_request()).await.map(|q| q.amount_paisa).unwrap_or_default();
        if served == 5_300 {
            break;
        }
    }
    assert_eq!(served, 5_300, "the config change was not picked up");
}

/// Issue 17: a database beside plugins.toml (its WAL written hundreds of
/// times a second) once kept restarting the quiet period, so no reload ever
/// came while the writes went on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reloads_while_a_neighbouring_file_keeps_changing() {
    let scratch = Scratch::new();
    let path = scratch.copy_plugin("pricing_standard.wasm", "pricing.wasm");
    scratch.write_config(&pricing_config(&path, 0));
    let options =
        PluginHostOptions { watch: true, watch_debounce: Duration::from_millis(300), ..PluginHostOptions::default() };
    let (host, _) = scratch.start_with(options).await;

    // A write every millisecond or so, far more often than the quiet period,
    // for as long as the test runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, writes) = (stop.clone(), writes.clone());
        let wal = scratch.dir.path().join("powerbank.db-wal");
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::File::create(&wal).expect("create the WAL stand-in");
            while !stop.load(Ordering::Relaxed) {
                file.write_all(&[0u8; 4096]).expect("write");
                file.flush().expect("flush");
                writes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    while writes.load(Ordering::Relaxed) < 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    scratch.write_config(&pricing_config(&path, 300));
    let writes_before = writes.load(Ordering::Relaxed);
    let mut served = 0;
    // Generous: the reload needs the 300 ms quiet period plus a load; the
    // bug held it off for as long as the writes went on, i.e. forever here.
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        served = host.pricing().quote(quote_request()).await.map(|q| q.amount_paisa).unwrap_or_default();
        if served == 5_300 {
            break;
        }
    }
    let writes_meanwhile = writes.load(Ordering::Relaxed) - writes_before;
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    assert_eq!(served, 5_300, "no reload while the neighbouring file kept changing");
    assert!(writes_meanwhile > 0, "the neighbour kept writing while the reload was awaited");
}
