//! The embedded MQTT broker (rumqttd) for single-box sites, and the
//! per-station credentials every broker connection must present.
//!
//! A station's password is an HMAC of its serial number under a server
//! secret: the host can hand it to an installer (admin API) and check it at
//! connect time without storing a password per station.
//!
//! Clients never reach rumqttd directly: it listens on a private loopback
//! port behind the topic-authorising relay of `broker_acl`, which alone
//! knows the relay passwords rumqttd accepts from stations.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use sha2::Sha256;

use super::{broker_acl::StationAcl, protocol::valid_serial};

/// The username the host itself connects with.
pub const HOST_USERNAME: &str = "powerbank-host";

#[derive(Clone)]
pub struct BrokerCredentials {
    secret: Arc<[u8]>,
}

impl BrokerCredentials {
    pub fn new(secret: &[u8]) -> Self {
        Self { secret: secret.into() }
    }

    fn derive(&self, label: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(m) => m,
            // HMAC takes keys of any length; unreachable, but never panic here.
            Err(_) => return String::new(),
        };
        mac.update(label.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..18])
    }

    pub fn station_password(&self, sn: &str) -> String {
        self.derive(&format!("station:{sn}"))
    }

    pub fn host_password(&self) -> String {
        self.derive("host")
    }

    /// The password the relay presents to rumqttd for a station it checked;
    /// a station's own password does not open rumqttd.
    pub fn relay_password(&self, sn: &str) -> String {
        self.derive(&format!("relayed-station:{sn}"))
    }

    /// Whether a connection may log in: the host, or a station using its own
    /// device id (its serial unless set otherwise) as username and as client
    /// id (`station-{id}`, or the bare id as volinks firmware uses), so one
    /// station cannot pose as another.
    pub fn allows(&self, client_id: &str, username: &str, password: &str) -> bool {
        self.check(client_id, username, password, Self::station_password)
    }

    /// Whether rumqttd lets a connection in: the host, or a station the relay
    /// let through (with the relay password).
    fn allows_relayed(&self, client_id: &str, username: &str, password: &str) -> bool {
        self.check(client_id, username, password, Self::relay_password)
    }

    fn check(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        station_password: fn(&Self, &str) -> String,
    ) -> bool {
        let expected = if username == HOST_USERNAME {
            self.host_password()
        } else if valid_serial(username) && (client_id == format!("station-{username}") || client_id == username) {
            station_password(self, username)
        } else {
            return false;
        };
        // Both sides are derived strings of equal length when valid.
        !expected.is_empty()
            && expected.len() == password.len()
            && expected.bytes().zip(password.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Starts the broker for clients on `listen`: rumqttd in its own threads on a
/// private loopback port, behind the relay that authorises station topics.
/// Both run until the process exits.
pub fn start_embedded(listen: SocketAddr, credentials: BrokerCredentials, acl: StationAcl) -> anyhow::Result<()> {
    // Bind first so a taken port is a clear start-up error, not a log line
    // from a broker task.
    let public = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("embedded MQTT broker cannot listen on {listen}: {e}"))?;
    public.set_nonblocking(true)?;
    let public = tokio::net::TcpListener::from_std(public)?;
    // rumqttd binds by itself: give it a port the kernel just handed out.
    let private = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?.local_addr()?;
    start_rumqttd(private, credentials.clone())?;
    tokio::spawn(super::broker_acl::relay(public, private, credentials, acl));
    tracing::info!(%listen, "embedded MQTT broker started");
    Ok(())
}

fn start_rumqttd(listen: SocketAddr, credentials: BrokerCredentials) -> anyhow::Result<()> {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: 64 * 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |client_id: String, user: String, pass: String| {
        let ok = credentials.allows_relayed(&client_id, &user, &pass);
        if !ok {
            tracing::warn!(client_id, user, "MQTT login refused by the private broker");
        }
        async move { ok }
    });
    let server =
        ServerSettings { name: "powerbank-v4".into(), listen, tls: None, next_connection_delay_ms: 1, connections };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        if let Err(e) = broker.start() {
            tracing::error!(error = %e, "embedded MQTT broker stopped");
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stations_log_in_only_as_themselves() {
        let c = BrokerCredentials::new(b"secret");
        let pw = c.station_password("KTM-1");
        assert!(c.allows("station-KTM-1", "KTM-1", &pw));
        assert!(!c.allows("station-KTM-2", "KTM-1", &pw), "client id must match");
        assert!(!c.allows("station-KTM-2", "KTM-2", &pw), "password is per station");
        assert!(!c.allows("x", HOST_USERNAME, &pw));
        assert!(c.allows("anything", HOST_USERNAME, &c.host_password()));
        assert!(!c.allows("station-a+b", "a+b", &c.station_password("a+b")));
        let imei = "864601068412899";
        assert!(c.allows(imei, imei, &c.station_password(imei)), "volinks firmware logs in with its IMEI");
        // Behind the relay, only the relay password opens the broker.
        assert!(!c.allows_relayed("station-KTM-1", "KTM-1", &pw));
        assert!(c.allows_relayed("station-KTM-1", "KTM-1", &c.relay_password("KTM-1")));
        assert!(c.allows_relayed("anything", HOST_USERNAME, &c.host_password()));
    }
}
