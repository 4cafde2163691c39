//! A fleet of simulated stations against a running host, for load tests:
//! registers N stations through the operator API (a share of them volinks
//! cabinets, the rest native), connects one simulated station each, lets
//! them heartbeat and report status at the given rates, and meanwhile ejects
//! banks through `POST /api/admin/stations/{sn}/eject`, timing each round
//! trip. The report gives what the host applied per second, the host's CPU
//! (from `/proc/PID/stat` when its pid is known) and eject latency.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{SimConfig, SimProtocol, SimSlot, SimStation};

#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub api: String,
    pub admin_email: String,
    pub admin_password: String,
    pub stations: usize,
    /// Every n-th station is a volinks cabinet (0: none).
    pub volinks_every: usize,
    pub slots: u16,
    pub heartbeat: Duration,
    pub status: Option<Duration>,
    pub keep_alive: Duration,
    /// After every station connected, before measuring (one heartbeat round).
    pub warmup: Duration,
    pub window: Duration,
    pub ejects_per_sec: f64,
    /// The host's process id, for its CPU time.
    pub host_pid: Option<u32>,
    /// Serial numbers are `{prefix}-00042`.
    pub prefix: String,
    /// Registrations, credential look-ups and connections in flight at once.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Default)]
pub struct FleetReport {
    pub stations: usize,
    pub volinks: usize,
    pub connected: usize,
    pub setup_secs: f64,
    pub connect_secs: f64,
    pub window_secs: f64,
    pub received_per_sec: f64,
    pub applied_per_sec: f64,
    pub dropped_or_failed: u64,
    /// Host CPU over the window, in cores (1.0 = one core busy).
    pub host_cpu_cores: Option<f64>,
    pub host_rss_mib: Option<f64>,
    pub sim_cpu_cores: Option<f64>,
    pub ejects: usize,
    pub eject_failures: usize,
    pub eject_p50_ms: f64,
    pub eject_p95_ms: f64,
    pub eject_p99_ms: f64,
    pub eject_max_ms: f64,
    pub load_average_before: String,
    pub load_average_after: String,
}

impl fmt::Display for FleetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpu = |c: Option<f64>| c.map_or("n/a".to_string(), |c| format!("{:.1}% of one core", c * 100.0));
        writeln!(
            f,
            "fleet: {} stations ({} volinks V1, {} native), {} connected",
            self.stations,
            self.volinks,
            self.stations - self.volinks,
            self.connected
        )?;
        writeln!(
            f,
            "  setup (register + credentials): {:.1} s, connecting: {:.1} s",
            self.setup_secs, self.connect_secs
        )?;
        writeln!(f, "  measured over {:.0} s:", self.window_secs)?;
        writeln!(f, "  messages received by the host: {:.1}/s", self.received_per_sec)?;
        writeln!(f, "  messages applied:              {:.1}/s", self.applied_per_sec)?;
        writeln!(f, "  not applied (dropped, malformed, failed): {}", self.dropped_or_failed)?;
        writeln!(f, "  host CPU (broker + link + HTTP, /proc): {}", cpu(self.host_cpu_cores))?;
        if let Some(rss) = self.host_rss_mib {
            writeln!(f, "  host resident memory: {rss:.0} MiB")?;
        }
        writeln!(f, "  simulator CPU: {}", cpu(self.sim_cpu_cores))?;
        writeln!(
            f,
            "  eject round trip (HTTP -> MQTT -> station -> MQTT -> HTTP), {} ejects, {} failed: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.ejects,
            self.eject_failures,
            self.eject_p50_ms,
            self.eject_p95_ms,
            self.eject_p99_ms,
            self.eject_max_ms
        )?;
        write!(f, "  load average before: {}, after: {}", self.load_average_before, self.load_average_after)
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn login(options: &FleetOptions) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(options.concurrency).build()?;
        let url = format!("{}/api/admin/login", options.api);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let body = json!({"email": options.admin_email, "password": options.admin_password});
            if let Ok(r) = http.post(&url).json(&body).send().await
                && r.status().is_success()
            {
                let v: Value = r.json().await?;
                let token = v["access_token"].as_str().context("no access_token")?.to_string();
                return Ok(Self { http, base: options.api.clone(), token });
            }
            anyhow::ensure!(Instant::now() < deadline, "could not sign in at {url}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn status(&self) -> anyhow::Result<Value> {
        let r = self.http.get(format!("{}/api/admin/station-link", self.base)).bearer_auth(&self.token).send().await?;
        anyhow::ensure!(r.status().is_success(), "station-link: {}", r.status());
        Ok(r.json().await?)
    }
}

