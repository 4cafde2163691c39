//! Shadow and canary of a staged release (issue 17): the operator starts
//! one beside the build serving the slot, reads its report, and stops it; a
//! canary that fails too often is stopped by the runtime, and this module
//! writes the audit row and tells the operators. See docs/plugins.md,
//! "Shadow and canary".

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::{Json, extract::State};
use powerbank_plugin_runtime::{CandidateMode, CandidateReport, ReleaseNotice, SlotRelease};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{self, ReleaseState};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, Operator,
        access::RequestMeta,
        audit::{self, Target},
        error::ErrorBody,
    },
    state::AppState,
};

/// Who started the candidate running on each slot: the runtime's own
/// decision to stop it is recorded under their id, marked as the system's.
static STARTED_BY: Mutex<BTreeMap<String, Operator>> = Mutex::new(BTreeMap::new());

fn started_by() -> std::sync::MutexGuard<'static, BTreeMap<String, Operator>> {
    STARTED_BY.lock().unwrap_or_else(|p| p.into_inner())
}

/// How to run a shadow.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowRequest {
    /// Share of live calls repeated on the shadow, 1..=100 (default 100).
    #[schema(minimum = 1, maximum = 100)]
    pub sample_percent: Option<u8>,
    pub reason: Option<String>,
}

/// How to run a canary.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryRequest {
    /// Share of riders (sticky by user id) the release decides for, 1..=99.
    #[schema(minimum = 1, maximum = 99)]
    pub percent: u8,
    /// Why real riders get this release's answers (required: it prices for real).
    pub reason: Option<String>,
}

/// A running or stopped shadow or canary.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateOut {
    pub plugin: String,
    pub release_id: i64,
    /// `shadow` or `canary`.
    pub mode: String,
    /// Shadow: share of live calls repeated on it.
    pub sample_percent: Option<u8>,
    /// Canary: share of riders it decides for, and its automatic stop
    /// (after at least `min_calls` calls, more than `max_failure_percent` % failed).
    pub percent: Option<u8>,
    pub min_calls: Option<u64>,
    pub max_failure_percent: Option<u8>,
    pub running: bool,
    /// Why it stopped (an operator, a promote, or its failure rate).
    pub stop_reason: Option<String>,
    /// Shadow: live calls repeated on it, same answer, different answer,
    /// failed on the shadow only, dropped (its queue was full).
    pub calls: u64,
    pub equal: u64,
    pub different: u64,
    pub shadow_failures: u64,
    pub dropped: u64,
    pub live_p50_us: Option<u64>,
    pub live_p99_us: Option<u64>,
    pub shadow_p50_us: Option<u64>,
    pub shadow_p99_us: Option<u64>,
    /// The first differing calls (at most 20): input, live answer, shadow answer.
    #[schema(value_type = Vec<Object>)]
    pub samples: Vec<serde_json::Value>,
    /// Canary: calls it decided, and how many failed.
    pub canary_calls: u64,
    pub canary_failures: u64,
}

impl From<CandidateReport> for CandidateOut {
    fn from(r: CandidateReport) -> Self {
        let (mode, sample_percent, percent, min_calls, max_failure_percent) = match r.mode {
            CandidateMode::Shadow { sample_percent } => ("shadow", Some(sample_percent), None, None, None),
            CandidateMode::Canary { percent, min_calls, max_failure_percent } => {
                ("canary", None, Some(percent), Some(min_calls), Some(max_failure_percent))
            }
        };
        CandidateOut {
            plugin: r.slot,
            release_id: r.release_id,
            mode: mode.to_string(),
            sample_percent,
            percent,
            min_calls,
            max_failure_percent,
            running: r.running,
            stop_reason: r.stop_reason,
            calls: r.calls,
            equal: r.equal,
            different: r.different,
            shadow_failures: r.shadow_failures,
            dropped: r.dropped,
            live_p50_us: r.live_p50_us,
            live_p99_us: r.live_p99_us,
            shadow_p50_us: r.shadow_p50_us,
            shadow_p99_us: r.shadow_p99_us,
            samples: r.samples.into_iter().filter_map(|s| serde_json::to_value(s).ok()).collect(),
            canary_calls: r.canary_calls,
            canary_failures: r.canary_failures,
        }
    }
}

