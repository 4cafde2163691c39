//! The station link: MQTT between the host and station hardware.
//!
//! One connection task owns the rumqttc event loop: it reconnects with
//! backoff and subscribes again on every ConnAck (rumqttc does not restore
//! subscriptions of a clean session). Incoming publishes go through a
//! bounded queue to one applier task, so messages of a station are applied in
//! the order they arrived and a slow database never stalls keep-alives.
//! Nothing a station sends can stop either task: bad payloads are logged and
//! counted.

pub mod apply;
pub mod broker;
pub mod protocol;
pub mod routes;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use utoipa::ToSchema;

use self::{
    apply::Applied,
    broker::{BrokerCredentials, HOST_USERNAME},
    protocol::{Channel, Command, Heartbeat, MAX_PAYLOAD_BYTES, StationEvent, StatusMessage, Topics},
};
use crate::core::{ApiError, AppState, now_ts};

/// How the host reaches a broker.
#[derive(Debug, Clone)]
pub enum MqttMode {
    /// No station link (tests that do not need one).
    Disabled,
    /// Start rumqttd in-process on this address and connect to it.
    Embedded { listen: SocketAddr },
    /// An external broker, `mqtt://[user:pass@]host:port`.
    External { url: String },
}

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub mode: MqttMode,
    pub topic_prefix: String,
    /// A station with no message for this long is marked offline.
    pub heartbeat_timeout_secs: i64,
    /// How often the heartbeat expiry runs.
    pub sweep_interval: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            mode: MqttMode::Embedded { listen: SocketAddr::from(([127, 0, 0, 1], 1884)) },
            topic_prefix: "powerbank".into(),
            heartbeat_timeout_secs: 90,
            sweep_interval: Duration::from_secs(15),
        }
    }
}

/// Counters shown by the health check and the admin API.
#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    applied: AtomicU64,
    malformed: AtomicU64,
    oversized: AtomicU64,
    unknown_station: AtomicU64,
    commands_sent: AtomicU64,
    connects: AtomicU64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkStatus {
    /// `connected`, `connecting` or `disabled`.
    pub state: &'static str,
    pub broker: String,
    pub last_error: Option<String>,
    pub messages_received: u64,
    pub messages_applied: u64,
    pub malformed: u64,
    pub oversized: u64,
    pub unknown_station: u64,
    pub commands_sent: u64,
    pub connects: u64,
}

/// The outcome of an eject command, as the station reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum EjectOutcome {
    Ejected { power_bank: String },
    Failed { reason: String },
}

/// What the link reports after applying a station event, for other domains
/// (rentals close on `Returned`).
#[derive(Debug, Clone)]
pub struct AppliedEvent {
    pub station_sn: String,
    pub event: StationEvent,
}

pub struct StationLink {
    config: LinkConfig,
    topics: Topics,
    credentials: BrokerCredentials,
    client: Mutex<Option<AsyncClient>>,
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
    counters: Counters,
    waiters: Mutex<HashMap<String, oneshot::Sender<EjectOutcome>>>,
    events: broadcast::Sender<AppliedEvent>,
}

struct Incoming {
    topic: String,
    payload: bytes::Bytes,
}

