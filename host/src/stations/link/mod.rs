//! The station link: MQTT between the host and station hardware.
//!
//! One connection task owns the rumqttc event loop: it reconnects with
//! backoff and subscribes again on every ConnAck (rumqttc does not restore
//! subscriptions of a clean session). Incoming publishes go through a
//! bounded queue to one applier task, so messages of a station are applied in
//! the order they arrived and a slow database never stalls keep-alives.
//!
//! The host speaks no station protocol itself: every message goes through the
//! station-protocol plugin whose topic filter matched it, and every command
//! through the plugin the station record names (`stations.protocol`). Nothing
//! a station sends can stop either task: undecodable payloads and failing
//! plugins are logged and counted, per station where it is known.

pub mod apply;
pub mod broker;
pub mod protocol;
pub mod routes;
pub mod routing;

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use powerbank_plugin_runtime::{
    PluginHost,
    types::{DecodeError, EjectCommand, Qos, StationCommand, StationEvent},
};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use utoipa::ToSchema;

use self::{
    apply::{Applied, StationRef},
    broker::{BrokerCredentials, HOST_USERNAME},
    protocol::MAX_PAYLOAD_BYTES,
    routing::ProtocolRoute,
};
use crate::core::{ApiError, AppState, Db, now_ts};

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
    /// Prepended verbatim to every topic, like a broker mountpoint, so several
    /// deployments (or test runs) can share one broker. Empty in production.
    pub mountpoint: String,
    /// A station with no message for this long is marked offline.
    pub heartbeat_timeout_secs: i64,
    /// How often the heartbeat expiry runs.
    pub sweep_interval: Duration,
    /// How long an eject command stays valid at the station (protocols with a
    /// TTL refuse it afterwards, so a command stuck in a queue cannot pop a
    /// bank out minutes later).
    pub eject_ttl_secs: u32,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            mode: MqttMode::Embedded { listen: SocketAddr::from(([127, 0, 0, 1], 1884)) },
            mountpoint: String::new(),
            heartbeat_timeout_secs: 90,
            sweep_interval: Duration::from_secs(15),
            eject_ttl_secs: 30,
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
    unknown_topic: AtomicU64,
    unknown_station: AtomicU64,
    wrong_protocol: AtomicU64,
    plugin_failures: AtomicU64,
    commands_sent: AtomicU64,
    connects: AtomicU64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkStatus {
    /// `connected`, `connecting` or `disabled`.
    pub state: &'static str,
    pub broker: String,
    pub mountpoint: String,
    pub last_error: Option<String>,
    /// The loaded station protocols and the topics each listens on.
    pub protocols: Vec<ProtocolRoute>,
    pub messages_received: u64,
    pub messages_applied: u64,
    /// Payloads a protocol plugin could not decode.
    pub malformed: u64,
    pub oversized: u64,
    /// On a topic no loaded protocol reads.
    pub unknown_topic: u64,
    pub unknown_station: u64,
    /// From a station registered with another protocol.
    pub wrong_protocol: u64,
    /// Protocol plugin calls that failed (trap, timeout, bad answer).
    pub plugin_failures: u64,
    pub commands_sent: u64,
    pub connects: u64,
}

/// What the link has seen of one station since the host started.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct StationTraffic {
    pub messages_applied: u64,
    /// Messages from this station that could not be decoded or applied.
    pub decode_failures: u64,
    pub last_decode_error: Option<String>,
    pub last_decode_error_at: Option<i64>,
    pub last_message_at: Option<i64>,
}

/// The outcome of an eject command, as the station reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum EjectOutcome {
    Ejected { power_bank: String },
    Failed { reason: String },
}

/// What the link reports after applying a station event, for other domains.
#[derive(Debug, Clone)]
pub struct AppliedEvent {
    pub station_sn: String,
    pub event: StationEvent,
}

/// An eject waiting for the station's answer. Protocols that echo the
/// request id are matched by it; the others by the bank or slot.
struct Waiter {
    request_id: String,
    device_id: String,
    slot: u16,
    power_bank: Option<String>,
    tx: oneshot::Sender<EjectOutcome>,
}