/// The release `id` of `name`, as a candidate can run it: staged or retired.
async fn candidate_release(state: &AppState, name: &str, id: i64) -> Result<SlotRelease, ApiError> {
    state.plugins.slot(name).ok_or_else(|| ApiError::not_found("plugin"))?;
    let plugin = name.to_string();
    let release = state.db.read(move |c| store::get(c, &plugin, id)).await?;
    let release = release.ok_or_else(|| ApiError::not_found("release"))?;
    match release.state {
        ReleaseState::Rejected => {
            return Err(ApiError::conflict("release_rejected", format!("release {id} was rejected")));
        }
        ReleaseState::Active => {
            return Err(ApiError::conflict("release_active", format!("release {id} already serves {name}")));
        }
        ReleaseState::Staged | ReleaseState::Retired => {}
    }
    Ok(SlotRelease {
        release_id: release.id,
        path: store::blob_path(&state.config.data_dir, &release.sha256),
        config: release.config,
        signature: release.signature,
    })
}

async fn start(
    state: &AppState,
    admin: &Operator,
    name: &str,
    id: i64,
    mode: CandidateMode,
    reason: Option<String>,
) -> Result<CandidateOut, ApiError> {
    let release = candidate_release(state, name, id).await?;
    state.plugins.start_candidate(name, release, mode).await.map_err(|reason| {
        ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "release_failed_to_load", reason.clone())
            .with_details(serde_json::json!({ "reason": reason }))
    })?;
    started_by().insert(name.to_string(), admin.clone());
    let action = match mode {
        CandidateMode::Shadow { .. } => "plugin.release.shadow.start",
        CandidateMode::Canary { .. } => "plugin.release.canary.start",
    };
    let actor = admin.clone();
    let after = serde_json::to_value(mode).unwrap_or_default();
    state
        .db
        .write(move |tx| {
            audit::record(
                tx,
                &actor,
                action,
                Target::new("plugin_release", id),
                &serde_json::Value::Null,
                &after,
                reason.as_deref(),
            )
            .map(|_| ())
        })
        .await?;
    tracing::info!(admin = admin.id, plugin = %name, release = id, ?mode, "plugin release candidate started");
    report_of(state, name, id)
}

fn report_of(state: &AppState, name: &str, id: i64) -> Result<CandidateOut, ApiError> {
    state.plugins.candidate_report(name, id).map(CandidateOut::from).ok_or_else(|| ApiError::not_found("candidate"))
}

async fn stop(
    state: &AppState,
    admin: &Operator,
    name: &str,
    id: i64,
    action: &'static str,
) -> Result<CandidateOut, ApiError> {
    state.plugins.slot(name).ok_or_else(|| ApiError::not_found("plugin"))?;
    let running = state.plugins.candidate_report(name, id).filter(|r| r.running);
    let Some(running) = running else {
        return Err(ApiError::conflict(
            "candidate_not_running",
            format!("release {id} of {name} is not running beside it"),
        ));
    };
    let wanted = matches!(
        (action, running.mode),
        ("plugin.release.shadow.stop", CandidateMode::Shadow { .. })
            | ("plugin.release.canary.stop", CandidateMode::Canary { .. })
    );
    if !wanted {
        return Err(ApiError::conflict(
            "candidate_other_mode",
            format!("release {id} of {name} runs as the other kind of candidate"),
        ));
    }
    state.plugins.stop_candidate(name, Some(id), &format!("stopped by operator {}", admin.id));
    started_by().remove(name);
    let actor = admin.clone();
    state
        .db
        .write(move |tx| {
            audit::record(
                tx,
                &actor,
                action,
                Target::new("plugin_release", id),
                &serde_json::json!({"running": true}),
                &serde_json::json!({"running": false}),
                None,
            )
            .map(|_| ())
        })
        .await?;
    report_of(state, name, id)
}

