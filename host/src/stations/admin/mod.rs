//! Operator endpoints for the station catalogue: stations, slots, amenities,
//! media and power banks. Stations are retired, never deleted: rentals,
//! issues and favourites keep pointing at them.

pub mod amenities;
mod queries;
mod validate;

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::{
    queries::{detail, find_live_station, find_station, resize_slots, set_amenities},
    validate::{
        amenity_codes, ensure_device_id_free, http_url, is_unique_violation, latitude, longitude, opening_hours,
        opt_text, protocol, serial, status, text,
    },
};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, Operator,
        audit::{self, Target},
        error::ErrorBody,
        now_ts,
    },
    state::AppState,
    stations::{
        banks::BankStatus,
        listing::{AmenityOut, MediaOut, SlotOut, StationDetail, validate_amenity_code},
        status::{SlotStatus, StationStatus},
    },
};

pub const MAX_SLOTS: i64 = 64;
pub const MAX_MEDIA_PER_STATION: i64 = 20;
const MEDIA_TYPES: &[&str] = &["image", "video", "360_view", "floor_plan"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StationCreate {
    /// 3 to 64 characters: letters, digits, `-` and `_`; unique.
    pub serial_number: String,
    pub name: String,
    pub address: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    /// `online`, `offline` (default) or `maintenance`.
    pub status: Option<String>,
    pub firmware_version: Option<String>,
    /// `HH:MM-HH:MM`, local time.
    pub opening_hours: Option<String>,
    /// Empty slots to create, numbered from 1 (0 to 64, default 0).
    pub total_slots: Option<i64>,
    /// Amenity codes.
    #[serde(default)]
    pub amenities: Vec<String>,
    /// The station-protocol plugin (a name in plugins.toml) the station
    /// speaks; default `native`.
    pub protocol: Option<String>,
    /// How the station names itself on the wire, e.g. a volinks cabinet's
    /// IMEI; default: its serial number.
    pub device_id: Option<String>,
}

/// Fields to change; omitted fields keep their value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StationUpdate {
    pub name: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// `online`, `offline` or `maintenance`; retire with `DELETE`.
    pub status: Option<String>,
    pub firmware_version: Option<String>,
    /// `HH:MM-HH:MM`, local time.
    pub opening_hours: Option<String>,
    /// The station-protocol plugin the station speaks.
    pub protocol: Option<String>,
    /// How the station names itself on the wire.
    pub device_id: Option<String>,
}

