//! Queries the operator endpoints share: finding stations, amenities and
//! resizing slots.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::validate::is_foreign_key_violation;
use crate::{
    core::ApiError,
    stations::{
        listing::{StationDetail, load_detail},
        status::{SlotStatus, StationStatus},
    },
};

/// `(id, status)` of a station by serial, retired ones included.
pub(super) fn find_station(c: &Connection, sn: &str) -> Result<(i64, StationStatus), ApiError> {
    c.query_row("SELECT id, status FROM stations WHERE serial_number = ?1", [sn], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| ApiError::not_found("station"))
}

/// A station that is not retired, for changes that only make sense on a live one.
pub(super) fn find_live_station(c: &Connection, sn: &str) -> Result<i64, ApiError> {
    let (id, status) = find_station(c, sn)?;
    if status == StationStatus::Retired {
        return Err(ApiError::conflict("station_retired", "the station is retired"));
    }
    Ok(id)
}

pub(super) fn detail(c: &Connection, sn: &str) -> Result<StationDetail, ApiError> {
    load_detail(c, sn, true)?.ok_or_else(|| ApiError::not_found("station"))
}

/// Replaces the station's amenities; unknown codes are refused.
pub(super) fn set_amenities(tx: &Transaction<'_>, station: i64, codes: &[String]) -> Result<(), ApiError> {
    let codes_json = serde_json::to_string(codes).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut stmt =
        tx.prepare_cached("SELECT code FROM station_amenities WHERE code IN (SELECT value FROM json_each(?1))")?;
    let known: Vec<String> = stmt.query_map([&codes_json], |r| r.get(0))?.collect::<Result<_, _>>()?;
    if let Some(unknown) = codes.iter().find(|c| !known.contains(c)) {
        return Err(ApiError::invalid_field("amenities", format!("unknown amenity code '{unknown}'")));
    }
    tx.execute("DELETE FROM station_amenity_mappings WHERE station_id = ?1", [station])?;
    tx.execute(
        "INSERT INTO station_amenity_mappings (station_id, amenity_id)
         SELECT ?1, id FROM station_amenities WHERE code IN (SELECT value FROM json_each(?2))",
        params![station, codes_json],
    )?;
    Ok(())
}

/// Grows or shrinks the station to `target` slots.
pub(super) fn resize_slots(tx: &Transaction<'_>, station: i64, target: i64, now: i64) -> Result<(), ApiError> {
    let (count, max_index): (i64, i64) = tx.query_row(
        "SELECT COUNT(*), COALESCE(MAX(slot_index), 0) FROM station_slots WHERE station_id = ?1",
        [station],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if target > count {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO station_slots (station_id, slot_index, status, updated_at) VALUES (?1, ?2, ?4, ?3)",
        )?;
        for index in max_index + 1..=max_index + (target - count) {
            stmt.execute(params![station, index, now, SlotStatus::Empty])?;
        }
    } else if target < count {
        let remove = count - target;
        let busy: i64 = tx.query_row(
            "SELECT COUNT(*) FROM (SELECT status, power_bank_id FROM station_slots WHERE station_id = ?1
                                   ORDER BY slot_index DESC LIMIT ?2)
             WHERE status NOT IN (?3, ?4) OR power_bank_id IS NOT NULL",
            params![station, remove, SlotStatus::Empty, SlotStatus::Fault],
            |r| r.get(0),
        )?;
        if busy > 0 {
            return Err(ApiError::conflict(
                "slot_not_empty",
                "the slots to remove (the highest-numbered ones) must be empty",
            ));
        }
        tx.execute(
            "DELETE FROM station_slots WHERE id IN (SELECT id FROM station_slots WHERE station_id = ?1
                                                    ORDER BY slot_index DESC LIMIT ?2)",
            params![station, remove],
        )
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                ApiError::conflict("slot_in_use", "a slot to remove is still referenced (by a rental)")
            } else {
                e.into()
            }
        })?;
    }
    Ok(())
}
