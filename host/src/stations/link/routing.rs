//! Which station-protocol plugin reads which topics, and keeping the broker
//! subscriptions in step with the loaded plugins.
//!
//! Every loaded station-protocol plugin names its topic filters. The link
//! subscribes to all of them (under the mountpoint) and hands each incoming
//! message to the plugin whose filter matches. A reload that adds, removes or
//! changes a protocol plugin changes the subscriptions without a reconnect.

use std::collections::BTreeSet;

use powerbank_plugin_runtime::PluginKind;
use rumqttc::{QoS, SubscribeFilter};
use serde::Serialize;
use utoipa::ToSchema;

use std::sync::Arc;

use super::StationLink;

/// One loaded protocol and the filters it listens on (without the mountpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProtocolRoute {
    pub protocol: String,
    pub topic_filters: Vec<String>,
}

/// Whether `topic` matches the MQTT filter `filter` (`+` one level, `#` the rest).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        match (f, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(level)) if f == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

impl StationLink {
    /// The protocols messages are routed to right now.
    pub fn routes(&self) -> std::sync::Arc<Vec<ProtocolRoute>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The protocols whose filters match `topic` (mountpoint already removed).
    pub(super) fn protocols_for(&self, topic: &str) -> Vec<String> {
        self.routes()
            .iter()
            .filter(|r| r.topic_filters.iter().any(|f| topic_matches(f, topic)))
            .map(|r| r.protocol.clone())
            .collect()
    }

    /// Asks every loaded station-protocol plugin for its filters. A plugin
    /// that fails to answer keeps the filters it had, so a bad reload does not
    /// cut its stations off.
    pub(super) async fn refresh_routes(&self) {
        let previous = self.routes();
        let mut next = Vec::new();
        for protocol in self.plugins.names_of(PluginKind::StationProtocol) {
            match self.plugins.station_protocol(&protocol).topic_filters().await {
                Ok(topic_filters) => next.push(ProtocolRoute { protocol, topic_filters }),
                Err(e) => {
                    tracing::error!(protocol = %protocol, error = %e, "station protocol has no topic filters");
                    if let Some(old) = previous.iter().find(|r| r.protocol == protocol) {
                        next.push(old.clone());
                    }
                }
            }
        }
        if *previous != next {
            tracing::info!(routes = ?next, "station protocol routes");
        }
        *self.routes.lock().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(next);
    }

    /// Subscribes to filters the routes need and drops the others. After a
    /// reconnect `subscribed` is empty (clean session), so everything is
    /// subscribed again.
    pub(super) async fn sync_subscriptions(&self) {
        let _one_at_a_time = self.subscription_lock.lock().await;
        let Some(client) = self.client.lock().unwrap_or_else(|p| p.into_inner()).clone() else { return };
        if !self.is_connected() {
            return;
        }
        let wanted: BTreeSet<String> = self
            .routes()
            .iter()
            .flat_map(|r| r.topic_filters.iter().map(|f| format!("{}{f}", self.config.mountpoint)))
            .collect();
        let current = self.subscribed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let add: Vec<SubscribeFilter> =
            wanted.difference(&current).map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce)).collect();
        let remove: Vec<String> = current.difference(&wanted).cloned().collect();
        if !add.is_empty()
            && let Err(e) = client.subscribe_many(add).await
        {
            tracing::error!(error = %e, "station link cannot subscribe");
            return;
        }
        for filter in remove {
            if let Err(e) = client.unsubscribe(filter.clone()).await {
                tracing::warn!(filter = %filter, error = %e, "station link cannot unsubscribe");
            }
        }
        *self.subscribed.lock().unwrap_or_else(|p| p.into_inner()) = wanted;
    }
}

/// Keeps the routes and subscriptions in step with the loaded plugins.
pub(super) async fn routes_task(link: Arc<StationLink>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
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

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn filters_match_like_a_broker() {
        assert!(topic_matches("powerbank/stations/+/status", "powerbank/stations/KTM-1/status"));
        assert!(!topic_matches("powerbank/stations/+/status", "powerbank/stations/KTM-1/events"));
        assert!(!topic_matches("powerbank/stations/+/status", "powerbank/stations/KTM-1/status/x"));
        assert!(topic_matches("/powerbank/+/user/update", "/powerbank/864601068412899/user/update"));
        assert!(!topic_matches("/powerbank/+/user/update", "powerbank/864601068412899/user/update"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("#", "anything/at/all"));
        assert!(!topic_matches("a/+", "a"));
    }
}
