//! Simulated stations for demos and tests. Each one connects to the broker
//! with its own credentials (username = device id, client id =
//! `station-{device id}`), reports its slots and heartbeats, answers eject
//! commands (after a configurable delay, failing at a configurable rate), and
//! returns power banks when asked. It speaks either protocol the host knows:
//!
//! - [`SimProtocol::Native`]: the JSON contract of `docs/mqtt.md`
//!   (retained status, last will, events, eject commands by request id);
//! - [`SimProtocol::Volinks`]: a volinks Protocol V1 cabinet (binary frames
//!   on `/powerbank/{imei}/user/update|heart`, JSON commands on `.../get`).
//!
//! [`SimConfig::mountpoint`] is put verbatim in front of every topic, as a
//! broker mountpoint would, so tests sharing one broker never meet.

pub mod fleet;
mod native;
mod volinks;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use anyhow::Context;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use station_codecs::native::StationEvent;
use station_codecs::volinks::Frame;
use tokio::task::JoinHandle;

/// Which wire protocol a simulated station speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SimProtocol {
    #[default]
    Native,
    Volinks,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub broker_host: String,
    pub broker_port: u16,
    /// Put verbatim in front of every topic the station publishes or
    /// subscribes to, like a broker mountpoint (`""`: none). The host does the
    /// same with its own mountpoint, so a test can give each server its own.
    pub mountpoint: String,
    pub protocol: SimProtocol,
    pub heartbeat_interval: Duration,
    /// Also report the full status (native: the retained status; volinks:
    /// a check frame) this often; `None`: only at (re)connection.
    pub status_interval: Option<Duration>,
    /// Delay before the first heartbeat, so a fleet started at once does not
    /// heartbeat in lockstep.
    pub start_offset: Duration,
    /// MQTT keep-alive (a PINGREQ after this long without traffic).
    pub keep_alive: Duration,
    pub eject_delay: Duration,
    /// 0.0 never fails, 1.0 always fails.
    pub eject_failure_rate: f64,
    /// Ignore commands entirely (to test timeouts).
    pub ignore_commands: bool,
    /// Native: the `firmware` of the status.
    pub firmware: String,
    /// Volinks: the pop-up state reported when the failure roll fails
    /// (`0x00`, "Pop-up failed"; e.g. `0x12` for a jammed bank).
    pub volinks_failure_code: u8,
    /// Volinks: the CSQ in heartbeats (0-31, 99 = no network).
    pub volinks_signal: u8,
}

impl SimConfig {
    /// A native station on `broker_host:broker_port`, no mountpoint.
    pub fn new(broker_host: &str, broker_port: u16) -> Self {
        Self {
            broker_host: broker_host.to_string(),
            broker_port,
            mountpoint: String::new(),
            protocol: SimProtocol::Native,
            heartbeat_interval: Duration::from_secs(20),
            status_interval: None,
            start_offset: Duration::ZERO,
            keep_alive: Duration::from_secs(5),
            eject_delay: Duration::from_millis(200),
            eject_failure_rate: 0.0,
            ignore_commands: false,
            firmware: "sim-1.0.0".into(),
            volinks_failure_code: 0x00,
            volinks_signal: 27,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimSlot {
    pub index: u16,
    /// Serial and battery percent of the bank in the slot. A volinks station
    /// needs serials that are volinks SNs (decimal numbers, e.g. `85021618`).
    pub bank: Option<(String, u8)>,
}

struct Shared {
    device_id: String,
    config: SimConfig,
    slots: Mutex<Vec<SimSlot>>,
    /// Native: answers already given, by request id. QoS 1 may deliver a
    /// command twice, and a repeat must get the same answer, not a second eject.
    answered: Mutex<HashMap<String, StationEvent>>,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, Vec<SimSlot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `suffix` behind the mountpoint.
    fn topic(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.config.mountpoint)
    }

    /// Whether the failure-rate roll says this eject fails.
    fn roll_failure(&self) -> bool {
        use rand::Rng;
        self.config.eject_failure_rate > 0.0 && rand::rng().random_bool(self.config.eject_failure_rate.min(1.0))
    }
}

/// One running simulated station.
pub struct SimStation {
    shared: Arc<Shared>,
    client: AsyncClient,
    tasks: Vec<JoinHandle<()>>,
}

impl SimStation {
    /// Connects and starts publishing. Returns once the broker accepted the
    /// connection and the first status report is queued.
    pub async fn start(
        config: SimConfig,
        device_id: &str,
        password: &str,
        slots: Vec<SimSlot>,
    ) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            device_id: device_id.to_string(),
            config,
            slots: Mutex::new(slots),
            answered: Mutex::new(HashMap::new()),
        });
        if shared.config.protocol == SimProtocol::Volinks {
            volinks::check_serials(&shared.slots())?;
        }
        let config = &shared.config;
        let mut options =
            MqttOptions::new(format!("station-{device_id}"), config.broker_host.clone(), config.broker_port);
        options.set_credentials(device_id, password);
        options.set_keep_alive(config.keep_alive);
        options.set_clean_session(true);
        // Large enough for robustness tests that send oversized payloads on purpose.
        options.set_max_packet_size(256 * 1024, 256 * 1024);
        if config.protocol == SimProtocol::Native {
            let (topic, payload) = native::last_will(&shared)?;
            options.set_last_will(LastWill::new(topic, payload, QoS::AtLeastOnce, true));
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);

