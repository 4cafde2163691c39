//! Operator analytics at 100,000 users, 1,000 stations and 1,000,000 rentals:
//! `cargo bench -p powerbank --bench admin_analytics`.
//!
//! Seeds a SQLite file in one transaction with prepared statements: riders,
//! stations with eight slots and banks each, a status change now and then
//! per station, 1,000,000 rentals over the last 90 days (mostly completed,
//! some failed ejects given back), each with its payment and wallet ledger
//! row, and 100,000 gateway top-ups. The rollups are kept by the triggers as
//! the rows are written, as in production (no rebuild). Then it starts the
//! real server on a loopback port and times through HTTP, as an owner:
//! the dashboard, a 30-day revenue series, station performance for every
//! station over 30 days, and a user search by phone prefix.
//! Goal: p99 under 50 ms each.

use std::time::{Duration, Instant};

use anyhow::Context;
use powerbank::{
    config::Config,
    core::{Db, OperatorRole, Role, now_ts},
    users::{auth::create_user, identifier::Identifier},
};
use rusqlite::params;
use serde_json::json;

const USERS: i64 = 100_000;
const STATIONS: i64 = 1_000;
const SLOTS: i64 = 8;
const RENTALS: i64 = 1_000_000;
const TOPUPS: i64 = 100_000;
const REQUESTS: usize = 300;
const DAYS: i64 = 90;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

/// A deterministic xorshift (no extra crate).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n as u64) as i64
    }
}

