//! The applier: decodes each incoming message with the protocol plugin
//! whose filter matches its topic, applies its events in one transaction,
//! then answers waiting ejects. One task, so a station's messages apply in
//! the order they arrived.

use std::sync::atomic::Ordering;

use powerbank_plugin_runtime::types::DecodeError;
use tokio::sync::mpsc;

use super::{Incoming, apply, apply::Applied, protocol::MAX_PAYLOAD_BYTES};
use crate::{core::now_ts, state::AppState};

pub(super) async fn applier_task(state: AppState, mut incoming: mpsc::Receiver<Incoming>) {
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
    let hooks = link.hooks.clone();
    match state.db.write(move |tx| apply::message(tx, &d, &p, &events, now, &hooks)).await {
        Ok(Applied::Done { events, .. }) => {
            link.counters.applied.fetch_add(1, Ordering::Relaxed);
            link.record_traffic(&device, |t| {
                t.messages_applied += 1;
                t.last_message_at = Some(now);
            });
            for event in events {
                link.settle_waiter(&device, &event);
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