/// Runs a staged (or retired) release as a shadow of the build serving its
/// plugin: each sampled live call is answered by the serving build and then,
/// off the request's path, repeated on the shadow; the answers are compared.
/// A shadow never writes anything and never delays an answer (a full queue
/// drops the repeat and counts it). Pricing, points rules, promotions and
/// station protocols; not payment gateways.
#[utoipa::path(
    post, path = "/api/admin/plugins/{name}/releases/{id}/shadow", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(
        ("name" = String, Path, description = "The plugin's name in plugins.toml"),
        ("id" = i64, Path, description = "Release id"),
    ),
    request_body = ShadowRequest,
    responses(
        (status = 200, description = "Shadowing", body = CandidateOut),
        (status = 400, description = "A sample percent outside 1..=100", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plugin or release", body = ErrorBody),
        (status = 409, description = "The release was rejected (`release_rejected`) or already serves (`release_active`)", body = ErrorBody),
        (status = 422, description = "It failed to load, or the plugin is a payment gateway (`release_failed_to_load`)", body = ErrorBody),
    )
)]
pub async fn start_shadow(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath((name, id)): ApiPath<(String, i64)>,
    ApiJson(req): ApiJson<ShadowRequest>,
) -> Result<Json<CandidateOut>, ApiError> {
    let sample_percent = req.sample_percent.unwrap_or(100);
    if !(1..=100).contains(&sample_percent) {
        return Err(ApiError::invalid_field("sample_percent", "between 1 and 100"));
    }
    let reason = audit::optional_reason(req.reason.as_deref())?;
    let _one = super::RELEASE_ACTIONS.lock().await;
    start(&state, &admin, &name, id, CandidateMode::Shadow { sample_percent }, reason).await.map(Json)
}

/// What the shadow (or canary) of a release did so far: calls, same and
/// different answers, shadow failures, dropped repeats, p50/p99 of the
/// serving build and of the shadow, the first differing inputs and answers.
#[utoipa::path(
    get, path = "/api/admin/plugins/{name}/releases/{id}/shadow", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(
        ("name" = String, Path, description = "The plugin's name in plugins.toml"),
        ("id" = i64, Path, description = "Release id"),
    ),
    responses(
        (status = 200, description = "Its report, running or stopped", body = CandidateOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "It never ran beside the plugin since the server started", body = ErrorBody),
    )
)]
pub async fn shadow_report(
    State(state): State<AppState>,
    _admin: Operator,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> Result<Json<CandidateOut>, ApiError> {
    report_of(&state, &name, id).map(Json)
}

/// Stops the shadow; its report stays readable.
#[utoipa::path(
    delete, path = "/api/admin/plugins/{name}/releases/{id}/shadow", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(
        ("name" = String, Path, description = "The plugin's name in plugins.toml"),
        ("id" = i64, Path, description = "Release id"),
    ),
    responses(
        (status = 200, description = "Stopped; its last report", body = CandidateOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "It is not running (`candidate_not_running`) or runs as a canary (`candidate_other_mode`)", body = ErrorBody),
    )
)]
pub async fn stop_shadow(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> Result<Json<CandidateOut>, ApiError> {
    let _one = super::RELEASE_ACTIONS.lock().await;
    stop(&state, &admin, &name, id, "plugin.release.shadow.stop").await.map(Json)
}

/// Routes `percent` % of riders, sticky by user id (a hash of the user id and
/// the release id), to the release for real; the others keep the serving
/// build. Every rental, points row and payment it decides records which build
/// decided (`plugin_release`). Stopped automatically when its failure rate
/// passes the configured threshold. Pricing, points rules and promotions.
#[utoipa::path(
    post, path = "/api/admin/plugins/{name}/releases/{id}/canary", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(
        ("name" = String, Path, description = "The plugin's name in plugins.toml"),
        ("id" = i64, Path, description = "Release id"),
    ),
    request_body = CanaryRequest,
    responses(
        (status = 200, description = "Canary running", body = CandidateOut),
        (status = 400, description = "A percent outside 1..=99, or no `reason`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plugin or release", body = ErrorBody),
        (status = 409, description = "The release was rejected (`release_rejected`) or already serves (`release_active`)", body = ErrorBody),
        (status = 422, description = "It failed to load, or the plugin's kind has no riders to split (`release_failed_to_load`)", body = ErrorBody),
    )
)]
pub async fn start_canary(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath((name, id)): ApiPath<(String, i64)>,
    ApiJson(req): ApiJson<CanaryRequest>,
) -> Result<Json<CandidateOut>, ApiError> {
    if !(1..=99).contains(&req.percent) {
        return Err(ApiError::invalid_field("percent", "between 1 and 99"));
    }
    let reason = audit::required_reason(req.reason.as_deref())?;
    let mode = CandidateMode::Canary {
        percent: req.percent,
        min_calls: state.config.canary_min_calls,
        max_failure_percent: state.config.canary_max_failure_percent,
    };
    let _one = super::RELEASE_ACTIONS.lock().await;
    start(&state, &admin, &name, id, mode, Some(reason)).await.map(Json)
}