struct Member {
    serial: String,
    device_id: String,
    password: String,
    protocol: SimProtocol,
    host: String,
    port: u16,
    slots: Vec<SimSlot>,
}

fn member_slots(index: usize, slots: u16, volinks: bool) -> Vec<SimSlot> {
    (1..=slots)
        .map(|s| {
            // Bank serials are unique across the fleet; volinks banks carry decimal SNs.
            let serial = if volinks {
                (20_000_000 + index * 100 + usize::from(s)).to_string()
            } else {
                format!("FB{index:05}-{s}")
            };
            SimSlot { index: s, bank: Some((serial, 90)) }
        })
        .collect()
}

/// Registers station `index` (a 409 means a previous run did) and fetches
/// its MQTT login.
async fn register(api: &Api, options: &FleetOptions, index: usize) -> anyhow::Result<Member> {
    let volinks = options.volinks_every > 0 && index.is_multiple_of(options.volinks_every);
    let serial = format!("{}-{index:05}", options.prefix);
    let mut body = json!({
        "serial_number": serial, "name": format!("Fleet station {index}"), "address": "Load test",
        "city": "Kathmandu", "latitude": 27.70 + (index % 100) as f64 * 0.001,
        "longitude": 85.30 + (index / 100 % 100) as f64 * 0.001, "total_slots": options.slots,
    });
    if volinks {
        body["protocol"] = json!("volinks-v1");
        body["device_id"] = json!(format!("86{index:013}"));
    }
    let r =
        api.http.post(format!("{}/api/admin/stations", api.base)).bearer_auth(&api.token).json(&body).send().await?;
    anyhow::ensure!(
        r.status().is_success() || r.status() == reqwest::StatusCode::CONFLICT,
        "creating {serial}: {}",
        r.status()
    );
    let r = api
        .http
        .get(format!("{}/api/admin/stations/{serial}/mqtt-credentials", api.base))
        .bearer_auth(&api.token)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "credentials of {serial}: {}", r.status());
    let creds: Value = r.json().await?;
    let broker = creds["broker"].as_str().context("the host has no embedded broker")?;
    let (host, port) = broker.trim_start_matches("mqtt://").rsplit_once(':').context("broker address")?;
    Ok(Member {
        device_id: creds["device_id"].as_str().context("device_id")?.to_string(),
        password: creds["password"].as_str().context("password")?.to_string(),
        protocol: if volinks { SimProtocol::Volinks } else { SimProtocol::Native },
        host: host.to_string(),
        port: port.parse()?,
        slots: member_slots(index, options.slots, volinks),
        serial,
    })
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux the project runs on.
    Some((utime + stime) / 100.0)
}