impl StationLink {
    pub fn new(config: LinkConfig, credentials: BrokerCredentials) -> Self {
        Self {
            topics: Topics::new(&config.topic_prefix),
            config,
            credentials,
            client: Mutex::new(None),
            connected: AtomicBool::new(false),
            last_error: Mutex::new(None),
            counters: Counters::default(),
            waiters: Mutex::new(HashMap::new()),
            events: broadcast::channel(1024).0,
        }
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    pub fn credentials(&self) -> &BrokerCredentials {
        &self.credentials
    }

    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    pub fn is_enabled(&self) -> bool {
        !matches!(self.config.mode, MqttMode::Disabled)
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Events applied from stations, for domains that react to them.
    pub fn subscribe(&self) -> broadcast::Receiver<AppliedEvent> {
        self.events.subscribe()
    }

    fn broker_description(&self) -> String {
        match &self.config.mode {
            MqttMode::Disabled => "none".into(),
            MqttMode::Embedded { listen } => format!("embedded mqtt://{listen}"),
            MqttMode::External { url } => redact(url),
        }
    }

    pub fn status(&self) -> LinkStatus {
        let c = &self.counters;
        LinkStatus {
            state: if !self.is_enabled() {
                "disabled"
            } else if self.is_connected() {
                "connected"
            } else {
                "connecting"
            },
            broker: self.broker_description(),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            messages_received: c.received.load(Ordering::Relaxed),
            messages_applied: c.applied.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            oversized: c.oversized.load(Ordering::Relaxed),
            unknown_station: c.unknown_station.load(Ordering::Relaxed),
            commands_sent: c.commands_sent.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
        }
    }

    /// Sends an eject command and waits up to `timeout` for the station's
    /// `ejected` or `eject_failed` answer. `None` means no answer in time.
    pub async fn eject(&self, sn: &str, slot: u16, timeout: Duration) -> Result<Option<EjectOutcome>, ApiError> {
        self.eject_with_id(sn, slot, &uuid::Uuid::new_v4().to_string(), timeout).await
    }

    /// As [`eject`](Self::eject), with a request id the caller recorded first
    /// (rentals store it, so a late answer can still be matched).
    pub async fn eject_with_id(
        &self,
        sn: &str,
        slot: u16,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Option<EjectOutcome>, ApiError> {
        let request_id = request_id.to_string();
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).insert(request_id.clone(), tx);
        let sent = self.send(sn, &Command::Eject { request_id: request_id.clone(), slot }).await;
        if let Err(e) = sent {
            self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(&request_id);
            return Err(e);
        }
        let outcome = tokio::time::timeout(timeout, rx).await.ok().and_then(Result::ok);
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(&request_id);
        Ok(outcome)
    }

    /// Publishes a command to one station (QoS 1).
    pub async fn send(&self, sn: &str, command: &Command) -> Result<(), ApiError> {
        let client = self.client.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let client = client.ok_or_else(|| ApiError::unavailable("station link is not running"))?;
        if !self.is_connected() {
            return Err(ApiError::unavailable("station link is not connected to the broker"));
        }
        let payload = serde_json::to_vec(command).map_err(|e| ApiError::internal(e.to_string()))?;
        client
            .publish(self.topics.commands(sn), QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| ApiError::unavailable(format!("station link: {e}")))?;
        self.counters.commands_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    fn mqtt_options(&self) -> anyhow::Result<MqttOptions> {
        let client_id = format!("powerbank-host-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut options = match &self.config.mode {
            MqttMode::Disabled => anyhow::bail!("station link disabled"),
            MqttMode::Embedded { listen } => {
                let mut o = MqttOptions::new(client_id, listen.ip().to_string(), listen.port());
                o.set_credentials(HOST_USERNAME, self.credentials.host_password());
                o
            }
            MqttMode::External { url } => {
                let target = parse_mqtt_url(url)?;
                let mut o = MqttOptions::new(client_id, target.host, target.port);
                if let Some((user, pass)) = target.login {
                    o.set_credentials(user, pass);
                }
                o
            }
        };
        options.set_keep_alive(Duration::from_secs(15));
        options.set_clean_session(true);
        // Accept large packets at the protocol level and drop them ourselves:
        // rumqttc treats a packet over its limit as a connection error, and a
        // retained oversized message would then break every reconnect.
        options.set_max_packet_size(1024 * 1024, 64 * 1024);
        Ok(options)
    }

    /// Starts the broker (when embedded), the connection, the applier and the
    /// heartbeat sweep. Returns at once; the tasks run until shutdown.
    pub fn start(state: &AppState, shutdown: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
        let link = state.station_link.clone();
        if !link.is_enabled() {
            return Ok(());
        }
        if let MqttMode::Embedded { listen } = &link.config.mode {
            broker::start_embedded(*listen, link.credentials.clone())?;
        }
        let options = link.mqtt_options()?;
        let (client, eventloop) = AsyncClient::new(options, 256);
        *link.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(client.clone());
        let (incoming_tx, incoming_rx) = mpsc::channel::<Incoming>(1024);
        tokio::spawn(connection_task(link.clone(), client, eventloop, incoming_tx, shutdown.clone()));
        tokio::spawn(applier_task(state.clone(), incoming_rx));
        tokio::spawn(sweep_task(state.clone(), shutdown));
        Ok(())
    }
}

struct MqttTarget {
    host: String,
    port: u16,
    login: Option<(String, String)>,
}

fn parse_mqtt_url(url: &str) -> anyhow::Result<MqttTarget> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| anyhow::anyhow!("MQTT URL must start with mqtt:// (got {})", redact(url)))?;
    let rest = rest.trim_end_matches('/');
    let (login, hostport) = match rest.rsplit_once('@') {
        Some((login, hostport)) => {
            let (user, pass) = login.split_once(':').unwrap_or((login, ""));
            (Some((user.to_string(), pass.to_string())), hostport)
        }
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| anyhow::anyhow!("bad MQTT port in {}", redact(url)))?),
        None => (hostport, 1883),
    };
    anyhow::ensure!(!host.is_empty(), "MQTT URL has no host");
    Ok(MqttTarget { host: host.to_string(), port, login })
}

/// Hides a password in a broker URL before it is logged or shown.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

