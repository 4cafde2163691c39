//! Slot reservations for ejects in flight: what the rentals domain may do to
//! the stations' slots, so it never writes `station_slots` itself.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{banks::BankStatus, listing::RENTABLE_BATTERY, status::SlotStatus};
use crate::core::ApiError;

/// The fullest charged bank of the station: (slot index, bank id); 409
/// `no_power_bank` when there is none.
pub fn rentable_bank(c: &Connection, station_id: i64) -> Result<(i64, i64), ApiError> {
    c.query_row(
        "SELECT sl.slot_index, pb.id FROM station_slots sl JOIN power_banks pb ON pb.id = sl.power_bank_id
         WHERE sl.station_id = ?1 AND sl.status = ?4 AND pb.status = ?3 AND pb.battery_level >= ?2
         ORDER BY pb.battery_level DESC, sl.slot_index LIMIT 1",
        params![station_id, RENTABLE_BATTERY, BankStatus::InSlot, SlotStatus::Occupied],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .ok_or_else(|| ApiError::conflict("no_power_bank", "no charged power bank at this station"))
}

/// Reserves the fullest charged bank's slot for an eject: (slot index, bank id).
pub fn reserve_rentable_bank(tx: &Transaction<'_>, station_id: i64, now: i64) -> Result<(i64, i64), ApiError> {
    let (slot, bank_id) = rentable_bank(tx, station_id)?;
    tx.execute(
        "UPDATE station_slots SET status = ?4, updated_at = ?3 WHERE station_id = ?1 AND slot_index = ?2",
        params![station_id, slot, now, SlotStatus::Reserved],
    )?;
    Ok((slot, bank_id))
}

/// Reserves the fullest charged bank's slot other than `except_bank` (a swap
/// must not hand back the bank just seated): (slot index, bank id), or
/// `None` when there is no other.
pub fn reserve_rentable_bank_other_than(
    tx: &Transaction<'_>,
    station_id: i64,
    except_bank: i64,
    now: i64,
) -> Result<Option<(i64, i64)>, ApiError> {
    let found: Option<(i64, i64)> = tx
        .query_row(
            "SELECT sl.slot_index, pb.id FROM station_slots sl JOIN power_banks pb ON pb.id = sl.power_bank_id
             WHERE sl.station_id = ?1 AND sl.status = ?5 AND pb.status = ?3 AND pb.battery_level >= ?2
               AND pb.id != ?4
             ORDER BY pb.battery_level DESC, sl.slot_index LIMIT 1",
            params![station_id, RENTABLE_BATTERY, BankStatus::InSlot, except_bank, SlotStatus::Occupied],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((slot, _)) = found {
        tx.execute(
            "UPDATE station_slots SET status = ?4, updated_at = ?3 WHERE station_id = ?1 AND slot_index = ?2",
            params![station_id, slot, now, SlotStatus::Reserved],
        )?;
    }
    Ok(found)
}

/// Ends a slot's reservation (the eject failed or never happened): the slot
/// shows occupied again if a bank is recorded in it, empty otherwise. A slot
/// that is not reserved is left alone.
pub fn release_reservation(tx: &Transaction<'_>, station_id: i64, slot: i64, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE station_slots SET status = CASE WHEN power_bank_id IS NULL THEN ?4 ELSE ?5 END,
            updated_at = ?3
         WHERE station_id = ?1 AND slot_index = ?2 AND status = ?6",
        params![station_id, slot, now, SlotStatus::Empty, SlotStatus::Occupied, SlotStatus::Reserved],
    )?;
    Ok(())
}
