//! Nearby search at 100,000 stations: `cargo bench -p powerbank --bench nearby`.
//!
//! Seeds 100,000 stations into a SQLite file in a temporary directory (70%
//! spread over Nepal, 30% packed into the Kathmandu valley; four slots each,
//! two holding power banks), starts the real server on a loopback port and
//! times `GET /api/stations/nearby` through HTTP, one request at a time over
//! a kept-alive connection, for search centres across Nepal and inside the
//! valley, at the default and the largest radius. In the same run it times
//! the same searches in-process both ways: through the R*Tree and by reading
//! every station (no index), so the ratio shows what the index buys. Plain
//! wall-clock timing; no benchmark framework.

use std::time::{Duration, Instant};

use anyhow::Context;
use powerbank::{
    config::{Config, MqttMode},
    core::{Db, now_ts},
    stations::nearby::{self, NearbyQuery, Strategy},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rusqlite::{OpenFlags, params};

const STATIONS: usize = 100_000;
/// Every third station is in the valley.
const IN_VALLEY: usize = 3;

/// (latitude range, longitude range)
type Area = ((f64, f64), (f64, f64));
/// Nepal's bounding box, roughly.
const NEPAL: Area = ((26.35, 30.45), (80.05, 88.20));
/// The Kathmandu valley, roughly 20 km by 23 km.
const VALLEY: Area = ((27.60, 27.78), (85.22, 85.45));

const HTTP_REQUESTS: usize = 3_000;
const IN_PROCESS_RUNS: usize = 1_000;
const FULL_SCAN_RUNS: usize = 50;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

fn seed(db: &Db) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    db.blocking_write(|tx| {
        let now = now_ts();
        let mut station = tx.prepare(
            "INSERT INTO stations (serial_number, name, address, city, latitude, longitude, status, created_at, updated_at)
             VALUES (?1, ?1, 'Bench road', 'Bench', ?2, ?3, 'online', ?4, ?4)",
        )?;
        let mut bank = tx.prepare(
            "INSERT INTO power_banks (serial_number, capacity_mah, battery_level, station_id, created_at, updated_at)
             VALUES (?1, 10000, ?2, ?3, ?4, ?4)",
        )?;
        let mut slot = tx.prepare(
            "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for i in 0..STATIONS {
            let (lat, lng) = point(&mut rng, if i % IN_VALLEY == 0 { VALLEY } else { NEPAL });
            station.execute(params![format!("BENCH-{i:06}"), lat, lng, now])?;
            let id = tx.last_insert_rowid();
            for index in 1..=4_i64 {
                let bank_id = if index <= 2 {
                    bank.execute(params![format!("PB-{i:06}-{index}"), rng.random_range(0..=100_i64), id, now])?;
                    Some(tx.last_insert_rowid())
                } else {
                    None
                };
                let status = if bank_id.is_some() { "occupied" } else { "empty" };
                slot.execute(params![id, index, status, bank_id, now])?;
            }
        }
        Ok(())
    })
}

fn point(rng: &mut StdRng, ((lat0, lat1), (lng0, lng1)): Area) -> (f64, f64) {
    (rng.random_range(lat0..lat1), rng.random_range(lng0..lng1))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

struct Timing {
    p50: Duration,
    p99: Duration,
}

fn summarise(label: &str, mut samples: Vec<Duration>, found: usize) -> Timing {
    samples.sort();
    let t = Timing { p50: percentile(&samples, 0.50), p99: percentile(&samples, 0.99) };
    println!(
        "  {label:<30} p50 {:>8.3} ms   p99 {:>8.3} ms   ({} runs, {:.1} stations per answer)",
        ms(t.p50),
        ms(t.p99),
        samples.len(),
        found as f64 / samples.len() as f64
    );
    t
}

fn queries(n: usize, area: Area, radius_m: f64, seed: u64) -> Vec<NearbyQuery> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (lat, lng) = point(&mut rng, area);
            NearbyQuery { lat, lng, radius_m, limit: 20 }
        })
        .collect()
}

