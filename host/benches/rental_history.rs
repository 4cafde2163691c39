//! Rental history at 1,000,000 rentals: `cargo bench -p powerbank --bench rental_history`.
//!
//! Seeds a SQLite file with 1,000,000 completed rentals (one heavy user with
//! 200,000 of them, 800 users with 1,000 each), starts the real server on a
//! loopback port and times `GET /api/rentals/history` through HTTP for the
//! heavy user: the first page, and a deep page near the oldest rentals
//! (keyset cursor). Goal: under 20 ms each. Plain wall-clock timing.

use std::time::{Duration, Instant};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use powerbank::{
    config::Config,
    core::{Db, Role, now_ts},
    users::{auth::create_user, identifier::Identifier},
};
use rusqlite::params;

const HEAVY_USER_RENTALS: i64 = 200_000;
const OTHER_USERS: i64 = 800;
const PER_OTHER_USER: i64 = 1_000;
const REQUESTS: usize = 2_000;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

/// Returns the heavy user's id and the id of one of their oldest rentals.
fn seed(db: &Db) -> anyhow::Result<(i64, i64)> {
    powerbank::demo::seed_if_empty(db)?;
    db.blocking_write(|tx| {
        let now = now_ts();
        let mut users = Vec::new();
        for i in 0..=OTHER_USERS {
            let phone = Identifier::Phone(format!("+97798{:08}", i));
            users.push(create_user(tx, &phone, Role::User, None, None, None, now).map_err(|e| anyhow::anyhow!(e.message))?);
        }
        let heavy = users[0];
        let mut insert = tx.prepare(
            "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index, amount_paisa,
                due_minutes, started_at, due_at, returned_at, return_station_id, created_at, updated_at)
             VALUES (?1, ?2, 1, 'completed', 'wallet', ?3, 1, 5000, 60, ?4, ?4 + 3600, ?4 + 1800, ?3, ?4, ?4)",
        )?;
        // Interleave users the way real traffic would, so one user's rows are
        // spread across the whole table.
        let total = HEAVY_USER_RENTALS + OTHER_USERS * PER_OTHER_USER;
        let mut oldest_heavy = None;
        let mut heavy_left = HEAVY_USER_RENTALS;
        for n in 0..total {
            let user = if heavy_left > 0 && n % 5 == 0 {
                heavy_left -= 1;
                heavy
            } else {
                users[1 + (n % OTHER_USERS) as usize]
            };
            let at = now - (total - n) * 60;
            insert.execute(params![format!("B{n}"), user, 1 + n % 6, at])?;
            if user == heavy && oldest_heavy.is_none() && HEAVY_USER_RENTALS - heavy_left == 1_000 {
                oldest_heavy = Some(tx.last_insert_rowid());
            }
        }
        Ok((heavy, oldest_heavy.context("no deep rental")?))
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn time_pages(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<(Duration, Duration)> {
    for _ in 0..100 {
        client.get(url).bearer_auth(token).send().await?;
    }
    let mut samples = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let start = Instant::now();
        let resp = client.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
        let body: serde_json::Value = resp.json().await?;
        anyhow::ensure!(body["results"].as_array().is_some_and(|r| r.len() == 20), "short page");
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99)))
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_tests(dir.path());
    let started = Instant::now();
    let db = powerbank::schema::open_db(&config.db_path, 1)?;
    let (heavy, deep_id) = seed(&db)?;
    drop(db);
    let total = HEAVY_USER_RENTALS + OTHER_USERS * PER_OTHER_USER;
    println!("seeded {total} rentals in {:.1} s", started.elapsed().as_secs_f64());

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
                params![fam, heavy, now_ts()],
            )?;
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let token = state.jwt.issue_access(heavy, Role::User, &family, 3600).map_err(|e| anyhow::anyhow!(e.message))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(powerbank::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let first = format!("http://{addr}/api/rentals/history?limit=20");
    let cursor = URL_SAFE_NO_PAD.encode(format!("v1:{deep_id}"));
    let deep = format!("http://{addr}/api/rentals/history?limit=20&cursor={cursor}");
    for (label, url) in [("first page", first), ("deep page (~199,000 rentals in)", deep)] {
        let (p50, p99) = time_pages(&client, &url, &token).await?;
        let goal = if p99 < Duration::from_millis(20) { "met" } else { "MISSED" };
        println!(
            "history {label:<34} p50 {:>7.3} ms   p99 {:>7.3} ms   ({REQUESTS} requests; goal < 20 ms: {goal})",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
