//! What one look of the console's live feed costs: `cargo bench -p powerbank --bench console_events`.
//!
//! Every open `GET /api/admin/events` stream reads all station summaries with
//! a fingerprint of their slots once a second (`console::events`). This seeds
//! 100 and then 1,000 stations (ten slots each, six holding power banks) into
//! a SQLite file in a temporary directory and times that read through the
//! reader pool, as the stream does. Plain wall-clock timing.

use std::time::{Duration, Instant};

use powerbank::{
    console::events::read_stations,
    core::{Db, now_ts},
};
use rusqlite::params;

const RUNS: usize = 300;

fn seed(db: &Db, from: usize, to: usize) -> anyhow::Result<()> {
    db.blocking_write(|tx| {
        let now = now_ts();
        let mut station = tx.prepare(
            "INSERT INTO stations (serial_number, name, address, city, latitude, longitude, status, created_at, updated_at)
             VALUES (?1, ?1, 'Bench road', 'Bench', 27.7, 85.3, 'online', ?2, ?2)",
        )?;
        let mut bank = tx.prepare(
            "INSERT INTO power_banks (serial_number, capacity_mah, status, battery_level, station_id, created_at, updated_at)
             VALUES (?1, 10000, 'in_slot', ?2, ?3, ?4, ?4)",
        )?;
        let mut slot = tx.prepare(
            "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for i in from..to {
            station.execute(params![format!("BENCH-{i:05}"), now])?;
            let id = tx.last_insert_rowid();
            for index in 1..=10_i64 {
                let bank_id = if index <= 6 {
                    bank.execute(params![format!("PB-{i:05}-{index}"), (i as i64 * 7 + index * 13) % 101, id, now])?;
                    Some(tx.last_insert_rowid())
                } else {
                    None
                };
                slot.execute(params![id, index, if bank_id.is_some() { "occupied" } else { "empty" }, bank_id, now])?;
            }
        }
        Ok(())
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn time_looks(db: &Db, stations: usize) -> anyhow::Result<()> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let rows = db.read(read_stations).await?;
        times.push(start.elapsed());
        anyhow::ensure!(rows.len() == stations, "read {} stations, seeded {stations}", rows.len());
    }
    times.sort();
    println!(
        "console events, one look at {stations:>5} stations: p50 {:>8.2?}  p99 {:>8.2?}  ({RUNS} runs)",
        percentile(&times, 0.50),
        percentile(&times, 0.99)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let db = Db::open(&dir.path().join("bench.db"), 4)?;
        seed(&db, 0, 100)?;
        time_looks(&db, 100).await?;
        seed(&db, 100, 1_000)?;
        time_looks(&db, 1_000).await
    })
}