/// The canary's report (the same as the shadow's report route).
#[utoipa::path(
    get, path = "/api/admin/plugins/{name}/releases/{id}/canary", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(
        ("name" = String, Path, description = "The plugin's name in plugins.toml"),
        ("id" = i64, Path, description = "Release id"),
    ),
    responses(
        (status = 200, description = "Its report, running or stopped", body = CandidateOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "It never ran beside the plugin since the server started", body = ErrorBody),
    )
)]
pub async fn canary_report(
    State(state): State<AppState>,
    _admin: Operator,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> Result<Json<CandidateOut>, ApiError> {
    report_of(&state, &name, id).map(Json)
}

/// Stops the canary: every rider gets the serving build again.
#[utoipa::path(
    delete, path = "/api/admin/plugins/{name}/releases/{id}/canary", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(
        ("name" = String, Path, description = "The plugin's name in plugins.toml"),
        ("id" = i64, Path, description = "Release id"),
    ),
    responses(
        (status = 200, description = "Stopped; its last report", body = CandidateOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "It is not running (`candidate_not_running`) or runs as a shadow (`candidate_other_mode`)", body = ErrorBody),
    )
)]
pub async fn stop_canary(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> Result<Json<CandidateOut>, ApiError> {
    let _one = super::RELEASE_ACTIONS.lock().await;
    stop(&state, &admin, &name, id, "plugin.release.canary.stop").await.map(Json)
}

/// Listens for what the runtime did on its own (a canary stopped for
/// failing) and records it: an audit row under the operator who started the
/// canary, marked as the system's (`request_id` and user agent `system`),
/// and an error log line. Operators see it live: the plugin's `notice`
/// changes, which `GET /api/admin/events` sends as a `plugin` event.
pub fn start_notice_listener(state: &AppState) {
    let mut notices = state.plugins.release_notices();
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            match notices.recv().await {
                Ok(notice) => record_notice(&state, notice).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::error!(missed = n, "plugin release notices were missed");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

async fn record_notice(state: &AppState, notice: ReleaseNotice) {
    tracing::error!(
        plugin = %notice.slot, release = notice.release_id, calls = notice.calls, failures = notice.failures,
        "{}", notice.message
    );
    let Some(starter) = started_by().remove(&notice.slot) else {
        tracing::warn!(plugin = %notice.slot, "no operator started this canary; no audit row");
        return;
    };
    let system = Operator {
        session_id: "system".to_string(),
        request: RequestMeta {
            request_id: Some("system".to_string()),
            ip: None,
            user_agent: Some("system".to_string()),
        },
        ..starter
    };
    let after = serde_json::json!({
        "actor": "system", "running": false, "calls": notice.calls, "failures": notice.failures,
    });
    let id = notice.release_id;
    let reason = notice.message.clone();
    let written = state
        .db
        .write(move |tx| {
            audit::record(
                tx,
                &system,
                "plugin.release.canary.auto_rollback",
                Target::new("plugin_release", id),
                &serde_json::json!({"running": true}),
                &after,
                Some(&reason),
            )
            .map(|_| ())
        })
        .await;
    if let Err(e) = written {
        tracing::error!(error = %e.message, "cannot record the canary's automatic stop");
    }
}