/// Give exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotsIn {
    /// The slot count the station should have (0 to 64). Growing adds empty
    /// slots; shrinking removes the highest-numbered slots, which must be
    /// empty.
    pub total_slots: Option<i64>,
    /// Empty slots to add after the last one (1 to 64).
    pub add: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotsOut {
    pub serial_number: String,
    pub total_slots: i64,
    pub slots: Vec<SlotOut>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmenityIn {
    /// 1 to 32 characters: `a-z`, `0-9`, `_`, `-`; unique.
    pub code: String,
    /// 2 to 100 characters.
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StationAmenitiesIn {
    /// The complete set of amenity codes the station has (replaces the old set).
    pub codes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaIn {
    /// An `http(s)` URL, up to 500 characters.
    pub url: String,
    /// `image` (default), `video`, `360_view` or `floor_plan`.
    pub media_type: Option<String>,
    /// Makes this the station's primary picture (the previous one stops being it).
    #[serde(default)]
    pub is_primary: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerBankIn {
    /// 3 to 64 characters: letters, digits, `-` and `_`; unique.
    pub serial_number: String,
    /// 1000 to 100000.
    pub capacity_mah: i64,
    /// 0 to 100 (default 100).
    pub battery_level: Option<i64>,
    /// The station whose slot the bank goes into.
    pub station_sn: String,
    /// The slot, which must exist and be empty.
    pub slot_index: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PowerBankOut {
    pub id: i64,
    pub serial_number: String,
    pub capacity_mah: i64,
    pub battery_level: i64,
    pub status: BankStatus,
    pub station_sn: String,
    pub slot_index: i64,
}

/// Adds a station.
#[utoipa::path(
    post, path = "/api/admin/stations", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    request_body = StationCreate,
    responses(
        (status = 201, description = "Station created", body = StationDetail),
        (status = 400, description = "Invalid fields or unknown amenity code", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 409, description = "Serial number or device id already used", body = ErrorBody),
    )
)]
pub async fn create_station(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<StationCreate>,
) -> Result<(StatusCode, Json<StationDetail>), ApiError> {
    let sn = serial("serial_number", &body.serial_number)?;
    let name = text("name", &body.name, 100)?;
    let address = text("address", &body.address, 255)?;
    let city = text("city", &body.city, 100)?;
    let (lat, lng) = (latitude(body.latitude)?, longitude(body.longitude)?);
    let status = status(body.status.as_deref())?.unwrap_or(StationStatus::Offline);
    let firmware = opt_text("firmware_version", body.firmware_version.as_deref(), 50)?;
    let hours = opening_hours(body.opening_hours.as_deref())?;
    let slots = body.total_slots.unwrap_or(0);
    if !(0..=MAX_SLOTS).contains(&slots) {
        return Err(ApiError::invalid_field("total_slots", format!("must be 0 to {MAX_SLOTS}")));
    }
    let amenities = amenity_codes(&body.amenities)?;
    let protocol = protocol(&state, body.protocol.as_deref())?.unwrap_or_else(|| "native".into());
    let device_id = body.device_id.as_deref().map(|d| serial("device_id", d)).transpose()?;
    let detail = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let taken: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM stations WHERE serial_number = ?1)", [&sn], |r| r.get(0))?;
            if taken {
                return Err(ApiError::conflict("duplicate_serial", "a station with this serial number exists"));
            }
            ensure_device_id_free(tx, device_id.as_deref().unwrap_or(&sn), &sn)?;
            tx.execute(
                "INSERT INTO stations (serial_number, name, address, city, latitude, longitude, status,
                                       firmware_version, opening_hours, protocol, device_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                params![sn, name, address, city, lat, lng, status, firmware, hours, protocol, device_id, now],
            )?;
            let id = tx.last_insert_rowid();
            resize_slots(tx, id, slots, now)?;
            set_amenities(tx, id, &amenities)?;
            let created = detail(tx, &sn)?;
            audit::record(tx, &operator, "station.create", Target::new("station", &sn), &(), &created, None)?;
            Ok(created)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// Changes a station's details.
#[utoipa::path(
    patch, path = "/api/admin/stations/{sn}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("sn" = String, Path, description = "Station serial number")),
    request_body = StationUpdate,
    responses(
        (status = 200, description = "Updated station", body = StationDetail),
        (status = 400, description = "Invalid or no fields", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
        (status = 409, description = "The station is retired, or the device id is taken", body = ErrorBody),
    )
)]
pub async fn update_station(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(sn): ApiPath<String>,
    ApiJson(body): ApiJson<StationUpdate>,
) -> Result<Json<StationDetail>, ApiError> {
    let name = opt_text("name", body.name.as_deref(), 100)?;
    let address = opt_text("address", body.address.as_deref(), 255)?;
    let city = opt_text("city", body.city.as_deref(), 100)?;
    let lat = body.latitude.map(latitude).transpose()?;
    let lng = body.longitude.map(longitude).transpose()?;
    let status = status(body.status.as_deref())?;
    let firmware = opt_text("firmware_version", body.firmware_version.as_deref(), 50)?;
    let hours = opening_hours(body.opening_hours.as_deref())?;
    let protocol = protocol(&state, body.protocol.as_deref())?;
    let device_id = body.device_id.as_deref().map(|d| serial("device_id", d)).transpose()?;
    let nothing = protocol.is_none()
        && device_id.is_none()
        && name.is_none()
        && address.is_none()
        && city.is_none()
        && lat.is_none()
        && lng.is_none()
        && status.is_none()
        && firmware.is_none()
        && hours.is_none();
    if nothing {
        return Err(ApiError::bad_request("no fields to change"));
    }
    let detail = state
        .db
        .write(move |tx| {
            let id = find_live_station(tx, &sn)?;
            if let Some(device_id) = &device_id {
                ensure_device_id_free(tx, device_id, &sn)?;
            }
            let before = detail(tx, &sn)?;
            tx.execute(
                "UPDATE stations SET
                    name = COALESCE(?2, name), address = COALESCE(?3, address), city = COALESCE(?4, city),
                    latitude = COALESCE(?5, latitude), longitude = COALESCE(?6, longitude),
                    status = COALESCE(?7, status), firmware_version = COALESCE(?8, firmware_version),
                    opening_hours = COALESCE(?9, opening_hours), protocol = COALESCE(?11, protocol),
                    device_id = COALESCE(?12, device_id), updated_at = ?10
                 WHERE id = ?1",
                params![id, name, address, city, lat, lng, status, firmware, hours, now_ts(), protocol, device_id],
            )?;
            let after = detail(tx, &sn)?;
            audit::record(tx, &operator, "station.update", Target::new("station", &sn), &before, &after, None)?;
            Ok(after)
        })
        .await?;
    Ok(Json(detail))
}

/// Retires a station: it leaves every list and search and takes no rentals;
/// its history stays. Retiring a retired station changes nothing.
#[utoipa::path(
    delete, path = "/api/admin/stations/{sn}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("sn" = String, Path, description = "Station serial number")),
    responses(
        (status = 200, description = "The retired station", body = StationDetail),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
    )
)]
pub async fn retire_station(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(sn): ApiPath<String>,
) -> Result<Json<StationDetail>, ApiError> {
    let detail = state
        .db
        .write(move |tx| {
            let (id, _) = find_station(tx, &sn)?;
            let before = detail(tx, &sn)?;
            tx.execute(
                "UPDATE stations SET status = ?3, updated_at = ?2 WHERE id = ?1 AND status != ?3",
                params![id, now_ts(), StationStatus::Retired],
            )?;
            let after = detail(tx, &sn)?;
            audit::record(tx, &operator, "station.retire", Target::new("station", &sn), &before, &after, None)?;
            Ok(after)
        })
        .await?;
    Ok(Json(detail))
}