fn url(base: &str, q: &NearbyQuery) -> String {
    format!("{base}?lat={}&lng={}&radius={}&limit={}", q.lat, q.lng, q.radius_m, q.limit)
}

fn in_process(
    conn: &rusqlite::Connection,
    qs: &[NearbyQuery],
    strategy: Strategy,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut samples = Vec::with_capacity(qs.len());
    let mut found = 0;
    for q in qs {
        let start = Instant::now();
        let results = nearby::search(conn, q, strategy).map_err(|e| anyhow::anyhow!("{e}"))?;
        samples.push(start.elapsed());
        found += results.len();
    }
    Ok((samples, found))
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_tests(dir.path());
    config.link.mode = MqttMode::Disabled;

    let started = Instant::now();
    let db = powerbank::schema::open_db(&config.db_path, 1)?;
    seed(&db)?;
    drop(db);
    println!(
        "seeded {STATIONS} stations (a third in the Kathmandu valley; 400,000 slots) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    config.listen = addr;
    config.public_base_url = format!("http://{addr}");
    let db_path = config.db_path.clone();
    let state = powerbank::server::build_state(config).await.context("build state")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(powerbank::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let base = format!("http://{addr}/api/stations/nearby");
    let conn = rusqlite::Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;

    let scenarios = [
        ("across Nepal", NEPAL, nearby::DEFAULT_RADIUS_M),
        ("inside the Kathmandu valley", VALLEY, nearby::DEFAULT_RADIUS_M),
        ("across Nepal", NEPAL, nearby::MAX_RADIUS_M),
        ("inside the Kathmandu valley", VALLEY, nearby::MAX_RADIUS_M),
    ];
    for (i, (name, area, radius)) in scenarios.into_iter().enumerate() {
        println!("\nnearby {name}, radius {} km, limit 20, {STATIONS} stations", radius / 1000.0);
        let qs = queries(HTTP_REQUESTS, area, radius, 11 + i as u64);
        // Warm-up: connections, statement caches, page cache.
        for q in qs.iter().take(200) {
            client.get(url(&base, q)).send().await?;
        }
        let mut samples = Vec::with_capacity(qs.len());
        let mut found = 0;
        for q in &qs {
            let start = Instant::now();
            let resp = client.get(url(&base, q)).send().await?;
            anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
            let body: serde_json::Value = resp.json().await?;
            samples.push(start.elapsed());
            found += body["results"].as_array().map_or(0, Vec::len);
        }
        let http = summarise("HTTP, R*Tree", samples, found);

        let qs = queries(IN_PROCESS_RUNS, area, radius, 101 + i as u64);
        let (samples, found) = in_process(&conn, &qs, Strategy::RTree)?;
        let rtree = summarise("in-process, R*Tree", samples, found);
        let (samples, found) = in_process(&conn, &qs[..FULL_SCAN_RUNS], Strategy::FullScan)?;
        let scan = summarise("in-process, full scan", samples, found);
        println!(
            "  full scan / R*Tree: p50 {:.0}x, p99 {:.0}x in-process; full-scan p50 / HTTP R*Tree p50 {:.0}x",
            scan.p50.as_secs_f64() / rtree.p50.as_secs_f64(),
            scan.p99.as_secs_f64() / rtree.p99.as_secs_f64(),
            scan.p50.as_secs_f64() / http.p50.as_secs_f64(),
        );
        let goal = if http.p99 < Duration::from_millis(5) { "met" } else { "MISSED" };
        println!("  goal p99 < 5 ms through HTTP: {goal}");
    }

    // Both strategies must agree.
    let mixed = queries(100, NEPAL, nearby::MAX_RADIUS_M, 17).into_iter().chain(queries(100, VALLEY, 2_000.0, 19));
    for q in mixed {
        let a = nearby::nearest(&conn, &q, Strategy::RTree).map_err(|e| anyhow::anyhow!("{e}"))?;
        let b = nearby::nearest(&conn, &q, Strategy::FullScan).map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(a == b, "R*Tree and full scan disagree at {},{}", q.lat, q.lng);
    }
    println!("\nR*Tree and full scan agree on 200 searches");

    let _ = stop.send(());
    server.await??;
    Ok(())
}