pub struct StationLink {
    config: LinkConfig,
    credentials: BrokerCredentials,
    plugins: PluginHost,
    db: Db,
    client: Mutex<Option<AsyncClient>>,
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
    counters: Counters,
    routes: Mutex<Arc<Vec<ProtocolRoute>>>,
    subscribed: Mutex<BTreeSet<String>>,
    subscription_lock: tokio::sync::Mutex<()>,
    /// Per registered station, by device id.
    traffic: Mutex<HashMap<String, StationTraffic>>,
    waiters: Mutex<Vec<Waiter>>,
    events: broadcast::Sender<AppliedEvent>,
}

struct Incoming {
    topic: String,
    payload: bytes::Bytes,
}

impl StationLink {
    pub fn new(config: LinkConfig, credentials: BrokerCredentials, plugins: PluginHost, db: Db) -> Self {
        Self {
            config,
            credentials,
            plugins,
            db,
            client: Mutex::new(None),
            connected: AtomicBool::new(false),
            last_error: Mutex::new(None),
            counters: Counters::default(),
            routes: Mutex::new(Arc::new(Vec::new())),
            subscribed: Mutex::new(BTreeSet::new()),
            subscription_lock: tokio::sync::Mutex::new(()),
            traffic: Mutex::new(HashMap::new()),
            waiters: Mutex::new(Vec::new()),
            events: broadcast::channel(1024).0,
        }
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
            mountpoint: self.config.mountpoint.clone(),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            protocols: self.routes().as_ref().clone(),
            messages_received: c.received.load(Ordering::Relaxed),
            messages_applied: c.applied.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            oversized: c.oversized.load(Ordering::Relaxed),
            unknown_topic: c.unknown_topic.load(Ordering::Relaxed),
            unknown_station: c.unknown_station.load(Ordering::Relaxed),
            wrong_protocol: c.wrong_protocol.load(Ordering::Relaxed),
            plugin_failures: c.plugin_failures.load(Ordering::Relaxed),
            commands_sent: c.commands_sent.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
        }
    }

    /// What the link has seen of the station with this device id.
    pub fn traffic(&self, device_id: &str) -> StationTraffic {
        self.traffic.lock().unwrap_or_else(|p| p.into_inner()).get(device_id).cloned().unwrap_or_default()
    }

    fn record_traffic(&self, device_id: &str, update: impl FnOnce(&mut StationTraffic)) {
        let mut traffic = self.traffic.lock().unwrap_or_else(|p| p.into_inner());
        update(traffic.entry(device_id.to_string()).or_default());
    }

    /// Counts a message that could not be decoded against its station, when
    /// the device id names a registered one (a random topic must not grow
    /// the table).
    async fn record_decode_failure(&self, device_id: Option<String>, protocol: &str, reason: String) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        let station = match device_id.clone() {
            Some(id) => self.db.read(move |c| apply::station_by_device(c, &id)).await.ok().flatten(),
            None => None,
        };
        tracing::warn!(
            protocol,
            device = device_id.as_deref().unwrap_or("?"),
            station = station.as_ref().map(|s| s.serial.as_str()).unwrap_or("?"),
            reason = %reason,
            "undecodable station message ignored"
        );
        if let Some(station) = station {
            let now = now_ts();
            self.record_traffic(&station.device_id, |t| {
                t.decode_failures += 1;
                t.last_decode_error = Some(reason.chars().take(300).collect());
                t.last_decode_error_at = Some(now);
                t.last_message_at = Some(now);
            });
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
        let serial = sn.to_string();
        let (station, power_bank) = self
            .db
            .read(move |c| {
                let Some(station) = apply::station_by_serial(c, &serial)? else { return Ok(None) };
                let bank = apply::bank_in_slot(c, station.id, slot)?;
                Ok(Some((station, bank)))
            })
            .await?
            .ok_or_else(|| ApiError::not_found("station"))?;
        let command = StationCommand::Eject(EjectCommand {
            request_id: request_id.to_string(),
            slot,
            power_bank: power_bank.clone(),
            issued_at_unix_ms: chrono::Utc::now().timestamp_millis(),
            ttl_secs: self.config.eject_ttl_secs,
        });
        let (tx, rx) = oneshot::channel();
        self.waiters_lock().push(Waiter {
            request_id: request_id.to_string(),
            device_id: station.device_id.clone(),
            slot,
            power_bank,
            tx,
        });
        if let Err(e) = self.send(&station, command).await {
            self.waiters_lock().retain(|w| w.request_id != request_id);
            return Err(e);
        }
        let outcome = tokio::time::timeout(timeout, rx).await.ok().and_then(Result::ok);
        self.waiters_lock().retain(|w| w.request_id != request_id);
        Ok(outcome)
    }

    /// Asks a station for a full status report.
    pub async fn query_status(&self, sn: &str) -> Result<(), ApiError> {
        let serial = sn.to_string();
        let station = self
            .db
            .read(move |c| apply::station_by_serial(c, &serial))
            .await?
            .ok_or_else(|| ApiError::not_found("station"))?;
        self.send(&station, StationCommand::QueryStatus).await
    }

    fn waiters_lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Encodes `command` with the station's protocol plugin and publishes
    /// the messages it produced.
    async fn send(&self, station: &StationRef, command: StationCommand) -> Result<(), ApiError> {
        let client = self.client.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let client = client.ok_or_else(|| ApiError::unavailable("station link is not running"))?;
        if !self.is_connected() {
            return Err(ApiError::unavailable("station link is not connected to the broker"));
        }
        let messages =
            self.plugins.station_protocol(&station.protocol).encode(station.device_id.clone(), command).await?;
        for m in messages {
            let qos = match m.qos {
                Qos::AtMostOnce => QoS::AtMostOnce,
                Qos::AtLeastOnce => QoS::AtLeastOnce,
                Qos::ExactlyOnce => QoS::ExactlyOnce,
            };
            client
                .publish(format!("{}{}", self.config.mountpoint, m.topic), qos, m.retain, m.payload)
                .await
                .map_err(|e| ApiError::unavailable(format!("station link: {e}")))?;
            self.counters.commands_sent.fetch_add(1, Ordering::Relaxed);
        }
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

    /// Starts the broker (when embedded), the connection, the applier, the
    /// protocol routes (refreshed on every plugin reload) and the heartbeat
    /// sweep. Returns at once; the tasks run until shutdown.
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
        tokio::spawn(routes_task(link.clone(), shutdown.clone()));
        tokio::spawn(sweep_task(state.clone(), shutdown));
        Ok(())
    }
}

