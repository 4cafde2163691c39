//! `GET /api/app/config` for the app, `GET/PUT /api/admin/settings` for operators.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::SettingOut;
use crate::{
    core::{
        ApiError, ApiJson, Operator,
        audit::{self, Target},
        error::ErrorBody,
        now_ts,
    },
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(app_config)).routes(routes!(list_settings, update_settings))
}

/// The public settings, by key (e.g. `rentals.free_return_minutes`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AppConfigOut {
    #[schema(value_type = Object)]
    pub settings: BTreeMap<String, Value>,
}

/// The settings the app may read, with their current values.
#[utoipa::path(
    get, path = "/api/app/config", tag = "app",
    responses((status = 200, description = "Public settings and their values", body = AppConfigOut))
)]
pub async fn app_config(State(state): State<AppState>) -> Result<Json<AppConfigOut>, ApiError> {
    let settings = state.settings.clone();
    Ok(Json(AppConfigOut { settings: state.db.read(move |c| settings.public_values(c)).await? }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsOut {
    pub results: Vec<SettingOut>,
}

/// Every setting: value, default, bounds, unit and whether the app sees it.
#[utoipa::path(
    get, path = "/api/admin/settings", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance", "field_tech"]))),
    responses(
        (status = 200, description = "Every setting", body = SettingsOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator allowed to see settings", body = ErrorBody),
    )
)]
pub async fn list_settings(State(state): State<AppState>, _operator: Operator) -> Result<Json<SettingsOut>, ApiError> {
    let settings = state.settings.clone();
    Ok(Json(SettingsOut { results: state.db.read(move |c| settings.list(c)).await? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSettings {
    /// New values by key; `null` resets a setting to its default.
    #[schema(value_type = Object)]
    pub values: BTreeMap<String, Value>,
    /// Why (kept in the audit log).
    pub reason: Option<String>,
}

/// Changes settings, all or none: an unknown key, a value of the wrong type
/// or out of bounds refuses the whole request.
#[utoipa::path(
    put, path = "/api/admin/settings", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = UpdateSettings,
    responses(
        (status = 200, description = "Every setting after the change", body = SettingsOut),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator allowed to change settings", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Unknown setting (`unknown_setting`) or invalid value (`invalid_setting`)", body = ErrorBody),
    )
)]
pub async fn update_settings(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<UpdateSettings>,
) -> Result<Json<SettingsOut>, ApiError> {
    let reason = audit::optional_reason(body.reason.as_deref())?;
    let settings = state.settings.clone();
    let results = state
        .db
        .write(move |tx| {
            let values = |list: &[SettingOut]| -> BTreeMap<String, Value> {
                list.iter().map(|s| (s.key.clone(), s.value.clone())).collect()
            };
            let before = values(&settings.list(tx)?);
            settings.apply(tx, &body.values, now_ts())?;
            let results = settings.list(tx)?;
            let after = values(&results);
            audit::record(
                tx,
                &operator,
                "settings.update",
                Target::new("settings", "app_config"),
                &before,
                &after,
                reason.as_deref(),
            )?;
            Ok(results)
        })
        .await?;
    Ok(Json(SettingsOut { results }))
}
