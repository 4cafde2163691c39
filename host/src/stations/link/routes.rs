//! Operator endpoints of the station link.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    EjectOutcome, LinkStatus, StationTraffic,
    apply::{self, StationRef},
    broker::HOST_USERNAME,
};
use crate::{
    config::MqttMode,
    core::{
        ApiError, ApiJson, ApiPath, Operator,
        audit::{self, Target},
        error::ErrorBody,
    },
    state::AppState,
    stations::status::StationStatus,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EjectRequest {
    /// 1-based slot number.
    pub slot: u16,
    /// Seconds to wait for the station's answer (1-60, default 15).
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EjectResult {
    /// `ejected`.
    pub outcome: &'static str,
    pub power_bank: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationCredentials {
    /// Where the station connects; `null` when the host uses an external
    /// broker, whose accounts are managed there.
    pub broker: Option<String>,
    pub client_id: String,
    pub username: String,
    pub password: Option<String>,
    /// The station-protocol plugin the station speaks.
    pub protocol: String,
    /// How the station names itself on the wire (its serial unless set).
    pub device_id: String,
    /// Prepended to every topic below.
    pub mountpoint: String,
    /// Where the station's protocol listens; empty if that plugin is not loaded.
    pub topic_filters: Vec<String>,
}

/// How one station talks to the host, and what the link has seen of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StationLinkInfo {
    pub serial_number: String,
    pub device_id: String,
    pub protocol: String,
    /// Whether that protocol plugin is loaded and routing messages.
    pub protocol_loaded: bool,
    pub traffic: StationTraffic,
}

/// Connection state and counters of the MQTT station link.
#[utoipa::path(
    get, path = "/api/admin/station-link", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "field_tech"]))),
    responses(
        (status = 200, description = "Link status", body = LinkStatus),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
    )
)]
pub async fn link_status(State(state): State<AppState>, _operator: Operator) -> Json<LinkStatus> {
    Json(state.station_link.status())
}

async fn station_exists(state: &AppState, sn: String) -> Result<StationStatus, ApiError> {
    state
        .db
        .read(move |c| {
            Ok(c.query_row("SELECT status FROM stations WHERE serial_number = ?1", [&sn], |r| r.get("status"))
                .optional()?)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("station"))
}

async fn station_ref(state: &AppState, sn: String) -> Result<StationRef, ApiError> {
    state.db.read(move |c| apply::station_by_serial(c, &sn)).await?.ok_or_else(|| ApiError::not_found("station"))
}

/// Ejects the power bank in a slot (maintenance, stock collection) and waits
/// for the station's answer.
#[utoipa::path(
    post, path = "/api/admin/stations/{sn}/eject", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("sn" = String, Path, description = "Station serial number")),
    request_body = EjectRequest,
    responses(
        (status = 200, description = "The station ejected the bank", body = EjectResult),
        (status = 400, description = "Bad slot or timeout", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
        (status = 409, description = "Station not online", body = ErrorBody),
        (status = 502, description = "The station reported a failure", body = ErrorBody),
        (status = 503, description = "Station link down", body = ErrorBody),
        (status = 504, description = "No answer in time", body = ErrorBody),
    )
)]
pub async fn eject(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(sn): ApiPath<String>,
    ApiJson(req): ApiJson<EjectRequest>,
) -> Result<Json<EjectResult>, ApiError> {
    if req.slot == 0 {
        return Err(ApiError::invalid_field("slot", "slots are numbered from 1"));
    }
    let timeout = req.timeout_secs.unwrap_or(15);
    if !(1..=60).contains(&timeout) {
        return Err(ApiError::invalid_field("timeout_secs", "must be 1 to 60"));
    }
    let status = station_exists(&state, sn.clone()).await?;
    if status != StationStatus::Online {
        return Err(ApiError::conflict("station_offline", format!("station is {status}")));
    }
    match state.station_link.eject(&sn, req.slot, Duration::from_secs(timeout)).await? {
        Some(EjectOutcome::Ejected { power_bank }) => {
            // The bank left the slot in the link's own transaction, when the
            // station answered; the operator's command is recorded right after.
            let out = EjectResult { outcome: "ejected", power_bank };
            let after = serde_json::json!({ "slot": req.slot, "power_bank": out.power_bank });
            state
                .db
                .write(move |tx| {
                    audit::record(tx, &operator, "station.eject", Target::new("station", &sn), &(), &after, None)
                })
                .await?;
            Ok(Json(out))
        }
        Some(EjectOutcome::Failed { reason }) => {
            Err(ApiError::new(StatusCode::BAD_GATEWAY, "eject_failed", format!("station could not eject: {reason}")))
        }
        None => Err(ApiError::new(StatusCode::GATEWAY_TIMEOUT, "eject_timeout", "the station did not answer in time")),
    }
}

/// The MQTT login and topics for installing a station.
#[utoipa::path(
    get, path = "/api/admin/stations/{sn}/mqtt-credentials", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("sn" = String, Path, description = "Station serial number")),
    responses(
        (status = 200, description = "Credentials", body = StationCredentials),
        (status = 404, description = "No such station", body = ErrorBody),
    )
)]
pub async fn credentials(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(sn): ApiPath<String>,
) -> Result<Json<StationCredentials>, ApiError> {
    let station = station_ref(&state, sn).await?;
    let link = &state.station_link;
    let (broker, password) = match &link.config().mode {
        MqttMode::Embedded { listen } => {
            (Some(format!("mqtt://{listen}")), Some(link.credentials().station_password(&station.device_id)))
        }
        _ => (None, None),
    };
    debug_assert_ne!(station.device_id, HOST_USERNAME);
    let topic_filters = link
        .routes()
        .iter()
        .find(|r| r.protocol == station.protocol)
        .map(|r| r.topic_filters.clone())
        .unwrap_or_default();
    Ok(Json(StationCredentials {
        broker,
        client_id: format!("station-{}", station.device_id),
        username: station.device_id.clone(),
        password,
        protocol: station.protocol,
        device_id: station.device_id,
        mountpoint: link.config().mountpoint.clone(),
        topic_filters,
    }))
}

/// The station's protocol and what the link has seen of it since the host
/// started: messages applied, undecodable ones and the last decode error.
#[utoipa::path(
    get, path = "/api/admin/stations/{sn}/link", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "field_tech"]))),
    params(("sn" = String, Path, description = "Station serial number")),
    responses(
        (status = 200, description = "Protocol and traffic", body = StationLinkInfo),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
    )
)]
pub async fn station_link(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(sn): ApiPath<String>,
) -> Result<Json<StationLinkInfo>, ApiError> {
    let station = station_ref(&state, sn).await?;
    let link = &state.station_link;
    Ok(Json(StationLinkInfo {
        protocol_loaded: link.routes().iter().any(|r| r.protocol == station.protocol),
        traffic: link.traffic(&station.device_id),
        serial_number: station.serial,
        device_id: station.device_id,
        protocol: station.protocol,
    }))
}

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(link_status))
        .routes(routes!(eject))
        .routes(routes!(credentials))
        .routes(routes!(station_link))
}
