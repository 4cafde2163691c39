//! Station-link test helpers: a broker per test (the embedded one, or the
//! broker named by `POWERBANK_TEST_MQTT_URL`), simulated stations, and
//! polling for effects that arrive asynchronously.

use std::{future::Future, time::Duration};

use powerbank::config::{LinkConfig, MqttMode};
use serde_json::Value;
use station_sim::{SimConfig, SimProtocol, SimSlot, SimStation};

use crate::{Session, TestServer};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// Which broker a link test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Broker {
    /// rumqttd inside the host, on a free port.
    Embedded,
    /// The broker at `POWERBANK_TEST_MQTT_URL` (Mosquitto in CI).
    External,
}

/// The external test broker, if one is configured. `cargo xtask test` sets
/// `POWERBANK_TEST_MQTT_URL` when a broker answers on 127.0.0.1:1883.
pub fn external_broker_url() -> Option<String> {
    std::env::var("POWERBANK_TEST_MQTT_URL").ok().filter(|u| !u.is_empty())
}

/// Runs an `async fn scenario(broker: Broker)` as two tests: over the
/// embedded broker, and over the external one (Mosquitto in CI) when
/// `POWERBANK_TEST_MQTT_URL` names it.
#[macro_export]
macro_rules! both_brokers {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test]
            async fn embedded() {
                super::$scenario($crate::mqtt::Broker::Embedded).await;
            }

            #[tokio::test]
            async fn mosquitto() {
                if $crate::mqtt::external_broker_url().is_none() {
                    eprintln!("POWERBANK_TEST_MQTT_URL not set: no external broker to test against");
                    return;
                }
                super::$scenario($crate::mqtt::Broker::External).await;
            }
        }
    };
}

/// A link configuration with its own mountpoint, so tests sharing one
/// external broker never see each other's stations.
pub fn link_config(broker: Broker, heartbeat_timeout_secs: i64) -> LinkConfig {
    let mode = match (broker, external_broker_url()) {
        (Broker::External, Some(url)) => MqttMode::External { url },
        (Broker::External, None) => panic!("POWERBANK_TEST_MQTT_URL is not set"),
        (Broker::Embedded, _) => {
            MqttMode::Embedded { listen: std::net::SocketAddr::from(([127, 0, 0, 1], free_port())) }
        }
    };
    LinkConfig {
        mode,
        mountpoint: format!("pbtest-{}/", uuid::Uuid::new_v4().simple()),
        heartbeat_timeout_secs,
        sweep_interval: Duration::from_millis(300),
        eject_ttl_secs: 30,
        answer_timeouts: powerbank::core::timeouts::Timeouts::Real,
    }
}

/// A server with the station link on, demo stations loaded, and its link connected.
pub async fn linked_server(link: LinkConfig) -> TestServer {
    let s = TestServer::start_with(move |c| c.link = link).await;
    let db = powerbank::core::Db::open(&s.db_path(), 1).expect("db");
    powerbank::demo::seed_if_empty(&db).expect("demo data");
    let admin = s.admin().await;
    let connected = wait_for(Duration::from_secs(10), || async {
        s.get("/api/admin/station-link", Some(&admin.access)).await.body["state"] == "connected"
    })
    .await;
    assert!(connected, "station link did not connect");
    s
}

/// Host and port of the broker the server uses.
pub fn broker_address(link: &LinkConfig) -> (String, u16) {
    match &link.mode {
        MqttMode::Embedded { listen } => (listen.ip().to_string(), listen.port()),
        MqttMode::External { url } => {
            let hostport = url.trim_start_matches("mqtt://").rsplit('@').next().unwrap_or("127.0.0.1:1883");
            let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "1883"));
            (host.to_string(), port.parse().unwrap_or(1883))
        }
        MqttMode::Disabled => panic!("the station link is disabled"),
    }
}

pub fn sim_config(s: &TestServer) -> SimConfig {
    let link = &s.config().link;
    let (host, port) = broker_address(link);
    let mut c = SimConfig::new(&host, port);
    c.mountpoint = link.mountpoint.clone();
    c.heartbeat_interval = Duration::from_millis(500);
    c.eject_delay = Duration::from_millis(50);
    c
}

/// Starts a simulated station with the slots the database has for it, using
/// the credentials the admin API hands out.
pub async fn start_sim(s: &TestServer, admin: &Session, sn: &str, config: SimConfig) -> SimStation {
    let detail = s.get(&format!("/api/stations/{sn}"), None).await;
    let slots = detail.body["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|slot: &Value| SimSlot {
            index: slot["slot_index"].as_u64().and_then(|i| u16::try_from(i).ok()).expect("slot index"),
            bank: slot["power_bank_serial"]
                .as_str()
                .map(|b| (b.to_string(), slot["battery_level"].as_u64().unwrap_or(50).min(100) as u8)),
        })
        .collect();
    start_sim_with_slots(s, admin, sn, config, slots).await
}

/// Starts a simulated station holding `slots` (whatever the database says),
/// speaking the protocol its station record names.
pub async fn start_sim_with_slots(
    s: &TestServer,
    admin: &Session,
    sn: &str,
    mut config: SimConfig,
    slots: Vec<SimSlot>,
) -> SimStation {
    let creds = s.get(&format!("/api/admin/stations/{sn}/mqtt-credentials"), Some(&admin.access)).await;
    assert_eq!(creds.status, reqwest::StatusCode::OK, "{}", creds.body);
    // External brokers manage their own accounts; the test broker accepts any.
    let password = creds.body["password"].as_str().unwrap_or("unused").to_string();
    let device_id = creds.body["device_id"].as_str().expect("device id").to_string();
    if creds.body["protocol"] == "volinks-v1" {
        config.protocol = SimProtocol::Volinks;
    }
    SimStation::start(config, &device_id, &password, slots).await.expect("simulated station starts")
}

/// Polls `check` every 50 ms until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
