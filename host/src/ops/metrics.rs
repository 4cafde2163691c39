//! `GET /metrics`: the server's Prometheus metrics (`core::metrics`), never
//! public by default. On the API listener it needs the bearer token of
//! `--metrics-token` (without one it answers 404, so nothing is exposed);
//! `--metrics-listen` adds a listener for a private address that serves only
//! this route (asking for the token too when one is set).
//!
//! The gauges that describe tables (rentals, stations, banks, due jobs) are
//! recomputed every `--metrics-refresh-secs` by one task, with a handful of
//! indexed or small aggregate queries: a scrape reads the last values and
//! never touches the database, however often Prometheus comes.

use std::sync::Arc;

use anyhow::Context;
use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use powerbank_plugin_runtime::{CallObserver, Failure};
use prometheus_client::metrics::{family::Family, gauge::Gauge};
use rusqlite::params;
use sha2::{Digest, Sha256};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    core::{
        ApiError, Db,
        error::ErrorBody,
        metrics::{Metrics, PluginFailureLabels, PluginLabels, StatusLabels},
        now_ts,
    },
    rentals::model::RentalStatus,
    state::AppState,
    stations::{banks::BankStatus, status::StationStatus},
};

/// The registry writes OpenMetrics text (what Prometheus asks for first).
const TEXT_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// The server's metrics in the Prometheus text format (see docs/operations.md).
#[utoipa::path(
    get, path = "/metrics", tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OpenMetrics text (Prometheus exposition format)", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "Missing or wrong metrics token", body = ErrorBody),
        (status = 404, description = "Metrics are not served on this listener (no token configured)", body = ErrorBody),
    )
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    match &state.config.metrics.token {
        Some(token) => authorize(token, &headers)?,
        None => return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")),
    }
    Ok(render(&state))
}

/// The separate listener's handler: open unless a token is configured.
async fn private_metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = &state.config.metrics.token {
        authorize(token, &headers)?;
    }
    Ok(render(&state))
}

fn authorize(token: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .ok_or_else(|| ApiError::unauthorized("the metrics token is required"))?;
    // Digests of equal length compared: the time taken says nothing useful
    // about the token.
    if Sha256::digest(given.trim().as_bytes()) != Sha256::digest(token.as_bytes()) {
        return Err(ApiError::unauthorized("wrong metrics token"));
    }
    Ok(())
}

fn render(state: &AppState) -> Response {
    // In-memory state is read at scrape time; tables are not.
    state.metrics.mqtt_connected.set(i64::from(state.station_link.is_connected()));
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], state.metrics.render()).into_response()
}

/// Counts every plugin call by plugin and release.
pub fn plugin_call_observer(metrics: Arc<Metrics>) -> CallObserver {
    Arc::new(move |call| {
        let labels = PluginLabels {
            plugin: call.plugin.to_owned(),
            kind: call.kind.as_str().to_owned(),
            version: call.version.to_owned(),
            sha: call.sha256.chars().take(12).collect(),
        };
        metrics.plugin_duration.get_or_create(&labels).observe(call.elapsed.as_secs_f64());
        if let Some(failure) = call.failure {
            if matches!(failure, Failure::Timeout { .. }) {
                metrics.plugin_timeouts.get_or_create(&labels).inc();
            }
            metrics
                .plugin_failures
                .get_or_create(&PluginFailureLabels {
                    plugin: labels.plugin.clone(),
                    kind: labels.kind.clone(),
                    version: labels.version.clone(),
                    sha: labels.sha.clone(),
                    reason: failure.code().to_owned(),
                })
                .inc();
        }
        metrics.plugin_calls.get_or_create(&labels).inc();
    })
}

/// What the table gauges read, in one snapshot.
struct TableGauges {
    rentals_active: i64,
    rentals_overdue: i64,
    stations: Vec<(String, i64)>,
    banks: Vec<(String, i64)>,
    jobs_due: i64,
    oldest_due_at: Option<i64>,
}

fn read_table_gauges(db: &rusqlite::Connection, now: i64) -> Result<TableGauges, ApiError> {
    // One read transaction, so the numbers agree with each other.
    db.execute_batch("BEGIN")?;
    let read = (|| -> Result<TableGauges, ApiError> {
        // `rentals_due (status, due_at)` answers both without reading rows.
        let rentals_active: i64 = db.query_row(
            "SELECT COUNT(*) FROM rentals WHERE status IN (?1, ?2)",
            params![RentalStatus::Active, RentalStatus::PendingEject],
            |r| r.get(0),
        )?;
        let rentals_overdue: i64 = db.query_row(
            "SELECT COUNT(*) FROM rentals WHERE status = ?1 AND due_at < ?2",
            params![RentalStatus::Active, now],
            |r| r.get(0),
        )?;
        let group = |sql: &str| -> Result<Vec<(String, i64)>, ApiError> {
            let mut stmt = db.prepare_cached(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let stations = group("SELECT status, COUNT(*) FROM stations GROUP BY status")?;
        let banks = group("SELECT status, COUNT(*) FROM power_banks GROUP BY status")?;
        // `jobs_due (status, run_at)`: only the due pending jobs are read.
        let (jobs_due, oldest_due_at): (i64, Option<i64>) = db.query_row(
            "SELECT COUNT(*), MIN(run_at) FROM jobs WHERE status = 'pending' AND run_at <= ?1",
            [now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(TableGauges { rentals_active, rentals_overdue, stations, banks, jobs_due, oldest_due_at })
    })();
    let _ = db.execute_batch("COMMIT");
    read
}

/// Recomputes the gauges that come from tables.
pub async fn refresh_table_gauges(db: &Db, metrics: &Metrics) -> Result<(), ApiError> {
    let now = now_ts();
    let g = db.read(move |c| read_table_gauges(c, now)).await?;
    metrics.rentals_active.set(g.rentals_active);
    metrics.rentals_overdue.set(g.rentals_overdue);
    // Statuses with no row read 0 rather than keeping their last value.
    let set_all = |family: &Family<StatusLabels, Gauge>, known: &[&str], rows: &[(String, i64)]| {
        for status in known {
            let n = rows.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            family.get_or_create(&StatusLabels { status: (*status).to_owned() }).set(n);
        }
    };
    let station_statuses: Vec<&str> = StationStatus::ALL.iter().map(|s| s.as_str()).collect();
    set_all(&metrics.stations, &station_statuses, &g.stations);
    let bank_statuses: Vec<&str> = BankStatus::ALL.iter().map(|s| s.as_str()).collect();
    set_all(&metrics.power_banks, &bank_statuses, &g.banks);
    metrics.jobs_due.set(g.jobs_due);
    metrics.jobs_lag_seconds.set(g.oldest_due_at.map_or(0, |at| (now - at).max(0)));
    metrics.gauges_refreshed_at.set(now);
    Ok(())
}

/// Starts the gauge refresher and, when configured, the metrics listener.
pub async fn start(state: &AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
    let config = state.config.metrics.clone();
    if let Some(listen) = config.listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding metrics listener {listen}"))?;
        let app = Router::new().route("/metrics", get(private_metrics)).with_state(state.clone());
        let mut stop = shutdown.clone();
        tracing::info!(listen = %listen, "serving /metrics");
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
    }
    let (db, metrics) = (state.db.clone(), state.metrics.clone());
    tokio::spawn(async move {
        loop {
            if let Err(e) = refresh_table_gauges(&db, &metrics).await {
                tracing::warn!(error = %e, "metrics gauges not refreshed");
            }
            tokio::select! {
                () = tokio::time::sleep(config.refresh) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
    Ok(())
}
