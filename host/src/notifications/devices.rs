//! `POST /api/user/device`: the app registers its FCM token after sign-in and
//! whenever Firebase rotates it; `DELETE /api/user/device/{device_id}`
//! deregisters an install. A device remembers the sign-in session that
//! registered it, so signing out of that session stops its pushes.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    core::{ApiError, ApiJson, ApiPath, AuthUser, error::ErrorBody, now_ts, ts_to_rfc3339},
    state::AppState,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Android,
    Ios,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "ios" { Platform::Ios } else { Platform::Android }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceRegistration {
    /// Stable id of the app install, chosen by the app (1 to 255 characters).
    pub device_id: String,
    /// The FCM registration token of this install.
    pub fcm_token: String,
    pub platform: Platform,
    /// e.g. `1.4.2`.
    pub app_version: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceOut {
    pub id: i64,
    pub device_id: String,
    pub platform: Platform,
    pub app_version: Option<String>,
    /// False once FCM reported the token dead; registering again revives it.
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn clean(field: &str, value: &str, min: usize, max: usize, ok: impl Fn(char) -> bool) -> Result<String, ApiError> {
    let v = value.trim();
    let n = v.chars().count();
    if n < min || n > max {
        return Err(ApiError::invalid_field(field, format!("must be {min} to {max} characters")));
    }
    if !v.chars().all(ok) {
        return Err(ApiError::invalid_field(field, "contains characters that are not allowed"));
    }
    Ok(v.to_string())
}

fn load_devices(c: &Connection, user_id: i64, only_id: Option<i64>) -> Result<Vec<DeviceOut>, ApiError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, device_id, platform, app_version, is_active, created_at, updated_at
         FROM user_devices WHERE user_id = ?1 AND (?2 IS NULL OR id = ?2) ORDER BY id DESC",
    )?;
    let rows = stmt.query_map(params![user_id, only_id], |r| {
        Ok(DeviceOut {
            id: r.get(0)?,
            device_id: r.get(1)?,
            platform: Platform::parse(&r.get::<_, String>(2)?),
            app_version: r.get(3)?,
            is_active: r.get(4)?,
            created_at: ts_to_rfc3339(r.get(5)?),
            updated_at: ts_to_rfc3339(r.get(6)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Registers this app install for push, or updates it (one row per
/// `device_id` per user). A token registered here is removed from any other
/// account or install that held it: whoever signed in last gets the pushes.
#[utoipa::path(
    post, path = "/api/user/device", tag = "notifications",
    security(("bearer" = [])),
    request_body = DeviceRegistration,
    responses(
        (status = 201, description = "Device registered", body = DeviceOut),
        (status = 200, description = "Device updated", body = DeviceOut),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn register_device(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<DeviceRegistration>,
) -> Result<(StatusCode, Json<DeviceOut>), ApiError> {
    let device_id = clean("device_id", &req.device_id, 1, 255, |c| !c.is_control())?;
    // FCM tokens are URL-safe ASCII; anything else is not a token.
    let token = clean("fcm_token", &req.fcm_token, 10, 4096, |c| c.is_ascii_graphic())?;
    let app_version = req
        .app_version
        .map(|v| clean("app_version", &v, 1, 32, |c| c.is_ascii_alphanumeric() || ".-+_".contains(c)))
        .transpose()?;
    let platform = req.platform;
    let (created, device) = state
        .db
        .write(move |tx| {
            let now = now_ts();
            // The token now belongs to this install only.
            let moved = tx.execute(
                "DELETE FROM user_devices WHERE fcm_token = ?1 AND NOT (user_id = ?2 AND device_id = ?3)",
                params![token, user.id, device_id],
            )?;
            if moved > 0 {
                tracing::info!(user_id = user.id, "FCM token moved to this account; removed from its previous holder");
            }
            let existed: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM user_devices WHERE user_id = ?1 AND device_id = ?2)",
                params![user.id, device_id],
                |r| r.get(0),
            )?;
            let id: i64 = tx.query_row(
                "INSERT INTO user_devices (user_id, device_id, fcm_token, platform, app_version, session_id,
                    created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?7, ?6, ?6)
                 ON CONFLICT (user_id, device_id) DO UPDATE SET
                    fcm_token = excluded.fcm_token, platform = excluded.platform,
                    app_version = excluded.app_version, is_active = 1, deactivated_reason = NULL,
                    session_id = excluded.session_id, updated_at = excluded.updated_at
                 RETURNING id",
                params![user.id, device_id, token, platform.as_str(), app_version, now, user.session_id],
                |r| r.get(0),
            )?;
            let device = load_devices(tx, user.id, Some(id))?
                .pop()
                .ok_or_else(|| ApiError::internal("registered device vanished"))?;
            Ok((!existed, device))
        })
        .await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(device)))
}

/// Deregisters one of the caller's app installs (by the app's `device_id`):
/// it gets no more pushes. Someone else's device is "not found".
#[utoipa::path(
    delete, path = "/api/user/device/{device_id}", tag = "notifications",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The app install's id, as registered")),
    responses(
        (status = 204, description = "Device deregistered"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such device of yours", body = ErrorBody),
    )
)]
pub async fn deregister_device(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(device_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let device_id = device_id.trim().to_string();
    let removed = state
        .db
        .write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM user_devices WHERE user_id = ?1 AND device_id = ?2",
                params![user.id, device_id],
            )?)
        })
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found("device"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Sign-out: the devices registered in the session `session_id` stop
/// getting pushes (registering again revives them), in the caller's
/// transaction.
pub fn sign_out_session(tx: &rusqlite::Transaction<'_>, user_id: i64, session_id: &str) -> Result<usize, ApiError> {
    Ok(tx.execute(
        "UPDATE user_devices SET is_active = 0, deactivated_reason = 'signed_out', updated_at = ?3
         WHERE user_id = ?1 AND session_id = ?2 AND is_active = 1",
        params![user_id, session_id, now_ts()],
    )?)
}

/// The caller's registered devices, newest first.
#[utoipa::path(
    get, path = "/api/user/devices", tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Devices", body = Vec<DeviceOut>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_devices(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<DeviceOut>>, ApiError> {
    Ok(Json(state.db.read(move |c| load_devices(c, user.id, None)).await?))
}
