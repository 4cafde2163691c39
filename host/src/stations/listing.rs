//! `GET /api/stations` and `GET /api/stations/{sn}`, and the station summary
//! every station list of the API shares (listing, nearby, favourites).
//!
//! A list page costs two SQL statements whatever its size: one aggregate
//! query for the stations with their availability, and one for the amenities
//! of the whole page.

use std::{
    collections::{BTreeSet, HashMap},
    sync::LazyLock,
};

use axum::{
    Json,
    extract::{RawQuery, State},
    http::HeaderMap,
    response::Response,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    banks::BankStatus,
    status::{SlotStatus, StationStatus},
};
use crate::{
    core::{ApiError, ApiPath, ApiQuery, Page, PageParams, error::ErrorBody, opt_ts},
    state::AppState,
};

/// A power bank counts as rentable from this charge level (percent).
pub const RENTABLE_BATTERY: i64 = 20;

const MAX_AMENITY_FILTERS: usize = 10;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AmenityOut {
    /// Stable code, e.g. `wifi`; the list filter takes these.
    pub code: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationSummary {
    pub id: i64,
    pub serial_number: String,
    pub name: String,
    pub address: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    /// `retired` only in admin answers.
    pub status: StationStatus,
    pub total_slots: i64,
    /// Slots holding a power bank charged enough to rent.
    pub available_power_banks: i64,
    /// Slots a power bank can be returned into.
    pub empty_slots: i64,
    pub last_heartbeat_at: Option<String>,
    pub amenities: Vec<AmenityOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotOut {
    pub slot_index: i64,
    pub status: SlotStatus,
    pub power_bank_serial: Option<String>,
    pub battery_level: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaOut {
    pub id: i64,
    pub url: String,
    /// `image`, `video`, `360_view` or `floor_plan`.
    pub media_type: String,
    pub is_primary: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationDetail {
    #[serde(flatten)]
    pub summary: StationSummary,
    pub firmware_version: Option<String>,
    /// `HH:MM-HH:MM`, local time.
    pub opening_hours: Option<String>,
    pub slots: Vec<SlotOut>,
    pub media: Vec<MediaOut>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StationFilter {
    /// `online`, `offline` or `maintenance`.
    pub status: Option<String>,
    /// City name, case-insensitive.
    pub city: Option<String>,
    /// Amenity codes, comma-separated (`wifi,parking`): a station must have
    /// every one. An unknown code matches no station.
    pub amenities: Option<String>,
    /// `true`: only stations holding a charged power bank ready to rent.
    /// `false` or absent: no filter.
    pub has_power_bank: Option<bool>,
    /// `true`: only stations with an empty slot to return a power bank into.
    /// `false` or absent: no filter.
    pub has_free_slot: Option<bool>,
    /// `next_cursor` from the previous page; omit for the first page.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// The summary columns; `?1` must be bound to [`RENTABLE_BATTERY`]. Use with
/// [`SLOT_JOINS`] and `GROUP BY s.id`; rows decode with [`summary_from_row`]
/// (columns 0 to 11, so callers may select more after them). Built once, with
/// the statuses' texts from their enums.
pub fn summary_columns() -> &'static str {
    static COLUMNS: LazyLock<String> = LazyLock::new(|| {
        format!(
            "
    s.id, s.serial_number, s.name, s.address, s.city, s.latitude, s.longitude, s.status,
    COUNT(sl.id) AS total_slots,
    COALESCE(SUM(sl.status = '{occupied}' AND pb.status = '{in_slot}' AND pb.battery_level >= ?1), 0)
        AS available_power_banks,
    COALESCE(SUM(sl.status = '{empty}'), 0) AS empty_slots,
    s.last_heartbeat_at",
            occupied = SlotStatus::Occupied,
            in_slot = BankStatus::InSlot,
            empty = SlotStatus::Empty,
        )
    });
    &COLUMNS
}

/// Joins the slots and their power banks of station `s`.
pub const SLOT_JOINS: &str = "
    LEFT JOIN station_slots sl ON sl.station_id = s.id
    LEFT JOIN power_banks pb ON pb.id = sl.power_bank_id";

pub fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StationSummary> {
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
        amenities: Vec::new(),
    })
}

/// Fills in the amenities of every station given, in one statement.
pub fn attach_amenities<'a>(
    c: &Connection,
    stations: impl IntoIterator<Item = &'a mut StationSummary>,
) -> Result<(), ApiError> {
    let mut stations: Vec<&mut StationSummary> = stations.into_iter().collect();
    if stations.is_empty() {
        return Ok(());
    }
    let ids = serde_json::to_string(&stations.iter().map(|s| s.id).collect::<Vec<_>>())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut stmt = c.prepare_cached(
        "SELECT m.station_id, a.code, a.name
         FROM station_amenity_mappings m JOIN station_amenities a ON a.id = m.amenity_id
         WHERE m.station_id IN (SELECT value FROM json_each(?1))
         ORDER BY a.code",
    )?;
    let mut by_station: HashMap<i64, Vec<AmenityOut>> = HashMap::new();
    let rows = stmt.query_map([ids], |r| Ok((r.get::<_, i64>(0)?, AmenityOut { code: r.get(1)?, name: r.get(2)? })))?;
    for row in rows {
        let (station_id, amenity) = row?;
        by_station.entry(station_id).or_default().push(amenity);
    }
    for s in &mut stations {
        s.amenities = by_station.remove(&s.id).unwrap_or_default();
    }
    Ok(())
}

/// Summaries of the given stations (retired ones included), keyed by id: two
/// statements whatever the number of ids.
pub fn summaries_by_id(c: &Connection, ids: &[i64]) -> Result<HashMap<i64, StationSummary>, ApiError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids = serde_json::to_string(ids).map_err(|e| ApiError::internal(e.to_string()))?;
    let sql = format!(
        "SELECT {} FROM stations s {SLOT_JOINS}
         WHERE s.id IN (SELECT value FROM json_each(?2)) GROUP BY s.id",
        summary_columns()
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = stmt.query_map(params![RENTABLE_BATTERY, ids], summary_from_row)?.collect::<Result<Vec<_>, _>>()?;
    attach_amenities(c, rows.iter_mut())?;
    Ok(rows.into_iter().map(|s| (s.id, s)).collect())
}

/// Parses `wifi, parking` into distinct, validated codes.
fn parse_amenity_codes(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let mut codes = BTreeSet::new();
    for code in raw.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let code = code.to_ascii_lowercase();
        validate_amenity_code(&code).map_err(|m| ApiError::invalid_field("amenities", m))?;
        codes.insert(code);
    }
    if codes.len() > MAX_AMENITY_FILTERS {
        return Err(ApiError::invalid_field("amenities", format!("at most {MAX_AMENITY_FILTERS} codes")));
    }
    Ok(codes.into_iter().collect())
}

/// Amenity codes: 1 to 32 characters, `a-z`, `0-9`, `_` and `-`.
pub fn validate_amenity_code(code: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(format!("'{code}' is not an amenity code (1 to 32 characters: a-z, 0-9, _ and -)")) }
}

