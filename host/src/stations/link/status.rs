//! What the link reports about itself and each station: counters, the
//! connection state, and per-station traffic.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use utoipa::ToSchema;

use super::{StationLink, apply, connection::redact, routing::ProtocolRoute};
use crate::{
    config::MqttMode,
    core::{metrics::ProtocolLabels, now_ts},
};

/// Counters shown by the health check and the admin API.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) received: AtomicU64,
    pub(super) applied: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) oversized: AtomicU64,
    pub(super) unknown_topic: AtomicU64,
    pub(super) unknown_station: AtomicU64,
    pub(super) wrong_protocol: AtomicU64,
    pub(super) plugin_failures: AtomicU64,
    pub(super) commands_sent: AtomicU64,
    pub(super) connects: AtomicU64,
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

impl StationLink {
    pub(super) fn broker_description(&self) -> String {
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

    pub(super) fn record_traffic(&self, device_id: &str, update: impl FnOnce(&mut StationTraffic)) {
        let mut traffic = self.traffic.lock().unwrap_or_else(|p| p.into_inner());
        update(traffic.entry(device_id.to_string()).or_default());
    }

    /// Counts a message that could not be decoded against its station, when
    /// the device id names a registered one (a random topic must not grow
    /// the table).
    pub(super) async fn record_decode_failure(&self, device_id: Option<String>, protocol: &str, reason: String) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        self.metrics.mqtt_decode_failures.get_or_create(&ProtocolLabels { protocol: protocol.to_owned() }).inc();
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

    pub(super) fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }
}
