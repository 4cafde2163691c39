//! Decode throughput of the volinks station plugin through the runtime,
//! beside the same codec and mapping as plain Rust (`station_codecs::volinks`).
//!
//! Run: `cargo bench -p powerbank-plugin-runtime --bench station_decode`
//! (needs plugins/dist/station_volinks_v1.wasm: `cargo xtask build-plugins`).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use powerbank_plugin_runtime::types::{
    DecodedMessage, EjectFailedEvent, EjectedEvent, HeartbeatReport, ReturnedEvent, SlotFaultEvent, SlotReport,
    SlotState, StationEvent, StatusReport,
};
use powerbank_plugin_runtime::{PluginHost, PluginHostOptions};
use station_codecs::{station, volinks};

const TOPIC: &str = "/powerbank/864601068412899/user/update";
const WARMUP: usize = 1_000;
const SEQUENTIAL: usize = 10_000;
const TASKS: usize = 8;
const PER_TASK: usize = 2_500;
const NATIVE: usize = 200_000;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BenchResult<()> {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist/station_volinks_v1.wasm");
    if !wasm.is_file() {
        return Err(format!("{} is missing: run `cargo xtask build-plugins` first", wasm.display()).into());
    }
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("plugins.toml");
    std::fs::write(
        &config,
        format!("[plugins.volinks]\nkind = \"station-protocol\"\npath = \"{}\"\n", wasm.display()),
    )?;
    // Two workers, as on the production box: block_on polls a sequential call
    // on this thread; the concurrent tasks run on the workers.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (host, report) = runtime.block_on(PluginHost::start(&config, PluginHostOptions::default()))?;
    if !report.failed.is_empty() {
        return Err(format!("plugin failed to load: {:?}", report.failed).into());
    }

    println!("volinks decode through the plugin runtime vs plain Rust (codec + mapping + conversion)");
    for (name, frame) in [("0x10 check, 2 boards x 4 holes", check_frame()), ("0x40 return", return_frame())] {
        // Both sides must agree before their speed means anything.
        let expected = native_decode(&frame)?;
        let through_plugin = runtime.block_on(host.station_protocol("volinks").decode(TOPIC.into(), frame.clone()))?;
        if through_plugin.as_ref().ok() != Some(&expected) {
            return Err(format!("plugin and native decode differ for {name}").into());
        }

        let sequential = sequential_rate(&runtime, &host, &frame)?;
        let concurrent = concurrent_rate(&runtime, &host, &frame)?;
        let native = native_rate(&frame)?;
        println!("  {name} ({} bytes)", frame.len());
        println!("    plugin, sequential:          {:>12.0} frames/s  ({:.1} us/frame)", sequential, 1e6 / sequential);
        println!(
            "    plugin, {TASKS} concurrent tasks:  {:>12.0} frames/s  ({:.1} us/frame)",
            concurrent,
            1e6 / concurrent
        );
        println!("    plain Rust:                  {:>12.0} frames/s  ({:.2} us/frame)", native, 1e6 / native);
        println!("    ratio plain / plugin (seq.): {:>12.0}x", native / sequential);
    }
    Ok(())
}

fn sequential_rate(runtime: &tokio::runtime::Runtime, host: &PluginHost, frame: &[u8]) -> BenchResult<f64> {
    let call = || runtime.block_on(host.station_protocol("volinks").decode(TOPIC.into(), black_box(frame.to_vec())));
    for _ in 0..WARMUP {
        call()?.map_err(|e| format!("{e:?}"))?;
    }
    let started = Instant::now();
    for _ in 0..SEQUENTIAL {
        black_box(call()?.map_err(|e| format!("{e:?}"))?);
    }
    Ok(rate(SEQUENTIAL, started.elapsed()))
}

fn concurrent_rate(runtime: &tokio::runtime::Runtime, host: &PluginHost, frame: &[u8]) -> BenchResult<f64> {
    let started = Instant::now();
    let failures = runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let host = host.clone();
                let frame = frame.to_vec();
                tokio::spawn(async move {
                    let mut failures = 0usize;
                    for _ in 0..PER_TASK {
                        let decoded = host.station_protocol("volinks").decode(TOPIC.into(), frame.clone()).await;
                        if !matches!(decoded, Ok(Ok(_))) {
                            failures += 1;
                        }
                    }
                    failures
                })
            })
            .collect();
        let mut failures = 0;
        for t in tasks {
            failures += t.await.unwrap_or(PER_TASK);
        }
        failures
    });
    let elapsed = started.elapsed();
    if failures > 0 {
        return Err(format!("{failures} concurrent calls failed").into());
    }
    Ok(rate(TASKS * PER_TASK, elapsed))
}