/// Sets a station's slot count, or adds slots.
#[utoipa::path(
    post, path = "/api/admin/stations/{sn}/slots", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("sn" = String, Path, description = "Station serial number")),
    request_body = SlotsIn,
    responses(
        (status = 200, description = "The station's slots", body = SlotsOut),
        (status = 400, description = "Neither or both fields, or out of range", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
        (status = 409, description = "Retired station, or a slot to remove is not empty", body = ErrorBody),
    )
)]
pub async fn set_slots(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(sn): ApiPath<String>,
    ApiJson(body): ApiJson<SlotsIn>,
) -> Result<Json<SlotsOut>, ApiError> {
    match (body.total_slots, body.add) {
        (Some(n), None) if !(0..=MAX_SLOTS).contains(&n) => {
            return Err(ApiError::invalid_field("total_slots", format!("must be 0 to {MAX_SLOTS}")));
        }
        (None, Some(n)) if !(1..=MAX_SLOTS).contains(&n) => {
            return Err(ApiError::invalid_field("add", format!("must be 1 to {MAX_SLOTS}")));
        }
        (Some(_), None) | (None, Some(_)) => {}
        _ => return Err(ApiError::bad_request("give exactly one of total_slots and add")),
    }
    let out = state
        .db
        .write(move |tx| {
            let id = find_live_station(tx, &sn)?;
            let before = detail(tx, &sn)?;
            let count: i64 =
                tx.query_row("SELECT COUNT(*) FROM station_slots WHERE station_id = ?1", [id], |r| r.get(0))?;
            let target = body.total_slots.unwrap_or(count + body.add.unwrap_or(0));
            if target > MAX_SLOTS {
                return Err(ApiError::invalid_field("add", format!("a station has at most {MAX_SLOTS} slots")));
            }
            resize_slots(tx, id, target, now_ts())?;
            let d = detail(tx, &sn)?;
            audit::record(tx, &operator, "station.slots", Target::new("station", &sn), &before, &d, None)?;
            Ok(SlotsOut { serial_number: sn, total_slots: d.summary.total_slots, slots: d.slots })
        })
        .await?;
    Ok(Json(out))
}

