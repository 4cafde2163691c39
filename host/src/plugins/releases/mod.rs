//! Plugin releases over the admin API: upload a build for a plugins.toml
//! slot (checked, then kept as `staged` or recorded as `rejected`), list
//! them, promote one to serve the slot, roll back to an earlier one or to the
//! file. See docs/plugins.md, "Releases".

pub mod candidates;
pub mod store;

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Multipart, State},
    http::StatusCode,
};
use powerbank_plugin_runtime::SlotRelease;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::PluginOut;
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, Operator,
        audit::{self, Target},
        error::ErrorBody,
        now_ts, ts_to_rfc3339,
    },
    state::AppState,
};
pub use store::ReleaseState;
use store::{NewRelease, Release};

/// One release at a time per server: promote, roll back and prune read and
/// then change both the serving set and the history, which must agree.
pub(crate) static RELEASE_ACTIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A release as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseOut {
    pub id: i64,
    /// The plugins.toml slot it is for.
    pub plugin: String,
    pub state: ReleaseState,
    pub sha256: String,
    pub size_bytes: i64,
    /// The config table it serves with (replacing the slot's).
    pub config: BTreeMap<String, String>,
    /// Name, version and contract the build reported in `info`.
    pub plugin_name: Option<String>,
    pub version: Option<String>,
    pub contract: Option<String>,
    /// Hex ed25519 signature over the sha256, if one was given.
    pub signature: Option<String>,
    /// The trusted key (hex) that signed it, when plugins.toml trusts keys.
    pub signed_by: Option<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: String,
}

impl From<Release> for ReleaseOut {
    fn from(r: Release) -> Self {
        ReleaseOut {
            id: r.id,
            plugin: r.plugin,
            state: r.state,
            sha256: r.sha256,
            size_bytes: r.size_bytes,
            config: r.config,
            plugin_name: r.plugin_name,
            version: r.version,
            contract: r.contract,
            signature: r.signature,
            signed_by: r.signed_by,
            reason: r.reason,
            created_by: r.created_by,
            created_at: ts_to_rfc3339(r.created_at),
        }
    }
}

/// The upload form (documentation only; the handler reads the parts itself).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReleaseForm {
    /// The component (`.wasm`).
    #[schema(format = Binary, content_media_type = "application/wasm")]
    wasm: String,
    /// Its config table, as TOML (`key = "value"` lines) or a JSON object;
    /// values are strings, integers or booleans. Empty when left out.
    config: Option<String>,
    /// Hex ed25519 signature over the component's sha256.
    signature: Option<String>,
}

/// What serves a slot after a promote or rollback. (Named apart from the
/// stations' `SlotOut`: one schema name each, or the document holds only one.)
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PluginSlotOut)]
pub struct SlotOut {
    pub plugin: PluginOut,
}

/// Where to roll back to: leave both out for what served before the current
/// source.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Any kept, non-rejected release of this plugin.
    pub release_id: Option<i64>,
    /// `true`: the file plugins.toml names.
    #[serde(default)]
    pub file: bool,
}

fn slot_of(state: &AppState, name: &str) -> Result<powerbank_plugin_runtime::config::PluginConfig, ApiError> {
    state.plugins.slot(name).ok_or_else(|| ApiError::not_found("plugin"))
}

fn field_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(e.status(), "bad_request", e.body_text())
}

/// A config table given as a JSON object or TOML, as the strings a plugin reads.
fn parse_config(text: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let bad = |m: String| ApiError::invalid_field("config", m);
    let text = text.trim();
    let mut out = BTreeMap::new();
    if text.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| bad(format!("not a JSON object: {e}")))?;
        for (key, value) in map {
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => return Err(bad(format!("`{key}`: expected a string, integer or boolean, got {other}"))),
            };
            out.insert(key, value);
        }
    } else {
        let table: toml::Table = toml::from_str(text).map_err(|e| bad(format!("not TOML: {e}")))?;
        for (key, value) in table {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(bad(format!(
                        "`{key}`: expected a string, integer or boolean, got {}",
                        other.type_str()
                    )));
                }
            };
            out.insert(key, value);
        }
    }
    Ok(out)
}

