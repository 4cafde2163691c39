//! The MQTT connection: broker options, and the task that owns the event
//! loop, reconnects with backoff, subscribes again on every ConnAck and
//! hands incoming publishes to the applier.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet};
use tokio::sync::mpsc;

use super::{Incoming, StationLink, broker::HOST_USERNAME};
use crate::config::MqttMode;

impl StationLink {
    pub(super) fn mqtt_options(&self) -> anyhow::Result<MqttOptions> {
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
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

pub(super) async fn connection_task(
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
                link.metrics.mqtt_messages_received.inc();
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
