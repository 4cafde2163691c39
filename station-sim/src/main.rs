//! `powerbank-station-sim`: runs a simulated station for every station the
//! host knows, using the operator API to read each station's slots and MQTT
//! credentials (for a host whose demo stations are not simulated in-process,
//! e.g. one on an external broker).
//!
//! `powerbank-station-sim fleet --stations 10000` registers and runs a whole
//! fleet for load tests and prints what the host absorbed (`cargo xtask
//! bench-fleet` runs it against a release host).

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use station_sim::{SimConfig, SimProtocol, SimSlot, SimStation};

#[derive(Clone, Copy, ValueEnum)]
enum Protocol {
    /// The native JSON contract (docs/mqtt.md).
    Native,
    /// volinks Powerbank Protocol V1 (Besiter cabinets); bank serials must be decimal SNs.
    Volinks,
}

#[derive(Parser)]
#[command(name = "powerbank-station-sim", about = "Simulated power-bank stations over MQTT")]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    args: Args,
}

#[derive(Subcommand)]
enum Mode {
    /// Register N stations (native and volinks mixed), run them at a
    /// heartbeat and status rate, eject meanwhile, and report the load.
    Fleet(FleetArgs),
}

#[derive(clap::Args)]
struct FleetArgs {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    api: String,
    #[arg(long, default_value = "admin@powerbank.local")]
    admin_email: String,
    #[arg(long, default_value = "powerbank-demo-admin")]
    admin_password: String,
    #[arg(long, default_value_t = 10_000)]
    stations: usize,
    /// Every n-th station is a volinks V1 cabinet (0: all native).
    #[arg(long, default_value_t = 4)]
    volinks_every: usize,
    #[arg(long, default_value_t = 4)]
    slots: u16,
    #[arg(long, default_value_t = 30)]
    heartbeat_secs: u64,
    /// Full status reports this often (0: only at connection).
    #[arg(long, default_value_t = 300)]
    status_secs: u64,
    #[arg(long, default_value_t = 60)]
    keep_alive_secs: u64,
    /// Seconds measured, after all stations connected and one heartbeat round.
    #[arg(long, default_value_t = 60)]
    window_secs: u64,
    #[arg(long, default_value_t = 5.0)]
    ejects_per_sec: f64,
    /// The host's process id, to read its CPU time from /proc.
    #[arg(long)]
    host_pid: Option<u32>,
    #[arg(long, default_value = "FLEET")]
    prefix: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

#[derive(clap::Args)]
struct Args {
    /// The host's HTTP API.
    #[arg(long, env = "POWERBANK_SIM_API", default_value = "http://127.0.0.1:8000")]
    api: String,
    #[arg(long, env = "POWERBANK_SIM_ADMIN_EMAIL", default_value = "admin@powerbank.local")]
    admin_email: String,
    #[arg(long, env = "POWERBANK_SIM_ADMIN_PASSWORD", default_value = "powerbank-demo-admin")]
    admin_password: String,
    /// The protocol simulated stations speak; default: each station's own
    /// (`protocol` in its station record: `volinks-v1` or else native).
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Put verbatim in front of every topic, as the host's broker mountpoint.
    #[arg(long, default_value = "")]
    mountpoint: String,
    #[arg(long, default_value_t = 15)]
    heartbeat_secs: u64,
    #[arg(long, default_value_t = 800)]
    eject_delay_ms: u64,
    /// Share of eject commands that fail (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    failure_rate: f64,
    /// Run at most this many stations.
    #[arg(long, default_value_t = 100)]
    max_stations: usize,
}

async fn get(http: &reqwest::Client, url: &str, token: Option<&str>) -> anyhow::Result<Value> {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(resp.status().is_success(), "GET {url}: {}", resp.status());
    Ok(resp.json().await?)
}

/// Waits for the API (the server may still be starting).
async fn login(http: &reqwest::Client, args: &Args) -> anyhow::Result<String> {
    let url = format!("{}/api/admin/login", args.api);
    for _ in 0..120 {
        let body = json!({"email": args.admin_email, "password": args.admin_password});
        if let Ok(resp) = http.post(&url).json(&body).send().await
            && resp.status().is_success()
        {
            let v: Value = resp.json().await?;
            return v["access_token"].as_str().map(str::to_owned).context("no access_token in login answer");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("could not sign in at {url}")
}

fn broker_of(url: &str) -> anyhow::Result<(String, u16)> {
    let hostport = url.strip_prefix("mqtt://").context("broker URL must be mqtt://")?;
    let (host, port) = hostport.rsplit_once(':').context("broker URL needs a port")?;
    Ok((host.to_string(), port.parse()?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let cli = Cli::parse();
    match cli.mode {
        Some(Mode::Fleet(fleet)) => run_fleet(fleet).await,
        None => run_demo(cli.args).await,
    }
}

async fn run_fleet(a: FleetArgs) -> anyhow::Result<()> {
    let heartbeat = Duration::from_secs(a.heartbeat_secs.max(1));
    let options = station_sim::fleet::FleetOptions {
        api: a.api.trim_end_matches('/').to_string(),
        admin_email: a.admin_email,
        admin_password: a.admin_password,
        stations: a.stations,
        volinks_every: a.volinks_every,
        slots: a.slots.clamp(1, 64),
        heartbeat,
        status: (a.status_secs > 0).then(|| Duration::from_secs(a.status_secs)),
        keep_alive: Duration::from_secs(a.keep_alive_secs.clamp(5, 600)),
        warmup: heartbeat + Duration::from_secs(5),
        window: Duration::from_secs(a.window_secs.max(5)),
        ejects_per_sec: a.ejects_per_sec,
        host_pid: a.host_pid,
        prefix: a.prefix,
        concurrency: a.concurrency.max(1),
    };
    let (report, stations) = station_sim::fleet::run(options).await?;
    println!("{report}");
    // 10,000 clean disconnects would only add noise: the process exit drops them.
    std::mem::forget(stations);
    Ok(())
}

async fn run_demo(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let token = login(&http, &args).await?;

    let mut serials = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{}/api/stations?limit=100&cursor={c}", args.api),
            None => format!("{}/api/stations?limit=100", args.api),
        };
        let page = get(&http, &url, None).await?;
        for st in page["results"].as_array().into_iter().flatten() {
            if let Some(sn) = st["serial_number"].as_str() {
                serials.push(sn.to_string());
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    serials.truncate(args.max_stations);

    let mut running = Vec::new();
    for sn in &serials {
        let creds = get(&http, &format!("{}/api/admin/stations/{sn}/mqtt-credentials", args.api), Some(&token)).await?;
        let (Some(broker), Some(password)) = (creds["broker"].as_str(), creds["password"].as_str()) else {
            anyhow::bail!("the host uses an external broker; give stations their accounts there");
        };
        let (host, port) = broker_of(broker)?;
        let detail = get(&http, &format!("{}/api/stations/{sn}", args.api), None).await?;
        let slots = detail["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let index = u16::try_from(s["slot_index"].as_u64()?).ok()?;
                let bank = s["power_bank_serial"].as_str().map(|b| {
                    (b.to_string(), u8::try_from(s["battery_level"].as_u64().unwrap_or(0).min(100)).unwrap_or(0))
                });
                Some(SimSlot { index, bank })
            })
            .collect();
        let mut config = SimConfig::new(&host, port);
        config.mountpoint = args.mountpoint.clone();
        config.protocol = match (args.protocol, creds["protocol"].as_str()) {
            (Some(Protocol::Native), _) => SimProtocol::Native,
            (Some(Protocol::Volinks), _) | (None, Some("volinks-v1")) => SimProtocol::Volinks,
            (None, _) => SimProtocol::Native,
        };
        config.heartbeat_interval = Duration::from_secs(args.heartbeat_secs.max(1));
        config.eject_delay = Duration::from_millis(args.eject_delay_ms);
        config.eject_failure_rate = args.failure_rate.clamp(0.0, 1.0);
        let device_id = creds["device_id"].as_str().unwrap_or(sn);
        running.push(SimStation::start(config, device_id, password, slots).await?);
        tracing::info!(station = %sn, "simulated station online");
    }
    tracing::info!(stations = running.len(), "station simulator running; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    for station in running {
        station.stop().await;
    }
    Ok(())
}
