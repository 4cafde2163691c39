//! Cost of a shadow to the live call: a pricing quote's p50/p99 with no
//! shadow, then with a shadow of the same plugin (another config) repeating
//! every call in the background. The goal is within 10 % of without.
//!
//! Run: `cargo bench -p powerbank-plugin-runtime --bench plugin_shadow`
//! (needs plugins/dist/pricing_standard.wasm: `cargo xtask build-plugins`).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use powerbank_plugin_runtime::types::{CallContext, PackageInfo, QuoteRequest};
use powerbank_plugin_runtime::{CandidateMode, PluginHost, PluginHostOptions, SlotRelease};

const WARMUP: usize = 500;
const ITERATIONS: usize = 5_000;
/// Rounds of (without, with) measured alternately, so a change in the
/// machine's load hits both sides alike.
const ROUNDS: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist/pricing_standard.wasm");
    if !wasm.is_file() {
        return Err(format!("{} is missing: run `cargo xtask build-plugins` first", wasm.display()).into());
    }
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("plugins.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins.pricing-standard]\nkind = \"pricing\"\npath = \"{}\"\nconfig = {{ service_fee_paisa = 200 }}\n",
            wasm.display()
        ),
    )?;
    // Two workers: the caller polls the live call on this thread (block_on),
    // the shadow worker runs on a runtime thread, as in the server.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (host, report) = runtime.block_on(PluginHost::start(&config, PluginHostOptions::default()))?;
    if !report.failed.is_empty() {
        return Err(format!("plugin failed to load: {:?}", report.failed).into());
    }
    let request = QuoteRequest {
        package: PackageInfo { id: "pkg-1".into(), code: "HOUR1".into(), price_paisa: 5_000, duration_minutes: 60 },
        requested_minutes: Some(90),
        context: CallContext { user_id: Some("user-1".into()), station_sn: None, now_unix_ms: 1_800_000_000_000 },
    };
    let mut shadow_config = BTreeMap::new();
    shadow_config.insert("service_fee_paisa".to_string(), "300".to_string());
    let shadow = SlotRelease { release_id: 1, path: wasm.clone(), config: shadow_config, signature: None };

    let call = || {
        let quote = runtime.block_on(host.pricing().quote(black_box(request.clone())));
        black_box(quote).map(|_| ())
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        host.stop_candidate("pricing-standard", None, "bench");
        without.extend(measure(call)?);
        runtime.block_on(host.start_candidate(
            "pricing-standard",
            shadow.clone(),
            CandidateMode::Shadow { sample_percent: 100 },
        ))?;
        with.extend(measure(call)?);
    }
    let shadowed = host.candidate_report("pricing-standard", 1).ok_or("no shadow report")?;

    let (p50, p99) = percentiles(without);
    let (s50, s99) = percentiles(with);
    println!("pricing quote, {} calls each way (after {WARMUP} warm-up calls per round)", ROUNDS * ITERATIONS);
    println!("  live call, no shadow:        p50 {:>8.2} us   p99 {:>8.2} us", us(p50), us(p99));
    println!("  live call, shadow running:   p50 {:>8.2} us   p99 {:>8.2} us", us(s50), us(s99));
    let pct = |a: Duration, b: Duration| (b.as_nanos() as f64 / a.as_nanos().max(1) as f64 - 1.0) * 100.0;
    println!("  change:                      p50 {:>+7.1} %     p99 {:>+7.1} %", pct(p50, s50), pct(p99, s99));
    println!(
        "  shadow (last round): {} repeated, {} equal, {} different, {} failed, {} dropped (queue full)",
        shadowed.calls, shadowed.equal, shadowed.different, shadowed.shadow_failures, shadowed.dropped
    );
    println!("  goal p50 within 10 %:        {}", if pct(p50, s50) <= 10.0 { "met" } else { "NOT met" });
    Ok(())
}

fn measure<E: std::error::Error + 'static>(
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    for _ in 0..WARMUP {
        f()?;
    }
    let mut times = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed());
    }
    Ok(times)
}

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort_unstable();
    let at = |pct: usize| times[(times.len() * pct / 100).min(times.len() - 1)];
    (at(50), at(99))
}

fn us(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1_000.0
}
