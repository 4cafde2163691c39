//! Topic authorisation for the embedded broker.
//!
//! rumqttd 0.20 authenticates a login but cannot authorise topics, so a
//! station's credentials would let it publish as any station and subscribe to
//! `#`. Stations therefore reach rumqttd through this relay (see
//! `docs/decisions/0001-mqtt-topic-acl-relay.md`): it reads every packet a
//! client sends, checks CONNECT (login, last will), PUBLISH and SUBSCRIBE
//! against the station's own topics, and forwards the bytes unchanged. A
//! refused packet closes the connection, as MQTT 3.1.1 allows for an
//! unauthorised PUBLISH (MQTT-3.3.5-2); a station that follows the contract
//! never sends one.
//!
//! A station's own topics come from the loaded station-protocol plugins:
//! every topic filter names the station with its first `+` level, so the
//! station `KTM-1` may publish on each filter with that level set to `KTM-1`
//! (and nothing else), and subscribe only below the filters' prefix up to and
//! including that level (`powerbank/stations/KTM-1/...`, where its commands
//! arrive). All of it lies under the link's mountpoint. The host's own login
//! is the only one with wider rights.
//!
//! rumqttd itself listens on a private loopback port and accepts stations
//! only with a relay password the host derives, so a station's own password
//! is useless there: the relay cannot be bypassed.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::{Buf, BytesMut};
use rumqttd::protocol::{Packet, Protocol, v4::V4};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};

use super::{
    broker::{BrokerCredentials, HOST_USERNAME},
    routing::{ProtocolRoute, topic_matches},
};

/// Largest MQTT packet a client may send (the broker's payload limit plus
/// room for the topic and headers).
const MAX_PACKET_BYTES: usize = 64 * 1024 + 1024;
/// How long a new connection has to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Open station connections at most; further ones wait to be accepted.
const MAX_CONNECTIONS: usize = 10_000;

/// The current protocol routes (they change when plugins reload).
pub type RoutesSource = Arc<dyn Fn() -> Arc<Vec<ProtocolRoute>> + Send + Sync>;

/// What a station may do on the broker: its own topics, under the mountpoint.
#[derive(Clone)]
pub struct StationAcl {
    mountpoint: String,
    routes: RoutesSource,
}

impl StationAcl {
    pub fn new(mountpoint: &str, routes: RoutesSource) -> Self {
        Self { mountpoint: mountpoint.to_string(), routes }
    }

    fn current_routes(&self) -> Arc<Vec<ProtocolRoute>> {
        (self.routes)()
    }

    /// Whether station `device_id` may publish on `topic` (also its last will).
    pub fn may_publish(&self, device_id: &str, topic: &str) -> bool {
        let Some(topic) = topic.strip_prefix(&self.mountpoint) else { return false };
        self.current_routes().iter().flat_map(|r| &r.topic_filters).any(|f| is_own_topic(f, device_id, topic))
    }

    /// Whether station `device_id` may subscribe to `filter`: only below one
    /// of its own prefixes, so every topic the filter matches is its own.
    pub fn may_subscribe(&self, device_id: &str, filter: &str) -> bool {
        let Some(filter) = filter.strip_prefix(&self.mountpoint) else { return false };
        self.current_routes()
            .iter()
            .flat_map(|r| &r.topic_filters)
            .filter_map(|f| own_prefix(f, device_id))
            .any(|prefix| filter.starts_with(&prefix))
    }

    /// Waits (up to `timeout`) until the link knows its protocols: until then
    /// no station has any topic.
    async fn wait_for_routes(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.current_routes().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `topic` matches the protocol filter `filter` with its first `+` level
/// being `device_id`. A filter without `+` names no station: no station
/// publishes on it.
fn is_own_topic(filter: &str, device_id: &str, topic: &str) -> bool {
    let Some(station_level) = filter.split('/').position(|level| level == "+") else { return false };
    topic_matches(filter, topic) && topic.split('/').nth(station_level) == Some(device_id)
}

/// The levels of `filter` up to its first `+`, with the station's id there:
/// `powerbank/stations/+/status` → `powerbank/stations/{id}/`.
fn own_prefix(filter: &str, device_id: &str) -> Option<String> {
    let mut prefix = String::new();
    for level in filter.split('/') {
        match level {
            "+" => return Some(format!("{prefix}{device_id}/")),
            "#" => return None,
            _ => {
                prefix.push_str(level);
                prefix.push('/');
            }
        }
    }
    None
}

/// Who a connection signed in as.
enum Identity {
    Host,
    Station(String),
}

/// CONNACK refusal codes of MQTT 3.1.1.
const BAD_USERNAME_OR_PASSWORD: u8 = 4;
const NOT_AUTHORIZED: u8 = 5;

/// Accepts MQTT connections on `listener` and relays each to the broker at
/// `broker`, checking what stations send. Runs until the process exits.
pub async fn relay(listener: TcpListener, broker: SocketAddr, credentials: BrokerCredentials, acl: StationAcl) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let shared = Arc::new((credentials, acl));
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                tracing::warn!(limit = MAX_CONNECTIONS, "MQTT connection limit reached; new connections wait");
                match permits.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                }
            }
        };
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::error!(error = %e, "MQTT accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(reason) = relay_connection(client, broker, &shared.0, &shared.1).await {
                tracing::debug!(%peer, %reason, "MQTT connection closed");
            }
        });
    }
}

