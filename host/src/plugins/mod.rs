//! The host side of the plugin runtime: how plugin failures reach clients,
//! and the operator endpoints to inspect, hot-reload and release plugins.

pub mod releases;

use axum::{Json, extract::State, http::StatusCode};
use powerbank_plugin_runtime::{Failure, PluginError, PluginStatus};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    core::{
        ApiError, Operator,
        audit::{self, Target},
        error::ErrorBody,
        text_enum::text_enum,
    },
    state::AppState,
};

text_enum! {
    /// What serves a plugins.toml slot: the file it names, or a promoted
    /// release (which wins until a rollback to the file).
    pub enum PluginSource {
        File = "file",
        Release = "release",
    }
}

impl From<PluginError> for ApiError {
    /// A plugin that fails is the server's problem, not the client's: 502
    /// `plugin_failed` naming the plugin, except when the plugin declined
    /// the request on its own terms (422) or every call slot is busy (503).
    fn from(e: PluginError) -> Self {
        tracing::warn!(
            plugin = %e.plugin, version = %e.version, operation = %e.operation,
            failure = e.failure.code(), error = %e, "plugin call failed"
        );
        let details = serde_json::json!({
            "plugin": e.plugin,
            "version": e.version,
            "operation": e.operation,
            "failure": e.failure.code(),
        });
        let (status, code, message) = match &e.failure {
            Failure::Rejected(reason) => (StatusCode::UNPROCESSABLE_ENTITY, "plugin_rejected", reason.clone()),
            Failure::Busy => (StatusCode::SERVICE_UNAVAILABLE, "plugins_busy", e.to_string()),
            _ => (StatusCode::BAD_GATEWAY, "plugin_failed", e.to_string()),
        };
        let mut api = ApiError::new(status, code, message).with_details(details);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            api.retry_after = Some(1);
        }
        api
    }
}

/// One plugin as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginOut {
    pub name: String,
    /// `pricing`, `points-rules`, `promotions` or `payment-gateway`.
    pub kind: String,
    pub version: Option<String>,
    pub sha256: Option<String>,
    /// `release` while a promoted release serves the slot, else `file`.
    pub source: PluginSource,
    /// The promoted release serving, when `source` is `release`.
    pub release_id: Option<i64>,
    pub path: String,
    pub loaded_at: Option<String>,
    /// `active`, `failed`, `disabled`, ...
    pub status: String,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub calls: u64,
    pub failures: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// A staged release running beside the serving build, and how
    /// (`shadow` or `canary`); see its report at `.../releases/{id}/shadow`.
    pub candidate_release_id: Option<i64>,
    pub candidate_mode: Option<String>,
    /// The last thing the server did to this plugin on its own, such as a
    /// canary stopped for failing too often.
    pub notice: Option<String>,
}

fn ms_to_rfc3339(ms: Option<i64>) -> Option<String> {
    ms.map(|ms| crate::core::ts_to_rfc3339(ms.div_euclid(1000)))
}

fn as_text<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

impl From<PluginStatus> for PluginOut {
    fn from(s: PluginStatus) -> Self {
        PluginOut {
            kind: as_text(&s.kind),
            status: as_text(&s.state),
            name: s.name,
            version: s.version,
            sha256: s.sha256,
            source: if s.release_id.is_some() { PluginSource::Release } else { PluginSource::File },
            release_id: s.release_id,
            path: s.path.display().to_string(),
            loaded_at: ms_to_rfc3339(s.loaded_at_unix_ms),
            last_error: s.last_error,
            last_error_at: ms_to_rfc3339(s.last_error_at_unix_ms),
            calls: s.calls,
            failures: s.failures,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
            candidate_release_id: s.candidate_release_id,
            candidate_mode: s.candidate_mode,
            notice: s.notice,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadOut {
    pub loaded: Vec<String>,
    pub unchanged: Vec<String>,
    /// Plugins that failed to load or check; the previous version keeps serving.
    pub failed: Vec<FailedPlugin>,
    pub removed: Vec<String>,
    pub plugins: Vec<PluginOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailedPlugin {
    pub name: String,
    pub error: String,
}

/// Every configured plugin with its version, state and call statistics.
#[utoipa::path(
    get, path = "/api/admin/plugins", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    responses(
        (status = 200, description = "Plugins", body = Vec<PluginOut>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, _operator: Operator) -> Json<Vec<PluginOut>> {
    Json(state.plugins.status().into_iter().map(PluginOut::from).collect())
}

/// Re-reads plugins.toml and loads changed plugins in the background, then
/// swaps them in at once; calls in flight finish on the old versions.
#[utoipa::path(
    post, path = "/api/admin/plugins/reload", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    responses(
        (status = 200, description = "What was loaded, kept, refused and removed", body = ReloadOut),
        (status = 400, description = "plugins.toml is invalid; nothing changed", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
    )
)]
pub async fn reload(State(state): State<AppState>, admin: Operator) -> Result<Json<ReloadOut>, ApiError> {
    let before = versions(&state);
    let report = state
        .plugins
        .reload()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_plugins_config", e.to_string()))?;
    tracing::info!(
        admin = admin.id, loaded = ?report.loaded, failed = report.failed.len(), "plugins reloaded by operator"
    );
    // Plugins live in files, not in the database: the reload is recorded
    // once it has happened, with the versions before and after.
    let after = versions(&state);
    let operator = admin.clone();
    state
        .db
        .write(move |tx| {
            audit::record(tx, &operator, "plugins.reload", Target::new("plugins", "all"), &before, &after, None)
        })
        .await?;
    Ok(Json(ReloadOut {
        loaded: report.loaded,
        unchanged: report.unchanged,
        failed: report.failed.into_iter().map(|(name, error)| FailedPlugin { name, error }).collect(),
        removed: report.removed,
        plugins: state.plugins.status().into_iter().map(PluginOut::from).collect(),
    }))
}

/// Each plugin's loaded version (with its hash, so a rebuilt file shows), by name.
fn versions(state: &AppState) -> std::collections::BTreeMap<String, String> {
    state
        .plugins
        .status()
        .into_iter()
        .map(|p| (p.name, format!("{} {}", p.version.unwrap_or_default(), p.sha256.unwrap_or_default())))
        .collect()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(reload)).merge(releases::router())
}