/// Stations with live availability, newest first.
///
/// The answer carries an `ETag` that changes with every change to any
/// station (an applied station message, an operator's edit, a rental): send
/// it back in `If-None-Match` to get a 304 while nothing changed.
#[utoipa::path(
    get, path = "/api/stations", tag = "stations",
    params(
        StationFilter,
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of an earlier answer"),
    ),
    responses(
        (status = 200, description = "A page of stations", body = Page<StationSummary>,
            headers(("ETag" = String, description = "Version of the station state this answer shows"))),
        (status = 304, description = "Nothing changed since the answer whose ETag was sent"),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn list_stations(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(filter): ApiQuery<StationFilter>,
) -> Result<Response, ApiError> {
    let paging = PageParams { cursor: filter.cursor.clone(), limit: filter.limit };
    let limit = paging.limit()?;
    let before = paging.before_id()?;
    let status = match filter.status.as_deref() {
        None => None,
        Some(text) => {
            Some(StationStatus::parse(text).filter(|s| StationStatus::LISTED.contains(s)).ok_or_else(|| {
                let listed: Vec<&str> = StationStatus::LISTED.iter().map(|s| s.as_str()).collect();
                ApiError::invalid_field("status", format!("must be one of {}", listed.join(", ")))
            })?)
        }
    };
    let city = filter.city.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned);
    let amenities = parse_amenity_codes(filter.amenities.as_deref())?;
    let amenity_count = i64::try_from(amenities.len()).unwrap_or(i64::MAX);
    let amenities = serde_json::to_string(&amenities).map_err(|e| ApiError::internal(e.to_string()))?;
    let has_power_bank = filter.has_power_bank.unwrap_or(false);
    let has_free_slot = filter.has_free_slot.unwrap_or(false);
    let pages = state.station_pages.clone();
    let key = format!("list?{}", query.unwrap_or_default());
    pages
        .answer(&headers, &key, || async move {
            let rows = state
                .db
                .read(move |c| {
                    // Keyset paging on the primary key; the availability filters
                    // apply to the aggregates, so they sit in HAVING.
                    let sql = format!(
                        "SELECT {} FROM stations s {SLOT_JOINS}
                 WHERE s.id < ?2 AND s.status != ?10
                   AND (?3 IS NULL OR s.status = ?3)
                   AND (?4 IS NULL OR s.city = ?4 COLLATE NOCASE)
                   AND (?6 = 0 OR ?6 = (
                        SELECT COUNT(*) FROM station_amenity_mappings m
                        JOIN station_amenities a ON a.id = m.amenity_id
                        WHERE m.station_id = s.id AND a.code IN (SELECT value FROM json_each(?7))))
                 GROUP BY s.id
                 HAVING (NOT ?8 OR available_power_banks > 0) AND (NOT ?9 OR empty_slots > 0)
                 ORDER BY s.id DESC LIMIT ?5",
                        summary_columns()
                    );
                    let mut stmt = c.prepare_cached(&sql)?;
                    let mut rows = stmt
                        .query_map(
                            params![
                                RENTABLE_BATTERY,
                                before,
                                status,
                                city,
                                limit + 1,
                                amenity_count,
                                amenities,
                                has_power_bank,
                                has_free_slot,
                                StationStatus::Retired
                            ],
                            summary_from_row,
                        )?
                        .collect::<Result<Vec<_>, _>>()?;
                    // The extra row only tells whether another page exists.
                    let page_len = usize::try_from(limit).unwrap_or(0);
                    attach_amenities(c, rows.iter_mut().take(page_len))?;
                    Ok(rows)
                })
                .await?;
            Ok(Page::from_rows(rows, limit, |s| s.id))
        })
        .await
}

