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

mod applier;
pub mod apply;
pub mod broker;
pub mod broker_acl;
mod connection;
mod ejects;
mod heartbeats;
pub mod hooks;
pub mod protocol;
pub mod routes;
pub mod routing;
mod status;

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use powerbank_plugin_runtime::{
    PluginHost,
    types::{EjectCommand, Qos, StationCommand},
};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{mpsc, oneshot};

use self::{
    applier::applier_task,
    apply::StationRef,
    broker::BrokerCredentials,
    connection::connection_task,
    ejects::Waiter,
    heartbeats::sweep_task,
    hooks::LinkHooks,
    routing::{ProtocolRoute, routes_task},
    status::Counters,
};
pub use self::{
    ejects::EjectOutcome,
    status::{LinkStatus, StationTraffic},
};
use crate::{
    config::{LinkConfig, MqttMode},
    core::{
        ApiError, Db,
        metrics::{CommandLabels, Metrics},
    },
    state::AppState,
};

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
    /// What other domains do when banks leave and enter slots.
    hooks: LinkHooks,
    metrics: Arc<Metrics>,
}

struct Incoming {
    topic: String,
    payload: bytes::Bytes,
}

impl StationLink {
    pub fn new(
        config: LinkConfig,
        credentials: BrokerCredentials,
        plugins: PluginHost,
        db: Db,
        hooks: LinkHooks,
        metrics: Arc<Metrics>,
    ) -> Self {
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
            hooks,
            metrics,
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
        let sent_at = std::time::Instant::now();
        if let Err(e) = self.send(&station, command).await {
            self.waiters_lock().retain(|w| w.request_id != request_id);
            return Err(e);
        }
        let outcome = self.config.answer_timeouts.timeout(timeout, rx).await.and_then(Result::ok);
        self.waiters_lock().retain(|w| w.request_id != request_id);
        let answer = match &outcome {
            Some(EjectOutcome::Ejected { .. }) => "ejected",
            Some(EjectOutcome::Failed { .. }) => "failed",
            None => "no_answer",
        };
        self.metrics
            .station_command_round_trip
            .get_or_create(&CommandLabels { command: "eject".into(), outcome: answer.into() })
            .observe(sent_at.elapsed().as_secs_f64());
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
            self.metrics.mqtt_messages_sent.inc();
        }
        Ok(())
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
            let routes = link.clone();
            let acl = broker_acl::StationAcl::new(&link.config.mountpoint, Arc::new(move || routes.routes()));
            broker::start_embedded(*listen, link.credentials.clone(), acl)?;
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