fn native_rate(frame: &[u8]) -> BenchResult<f64> {
    for _ in 0..WARMUP {
        native_decode(black_box(frame))?;
    }
    let started = Instant::now();
    for _ in 0..NATIVE {
        black_box(native_decode(black_box(frame))?);
    }
    Ok(rate(NATIVE, started.elapsed()))
}

fn rate(calls: usize, elapsed: Duration) -> f64 {
    calls as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// What the plugin does, natively: codec, mapping, checks, and the same
/// conversion to the WIT types the host receives.
fn native_decode(frame: &[u8]) -> BenchResult<DecodedMessage> {
    let topics = volinks::Topics::default();
    let decoded = volinks::decode(&topics, TOPIC, frame).map_err(|e| format!("{e:?}"))?;
    Ok(DecodedMessage { device_id: decoded.device_id, events: decoded.events.into_iter().map(event).collect() })
}

fn event(e: station::Event) -> StationEvent {
    match e {
        station::Event::Status(s) => StationEvent::Status(StatusReport {
            online: s.online,
            firmware: s.firmware,
            slots: s.slots.map(|slots| {
                slots
                    .into_iter()
                    .map(|r| SlotReport {
                        index: r.index,
                        state: match r.state {
                            station::SlotState::Empty => SlotState::Empty,
                            station::SlotState::Occupied => SlotState::Occupied,
                            station::SlotState::Fault => SlotState::Fault,
                        },
                        power_bank: r.power_bank,
                        battery: r.battery,
                    })
                    .collect()
            }),
        }),
        station::Event::Heartbeat(h) => {
            StationEvent::Heartbeat(HeartbeatReport { uptime_secs: h.uptime_secs, signal: h.signal })
        }
        station::Event::Ejected { request_id, slot, power_bank } => {
            StationEvent::Ejected(EjectedEvent { request_id, slot, power_bank })
        }
        station::Event::EjectFailed { request_id, slot, power_bank, reason } => {
            StationEvent::EjectFailed(EjectFailedEvent { request_id, slot, power_bank, reason })
        }
        station::Event::Returned { slot, power_bank, battery } => {
            StationEvent::Returned(ReturnedEvent { slot, power_bank, battery })
        }
        station::Event::SlotFault { slot, reason } => StationEvent::SlotFault(SlotFaultEvent { slot, reason }),
    }
}

/// A realistic cabinet: two boards of four holes, five banks in.
fn check_frame() -> Vec<u8> {
    let mut boards = Vec::new();
    for b in 0..2u8 {
        let holes = (0..4u8)
            .map(|h| {
                let number = b * 4 + h + 1;
                let occupied = number != 3 && number != 6 && number != 8;
                volinks::Hole {
                    index: number,
                    state: u8::from(occupied),
                    bank_current: 0,
                    bank_voltage: if occupied { 0xE2 } else { 0 },
                    area: 0,
                    sn: if occupied { 85_019_000 + u32::from(number) } else { 0 },
                    soc: if occupied { 60 + number } else { 0 },
                    temperature: 0x1F,
                    charge_voltage: 0x32,
                    charge_current: 0,
                    soft_version: 0x0D,
                    sensor: if occupied { 0 } else { 0x80 },
                }
            })
            .collect();
        boards.push(volinks::Board {
            index: b + 1,
            reserved: [0xFF, 0xFF],
            temperature: 0,
            soft_version: 4,
            hard_version: 0x16,
            holes,
        });
    }
    volinks::encode_frame(&volinks::Frame::Check(volinks::CheckFrame { boards }))
}

/// The vendor's return example: hole 1, SN 93198088, 95 %.
fn return_frame() -> Vec<u8> {
    vec![0xA8, 0x00, 0x0F, 0x40, 0x10, 0x01, 0x04, 0x05, 0x8E, 0x17, 0x08, 0x01, 0xCA, 0x5F, 0x18]
}