/// Keeps the routes and subscriptions in step with the loaded plugins.
async fn routes_task(link: Arc<StationLink>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut reloads = link.plugins.reloads();
    loop {
        link.refresh_routes().await;
        link.sync_subscriptions().await;
        tokio::select! {
            changed = reloads.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
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
                // A clean session starts with no subscriptions. Subscribe from
                // another task: this loop drains the request queue, so
                // awaiting a subscribe here could deadlock.
                link.subscribed.lock().unwrap_or_else(|p| p.into_inner()).clear();
                let link = link.clone();
                tokio::spawn(async move { link.sync_subscriptions().await });
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

/// Decodes one message with the protocol plugin whose filter matches its
/// topic, applies its events in one transaction, then answers waiting ejects.
async fn handle_message(state: &AppState, message: Incoming) {
    let link = state.station_link.clone();
    let Some(topic) = message.topic.strip_prefix(link.config.mountpoint.as_str()) else {
        link.counters.unknown_topic.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(topic = %message.topic, "message outside the mountpoint ignored");
        return;
    };
    if message.payload.len() > MAX_PAYLOAD_BYTES {
        link.counters.oversized.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(topic, bytes = message.payload.len(), "oversized station message ignored");
        return;
    }
    let mut decoded = None;
    for protocol in link.protocols_for(topic) {
        let plugin = state.plugins.station_protocol(&protocol);
        match plugin.decode(topic.to_string(), message.payload.to_vec()).await {
            Ok(Ok(msg)) => {
                decoded = Some((protocol, msg));
                break;
            }
            // Filters overlap: let the next protocol try.
            Ok(Err(DecodeError::UnknownTopic(_))) => continue,
            Ok(Err(DecodeError::Malformed(m))) => {
                link.record_decode_failure(m.device_id, &protocol, m.reason).await;
                return;
            }
            Err(e) => {
                // The plugin failed (trap, timeout, answer out of bounds): the
                // message is lost, the link goes on. Counted against nobody
                // in particular: the plugin could not say whose it was.
                link.counters.plugin_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(topic, protocol = %protocol, error = %e, "station protocol plugin failed");
                return;
            }
        }
    }
    let Some((protocol, msg)) = decoded else {
        link.counters.unknown_topic.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(topic, "message on a topic no station protocol reads ignored");
        return;
    };
    let now = now_ts();
    let device = msg.device_id.clone();
    let events = msg.events;
    let (p, d) = (protocol.clone(), device.clone());
    match state.db.write(move |tx| apply::message(tx, &d, &p, &events, now)).await {
        Ok(Applied::Done { station_sn, events, .. }) => {
            link.counters.applied.fetch_add(1, Ordering::Relaxed);
            link.record_traffic(&device, |t| {
                t.messages_applied += 1;
                t.last_message_at = Some(now);
            });
            for event in events {
                link.settle_waiter(&device, &event);
                let _ = link.events.send(AppliedEvent { station_sn: station_sn.clone(), event });
            }
        }
        Ok(Applied::UnknownStation) => {
            link.counters.unknown_station.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(device = %device, protocol = %protocol, "message from an unregistered station ignored");
        }
        Ok(Applied::WrongProtocol { station_sn, expected }) => {
            link.counters.wrong_protocol.fetch_add(1, Ordering::Relaxed);
            link.record_traffic(&device, |t| {
                t.decode_failures += 1;
                t.last_decode_error = Some(format!("message in protocol {protocol}, station speaks {expected}"));
                t.last_decode_error_at = Some(now);
            });
            tracing::warn!(station = %station_sn, protocol = %protocol, expected = %expected,
                "message in another protocol than the station's ignored");
        }
        Err(e) => tracing::error!(device = %device, error = %e, "applying station message failed"),
    }
}

impl StationLink {
    /// Hands an eject answer to the command waiting for it: by request id
    /// when the protocol echoes it, else by the station and its bank or slot.
    fn settle_waiter(&self, device_id: &str, event: &StationEvent) {
        let (request_id, slot, bank) = match event {
            StationEvent::Ejected(e) => (&e.request_id, Some(e.slot), &e.power_bank),
            StationEvent::EjectFailed(e) => (&e.request_id, e.slot, &e.power_bank),
            _ => return,
        };
        let mut waiters = self.waiters_lock();
        let found = match request_id {
            Some(id) => waiters.iter().position(|w| &w.request_id == id),
            None => waiters.iter().position(|w| {
                w.device_id == device_id
                    && match (bank, &w.power_bank, slot) {
                        (Some(bank), Some(expected), _) => bank == expected,
                        (_, _, Some(slot)) => slot == w.slot,
                        // Neither bank nor slot: only an unambiguous waiter.
                        _ => waiters.iter().filter(|o| o.device_id == device_id).count() == 1,
                    }
            }),
        };
        let Some(index) = found else { return };
        let waiter = waiters.swap_remove(index);
        let outcome = match event {
            StationEvent::Ejected(e) => match e.power_bank.clone().or(waiter.power_bank) {
                Some(power_bank) => EjectOutcome::Ejected { power_bank },
                None => EjectOutcome::Failed { reason: "the station ejected from a slot with no known bank".into() },
            },
            StationEvent::EjectFailed(e) => EjectOutcome::Failed { reason: e.reason.clone() },
            _ => return,
        };
        let _ = waiter.tx.send(outcome);
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
