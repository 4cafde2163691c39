//! Cost of one pricing quote through the plugin runtime versus the same rule
//! as a plain Rust function, and of a quote from a plugin built against
//! contract 0.1 (through the adapter that converts its types).
//!
//! Run: `cargo bench -p powerbank-plugin-runtime --bench pricing_call`
//! (needs plugins/dist/pricing_standard.wasm and compat_v0_1_pricing.wasm:
//! `cargo xtask build-plugins`).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use powerbank_plugin_runtime::types::{BreakdownLine, CallContext, PackageInfo, Quote, QuoteRequest};
use powerbank_plugin_runtime::{PluginHost, PluginHostOptions};

const WARMUP: usize = 2_000;
const ITERATIONS: usize = 20_000;

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
            "[plugins.pricing-standard]\nkind = \"pricing\"\npath = \"{}\"\n\
             config = {{ service_fee_paisa = 200 }}\n",
            wasm.display()
        ),
    )?;

    // Current-thread runtime: block_on polls the call on this thread, so the
    // numbers are the runtime's own cost, as paid inside an async handler.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (host, report) = runtime.block_on(PluginHost::start(&config, PluginHostOptions::default()))?;
    if !report.failed.is_empty() {
        return Err(format!("plugin failed to load: {:?}", report.failed).into());
    }

    let request = QuoteRequest {
        package: PackageInfo { id: "pkg-1".into(), code: "HOUR1".into(), price_paisa: 5_000, duration_minutes: 60 },
        requested_minutes: Some(90),
        context: CallContext {
            user_id: Some("user-1".into()),
            station_sn: Some("ST-0001".into()),
            now_unix_ms: 1_800_000_000_000,
        },
    };

    // Through the runtime: call slot, fresh store, fresh instance, call, checks.
    let expected = runtime.block_on(host.pricing().quote(request.clone()))?;
    let wasm_times = measure(|| {
        let quote = runtime.block_on(host.pricing().quote(black_box(request.clone())));
        black_box(quote).map(|_| ())
    })?;

    // The same rule in plain Rust, config read from a map as the plugin does.
    let mut native_config = BTreeMap::new();
    native_config.insert("service_fee_paisa".to_string(), "200".to_string());
    if native_quote(&native_config, &request) != Some(expected) {
        return Err("native and plugin quotes differ".into());
    }
    let native_times = measure(|| {
        black_box(native_quote(black_box(&native_config), black_box(&request)));
        Ok::<(), std::convert::Infallible>(())
    })?;

    // A 0.1 plugin: the request is converted down and the answer up. Its rule
    // (minutes times a rate) is as trivial as the standard one's.
    let legacy_wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist/compat_v0_1_pricing.wasm");
    let legacy_config = dir.path().join("legacy.toml");
    std::fs::write(
        &legacy_config,
        format!("[plugins.legacy]\nkind = \"pricing\"\npath = \"{}\"\n", legacy_wasm.display()),
    )?;
    let (legacy, report) = runtime.block_on(PluginHost::start(&legacy_config, PluginHostOptions::default()))?;
    if !report.failed.is_empty() {
        return Err(format!("0.1 plugin failed to load: {:?}", report.failed).into());
    }
    let legacy_times = measure(|| {
        let quote = runtime.block_on(legacy.pricing().quote(black_box(request.clone())));
        black_box(quote).map(|_| ())
    })?;

    let (wasm_p50, wasm_p99) = percentiles(wasm_times);
    let (legacy_p50, legacy_p99) = percentiles(legacy_times);
    let (native_p50, native_p99) = percentiles(native_times);
    println!("pricing quote, {ITERATIONS} calls each (after {WARMUP} warm-up calls)");
    println!("  plugin (fresh instance + call):   median {:>9.2} us   p99 {:>9.2} us", us(wasm_p50), us(wasm_p99));
    println!("  plain Rust function:              median {:>9.3} us   p99 {:>9.3} us", us(native_p50), us(native_p99));
    println!("  0.1 plugin through the adapter:   median {:>9.2} us   p99 {:>9.2} us", us(legacy_p50), us(legacy_p99));
    let ratio = wasm_p50.as_nanos() as f64 / native_p50.as_nanos().max(1) as f64;
    println!("  ratio plugin / plain (median):    {ratio:.0}x");
    println!(
        "  goal < 50 us per call:            {}",
        if wasm_p50 < Duration::from_micros(50) { "met" } else { "NOT met" }
    );
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

/// pricing-standard's quote rule, natively.
fn native_quote(config: &BTreeMap<String, String>, request: &QuoteRequest) -> Option<Quote> {
    let fee: i64 = config.get("service_fee_paisa")?.parse().ok()?;
    let package = &request.package;
    let minutes = request.requested_minutes.unwrap_or(package.duration_minutes);
    let count = i64::from(minutes.div_ceil(package.duration_minutes)).max(1);
    let rental = package.price_paisa.checked_mul(count)?;
    let label =
        if count == 1 { format!("Package {}", package.code) } else { format!("Package {} x {count}", package.code) };
    let mut breakdown = vec![BreakdownLine { label, amount_paisa: rental }];
    if fee > 0 {
        breakdown.push(BreakdownLine { label: "Service fee".to_string(), amount_paisa: fee });
    }
    Some(Quote {
        amount_paisa: breakdown.iter().map(|l| l.amount_paisa).sum(),
        breakdown,
        due_minutes: u32::try_from(count).ok()? * package.duration_minutes,
    })
}
