//! `GET /api/admin/events`: what the console shows live (stations going
//! online or offline, slots filling and emptying, plugins loaded, replaced or
//! failing, the MQTT link's state) as Server-Sent Events.
//!
//! Each stream looks at the current state once a second and sends what
//! changed since its previous look; its first event is the whole state. Why
//! looking rather than hooks into the writers: the database and the plugin
//! host are the truth, so every path that changes a station (MQTT messages,
//! the offline sweep, rentals, admin edits, a restart) is seen without any of
//! them knowing about the console, and the station link (being restructured)
//! needs no change feed. The cost is one read of the station summaries per
//! second per open console, which is small next to what an operator's page
//! loads (docs/console.md has the figures); a missed change is impossible,
//! since a diff against the last look catches everything that differs.
//!
//! A stream also ends when the process is asked to stop (SIGINT, SIGTERM):
//! graceful shutdown waits for every open response, and a stream never ends
//! on its own, so an open console would otherwise hold up every restart.
//!
//! Before each look a stream re-checks its caller's token and session with
//! the same extractor as every admin route (a signature check and one indexed
//! read), and ends as soon as they no longer pass (sign-out, expiry, lost
//! role); the console then refreshes its token and reconnects.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    convert::Infallible,
    time::Duration,
};

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, Request, header::AUTHORIZATION},
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::{Stream, StreamExt, stream};
use powerbank_plugin_runtime::PluginStatus;
use serde::Serialize;
use tokio::time::{Interval, MissedTickBehavior};
use utoipa::ToSchema;

use crate::{
    core::{ApiError, Operator, error::ErrorBody},
    plugins::PluginOut,
    state::AppState,
    stations::{
        listing::{RENTABLE_BATTERY, SLOT_JOINS, StationSummary, summary_columns, summary_from_row},
        status::StationStatus,
    },
};

/// How often a stream looks for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A station as the console's tables and map show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StationState {
    pub serial_number: String,
    pub name: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    pub status: StationStatus,
    pub total_slots: i64,
    /// Slots holding a power bank charged enough to rent.
    pub available_power_banks: i64,
    /// Slots a power bank can be returned into.
    pub empty_slots: i64,
    pub last_heartbeat_at: Option<String>,
}

/// The MQTT station link as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LinkState {
    /// `connected`, `connecting` or `disabled`.
    pub state: String,
    pub broker: String,
    pub last_error: Option<String>,
}

/// One message of the stream. The SSE `event:` field is `type`; `data:` is
/// this object as JSON.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsoleEvent {
    /// First message of every stream: the state later messages change.
    Snapshot { stations: Vec<StationState>, plugins: Vec<PluginOut>, link: LinkState },
    /// A station appeared, or its status, availability or slots changed.
    /// Heartbeats alone do not count as a change.
    Station { station: StationState },
    /// A station is gone from the network (retired or deleted).
    StationRemoved { serial_number: String },
    /// A plugin was loaded, replaced or disabled, or failed to load. Call
    /// counts alone do not count as a change.
    Plugin { plugin: Box<PluginOut> },
    /// A plugin is no longer configured.
    PluginRemoved { name: String },
    /// The station link connected, lost its broker or reported an error.
    Link { link: LinkState },
}

impl ConsoleEvent {
    fn name(&self) -> &'static str {
        match self {
            ConsoleEvent::Snapshot { .. } => "snapshot",
            ConsoleEvent::Station { .. } => "station",
            ConsoleEvent::StationRemoved { .. } => "station_removed",
            ConsoleEvent::Plugin { .. } => "plugin",
            ConsoleEvent::PluginRemoved { .. } => "plugin_removed",
            ConsoleEvent::Link { .. } => "link",
        }
    }
}

