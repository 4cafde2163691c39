//! Simulated stations for demos and tests: each one connects to the broker
//! with its own credentials and last will, publishes its retained status and
//! heartbeats, answers eject commands (after a configurable delay, failing at
//! a configurable rate), and returns power banks when asked.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use powerbank::stations::link::protocol::{
    Command, Heartbeat, SlotReport, SlotState, StationEvent, StatusMessage, Topics,
};
use rand::Rng;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub broker_host: String,
    pub broker_port: u16,
    pub topic_prefix: String,
    pub heartbeat_interval: Duration,
    pub eject_delay: Duration,
    /// 0.0 never fails, 1.0 always fails.
    pub eject_failure_rate: f64,
    /// Ignore eject commands entirely (to test timeouts).
    pub ignore_commands: bool,
    pub firmware: String,
}

impl SimConfig {
    pub fn new(broker_host: &str, broker_port: u16, topic_prefix: &str) -> Self {
        Self {
            broker_host: broker_host.to_string(),
            broker_port,
            topic_prefix: topic_prefix.to_string(),
            heartbeat_interval: Duration::from_secs(20),
            eject_delay: Duration::from_millis(200),
            eject_failure_rate: 0.0,
            ignore_commands: false,
            firmware: "sim-1.0.0".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimSlot {
    pub index: u16,
    /// Serial and battery percent of the bank in the slot.
    pub bank: Option<(String, u8)>,
}

struct Shared {
    sn: String,
    topics: Topics,
    config: SimConfig,
    slots: Mutex<Vec<SimSlot>>,
    /// Answers already given, by request id: QoS 1 may deliver a command
    /// twice, and a repeat must get the same answer, not a second eject.
    answered: Mutex<std::collections::HashMap<String, StationEvent>>,
}

impl Shared {
    fn status(&self) -> StatusMessage {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        StatusMessage {
            online: true,
            firmware: Some(self.config.firmware.clone()),
            slots: Some(
                slots
                    .iter()
                    .map(|s| SlotReport {
                        index: s.index,
                        state: if s.bank.is_some() { SlotState::Occupied } else { SlotState::Empty },
                        power_bank: s.bank.as_ref().map(|b| b.0.clone()),
                        battery: s.bank.as_ref().map(|b| b.1),
                    })
                    .collect(),
            ),
        }
    }

    /// Takes the bank out of `slot` unless the dice say the motor jams.
    fn try_eject(&self, slot: u16) -> Result<String, String> {
        if self.config.eject_failure_rate > 0.0 && rand::rng().random_bool(self.config.eject_failure_rate.min(1.0)) {
            return Err("motor_jam".into());
        }
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let s = slots.iter_mut().find(|s| s.index == slot).ok_or_else(|| "no_such_slot".to_string())?;
        s.bank.take().map(|b| b.0).ok_or_else(|| "slot_empty".to_string())
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
    /// connection and the retained status is queued.
    pub async fn start(config: SimConfig, sn: &str, password: &str, slots: Vec<SimSlot>) -> anyhow::Result<Self> {
        let topics = Topics::new(&config.topic_prefix);
        let mut options = MqttOptions::new(format!("station-{sn}"), config.broker_host.clone(), config.broker_port);
        options.set_credentials(sn, password);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_clean_session(true);
        // Large enough for robustness tests that send oversized payloads on purpose.
        options.set_max_packet_size(256 * 1024, 256 * 1024);
        let will = serde_json::to_vec(&StatusMessage { online: false, firmware: None, slots: None })?;
        options.set_last_will(LastWill::new(topics.status(sn), will, QoS::AtLeastOnce, true));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let shared = Arc::new(Shared {
            sn: sn.to_string(),
            topics,
            config,
            slots: Mutex::new(slots),
            answered: Mutex::new(Default::default()),
        });

        // Wait for the first ConnAck so callers know the station is up.
        let connected = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(anyhow::anyhow!("station {sn} cannot connect: {e}")),
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

    pub fn serial(&self) -> &str {
        &self.shared.sn
    }

    pub fn slots(&self) -> Vec<SimSlot> {
        self.shared.slots.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A customer pushes a bank into `slot`.
    pub async fn return_bank(&self, slot: u16, bank: &str, battery: u8) -> anyhow::Result<()> {
        {
            let mut slots = self.shared.slots.lock().unwrap_or_else(|p| p.into_inner());
            let s = slots.iter_mut().find(|s| s.index == slot).context("no such slot")?;
            anyhow::ensure!(s.bank.is_none(), "slot {slot} is occupied");
            s.bank = Some((bank.to_string(), battery));
        }
        let event = StationEvent::Returned { slot, power_bank: bank.to_string(), battery: Some(battery) };
        self.publish_event(&event).await
    }

    pub async fn publish_event(&self, event: &StationEvent) -> anyhow::Result<()> {
        let payload = serde_json::to_vec(event)?;
        self.client.publish(self.shared.topics.events(&self.shared.sn), QoS::AtLeastOnce, false, payload).await?;
        Ok(())
    }

    /// Publishes arbitrary bytes on one of the station's topics (`status`,
    /// `events`, `heartbeat`), for robustness tests.
    pub async fn publish_raw(&self, channel: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let topic = format!("{}/stations/{}/{channel}", self.shared.config.topic_prefix, self.shared.sn);
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await?;
        Ok(())
    }

    /// Stops heartbeats but keeps the connection (a hung controller).
    pub fn stop_heartbeats(&mut self) {
        if let Some(t) = self.tasks.get(1) {
            t.abort();
        }
    }

    /// Drops the connection without a DISCONNECT, as a power cut would: the
    /// broker then publishes the station's last will.
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

fn on_connect(shared: &Shared, client: &AsyncClient) -> anyhow::Result<()> {
    client.try_subscribe(shared.topics.commands(&shared.sn), QoS::AtLeastOnce)?;
    let status = serde_json::to_vec(&shared.status())?;
    client.try_publish(shared.topics.status(&shared.sn), QoS::AtLeastOnce, true, status)?;
    Ok(())
}

async fn event_loop(shared: Arc<Shared>, client: AsyncClient, mut eventloop: rumqttc::EventLoop) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Err(e) = on_connect(&shared, &client) {
                    tracing::warn!(station = %shared.sn, error = %e, "sim re-announce failed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if shared.config.ignore_commands {
                    continue;
                }
                let Ok(Command::Eject { request_id, slot }) = serde_json::from_slice::<Command>(&p.payload) else {
                    tracing::warn!(station = %shared.sn, "sim ignored an unreadable command");
                    continue;
                };
                let shared = shared.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(shared.config.eject_delay).await;
                    let previous = shared.answered.lock().unwrap_or_else(|p| p.into_inner()).get(&request_id).cloned();
                    let event = match previous {
                        Some(answer) => answer,
                        None => {
                            let event = match shared.try_eject(slot) {
                                Ok(power_bank) => {
                                    StationEvent::Ejected { request_id: request_id.clone(), slot, power_bank }
                                }
                                Err(reason) => {
                                    StationEvent::EjectFailed { request_id: request_id.clone(), slot, reason }
                                }
                            };
                            shared.answered.lock().unwrap_or_else(|p| p.into_inner()).insert(request_id, event.clone());
                            event
                        }
                    };
                    if let Ok(payload) = serde_json::to_vec(&event) {
                        let _ =
                            client.publish(shared.topics.events(&shared.sn), QoS::AtLeastOnce, false, payload).await;
                    }
                });
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

async fn heartbeats(shared: Arc<Shared>, client: AsyncClient) {
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval);
    loop {
        tick.tick().await;
        let hb = Heartbeat { uptime_secs: Some(started.elapsed().as_secs()) };
        if let Ok(payload) = serde_json::to_vec(&hb) {
            let _ = client.publish(shared.topics.heartbeat(&shared.sn), QoS::AtMostOnce, false, payload).await;
        }
    }
}