/// Uploads a build for the plugin slot `name`. It is stored by its sha256,
/// compiled, linked against the slot's world, and its `info` and
/// `self-check` run with the given config and the slot's secrets: a build
/// that passes is kept as `staged`; one that does not is recorded as
/// `rejected` with the reason (422). Nothing serving changes either way.
#[utoipa::path(
    post, path = "/api/admin/plugins/{name}/releases", tag = "admin", operation_id = "upload_release",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("name" = String, Path, description = "The plugin's name in plugins.toml")),
    request_body(content = ReleaseForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Checked and staged", body = ReleaseOut),
        (status = 400, description = "No `wasm` part, or a config that does not parse", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plugin in plugins.toml", body = ErrorBody),
        (status = 413, description = "Larger than the release size limit", body = ErrorBody),
        (status = 422, description = "Rejected (`release_rejected`; details: release id and reason): wrong world, failing self-check, unsigned or wrongly signed when plugins.toml trusts keys, ...", body = ErrorBody),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath(name): ApiPath<String>,
    mut form: Multipart,
) -> Result<(StatusCode, Json<ReleaseOut>), ApiError> {
    let slot = slot_of(&state, &name)?;
    let max = state.config.plugin_release_max_bytes;
    let mut wasm: Option<Vec<u8>> = None;
    let mut config_text = String::new();
    let mut signature: Option<String> = None;
    while let Some(mut field) = form.next_field().await.map_err(field_error)? {
        match field.name() {
            Some("wasm") => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(field_error)? {
                    if bytes.len() + chunk.len() > max {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "payload_too_large",
                            format!("a plugin release is limited to {max} bytes"),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                wasm = Some(bytes);
            }
            Some("config") => config_text = field.text().await.map_err(field_error)?,
            Some("signature") => {
                let text = field.text().await.map_err(field_error)?;
                signature = Some(text.trim().to_string()).filter(|s| !s.is_empty());
            }
            _ => {}
        }
    }
    let bytes =
        wasm.filter(|b| !b.is_empty()).ok_or_else(|| ApiError::invalid_field("wasm", "a .wasm part is required"))?;
    let config = parse_config(&config_text)?;
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let size_bytes = i64::try_from(bytes.len()).unwrap_or(i64::MAX);

    let checked = state.plugins.check_release(&slot, bytes.clone(), config.clone(), signature.as_deref()).await;
    if let Ok(check) = &checked {
        store::store_blob(&state.config.data_dir, &sha256, &bytes).await?;
        tracing::info!(
            admin = admin.id, plugin = %name, version = %check.version, sha256 = %sha256, "plugin release staged"
        );
    }
    let (release_state, reason) = match &checked {
        Ok(_) => (ReleaseState::Staged, None),
        Err(reason) => (ReleaseState::Rejected, Some(reason.clone())),
    };
    let keep = state.config.plugin_releases_kept;
    let (release, unused) = {
        let (name, sha256, config, signature, reason) =
            (name.clone(), sha256.clone(), config.clone(), signature.clone(), reason.clone());
        let check = checked.as_ref().ok().cloned();
        let admin_id = admin.id;
        let actor = admin.clone();
        let _one = RELEASE_ACTIONS.lock().await;
        state
            .db
            .write(move |tx| {
                let id = store::insert(
                    tx,
                    &NewRelease {
                        plugin: &name,
                        state: release_state,
                        sha256: &sha256,
                        size_bytes,
                        config: &config,
                        check: check.as_ref(),
                        signature: signature.as_deref(),
                        signed_by: check.as_ref().and_then(|c| c.signed_by.as_deref()),
                        reason: reason.as_deref(),
                        created_by: admin_id,
                        now: now_ts(),
                    },
                )?;
                let unused = store::prune(tx, &name, keep)?;
                let release = store::get(tx, &name, id)?.ok_or_else(|| ApiError::internal("release row vanished"))?;
                let after = serde_json::json!({"plugin": name, "sha256": sha256, "rejected_because": reason});
                audit::record(
                    tx,
                    &actor,
                    "plugin.release.upload",
                    Target::new("plugin_release", id),
                    &serde_json::Value::Null,
                    &after,
                    None,
                )?;
                Ok((release, unused))
            })
            .await?
    };
    store::remove_blobs(&state.config.data_dir, &unused).await;
    match reason {
        None => Ok((StatusCode::CREATED, Json(ReleaseOut::from(release)))),
        Some(reason) => {
            tracing::warn!(admin = admin.id, plugin = %name, error = %reason, "plugin release rejected");
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "release_rejected", reason.clone())
                .with_details(serde_json::json!({ "release_id": release.id, "reason": reason })))
        }
    }
}