/// Reads one whole MQTT packet into `buffer`'s front; `None` at end of stream.
async fn read_packet(stream: &mut (impl AsyncReadExt + Unpin), buffer: &mut BytesMut) -> Result<Option<usize>, String> {
    loop {
        match rumqttd::protocol::v4::check(buffer.iter(), MAX_PACKET_BYTES) {
            Ok(header) => return Ok(Some(header.frame_length())),
            Err(rumqttd::protocol::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(format!("bad packet: {e}")),
        }
        if stream.read_buf(buffer).await.map_err(|e| e.to_string())? == 0 {
            return Ok(None);
        }
    }
}

async fn refuse_connect(client: &mut TcpStream, code: u8) {
    let _ = client.write_all(&[0x20, 0x02, 0x00, code]).await;
    let _ = client.shutdown().await;
}

async fn relay_connection(
    mut client: TcpStream,
    broker: SocketAddr,
    credentials: &BrokerCredentials,
    acl: &StationAcl,
) -> Result<(), String> {
    let mut buffer = BytesMut::with_capacity(4096);
    let length = tokio::time::timeout(CONNECT_TIMEOUT, read_packet(&mut client, &mut buffer))
        .await
        .map_err(|_| "no CONNECT in time".to_string())??
        .ok_or("closed before CONNECT")?;
    let mut frame = buffer.split_to(length);
    let Ok(Packet::Connect(connect, _, will, _, login)) = V4.read_mut(&mut frame, MAX_PACKET_BYTES) else {
        return Err("first packet is not a valid MQTT 3.1.1 CONNECT".into());
    };
    let Some(mut login) = login.filter(|l| credentials.allows(&connect.client_id, &l.username, &l.password)) else {
        tracing::warn!(client_id = %connect.client_id, "MQTT login refused");
        refuse_connect(&mut client, BAD_USERNAME_OR_PASSWORD).await;
        return Err("bad login".into());
    };
    let identity =
        if login.username == HOST_USERNAME { Identity::Host } else { Identity::Station(login.username.clone()) };
    let mut connect_bytes = BytesMut::new();
    match &identity {
        Identity::Host => {
            V4.write(Packet::Connect(connect, None, will, None, Some(login)), &mut connect_bytes)
                .map_err(|e| e.to_string())?;
        }
        Identity::Station(device_id) => {
            acl.wait_for_routes(CONNECT_TIMEOUT).await;
            if let Some(w) = &will {
                let topic = String::from_utf8_lossy(&w.topic);
                if !acl.may_publish(device_id, &topic) {
                    tracing::warn!(station = %device_id, topic = %clip(&topic), "MQTT last will on a topic not its own refused");
                    refuse_connect(&mut client, NOT_AUTHORIZED).await;
                    return Err("last will refused".into());
                }
            }
            // rumqttd accepts a station only with the relay password.
            login.password = credentials.relay_password(device_id);
            V4.write(Packet::Connect(connect, None, will, None, Some(login)), &mut connect_bytes)
                .map_err(|e| e.to_string())?;
        }
    }
    let mut upstream = connect_broker(broker).await?;
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    upstream.write_all(&connect_bytes).await.map_err(|e| e.to_string())?;
    let device_id = match identity {
        Identity::Host => {
            // The host's own link: full rights, bytes pass both ways as they are.
            upstream.write_all(&buffer).await.map_err(|e| e.to_string())?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await.map_err(|e| e.to_string())?;
            return Ok(());
        }
        Identity::Station(id) => id,
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let downstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    let outcome = async {
        while let Some(length) = read_packet(&mut client_read, &mut buffer).await? {
            let frame = buffer.split_to(length);
            check_station_packet(acl, &device_id, &frame)?;
            upstream_write.write_all(&frame).await.map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    }
    .await;
    // Dropping the broker side ends the downstream copy and closes the client.
    drop(upstream_write);
    downstream.abort();
    outcome
}

/// Connects to rumqttd, giving it a moment right after start-up, when it may
/// not listen yet.
async fn connect_broker(broker: SocketAddr) -> Result<TcpStream, String> {
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        match TcpStream::connect(broker).await {
            Ok(s) => return Ok(s),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(format!("broker: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Refuses a PUBLISH or SUBSCRIBE outside the station's own topics.
fn check_station_packet(acl: &StationAcl, device_id: &str, frame: &BytesMut) -> Result<(), String> {
    let packet_type = frame.first().map_or(0, |b| b >> 4);
    // Only PUBLISH (3) and SUBSCRIBE (8) name topics; the rest pass unread.
    if packet_type != 3 && packet_type != 8 {
        return Ok(());
    }
    let mut copy = frame.clone();
    match V4.read_mut(&mut copy, MAX_PACKET_BYTES) {
        Ok(Packet::Publish(publish, _)) => {
            let topic = String::from_utf8_lossy(&publish.topic);
            if !acl.may_publish(device_id, &topic) {
                tracing::warn!(station = %device_id, topic = %clip(&topic), "MQTT publish on a topic not its own refused; connection closed");
                return Err("publish refused".into());
            }
        }
        Ok(Packet::Subscribe(subscribe, _)) => {
            if let Some(f) = subscribe.filters.iter().find(|f| !acl.may_subscribe(device_id, &f.path)) {
                tracing::warn!(station = %device_id, filter = %clip(&f.path), "MQTT subscription outside its own topics refused; connection closed");
                return Err("subscribe refused".into());
            }
        }
        Ok(_) => {}
        Err(e) => return Err(format!("bad packet: {e}")),
    }
    debug_assert!(copy.remaining() == 0);
    Ok(())
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(mountpoint: &str) -> StationAcl {
        let routes = Arc::new(vec![
            ProtocolRoute {
                protocol: "native".into(),
                topic_filters: vec![
                    "powerbank/stations/+/status".into(),
                    "powerbank/stations/+/events".into(),
                    "powerbank/stations/+/heartbeat".into(),
                ],
            },
            ProtocolRoute {
                protocol: "volinks-v1".into(),
                topic_filters: vec!["/powerbank/+/user/update".into(), "/powerbank/+/user/heart".into()],
            },
        ]);
        StationAcl::new(mountpoint, Arc::new(move || routes.clone()))
    }

    #[test]
    fn a_station_publishes_only_on_its_own_topics() {
        let acl = acl("m/");
        assert!(acl.may_publish("KTM-1", "m/powerbank/stations/KTM-1/status"));
        assert!(acl.may_publish("KTM-1", "m/powerbank/stations/KTM-1/events"));
        assert!(!acl.may_publish("KTM-1", "m/powerbank/stations/KTM-2/status"));
        assert!(!acl.may_publish("KTM-1", "powerbank/stations/KTM-1/status"), "outside the mountpoint");
        assert!(!acl.may_publish("KTM-1", "m/powerbank/stations/KTM-1/commands"), "the host's topic");
        assert!(!acl.may_publish("KTM-1", "m/powerbank/stations/KTM-1/status/x"));
        assert!(acl.may_publish("864601068412899", "m//powerbank/864601068412899/user/update"));
        assert!(!acl.may_publish("864601068412899", "m//powerbank/864601068419002/user/update"));
    }

    #[test]
    fn a_station_subscribes_only_below_its_own_prefix() {
        let acl = acl("m/");
        assert!(acl.may_subscribe("KTM-1", "m/powerbank/stations/KTM-1/commands"));
        assert!(acl.may_subscribe("KTM-1", "m/powerbank/stations/KTM-1/#"));
        assert!(acl.may_subscribe("864601068412899", "m//powerbank/864601068412899/user/get"));
        for refused in [
            "#",
            "m/#",
            "m/powerbank/stations/+/commands",
            "m/powerbank/stations/KTM-2/commands",
            "m/powerbank/stations/KTM-10/commands",
            "m//powerbank/+/user/get",
            "$share/g/m/powerbank/stations/KTM-1/commands",
            "powerbank/stations/KTM-1/commands",
        ] {
            assert!(!acl.may_subscribe("KTM-1", refused), "{refused}");
        }
    }

    #[test]
    fn no_routes_no_rights() {
        let acl = StationAcl::new("", Arc::new(|| Arc::new(Vec::new())));
        assert!(!acl.may_publish("KTM-1", "powerbank/stations/KTM-1/status"));
        assert!(!acl.may_subscribe("KTM-1", "powerbank/stations/KTM-1/commands"));
    }
}