        // Wait for the first ConnAck so callers know the station is up.
        let connected = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(anyhow::anyhow!("station {device_id} cannot connect: {e}")),
                }
            }
        })
        .await
        .context("connecting to the broker timed out")?;
        connected?;
        on_connect(&shared, &client)?;

        let loop_task = tokio::spawn(event_loop(shared.clone(), client.clone(), eventloop));
        let heartbeat_task = tokio::spawn(heartbeats(shared.clone(), client.clone()));
        Ok(Self { shared, client, tasks: vec![loop_task, heartbeat_task] })
    }

    /// The device id the station logs in with (serial number or IMEI).
    pub fn serial(&self) -> &str {
        &self.shared.device_id
    }

    pub fn protocol(&self) -> SimProtocol {
        self.shared.config.protocol
    }

    pub fn slots(&self) -> Vec<SimSlot> {
        self.shared.slots().clone()
    }

    /// A customer pushes a bank into `slot`: a `returned` event (native) or a
    /// successful `0x40` return frame (volinks).
    pub async fn return_bank(&self, slot: u16, bank: &str, battery: u8) -> anyhow::Result<()> {
        let sn = match self.shared.config.protocol {
            SimProtocol::Native => None,
            SimProtocol::Volinks => Some(station_codecs::volinks::parse_sn(bank).map_err(anyhow::Error::msg)?),
        };
        {
            let mut slots = self.shared.slots();
            let s = slots.iter_mut().find(|s| s.index == slot).context("no such slot")?;
            anyhow::ensure!(s.bank.is_none(), "slot {slot} is occupied");
            s.bank = Some((bank.to_string(), battery));
        }
        match sn {
            None => {
                let event = StationEvent::Returned { slot, power_bank: bank.to_string(), battery: Some(battery) };
                self.publish_event(&event).await
            }
            Some(sn) => self.publish_frame(&volinks::returned(&self.shared, slot, sn, battery)).await,
        }
    }

    /// Publishes a native event on the events topic (native stations only).
    pub async fn publish_event(&self, event: &StationEvent) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.shared.config.protocol == SimProtocol::Native,
            "publish_event speaks the native contract; a volinks station uses publish_frame"
        );
        native::publish_event(&self.shared, &self.client, event).await
    }

    /// Publishes a volinks frame: heartbeats on the heart topic, every other
    /// frame on the update topic (volinks stations only).
    pub async fn publish_frame(&self, frame: &Frame) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.shared.config.protocol == SimProtocol::Volinks,
            "publish_frame speaks volinks; a native station uses publish_event"
        );
        volinks::publish_frame(&self.shared, &self.client, frame).await
    }

    /// Publishes arbitrary bytes, for robustness tests, on the station's
    /// topic whose last level is `channel`, taken verbatim:
    ///
    /// - native: `{mountpoint}powerbank/stations/{sn}/{channel}` (`status`,
    ///   `events`, `heartbeat`, or anything else to test unknown topics);
    /// - volinks: `{mountpoint}/powerbank/{imei}/user/{channel}` (`update`,
    ///   `heart`, ...).
    pub async fn publish_raw(&self, channel: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let suffix = match self.shared.config.protocol {
            SimProtocol::Native => native::topic(&self.shared, channel),
            SimProtocol::Volinks => volinks::topic(&self.shared, channel),
        };
        self.client.publish(self.shared.topic(&suffix), QoS::AtLeastOnce, false, payload).await?;
        Ok(())
    }

    /// Stops heartbeats but keeps the connection (a hung controller).
    pub fn stop_heartbeats(&mut self) {
        if let Some(t) = self.tasks.get(1) {
            t.abort();
        }
    }

    /// Drops the connection without a DISCONNECT, as a power cut would: the
    /// broker then publishes a native station's last will.
    pub fn crash(self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// A clean shutdown.
    pub async fn stop(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// After every (re)connection: subscribe to commands and report the slots.
fn on_connect(shared: &Shared, client: &AsyncClient) -> anyhow::Result<()> {
    match shared.config.protocol {
        SimProtocol::Native => native::on_connect(shared, client),
        SimProtocol::Volinks => volinks::on_connect(shared, client),
    }
}

async fn event_loop(shared: Arc<Shared>, client: AsyncClient, mut eventloop: rumqttc::EventLoop) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Err(e) = on_connect(&shared, &client) {
                    tracing::warn!(station = %shared.device_id, error = %e, "sim re-announce failed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if shared.config.ignore_commands {
                    continue;
                }
                match shared.config.protocol {
                    SimProtocol::Native => native::on_command(&shared, &client, &p.payload),
                    SimProtocol::Volinks => volinks::on_command(&shared, &client, &p.payload),
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

async fn heartbeats(shared: Arc<Shared>, client: AsyncClient) {
    let started = tokio::time::Instant::now();
    tokio::time::sleep(shared.config.start_offset).await;
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A period so long it never fires stands in for "no status reports".
    let status_every = shared.config.status_interval.unwrap_or(Duration::from_secs(100 * 365 * 24 * 3600));
    let mut status = tokio::time::interval_at(tokio::time::Instant::now() + status_every, status_every);
    status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let published = tokio::select! {
            _ = tick.tick() => match shared.config.protocol {
                SimProtocol::Native => native::heartbeat(&shared, &client, started.elapsed()).await,
                SimProtocol::Volinks => volinks::heartbeat(&shared, &client).await,
            },
            _ = status.tick() => match shared.config.protocol {
                SimProtocol::Native => native::publish_status(&shared, &client).await,
                SimProtocol::Volinks => volinks::publish_check(&shared, &client).await,
            },
        };
        if let Err(e) = published {
            tracing::debug!(station = %shared.device_id, error = %e, "sim report not sent");
        }
    }
}