fn seed(db: &Db) -> anyhow::Result<()> {
    powerbank::demo::seed_if_empty(db)?;
    db.blocking_write(|tx| {
        let now = now_ts();
        let start = now - DAYS * 86_400;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut users = Vec::with_capacity(USERS as usize);
        for i in 0..USERS {
            let phone = Identifier::Phone(format!("+97798{i:08}"));
            let name = format!("Rider{i} Surname{i}");
            let joined = start + i * (DAYS * 86_400) / USERS;
            users.push(
                create_user(tx, &phone, Role::User, None, Some(&name), None, joined)
                    .map_err(|e| anyhow::anyhow!(e.message))?,
            );
        }
        let mut station = tx.prepare(
            "INSERT INTO stations (serial_number, name, address, city, latitude, longitude, status, created_at, updated_at)
             VALUES (?1, ?2, 'Street', 'Kathmandu', 27.7, 85.3, 'online', ?3, ?3)",
        )?;
        let mut status = tx.prepare("UPDATE stations SET status = ?2, updated_at = ?3 WHERE id = ?1")?;
        let mut bank = tx.prepare(
            "INSERT INTO power_banks (serial_number, capacity_mah, status, battery_level, station_id, created_at, updated_at)
             VALUES (?1, 10000, ?2, 80, ?3, ?4, ?4)",
        )?;
        let mut slot = tx.prepare(
            "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
             VALUES (?1, ?2, 'occupied', ?3, ?4)",
        )?;
        let mut stations = Vec::with_capacity(STATIONS as usize);
        for s in 0..STATIONS {
            station.execute(params![format!("BENCH-{s:04}"), format!("Bench station {s}"), start])?;
            let id = tx.last_insert_rowid();
            stations.push(id);
            for i in 0..SLOTS {
                let status = if i == 0 && s % 10 == 0 { "maintenance" } else { "in_slot" };
                bank.execute(params![format!("BB-{s:04}-{i}"), status, id, start])?;
                slot.execute(params![id, i + 1, tx.last_insert_rowid(), start])?;
            }
            // A few outages: offline for an hour every ten days or so.
            let mut at = start + rng.below(10 * 86_400);
            while at < now {
                status.execute(params![id, "offline", at])?;
                status.execute(params![id, "online", at + 3_600])?;
                at += 5 * 86_400 + rng.below(10 * 86_400);
            }
        }
        let mut payment = tx.prepare(
            "INSERT INTO transactions (reference, user_id, kind, status, amount_paisa, wallet_paisa, gateway, rental_id,
                description, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'bench', ?9, ?9)",
        )?;
        let mut ledger = tx.prepare(
            "INSERT INTO wallet_transactions (user_id, direction, kind, amount_paisa, balance_after_paisa, transaction_id,
                description, created_at)
             VALUES (?1, ?2, ?3, ?4, 100000, ?5, 'bench', ?6)",
        )?;
        for n in 0..TOPUPS {
            let user = users[rng.below(USERS) as usize];
            let at = start + n * (DAYS * 86_400) / TOPUPS;
            let gateway = ["khalti", "esewa", "stripe"][(n % 3) as usize];
            payment.execute(params![format!("T{n}"), user, "topup", "success", 50_000, 0, gateway, None::<i64>, at])?;
            ledger.execute(params![user, "credit", "topup", 50_000, tx.last_insert_rowid(), at])?;
        }
        let mut rental = tx.prepare(
            "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index, amount_paisa,
                wallet_paisa, due_minutes, started_at, due_at, returned_at, return_station_id, created_at, updated_at)
             VALUES (?1, ?2, 1, ?3, 'wallet', ?4, 1, 5000, 5000, 60, ?5, ?5 + 3600, ?6, ?4, ?5, COALESCE(?6, ?5))",
        )?;
        let mut link = tx.prepare("UPDATE rentals SET transaction_id = ?2 WHERE id = ?1")?;
        for n in 0..RENTALS {
            let user = users[rng.below(USERS) as usize];
            let station = stations[rng.below(STATIONS) as usize];
            let at = start + n * (DAYS * 86_400) / RENTALS;
            let failed = n % 50 == 0;
            let (status, returned) = if failed { ("failed", None) } else { ("completed", Some(at + 1_200 + rng.below(6_000))) };
            rental.execute(params![format!("R{n}"), user, status, station, at, returned])?;
            let rental_id = tx.last_insert_rowid();
            payment.execute(params![format!("P{n}"), user, "rental", "success", 5_000, 5_000, None::<String>, rental_id, at])?;
            let txn = tx.last_insert_rowid();
            link.execute(params![rental_id, txn])?;
            ledger.execute(params![user, "debit", "rental_charge", 5_000, txn, at])?;
            if failed {
                // Given back, as the failed-eject path does.
                tx.execute("UPDATE transactions SET status = 'refunded', updated_at = ?2 WHERE id = ?1", params![txn, at])?;
                ledger.execute(params![user, "credit", "refund", 5_000, txn, at])?;
            }
        }
        Ok(())
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn time(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<(Duration, Duration, usize)> {
    for _ in 0..20 {
        client.get(url).bearer_auth(token).send().await?;
    }
    let mut samples = Vec::with_capacity(REQUESTS);
    let mut size = 0;
    for _ in 0..REQUESTS {
        let start = Instant::now();
        let resp = client.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "{url}: HTTP {}", resp.status());
        size = resp.bytes().await?.len();
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99), size))
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_tests(dir.path());
    let started = Instant::now();
    let db = powerbank::schema::open_db(&config.db_path, 1)?;
    seed(&db)?;
    let password = "correct horse battery staple";
    powerbank::cli::create_operator(&db, "owner@bench.test", password, OperatorRole::Owner)?;
    let rollups: i64 =
        db.blocking_write(|tx| Ok(tx.query_row("SELECT count(*) FROM analytics_rollups", [], |r| r.get(0))?))?;
    drop(db);
    println!(
        "seeded {USERS} riders, {STATIONS} stations, {RENTALS} rentals and {TOPUPS} top-ups with ledger rows \
         ({rollups} rollup rows, kept by the triggers) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    config.listen = addr;
    let state = powerbank::server::build_state(config).await.context("build state")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(powerbank::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("http://{addr}/api/admin/login"))
        .json(&json!({"email": "owner@bench.test", "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().context("operator login")?.to_string();
    for (name, path) in [
        ("dashboard", "/api/admin/dashboard"),
        ("revenue series, 30 days", "/api/admin/analytics/series?metric=revenue"),
        ("station performance, all, 30 days", "/api/admin/analytics/stations?sort=utilisation"),
        ("stations as CSV", "/api/admin/analytics/stations?format=csv"),
        ("user search by phone prefix", "/api/admin/users?q=9800099"),
    ] {
        let (p50, p99, size) = time(&client, &format!("http://{addr}{path}"), &token).await?;
        let goal = if p99 < Duration::from_millis(50) { "met" } else { "MISSED" };
        println!(
            "{name:<36} p50 {:>7.3} ms   p99 {:>7.3} ms   {size:>7} bytes   ({REQUESTS} requests; goal p99 < 50 ms: {goal})",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