async fn connection_task(
    link: Arc<StationLink>,
    client: AsyncClient,
    mut eventloop: EventLoop,
    incoming: mpsc::Sender<Incoming>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let polled = tokio::select! {
            polled = eventloop.poll() => polled,
            _ = shutdown.changed() => {
                let _ = client.disconnect().await;
                link.connected.store(false, Ordering::SeqCst);
                return;
            }
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                link.connected.store(true, Ordering::SeqCst);
                link.counters.connects.fetch_add(1, Ordering::Relaxed);
                link.set_error(None);
                backoff = Duration::from_millis(200);
                tracing::info!(code = ?ack.code, "station link connected");
                let filters = link.topics.host_filters().map(|f| rumqttc::SubscribeFilter::new(f, QoS::AtLeastOnce));
                // try_: the request queue is drained by this very loop, so
                // awaiting here could deadlock.
                if let Err(e) = client.try_subscribe_many(filters) {
                    tracing::error!(error = %e, "station link cannot subscribe");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                link.counters.received.fetch_add(1, Ordering::Relaxed);
                let message = Incoming { topic: p.topic, payload: p.payload };
                if incoming.try_send(message).is_err() {
                    tracing::warn!("station link applier is behind; message dropped");
                }
            }
            Ok(_) => {}
            Err(e) => {
                link.connected.store(false, Ordering::SeqCst);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "station link disconnected");
                link.set_error(Some(e.to_string()));
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn applier_task(state: AppState, mut incoming: mpsc::Receiver<Incoming>) {
    while let Some(message) = incoming.recv().await {
        handle_message(&state, message).await;
    }
}

fn parse<T: serde::de::DeserializeOwned>(link: &StationLink, sn: &str, payload: &[u8]) -> Option<T> {
    match serde_json::from_slice(payload) {
        Ok(v) => Some(v),
        Err(e) => {
            link.counters.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(station = sn, error = %e, "malformed station message ignored");
            None
        }
    }
}

async fn handle_message(state: &AppState, message: Incoming) {
    let link = state.station_link.clone();
    let Some((sn, channel)) = link.topics.parse(&message.topic) else {
        link.counters.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(topic = %message.topic, "message on an unexpected topic ignored");
        return;
    };
    let sn = sn.to_string();
    if message.payload.len() > MAX_PAYLOAD_BYTES {
        link.counters.oversized.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(station = %sn, bytes = message.payload.len(), "oversized station message ignored");
        return;
    }
    let now = now_ts();
    let s = sn.clone();
    let result = match channel {
        Channel::Status => {
            let Some(msg) = parse::<StatusMessage>(&link, &sn, &message.payload) else { return };
            state.db.write(move |tx| apply::status(tx, &s, &msg, now)).await.map(|a| (a, None))
        }
        Channel::Heartbeat => {
            let Some(hb) = parse::<Heartbeat>(&link, &sn, &message.payload) else { return };
            state.db.write(move |tx| apply::heartbeat(tx, &s, &hb, now)).await.map(|a| (a, None))
        }
        Channel::Events => {
            let Some(event) = parse::<StationEvent>(&link, &sn, &message.payload) else { return };
            let applied = event.clone();
            state.db.write(move |tx| apply::event(tx, &s, &applied, now)).await.map(|a| (a, Some(event)))
        }
    };
    match result {
        Ok((Applied::Done, event)) => {
            link.counters.applied.fetch_add(1, Ordering::Relaxed);
            if let Some(event) = event {
                link.settle_waiter(&event);
                let _ = link.events.send(AppliedEvent { station_sn: sn, event });
            }
        }
        Ok((Applied::UnknownStation, _)) => {
            link.counters.unknown_station.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(station = %sn, "message from an unregistered station ignored");
        }
        Err(e) => tracing::error!(station = %sn, error = %e, "applying station message failed"),
    }
}

impl StationLink {
    fn settle_waiter(&self, event: &StationEvent) {
        let (request_id, outcome) = match event {
            StationEvent::Ejected { request_id, power_bank, .. } => {
                (request_id, EjectOutcome::Ejected { power_bank: power_bank.clone() })
            }
            StationEvent::EjectFailed { request_id, reason, .. } => {
                (request_id, EjectOutcome::Failed { reason: reason.clone() })
            }
            _ => return,
        };
        if let Some(tx) = self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(request_id) {
            let _ = tx.send(outcome);
        }
    }
}

async fn sweep_task(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let link = state.station_link.clone();
    let mut tick = tokio::time::interval(link.config.sweep_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let timeout = link.config.heartbeat_timeout_secs;
        match state.db.write(move |tx| apply::expire_heartbeats(tx, now_ts(), timeout)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(stations = n, "stations marked offline: heartbeats stopped"),
            Err(e) => tracing::error!(error = %e, "heartbeat sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_urls_parse_and_redact() {
        let t = parse_mqtt_url("mqtt://user:pw@broker.local:1884").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("broker.local", 1884));
        assert_eq!(t.login, Some(("user".into(), "pw".into())));
        assert_eq!(parse_mqtt_url("mqtt://127.0.0.1").unwrap().port, 1883);
        assert!(parse_mqtt_url("http://x").is_err());
        assert!(parse_mqtt_url("mqtt://h:notaport").is_err());
        assert_eq!(redact("mqtt://user:pw@h:1"), "mqtt://***@h:1");
    }
}
