//! `GET /api/health`: is this box able to serve rentals right now?

use std::time::Instant;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{core::migrations, state::AppState};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every critical part works, `down` otherwise.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_secs: u64,
    pub database: ComponentHealth,
    pub mqtt: ComponentHealth,
    pub plugins: ComponentHealth,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentHealth {
    /// `ok`, `down`, or `not_configured`.
    pub status: &'static str,
    /// Whether the service is down when this part is.
    pub critical: bool,
    pub detail: Option<String>,
    pub latency_ms: Option<f64>,
}

/// Health of the database, the station link and the plugins; 503 when a
/// critical part is down.
#[utoipa::path(
    get, path = "/api/health", tag = "app",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "A critical part is down", body = Health),
    )
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let started = Instant::now();
    let db_check = state.db.read(|c| Ok(migrations::current_version(c)?)).await;
    let database = match db_check {
        Ok(version) => ComponentHealth {
            status: "ok",
            critical: true,
            detail: Some(format!("schema version {version}")),
            latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
        },
        Err(e) => ComponentHealth { status: "down", critical: true, detail: Some(e.message), latency_ms: None },
    };
    // Without the link no power bank can be ejected or returned, so it is
    // critical whenever it is configured.
    let link = state.station_link.status();
    let mqtt = ComponentHealth {
        status: match link.state {
            "disabled" => "not_configured",
            "connected" => "ok",
            _ => "down",
        },
        critical: link.state != "disabled",
        detail: Some(match &link.last_error {
            Some(e) => format!("{} ({e})", link.broker),
            None => link.broker.clone(),
        }),
        latency_ms: None,
    };
    // Rentals cannot be priced without a pricing plugin: that one is critical.
    let loaded = state.plugins.status();
    let failing: Vec<&str> = loaded.iter().filter(|p| p.version.is_none()).map(|p| p.name.as_str()).collect();
    let pricing = state.plugins.active(powerbank_plugin_runtime::PluginKind::Pricing);
    let plugins = ComponentHealth {
        status: if pricing.is_some() { "ok" } else { "down" },
        critical: true,
        detail: Some(match (&pricing, failing.is_empty()) {
            (Some((name, version)), true) => format!("{} plugins serving; pricing: {name} {version}", loaded.len()),
            (Some((name, version)), false) => {
                format!("pricing: {name} {version}; not serving: {}", failing.join(", "))
            }
            (None, _) => "no pricing plugin is serving".to_string(),
        }),
        latency_ms: None,
    };
    let down = [&database, &mqtt, &plugins].iter().any(|c| c.critical && c.status == "down");
    let health = Health {
        status: if down { "down" } else { "ok" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started_at.elapsed().as_secs(),
        database,
        mqtt,
        plugins,
    };
    let code = if down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(health))
}
