//! Prometheus metrics: one registry per server, rendered at `GET /metrics`
//! (served by `ops::metrics`, which also keeps the business gauges current).
//!
//! The registry belongs to the state, not to the process: a test binary runs
//! many servers at once, and each must count only its own traffic. Counters
//! and histograms are bumped where things happen (an atomic add, no lock
//! held across await points); gauges that describe tables are refreshed by a
//! periodic task, so a scrape never scans a table.

use std::{
    fmt::Write as _,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route template (`/api/stations/{sn}`), never the raw path: one
    /// series per route, whatever the ids in the URLs.
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
    pub kind: String,
    /// The plugin's version and the first 12 hex digits of its sha256: a
    /// release is one build, even when a rebuild keeps the version.
    pub version: String,
    pub sha: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginFailureLabels {
    pub plugin: String,
    pub kind: String,
    pub version: String,
    pub sha: String,
    /// `timeout`, `trap`, `out_of_memory`, `malformed_result`, ...
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: String,
    /// `ejected`, `failed` or `no_answer`.
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: String,
    /// `retry` (it will run again) or `final` (it gave up).
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

/// Request latency buckets: 0.25 ms to ~4 s.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Station command round trips: 5 ms to ~40 s (an eject waits up to its timeout).
fn round_trip_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Every metric the host exports. Cheap to share: hold it in an `Arc`.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram>,
    pub plugin_calls: Family<PluginLabels, Counter>,
    pub plugin_failures: Family<PluginFailureLabels, Counter>,
    pub plugin_timeouts: Family<PluginLabels, Counter>,
    pub plugin_duration: Family<PluginLabels, Histogram>,
    pub mqtt_connected: Gauge,
    pub mqtt_messages_received: Counter,
    pub mqtt_messages_sent: Counter,
    pub mqtt_decode_failures: Family<ProtocolLabels, Counter>,
    pub station_command_round_trip: Family<CommandLabels, Histogram>,
    pub jobs_due: Gauge,
    pub jobs_lag_seconds: Gauge,
    pub job_failures: Family<JobLabels, Counter>,
    pub rentals_active: Gauge,
    pub rentals_overdue: Gauge,
    pub stations: Family<StatusLabels, Gauge>,
    pub power_banks: Family<StatusLabels, Gauge>,
    /// Unix time of the last refresh of the gauges above that come from tables.
    pub gauges_refreshed_at: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics {
            registry: Registry::with_prefix("powerbank"),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_buckets),
            plugin_calls: Family::default(),
            plugin_failures: Family::default(),
            plugin_timeouts: Family::default(),
            plugin_duration: Family::new_with_constructor(latency_buckets),
            mqtt_connected: Gauge::default(),
            mqtt_messages_received: Counter::default(),
            mqtt_messages_sent: Counter::default(),
            mqtt_decode_failures: Family::default(),
            station_command_round_trip: Family::new_with_constructor(round_trip_buckets),
            jobs_due: Gauge::default(),
            jobs_lag_seconds: Gauge::default(),
            job_failures: Family::default(),
            rentals_active: Gauge::default(),
            rentals_overdue: Gauge::default(),
            stations: Family::default(),
            power_banks: Family::default(),
            gauges_refreshed_at: Gauge::default(),
        };
        m.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register("http_requests", "HTTP requests by method, route template and status", self.http_requests.clone());
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template, from the first byte read to the response head",
            self.http_duration.clone(),
        );
        r.register("plugin_calls", "Plugin calls by plugin and release", self.plugin_calls.clone());
        r.register(
            "plugin_failures",
            "Failed plugin calls by plugin, release and reason",
            self.plugin_failures.clone(),
        );
        r.register(
            "plugin_timeouts",
            "Plugin calls interrupted at their timeout_ms (also counted in plugin_failures)",
            self.plugin_timeouts.clone(),
        );
        r.register("plugin_call_duration_seconds", "Plugin call latency", self.plugin_duration.clone());
        r.register(
            "mqtt_connected",
            "1 while the station link is connected to its broker",
            self.mqtt_connected.clone(),
        );
        r.register("mqtt_messages_received", "Station messages received", self.mqtt_messages_received.clone());
        r.register("mqtt_messages_sent", "Station commands published", self.mqtt_messages_sent.clone());
        r.register(
            "mqtt_decode_failures",
            "Station messages a protocol plugin could not decode, by protocol",
            self.mqtt_decode_failures.clone(),
        );
        r.register(
            "station_command_round_trip_seconds",
            "From publishing a station command to the station's answer (or giving up), by command and outcome",
            self.station_command_round_trip.clone(),
        );
        r.register("jobs_due", "Background jobs due now and not yet started", self.jobs_due.clone());
        r.register("jobs_lag_seconds", "How long the oldest due job has waited", self.jobs_lag_seconds.clone());
        r.register("job_failures", "Failed background job runs by kind and outcome", self.job_failures.clone());
        r.register("rentals_active", "Rentals in progress (pending eject or active)", self.rentals_active.clone());
        r.register("rentals_overdue", "Active rentals past their due time", self.rentals_overdue.clone());
        r.register("stations", "Stations by status", self.stations.clone());
        r.register("power_banks", "Power banks by status", self.power_banks.clone());
        r.register(
            "gauges_refreshed_at",
            "Unix time the table-derived gauges (rentals, stations, banks, jobs) were last refreshed",
            self.gauges_refreshed_at.clone(),
        );
        self
    }

    /// The registry in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            // Writing to a String cannot fail; say so if it ever does.
            let _ = writeln!(out, "# encoding failed: {e}");
        }
        out
    }

    /// Counts one answered request and its latency.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let (method, route) = (method.to_owned(), route.to_owned());
        self.http_duration
            .get_or_create(&RouteLabels { method: method.clone(), route: route.clone() })
            .observe(elapsed.as_secs_f64());
        self.http_requests.get_or_create(&HttpLabels { method, route, status }).inc();
    }
}

/// Where the inner route layer leaves the matched route template for the
/// outer metrics layer (routing happens between the two).
#[derive(Clone, Default)]
struct RouteSlot(Arc<OnceLock<String>>);

/// Outer layer: times every request and counts it by route template and
/// status. Requests no route matched count as `unmatched`, so probing random
/// URLs cannot create series.
pub async fn track_requests(State(metrics): State<Arc<Metrics>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let slot = RouteSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = slot.0.get().map(String::as_str).unwrap_or("unmatched");
    metrics.observe_request(method.as_str(), route, response.status().as_u16(), started.elapsed());
    response
}

/// Route layer: records the template of the route that matched.
pub async fn tag_route(request: Request, next: Next) -> Response {
    if let (Some(slot), Some(path)) =
        (request.extensions().get::<RouteSlot>(), request.extensions().get::<MatchedPath>())
    {
        let _ = slot.0.set(path.as_str().to_owned());
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::new();
        m.observe_request("GET", "/api/stations", 200, Duration::from_millis(2));
        m.rentals_active.set(3);
        m.stations.get_or_create(&StatusLabels { status: "online".into() }).set(2);
        let text = m.render();
        assert!(
            text.contains(r#"powerbank_http_requests_total{method="GET",route="/api/stations",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains("powerbank_http_request_duration_seconds_bucket"), "{text}");
        assert!(text.contains("powerbank_rentals_active 3"), "{text}");
        assert!(text.contains(r#"powerbank_stations{status="online"} 2"#), "{text}");
    }
}