fn rss_mib(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn counter(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or(0)
}

/// Runs the fleet and measures; the stations stay connected until the
/// returned value is dropped with the process.
pub async fn run(options: FleetOptions) -> anyhow::Result<(FleetReport, Vec<SimStation>)> {
    let mut report = FleetReport { stations: options.stations, ..Default::default() };
    let api = Arc::new(Api::login(&options).await?);
    let limit = Arc::new(Semaphore::new(options.concurrency.max(1)));

    let started = Instant::now();
    let mut jobs = JoinSet::new();
    for index in 0..options.stations {
        let (api, options, limit) = (api.clone(), options.clone(), limit.clone());
        jobs.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            register(&api, &options, index).await
        });
    }
    let mut members = Vec::with_capacity(options.stations);
    while let Some(done) = jobs.join_next().await {
        members.push(done??);
    }
    report.setup_secs = started.elapsed().as_secs_f64();
    report.volinks = members.iter().filter(|m| m.protocol == SimProtocol::Volinks).count();
    eprintln!("fleet: {} stations registered in {:.1} s; connecting", members.len(), report.setup_secs);

    let started = Instant::now();
    let mut connecting = JoinSet::new();
    let serials: Vec<(String, u16)> = members.iter().map(|m| (m.serial.clone(), m.slots.len() as u16)).collect();
    for member in members {
        let (options, limit) = (options.clone(), limit.clone());
        connecting.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let mut config = SimConfig::new(&member.host, member.port);
            config.protocol = member.protocol;
            config.heartbeat_interval = options.heartbeat;
            config.status_interval = options.status;
            config.keep_alive = options.keep_alive;
            config.eject_delay = Duration::ZERO;
            config.start_offset = {
                use rand::Rng;
                Duration::from_millis(rand::rng().random_range(0..options.heartbeat.as_millis().max(1) as u64))
            };
            SimStation::start(config, &member.device_id, &member.password, member.slots).await
        });
    }
    let mut running = Vec::with_capacity(serials.len());
    let mut connect_errors = 0;
    while let Some(done) = connecting.join_next().await {
        match done? {
            Ok(station) => running.push(station),
            Err(e) => {
                connect_errors += 1;
                if connect_errors <= 5 {
                    eprintln!("fleet: a station did not connect: {e:#}");
                }
            }
        }
    }
    report.connected = running.len();
    report.connect_secs = started.elapsed().as_secs_f64();
    eprintln!("fleet: {} connected in {:.1} s; warming up {:?}", report.connected, report.connect_secs, options.warmup);
    tokio::time::sleep(options.warmup).await;

    // The measured window.
    let api = Arc::new(Api::login(&options).await?);
    let host_pid = options.host_pid.map(|p| p.to_string());
    report.load_average_before = load_average();
    let before = api.status().await?;
    let host_cpu_before = host_pid.as_deref().and_then(cpu_seconds);
    let sim_cpu_before = cpu_seconds("self");
    let window_start = Instant::now();
    let mut ejects = JoinSet::new();
    let interval = Duration::from_secs_f64(1.0 / options.ejects_per_sec.max(0.01));
    let mut tick = tokio::time::interval(interval);
    let mut issued = 0usize;
    while window_start.elapsed() < options.window {
        tick.tick().await;
        if options.ejects_per_sec <= 0.0 || serials.is_empty() {
            continue;
        }
        // Spread over the fleet; each (station, slot) is ejected at most once.
        let (serial, slots) = serials[(issued * 7919) % serials.len()].clone();
        let slot = 1 + (issued / serials.len()) as u16 % slots.max(1);
        issued += 1;
        let api = api.clone();
        ejects.spawn(async move {
            let started = Instant::now();
            let r = api
                .http
                .post(format!("{}/api/admin/stations/{serial}/eject", api.base))
                .bearer_auth(&api.token)
                .json(&json!({"slot": slot, "timeout_secs": 10}))
                .send()
                .await;
            let ok = matches!(&r, Ok(r) if r.status().is_success());
            (started.elapsed().as_secs_f64() * 1000.0, ok)
        });
    }
    let window = window_start.elapsed().as_secs_f64();
    let after = api.status().await?;
    let host_cpu_after = host_pid.as_deref().and_then(cpu_seconds);
    let sim_cpu_after = cpu_seconds("self");
    report.load_average_after = load_average();
    let mut latencies = Vec::new();
    while let Some(done) = ejects.join_next().await {
        let (ms, ok) = done?;
        if ok {
            latencies.push(ms);
        } else {
            report.eject_failures += 1;
        }
    }
    latencies.sort_by(f64::total_cmp);
    report.window_secs = window;
    let delta = |name: &str| counter(&after, name).saturating_sub(counter(&before, name));
    report.received_per_sec = delta("messages_received") as f64 / window;
    report.applied_per_sec = delta("messages_applied") as f64 / window;
    report.dropped_or_failed = delta("messages_received").saturating_sub(delta("messages_applied"));
    report.host_cpu_cores = host_cpu_before.zip(host_cpu_after).map(|(b, a)| (a - b) / window);
    report.host_rss_mib = host_pid.as_deref().and_then(rss_mib);
    report.sim_cpu_cores = sim_cpu_before.zip(sim_cpu_after).map(|(b, a)| (a - b) / window);
    report.ejects = latencies.len() + report.eject_failures;
    report.eject_p50_ms = percentile(&latencies, 50.0);
    report.eject_p95_ms = percentile(&latencies, 95.0);
    report.eject_p99_ms = percentile(&latencies, 99.0);
    report.eject_max_ms = latencies.last().copied().unwrap_or(0.0);
    Ok((report, running))
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(super::percentile(&v, 99.0), 99.0);
        assert_eq!(super::percentile(&v, 50.0), 50.0);
        assert_eq!(super::percentile(&[3.0], 99.0), 3.0);
        assert_eq!(super::percentile(&[], 99.0), 0.0);
    }
}
