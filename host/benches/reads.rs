//! The hot read paths against a plain handler:
//! `cargo bench -p powerbank --bench reads` (or `cargo xtask bench-reads`).
//!
//! Seeds 1,000 stations (four slots each, two holding banks) and two riders
//! into a fresh database, starts the release `powerbank` binary on it (no
//! MQTT, default logging to a file), and loads five endpoints from one client
//! thread over 16 kept-alive connections, like `wrk -t1 -c16`:
//! `GET /api/app/version`, `GET /api/stations?limit=20`, nearby, and the
//! signed-in `GET /api/profile` and `GET /api/wallet/balance`. The endpoints
//! take turns in short rounds (interleaved), so a machine whose load changes
//! during the run slows them all alike; the ratios to `version` are the
//! figures to compare, the absolute rates depend on the machine. Prints
//! req/s, p50 and p99 per endpoint. Not run in CI.
//!
//! The client is a minimal HTTP/1.1 loop (write a request, read the head and
//! `content-length` bytes): cheap enough that the server, not the client,
//! is what is measured.

use std::{
    io::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use powerbank::core::{Db, Role, access::JwtKeys, now_ts};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const STATIONS: usize = 1_000;
const CONNECTIONS: usize = 16;
const ROUNDS: usize = 6;
const ROUND: Duration = Duration::from_millis(1_500);
const WARMUP: Duration = Duration::from_millis(500);
const JWT_SECRET: &str = "bench-reads-secret-0123456789abcdef";

struct Endpoint {
    name: &'static str,
    path: &'static str,
    signed_in: bool,
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint { name: "version", path: "/api/app/version?platform=android&version=1.0.0", signed_in: false },
    Endpoint { name: "stations?limit=20", path: "/api/stations?limit=20", signed_in: false },
    Endpoint {
        name: "nearby",
        path: "/api/stations/nearby?lat=27.7172&lng=85.3240&radius=5000&limit=20",
        signed_in: false,
    },
    Endpoint { name: "profile", path: "/api/profile", signed_in: true },
    Endpoint { name: "wallet/balance", path: "/api/wallet/balance", signed_in: true },
];

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db_path = dir.path().join("powerbank.db");
    let tokens = seed(&db_path)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = Server(start_server(dir.path(), addr)?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let ran = runtime.block_on(run(addr, &tokens));
    let _ = server.0.kill();
    let _ = server.0.wait();
    ran
}

/// Stops the server if the bench fails half-way.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// Stations around Kathmandu and two riders; returns their access tokens.
fn seed(db_path: &Path) -> anyhow::Result<Vec<String>> {
    let db = powerbank::schema::open_db(db_path, 1)?;
    seed_stations(&db)?;
    let keys = JwtKeys::new(JWT_SECRET.as_bytes());
    let mut tokens = Vec::new();
    for (i, phone) in ["+9779800001001", "+9779800001002"].iter().enumerate() {
        let family = format!("bench-family-{i}");
        let id = db.blocking_write(|tx| {
            let now = now_ts();
            tx.execute(
                "INSERT INTO users (phone, referral_code, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                rusqlite::params![phone, format!("BENCH{i}"), now],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO user_profiles (user_id, full_name, updated_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![id, format!("Bench rider {i}"), now],
            )?;
            tx.execute(
                "INSERT INTO wallets (user_id, balance_paisa, updated_at) VALUES (?1, 0, ?2)",
                rusqlite::params![id, now],
            )?;
            tx.execute("INSERT INTO user_points (user_id, updated_at) VALUES (?1, ?2)", rusqlite::params![id, now])?;
            tx.execute(
                "INSERT INTO token_families (id, user_id, created_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![family, id, now],
            )?;
            Ok(id)
        })?;
        tokens.push(keys.issue_access(id, Role::User, &family, 3600).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(tokens)
}

fn seed_stations(db: &Db) -> anyhow::Result<()> {
    db.blocking_write(|tx| {
        let now = now_ts();
        let mut station = tx.prepare(
            "INSERT INTO stations (serial_number, name, address, city, latitude, longitude, status, created_at, updated_at)
             VALUES (?1, ?1, 'Bench road', 'Kathmandu', ?2, ?3, 'online', ?4, ?4)",
        )?;
        let mut bank = tx.prepare(
            "INSERT INTO power_banks (serial_number, capacity_mah, battery_level, station_id, created_at, updated_at)
             VALUES (?1, 10000, ?2, ?3, ?4, ?4)",
        )?;
        tx.execute(
            "INSERT INTO app_versions (platform, version, min_supported_version, download_url, released_at)
             VALUES ('android', '1.2.0', '1.0.0', 'https://example.com/app.apk', ?1)",
            [now],
        )?;
        let mut slot = tx.prepare(
            "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for i in 0..STATIONS {
            // A 32 x 32 grid, ~330 m apart, over central Kathmandu.
            let (row, col) = ((i / 32) as f64, (i % 32) as f64);
            station.execute(rusqlite::params![format!("BENCH-{i:04}"), 27.66 + row * 0.003, 85.27 + col * 0.003, now])?;
            let id = tx.last_insert_rowid();
            for (index, battery) in [(1, Some(90)), (2, Some(10)), (3, None), (4, None)] {
                let bank_id = match battery {
                    Some(level) => {
                        bank.execute(rusqlite::params![format!("PB-BENCH-{i:04}-{index}"), level, id, now])?;
                        Some(tx.last_insert_rowid())
                    }
                    None => None,
                };
                let status = if bank_id.is_some() { "occupied" } else { "empty" };
                slot.execute(rusqlite::params![id, index, status, bank_id, now])?;
            }
        }
        Ok(())
    })
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn start_server(data_dir: &Path, addr: SocketAddr) -> anyhow::Result<Child> {
    let log = std::fs::File::create(data_dir.join("host.log"))?;
    Command::new(env!("CARGO_BIN_EXE_powerbank"))
        .current_dir(repo_root())
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", &addr.to_string(), "--no-mqtt", "--no-plugin-watch", "--jwt-secret", JWT_SECRET])
        .arg("--plugins")
        .arg(repo_root().join("plugins.toml"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting the release server")
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    elapsed: Duration,
    failures: usize,
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

async fn run(addr: SocketAddr, tokens: &[String]) -> anyhow::Result<()> {
    wait_until_up(addr).await?;
    let load_before = load_average();
    let mut tallies: Vec<Tally> = ENDPOINTS.iter().map(|_| Tally::default()).collect();
    // Warm every path (statement caches, page caches, allocator) first.
    for e in ENDPOINTS {
        load(addr, e, tokens, WARMUP).await?;
    }
    for round in 0..ROUNDS {
        eprint!("round {}/{ROUNDS}\r", round + 1);
        let _ = std::io::stderr().flush();
        for (e, tally) in ENDPOINTS.iter().zip(tallies.iter_mut()) {
            let started = Instant::now();
            let (latencies, failures) = load(addr, e, tokens, ROUND).await?;
            tally.elapsed += started.elapsed();
            tally.latencies_us.extend(latencies);
            tally.failures += failures;
        }
    }
    println!(
        "{STATIONS} stations, {CONNECTIONS} connections from one client thread, {ROUNDS} interleaved rounds of {} ms per endpoint",
        ROUND.as_millis()
    );
    println!("load average (1, 5, 15 min) before: {load_before}; after: {}", load_average());
    println!("{:<20} {:>10} {:>9} {:>9} {:>9} {:>8}", "endpoint", "req/s", "p50 ms", "p99 ms", "vs version", "errors");
    let rate = |t: &Tally| t.latencies_us.len() as f64 / t.elapsed.as_secs_f64();
    let version_rate = rate(&tallies[0]);
    for (e, t) in ENDPOINTS.iter().zip(tallies.iter_mut()) {
        t.latencies_us.sort_unstable();
        let pct = |p: usize| {
            let n = t.latencies_us.len();
            if n == 0 { 0.0 } else { f64::from(t.latencies_us[(n * p / 100).min(n - 1)]) / 1000.0 }
        };
        println!(
            "{:<20} {:>10.0} {:>9.2} {:>9.2} {:>9.0}% {:>8}",
            e.name,
            rate(t),
            pct(50),
            pct(99),
            100.0 * rate(t) / version_rate,
            t.failures
        );
    }
    println!("goals: station list and nearby >= 30% of version, signed-in reads >= 60%, p99 < 5 ms");
    if tallies.iter().any(|t| t.failures > 0) {
        bail!("some requests failed (see the errors column)");
    }
    Ok(())
}

async fn wait_until_up(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut conn) = TcpStream::connect(addr).await
            && let Ok((200, _)) = request(&mut conn, &request_bytes("/api/health", None)).await
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not answer /api/health within 60 s (see host.log in the temporary directory)")
}

fn request_bytes(path: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nhost: bench\r\n{auth}\r\n").into_bytes()
}

/// `CONNECTIONS` connections asking for `e` for `duration`: latencies (µs)
/// of the 200 answers, and the number of other answers.
async fn load(
    addr: SocketAddr,
    e: &Endpoint,
    tokens: &[String],
    duration: Duration,
) -> anyhow::Result<(Vec<u32>, usize)> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for i in 0..CONNECTIONS {
        // Signed-in connections alternate between the two riders.
        let token = e.signed_in.then(|| tokens[i % tokens.len()].clone());
        let bytes = request_bytes(e.path, token.as_deref());
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(addr).await?;
            conn.set_nodelay(true)?;
            let (mut latencies, mut failures) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let started = Instant::now();
                let (status, _) = request(&mut conn, &bytes).await?;
                if status == 200 {
                    latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    failures += 1;
                }
            }
            anyhow::Ok((latencies, failures))
        }));
    }
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for task in tasks {
        let (l, f) = task.await??;
        latencies.extend(l);
        failures += f;
    }
    Ok((latencies, failures))
}

/// Sends one request and reads its answer; returns the status and body length.
async fn request(conn: &mut TcpStream, bytes: &[u8]) -> anyhow::Result<(u16, usize)> {
    conn.write_all(bytes).await?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 8192];
    let (head_end, mut body) = loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = head.split_off(at + 4);
            break (at, body);
        }
    };
    let text = String::from_utf8_lossy(&head[..head_end]).to_ascii_lowercase();
    let status: u16 = text.get(9..12).and_then(|s| s.parse().ok()).context("no status line")?;
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .context("answer without content-length")?;
    while body.len() < length {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            bail!("the server closed the connection mid-body");
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok((status, length))
}