/// Live station, plugin and link state for the operator console (Server-Sent Events).
///
/// The first event (`snapshot`) is the whole state; each later one (`station`, `station_removed`,
/// `plugin`, `plugin_removed`, `link`) is one change, within about a second
/// of it. Every `data:` is a `ConsoleEvent` as JSON. Comment lines keep the
/// connection alive. The stream ends when the caller's token expires or the
/// session is revoked: refresh and reconnect.
#[utoipa::path(
    get, path = "/api/admin/events", tag = "admin", operation_id = "admin_events",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance", "field_tech"]))),
    responses(
        (status = 200, description = "An endless stream of events", content_type = "text/event-stream", body = ConsoleEvent),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    _operator: Operator,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let authorization = headers.get(AUTHORIZATION).cloned();
    let watcher = Watcher::new(state, authorization);
    let events = stream::unfold(watcher, Watcher::next).take_until(stop_requested());
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// What identifies a change of a station: everything but its heartbeat time.
#[derive(PartialEq)]
struct StationKey {
    name: String,
    status: StationStatus,
    place: (u64, u64),
    counts: (i64, i64, i64),
    slots: String,
}

/// What identifies a change of a plugin: its state, not its call counts.
/// Load times in milliseconds, so two reloads within a second both count.
fn plugin_key(status: &PluginStatus) -> PluginStatus {
    PluginStatus { calls: 0, failures: 0, p50_us: None, p99_us: None, ..status.clone() }
}

/// One open stream: what it last sent, and the events not yet sent.
struct Watcher {
    state: AppState,
    authorization: Option<HeaderValue>,
    ticker: Interval,
    stations: Option<HashMap<String, StationKey>>,
    plugins: HashMap<String, PluginStatus>,
    link: Option<LinkState>,
    pending: VecDeque<ConsoleEvent>,
}

impl Watcher {
    fn new(state: AppState, authorization: Option<HeaderValue>) -> Self {
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        // A slow read must not be followed by a burst of catch-up looks.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Watcher {
            state,
            authorization,
            ticker,
            stations: None,
            plugins: HashMap::new(),
            link: None,
            pending: VecDeque::new(),
        }
    }

    /// The next SSE message; `None` ends the stream.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                match Event::default().event(event.name()).json_data(&event) {
                    Ok(message) => return Some((Ok(message), self)),
                    Err(e) => {
                        tracing::error!(error = %e, "console event not serialisable");
                        continue;
                    }
                }
            }
            self.ticker.tick().await;
            if !self.still_authorised().await {
                return None;
            }
            if let Err(e) = self.look().await {
                // A busy database delays this look; the next one catches up.
                tracing::warn!(error = %e, "console events: reading state failed");
            }
        }
    }

    async fn still_authorised(&self) -> bool {
        let Some(authorization) = self.authorization.clone() else { return false };
        let Ok(request) = Request::builder().header(AUTHORIZATION, authorization).body(()) else { return false };
        let (parts, ()) = request.into_parts();
        // Any live operator session keeps the stream (every role may open it).
        Operator::authenticate(&parts, &self.state).await.is_ok()
    }

    /// Reads the current state and queues what differs from the last look.
    async fn look(&mut self) -> Result<(), ApiError> {
        let stations = self.state.db.read(read_stations).await?;
        let plugins = self.state.plugins.status();
        let status = self.state.station_link.status();
        let link = LinkState { state: status.state.to_string(), broker: status.broker, last_error: status.last_error };

        let Some(seen) = self.stations.as_mut() else {
            self.stations = Some(stations.iter().map(|(s, key)| (s.serial_number.clone(), key_of(key, s))).collect());
            self.plugins = plugins.iter().map(|p| (p.name.clone(), plugin_key(p))).collect();
            self.link = Some(link.clone());
            self.pending.push_back(ConsoleEvent::Snapshot {
                stations: stations.into_iter().map(|(s, _)| s).collect(),
                plugins: plugins.into_iter().map(PluginOut::from).collect(),
                link,
            });
            return Ok(());
        };

        let mut present = HashSet::with_capacity(stations.len());
        for (station, slots) in stations {
            let key = key_of(&slots, &station);
            present.insert(station.serial_number.clone());
            if seen.get(&station.serial_number) != Some(&key) {
                seen.insert(station.serial_number.clone(), key);
                self.pending.push_back(ConsoleEvent::Station { station });
            }
        }
        let gone: Vec<String> = seen.keys().filter(|sn| !present.contains(*sn)).cloned().collect();
        for serial_number in gone {
            seen.remove(&serial_number);
            self.pending.push_back(ConsoleEvent::StationRemoved { serial_number });
        }

        let mut configured = HashSet::with_capacity(plugins.len());
        for plugin in plugins {
            let key = plugin_key(&plugin);
            configured.insert(plugin.name.clone());
            if self.plugins.get(&plugin.name) != Some(&key) {
                self.plugins.insert(plugin.name.clone(), key);
                self.pending.push_back(ConsoleEvent::Plugin { plugin: Box::new(PluginOut::from(plugin)) });
            }
        }
        let removed: Vec<String> = self.plugins.keys().filter(|n| !configured.contains(*n)).cloned().collect();
        for name in removed {
            self.plugins.remove(&name);
            self.pending.push_back(ConsoleEvent::PluginRemoved { name });
        }

        if self.link.as_ref() != Some(&link) {
            self.link = Some(link.clone());
            self.pending.push_back(ConsoleEvent::Link { link });
        }
        Ok(())
    }
}

/// Resolves when the process receives SIGINT or SIGTERM (the signals the
/// server shuts down on); never, if they cannot be listened for.
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn key_of(slots: &str, s: &StationState) -> StationKey {
    StationKey {
        name: s.name.clone(),
        status: s.status,
        place: (s.latitude.to_bits(), s.longitude.to_bits()),
        counts: (s.total_slots, s.available_power_banks, s.empty_slots),
        slots: slots.to_string(),
    }
}

impl From<StationSummary> for StationState {
    fn from(s: StationSummary) -> Self {
        StationState {
            serial_number: s.serial_number,
            name: s.name,
            city: s.city,
            latitude: s.latitude,
            longitude: s.longitude,
            status: s.status,
            total_slots: s.total_slots,
            available_power_banks: s.available_power_banks,
            empty_slots: s.empty_slots,
            last_heartbeat_at: s.last_heartbeat_at,
        }
    }
}

/// Every station in service with a fingerprint of its slots (each slot's
/// state, bank and charge), so a change inside a slot is seen even when the
/// counts stay the same.
pub fn read_stations(conn: &rusqlite::Connection) -> Result<Vec<(StationState, String)>, ApiError> {
    let sql = format!(
        "SELECT {},
                COALESCE(group_concat(sl.slot_index || ':' || sl.status || ':' || IFNULL(pb.serial_number, '')
                                      || ':' || IFNULL(pb.battery_level, '') || ':' || IFNULL(pb.status, ''),
                                      ',' ORDER BY sl.slot_index), '')
         FROM stations s {SLOT_JOINS}
         WHERE s.status != '{retired}'
         GROUP BY s.id
         ORDER BY s.id",
        summary_columns(),
        retired = StationStatus::Retired,
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map([RENTABLE_BATTERY], |r| Ok((StationState::from(summary_from_row(r)?), r.get::<_, String>(12)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
