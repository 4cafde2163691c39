//! Leaderboard pages at 100,000 users and 1,000,000 rentals:
//! `cargo bench -p powerbank --bench leaderboard`.
//!
//! Seeds a SQLite file with 100,000 riders and 1,000,000 completed rentals
//! over the last ten weeks (a skewed spread: a few riders rent a lot, most a
//! little), builds the rollups with the same recount the migration runs,
//! starts the real server on a loopback port and times
//! `GET /api/social/leaderboard` through HTTP for a rider near the bottom
//! (the slowest rank to count), per period. Goal: p99 under 50 ms.

use std::time::{Duration, Instant};

use anyhow::Context;
use powerbank::{
    config::Config,
    core::{Db, Role, now_ts},
    users::{auth::create_user, identifier::Identifier},
};
use rusqlite::params;

const USERS: i64 = 100_000;
const RENTALS: i64 = 1_000_000;
const REQUESTS: usize = 1_000;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

/// Returns a rider with few rentals (the caller whose rank is timed).
fn seed(db: &Db) -> anyhow::Result<i64> {
    powerbank::demo::seed_if_empty(db)?;
    db.blocking_write(|tx| {
        let now = now_ts();
        let mut users = Vec::with_capacity(USERS as usize);
        for i in 0..USERS {
            let phone = Identifier::Phone(format!("+97798{i:08}"));
            let name = format!("Rider{i} Surname{i}");
            users.push(
                create_user(tx, &phone, Role::User, None, Some(&name), None, now).map_err(|e| anyhow::anyhow!(e.message))?,
            );
        }
        let mut insert = tx.prepare(
            "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index, amount_paisa,
                due_minutes, started_at, due_at, returned_at, return_station_id, created_at, updated_at)
             VALUES (?1, ?2, 1, 'completed', 'wallet', ?3, 1, 5000, 60, ?4, ?4 + 3600, ?4 + ?5, ?3, ?4, ?4)",
        )?;
        let span = 70 * 86_400;
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in 0..RENTALS {
            // xorshift: deterministic, no extra crate. Squaring skews towards low ids.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let r = (state % 1_000_000) as f64 / 1_000_000.0;
            let user = users[((r * r) * USERS as f64) as usize % users.len()];
            let at = now - span + (n * span / RENTALS);
            let kept = if n % 7 == 0 { 5_400 } else { 1_800 };
            insert.execute(params![format!("B{n}"), user, 1 + (state % 6) as i64, at, kept])?;
        }
        powerbank::social::rebuild_rollups(tx).map_err(|e| anyhow::anyhow!(e.message))?;
        let caller: i64 = tx.query_row(
            "SELECT user_id FROM leaderboard_rollups WHERE category = 'rentals_completed' AND period = 'all'
             ORDER BY value, user_id LIMIT 1",
            [],
            |r| r.get(0),
        )?;
        Ok(caller)
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn time_board(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<(Duration, Duration, i64)> {
    for _ in 0..50 {
        client.get(url).bearer_auth(token).send().await?;
    }
    let mut samples = Vec::with_capacity(REQUESTS);
    let mut rank = 0;
    for _ in 0..REQUESTS {
        let start = Instant::now();
        let resp = client.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
        let body: serde_json::Value = resp.json().await?;
        anyhow::ensure!(body["entries"].as_array().is_some_and(|r| r.len() == 20), "short page: {body}");
        rank = body["you"]["rank"].as_i64().unwrap_or(0);
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99), rank))
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_tests(dir.path());
    let started = Instant::now();
    let db = powerbank::schema::open_db(&config.db_path, 1)?;
    let caller = seed(&db)?;
    let rollups: i64 =
        db.blocking_write(|tx| Ok(tx.query_row("SELECT count(*) FROM leaderboard_rollups", [], |r| r.get(0))?))?;
    drop(db);
    println!(
        "seeded {USERS} riders, {RENTALS} rentals, {rollups} rollup rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    config.listen = addr;
    let state = powerbank::server::build_state(config).await.context("build state")?;
    let family = uuid::Uuid::new_v4().to_string();
    let fam = family.clone();
    state
        .db
        .write(move |tx| {
            tx.execute(
                "INSERT INTO token_families (id, user_id, created_at) VALUES (?1, ?2, ?3)",
                params![fam, caller, now_ts()],
            )?;
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let token = state.jwt.issue_access(caller, Role::User, &family, 3600).map_err(|e| anyhow::anyhow!(e.message))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(powerbank::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    for (category, period) in [
        ("rentals_completed", "all_time"),
        ("rentals_completed", "month"),
        ("on_time_returns", "week"),
        ("distinct_stations", "all_time"),
    ] {
        let url = format!("http://{addr}/api/social/leaderboard?category={category}&period={period}&limit=20");
        let (p50, p99, rank) = time_board(&client, &url, &token).await?;
        let goal = if p99 < Duration::from_millis(50) { "met" } else { "MISSED" };
        println!(
            "leaderboard {category:<18} {period:<8} p50 {:>7.3} ms   p99 {:>7.3} ms   caller rank {rank:>6}   ({REQUESTS} requests; goal p99 < 50 ms: {goal})",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
