//! `GET /api/stations` and `GET /api/stations/{sn}`.

use axum::{Json, extract::State};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::core::{ApiError, ApiPath, ApiQuery, AppState, Page, error::ErrorBody, opt_ts};

const STATUSES: &[&str] = &["online", "offline", "maintenance"];

#[derive(Debug, Serialize, ToSchema)]
pub struct StationSummary {
    pub id: i64,
    pub serial_number: String,
    pub name: String,
    pub address: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    pub status: String,
    pub total_slots: i64,
    /// Slots holding a power bank charged enough to rent.
    pub available_power_banks: i64,
    /// Slots a power bank can be returned into.
    pub empty_slots: i64,
    pub last_heartbeat_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotOut {
    pub slot_index: i64,
    pub status: String,
    pub power_bank_serial: Option<String>,
    pub battery_level: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationDetail {
    #[serde(flatten)]
    pub summary: StationSummary,
    pub firmware_version: Option<String>,
    pub opening_hours: Option<String>,
    pub slots: Vec<SlotOut>,
    pub amenities: Vec<String>,
    pub media: Vec<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StationFilter {
    /// `online`, `offline` or `maintenance`.
    pub status: Option<String>,
    pub city: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A power bank counts as rentable from this charge level (percent).
pub const RENTABLE_BATTERY: i64 = 20;

const SUMMARY_SELECT: &str = "
    SELECT s.id, s.serial_number, s.name, s.address, s.city, s.latitude, s.longitude, s.status,
           COUNT(sl.id),
           COALESCE(SUM(sl.status = 'occupied' AND pb.status = 'in_slot' AND pb.battery_level >= ?1), 0),
           COALESCE(SUM(sl.status = 'empty'), 0),
           s.last_heartbeat_at
    FROM stations s
    LEFT JOIN station_slots sl ON sl.station_id = s.id
    LEFT JOIN power_banks pb ON pb.id = sl.power_bank_id";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StationSummary> {
    Ok(StationSummary {
        id: r.get(0)?,
        serial_number: r.get(1)?,
        name: r.get(2)?,
        address: r.get(3)?,
        city: r.get(4)?,
        latitude: r.get(5)?,
        longitude: r.get(6)?,
        status: r.get(7)?,
        total_slots: r.get(8)?,
        available_power_banks: r.get(9)?,
        empty_slots: r.get(10)?,
        last_heartbeat_at: opt_ts(r.get(11)?),
    })
}

/// Stations with live availability, newest first; one SQL statement per page
/// whatever the number of stations.
#[utoipa::path(
    get, path = "/api/stations", tag = "stations",
    params(StationFilter),
    responses(
        (status = 200, description = "A page of stations", body = Page<StationSummary>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn list_stations(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<StationFilter>,
) -> Result<Json<Page<StationSummary>>, ApiError> {
    let paging = crate::core::PageParams { cursor: filter.cursor.clone(), limit: filter.limit };
    let limit = paging.limit()?;
    let before = paging.before_id()?;
    if let Some(s) = &filter.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::invalid_field("status", format!("must be one of {}", STATUSES.join(", "))));
    }
    let rows = state
        .db
        .read(move |c| {
            let sql = format!(
                "{SUMMARY_SELECT}
                 WHERE s.id < ?2 AND s.status != 'retired'
                   AND (?3 IS NULL OR s.status = ?3)
                   AND (?4 IS NULL OR s.city = ?4 COLLATE NOCASE)
                 GROUP BY s.id ORDER BY s.id DESC LIMIT ?5"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![RENTABLE_BATTERY, before, filter.status, filter.city, limit + 1],
                summary_from_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |s| s.id)))
}

fn load_detail(c: &Connection, sn: &str) -> Result<Option<StationDetail>, ApiError> {
    let sql = format!("{SUMMARY_SELECT} WHERE s.serial_number = ?2 AND s.status != 'retired' GROUP BY s.id");
    let Some(summary) = c.query_row(&sql, params![RENTABLE_BATTERY, sn], summary_from_row).optional()? else {
        return Ok(None);
    };
    let (firmware_version, opening_hours) =
        c.query_row("SELECT firmware_version, opening_hours FROM stations WHERE id = ?1", [summary.id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let mut stmt = c.prepare_cached(
        "SELECT sl.slot_index, sl.status, pb.serial_number, pb.battery_level
         FROM station_slots sl LEFT JOIN power_banks pb ON pb.id = sl.power_bank_id
         WHERE sl.station_id = ?1 ORDER BY sl.slot_index",
    )?;
    let slots = stmt
        .query_map([summary.id], |r| {
            Ok(SlotOut {
                slot_index: r.get(0)?,
                status: r.get(1)?,
                power_bank_serial: r.get(2)?,
                battery_level: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare_cached(
        "SELECT a.name FROM station_amenity_mappings m JOIN station_amenities a ON a.id = m.amenity_id
         WHERE m.station_id = ?1 ORDER BY a.name",
    )?;
    let amenities = stmt.query_map([summary.id], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
    let mut stmt =
        c.prepare_cached("SELECT url FROM station_media WHERE station_id = ?1 ORDER BY is_primary DESC, id")?;
    let media = stmt.query_map([summary.id], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(Some(StationDetail { summary, firmware_version, opening_hours, slots, amenities, media }))
}

/// One station with its slots, amenities and media.
#[utoipa::path(
    get, path = "/api/stations/{sn}", tag = "stations",
    params(("sn" = String, Path, description = "Station serial number")),
    responses(
        (status = 200, description = "The station", body = StationDetail),
        (status = 404, description = "No such station", body = ErrorBody),
    )
)]
pub async fn station_detail(
    State(state): State<AppState>,
    ApiPath(sn): ApiPath<String>,
) -> Result<Json<StationDetail>, ApiError> {
    let detail = state.db.read(move |c| load_detail(c, &sn)).await?;
    detail.map(Json).ok_or_else(|| ApiError::not_found("station"))
}