/// Adds an amenity to the catalogue.
#[utoipa::path(
    post, path = "/api/admin/amenities", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    request_body = AmenityIn,
    responses(
        (status = 201, description = "Amenity created", body = AmenityOut),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 409, description = "Code already used", body = ErrorBody),
    )
)]
pub async fn create_amenity(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<AmenityIn>,
) -> Result<(StatusCode, Json<AmenityOut>), ApiError> {
    let code = body.code.trim().to_ascii_lowercase();
    validate_amenity_code(&code).map_err(|m| ApiError::invalid_field("code", m))?;
    let name = text("name", &body.name, 100)?;
    let out = state
        .db
        .write(move |tx| {
            tx.execute("INSERT INTO station_amenities (code, name) VALUES (?1, ?2)", params![code, name]).map_err(
                |e| {
                    if is_unique_violation(&e) {
                        ApiError::conflict("duplicate_code", "an amenity with this code exists")
                    } else {
                        e.into()
                    }
                },
            )?;
            let out = AmenityOut { code, name };
            audit::record(tx, &operator, "amenity.create", Target::new("amenity", &out.code), &(), &out, None)?;
            Ok(out)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Replaces the set of amenities a station has.
#[utoipa::path(
    put, path = "/api/admin/stations/{sn}/amenities", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("sn" = String, Path, description = "Station serial number")),
    request_body = StationAmenitiesIn,
    responses(
        (status = 200, description = "The station with its new amenities", body = StationDetail),
        (status = 400, description = "Invalid or unknown amenity code", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
        (status = 409, description = "The station is retired", body = ErrorBody),
    )
)]
pub async fn set_station_amenities(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(sn): ApiPath<String>,
    ApiJson(body): ApiJson<StationAmenitiesIn>,
) -> Result<Json<StationDetail>, ApiError> {
    let codes = amenity_codes(&body.codes)?;
    let detail = state
        .db
        .write(move |tx| {
            let id = find_live_station(tx, &sn)?;
            let before = detail(tx, &sn)?;
            set_amenities(tx, id, &codes)?;
            tx.execute("UPDATE stations SET updated_at = ?2 WHERE id = ?1", params![id, now_ts()])?;
            let after = detail(tx, &sn)?;
            audit::record(tx, &operator, "station.amenities", Target::new("station", &sn), &before, &after, None)?;
            Ok(after)
        })
        .await?;
    Ok(Json(detail))
}

/// Adds a picture, video, 360° view or floor plan to a station.
#[utoipa::path(
    post, path = "/api/admin/stations/{sn}/media", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("sn" = String, Path, description = "Station serial number")),
    request_body = MediaIn,
    responses(
        (status = 201, description = "Media added", body = MediaOut),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
        (status = 409, description = "Retired station, or it has the maximum of 20 media", body = ErrorBody),
    )
)]
pub async fn add_media(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(sn): ApiPath<String>,
    ApiJson(body): ApiJson<MediaIn>,
) -> Result<(StatusCode, Json<MediaOut>), ApiError> {
    let url = http_url("url", &body.url)?;
    let media_type = body.media_type.unwrap_or_else(|| "image".into());
    if !MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(ApiError::invalid_field("media_type", format!("must be one of {}", MEDIA_TYPES.join(", "))));
    }
    let is_primary = body.is_primary;
    let out = state
        .db
        .write(move |tx| {
            let station = find_live_station(tx, &sn)?;
            let count: i64 =
                tx.query_row("SELECT COUNT(*) FROM station_media WHERE station_id = ?1", [station], |r| r.get(0))?;
            if count >= MAX_MEDIA_PER_STATION {
                return Err(ApiError::conflict(
                    "too_many_media",
                    format!("a station has at most {MAX_MEDIA_PER_STATION} media"),
                ));
            }
            if is_primary {
                tx.execute("UPDATE station_media SET is_primary = 0 WHERE station_id = ?1", [station])?;
            }
            tx.execute(
                "INSERT INTO station_media (station_id, url, media_type, is_primary, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![station, url, media_type, is_primary, now_ts()],
            )?;
            let out = MediaOut { id: tx.last_insert_rowid(), url, media_type, is_primary };
            audit::record(tx, &operator, "station.media_add", Target::new("station", &sn), &(), &out, None)?;
            Ok(out)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Registers a new power bank into an empty slot of a station.
#[utoipa::path(
    post, path = "/api/admin/power-banks", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    request_body = PowerBankIn,
    responses(
        (status = 201, description = "Power bank registered in the slot", body = PowerBankOut),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such station or slot", body = ErrorBody),
        (status = 409, description = "Serial number already used, slot not empty, or station retired", body = ErrorBody),
    )
)]
pub async fn register_power_bank(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<PowerBankIn>,
) -> Result<(StatusCode, Json<PowerBankOut>), ApiError> {
    let sn = serial("serial_number", &body.serial_number)?;
    let station_sn = serial("station_sn", &body.station_sn)?;
    if !(1_000..=100_000).contains(&body.capacity_mah) {
        return Err(ApiError::invalid_field("capacity_mah", "must be 1000 to 100000"));
    }
    let battery = body.battery_level.unwrap_or(100);
    if !(0..=100).contains(&battery) {
        return Err(ApiError::invalid_field("battery_level", "must be 0 to 100"));
    }
    let (capacity, slot_index) = (body.capacity_mah, body.slot_index);
    let out = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let station = find_live_station(tx, &station_sn)?;
            let taken: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM power_banks WHERE serial_number = ?1)", [&sn], |r| r.get(0))?;
            if taken {
                return Err(ApiError::conflict("duplicate_serial", "a power bank with this serial number exists"));
            }
            let slot: (i64, SlotStatus, Option<i64>) = tx
                .query_row(
                    "SELECT id, status, power_bank_id FROM station_slots WHERE station_id = ?1 AND slot_index = ?2",
                    params![station, slot_index],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?
                .ok_or_else(|| ApiError::not_found("slot"))?;
            if slot.1 != SlotStatus::Empty || slot.2.is_some() {
                return Err(ApiError::conflict("slot_not_empty", format!("slot {slot_index} is {}", slot.1)));
            }
            tx.execute(
                "INSERT INTO power_banks (serial_number, capacity_mah, status, battery_level, station_id, created_at, updated_at)
                 VALUES (?1, ?2, ?6, ?3, ?4, ?5, ?5)",
                params![sn, capacity, battery, station, now, BankStatus::InSlot],
            )?;
            let bank = tx.last_insert_rowid();
            tx.execute(
                "UPDATE station_slots SET status = ?4, power_bank_id = ?2, updated_at = ?3 WHERE id = ?1",
                params![slot.0, bank, now, SlotStatus::Occupied],
            )?;
            let out = PowerBankOut {
                id: bank,
                serial_number: sn,
                capacity_mah: capacity,
                battery_level: battery,
                status: BankStatus::InSlot,
                station_sn,
                slot_index,
            };
            audit::record(tx, &operator, "power_bank.register", Target::new("power_bank", &out.serial_number), &(), &out, None)?;
            Ok(out)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}