/// The kept releases of a plugin, newest first.
#[utoipa::path(
    get, path = "/api/admin/plugins/{name}/releases", tag = "admin", operation_id = "list_releases",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("name" = String, Path, description = "The plugin's name in plugins.toml")),
    responses(
        (status = 200, description = "Releases, newest first", body = Vec<ReleaseOut>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: Operator,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<ReleaseOut>>, ApiError> {
    let releases = state.db.read(move |c| store::list(c, &name)).await?;
    Ok(Json(releases.into_iter().map(ReleaseOut::from).collect()))
}

/// One release.
#[utoipa::path(
    get, path = "/api/admin/plugins/{name}/releases/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(
        ("name" = String, Path, description = "The plugin's name in plugins.toml"),
        ("id" = i64, Path, description = "Release id"),
    ),
    responses(
        (status = 200, description = "The release", body = ReleaseOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such release of this plugin", body = ErrorBody),
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    _admin: Operator,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> Result<Json<ReleaseOut>, ApiError> {
    let release = state.db.read(move |c| store::get(c, &name, id)).await?;
    release.map(|r| Json(ReleaseOut::from(r))).ok_or_else(|| ApiError::not_found("release"))
}

/// Makes `target` (a release, or the file with `None`) serve `name`: the
/// runtime swaps the build in at once, then the history records it.
async fn serve(state: &AppState, admin: &Operator, name: &str, target: Option<i64>) -> Result<SlotOut, ApiError> {
    slot_of(state, name)?;
    let release = match target {
        None => None,
        Some(id) => {
            let plugin = name.to_string();
            let release = state.db.read(move |c| store::get(c, &plugin, id)).await?;
            let release = release.ok_or_else(|| ApiError::not_found("release"))?;
            if release.state == ReleaseState::Rejected {
                return Err(ApiError::conflict(
                    "release_rejected",
                    format!("release {id} was rejected: {}", release.reason.unwrap_or_default()),
                ));
            }
            Some(SlotRelease {
                release_id: release.id,
                path: store::blob_path(&state.config.data_dir, &release.sha256),
                config: release.config,
                signature: release.signature,
            })
        }
    };
    state.plugins.serve_release(name, release).await.map_err(|reason| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "release_failed_to_load", reason.clone())
            .with_details(serde_json::json!({ "reason": reason }))
    })?;
    let (plugin, admin_id, actor) = (name.to_string(), admin.id, admin.clone());
    state
        .db
        .write(move |tx| {
            store::record_promotion(tx, &plugin, target, admin_id, now_ts())?;
            let after =
                serde_json::json!({"serving": target.map_or_else(|| "file".to_string(), |id| format!("release {id}"))});
            audit::record(
                tx,
                &actor,
                "plugin.serve",
                Target::new("plugin", &plugin),
                &serde_json::Value::Null,
                &after,
                None,
            )
            .map(|_| ())
        })
        .await?;
    tracing::info!(admin = admin.id, plugin = %name, release = ?target, "plugin slot source changed");
    let status = state.plugins.status().into_iter().find(|p| p.name == name);
    let plugin = status.map(PluginOut::from).ok_or_else(|| ApiError::not_found("plugin"))?;
    Ok(SlotOut { plugin })
}

/// Makes a staged (or earlier) release serve its plugin, swapped in at once:
/// calls in flight finish on the old build, later calls get the new one. It
/// keeps serving across restarts until a rollback.
#[utoipa::path(
    post, path = "/api/admin/plugins/{name}/releases/{id}/promote", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(
        ("name" = String, Path, description = "The plugin's name in plugins.toml"),
        ("id" = i64, Path, description = "Release id"),
    ),
    responses(
        (status = 200, description = "Now serving", body = SlotOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plugin or release", body = ErrorBody),
        (status = 409, description = "The release was rejected", body = ErrorBody),
        (status = 422, description = "It failed to load (`release_failed_to_load`); the previous build keeps serving", body = ErrorBody),
    )
)]
pub async fn promote(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> Result<Json<SlotOut>, ApiError> {
    let _one = RELEASE_ACTIONS.lock().await;
    serve(&state, &admin, &name, Some(id)).await.map(Json)
}

/// Rolls a plugin back: to what served before the current source (`{}`), to a kept release (`{"release_id": N}`) or to the file
/// plugins.toml names (`{"file": true}`).
#[utoipa::path(
    post, path = "/api/admin/plugins/{name}/rollback", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("name" = String, Path, description = "The plugin's name in plugins.toml")),
    request_body(content = RollbackRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Now serving", body = SlotOut),
        (status = 400, description = "Both `release_id` and `file`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plugin or release (it may have been pruned)", body = ErrorBody),
        (status = 409, description = "Nothing to roll back to (`nothing_to_roll_back`), or the release was rejected", body = ErrorBody),
        (status = 422, description = "It failed to load (`release_failed_to_load`); the current build keeps serving", body = ErrorBody),
    )
)]
pub async fn rollback(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> Result<Json<SlotOut>, ApiError> {
    let _one = RELEASE_ACTIONS.lock().await;
    let target = match (request.release_id, request.file) {
        (Some(_), true) => return Err(ApiError::bad_request("give either `release_id` or `file`, not both")),
        (Some(id), false) => Some(id),
        (None, true) => None,
        (None, false) => {
            let plugin = name.clone();
            let previous = state.db.read(move |c| store::previous_source(c, &plugin)).await?;
            previous.ok_or_else(|| {
                ApiError::conflict("nothing_to_roll_back", "no release was ever promoted; the file serves")
            })?
        }
    };
    serve(&state, &admin, &name, target).await.map(Json)
}

/// The slots served by a promoted release, as stored, for the runtime's
/// first load: a promotion survives a restart. A release whose component is
/// missing is left out (the file serves) and logged.
pub fn serving_releases(
    db: &crate::core::Db,
    data_dir: &std::path::Path,
) -> anyhow::Result<BTreeMap<String, SlotRelease>> {
    let releases = db.blocking_write(|tx| Ok(store::serving_all(tx)?))?;
    let mut out = BTreeMap::new();
    for r in releases {
        let path = store::blob_path(data_dir, &r.sha256);
        if !path.exists() {
            tracing::error!(plugin = %r.plugin, release = r.id, path = %path.display(),
                "the promoted release's component is missing; the file in plugins.toml serves");
            continue;
        }
        out.insert(r.plugin.clone(), SlotRelease { release_id: r.id, path, config: r.config, signature: r.signature });
    }
    Ok(out)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(
            // The upload counts its own bytes against the release limit.
            OpenApiRouter::new().routes(routes!(upload, list)).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .routes(routes!(detail))
        .routes(routes!(promote))
        .routes(routes!(rollback))
        .routes(routes!(candidates::start_shadow, candidates::shadow_report, candidates::stop_shadow))
        .routes(routes!(candidates::start_canary, candidates::canary_report, candidates::stop_canary))
}