/// One station with its slots, amenities and media; `None` when unknown (or
/// retired, unless `include_retired`).
pub fn load_detail(c: &Connection, sn: &str, include_retired: bool) -> Result<Option<StationDetail>, ApiError> {
    let sql = format!(
        "SELECT {}, s.firmware_version, s.opening_hours FROM stations s {SLOT_JOINS}
         WHERE s.serial_number = ?2 AND (?3 OR s.status != ?4) GROUP BY s.id",
        summary_columns()
    );
    let found = c
        .query_row(&sql, params![RENTABLE_BATTERY, sn, include_retired, StationStatus::Retired], |r| {
            Ok((summary_from_row(r)?, r.get::<_, Option<String>>(12)?, r.get::<_, Option<String>>(13)?))
        })
        .optional()?;
    let Some((mut summary, firmware_version, opening_hours)) = found else {
        return Ok(None);
    };
    attach_amenities(c, [&mut summary])?;
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
        "SELECT id, url, media_type, is_primary FROM station_media WHERE station_id = ?1
         ORDER BY is_primary DESC, id",
    )?;
    let media = stmt
        .query_map([summary.id], |r| {
            Ok(MediaOut { id: r.get(0)?, url: r.get(1)?, media_type: r.get(2)?, is_primary: r.get(3)? })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(StationDetail { summary, firmware_version, opening_hours, slots, media }))
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
    let detail = state.db.read(move |c| load_detail(c, &sn, false)).await?;
    detail.map(Json).ok_or_else(|| ApiError::not_found("station"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amenity_codes_are_validated_and_deduplicated() {
        assert_eq!(parse_amenity_codes(Some("wifi, Parking,,wifi")).unwrap(), vec!["parking", "wifi"]);
        assert!(parse_amenity_codes(Some("wi fi")).is_err());
        assert!(parse_amenity_codes(Some("DROP TABLE")).is_err());
        assert!(parse_amenity_codes(None).unwrap().is_empty());
        let many = (0..11).map(|i| format!("a{i}")).collect::<Vec<_>>().join(",");
        assert!(parse_amenity_codes(Some(&many)).is_err());
    }
}
