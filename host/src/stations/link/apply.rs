//! Applies what stations report to `stations`, `station_slots` and
//! `power_banks`, one transaction per message.

use rusqlite::{OptionalExtension, Transaction, params};

use super::protocol::{Heartbeat, SlotReport, SlotState, StationEvent, StatusMessage};
use crate::core::ApiError;

/// Why a well-formed message changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Done,
    UnknownStation,
}

/// The station's id if it is registered and not retired.
fn station_id(tx: &Transaction<'_>, sn: &str) -> Result<Option<i64>, ApiError> {
    Ok(tx
        .query_row("SELECT id FROM stations WHERE serial_number = ?1 AND status != 'retired'", [sn], |r| r.get(0))
        .optional()?)
}

/// Marks the station seen now; online unless an operator put it in maintenance.
fn mark_seen(tx: &Transaction<'_>, id: i64, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE stations SET last_heartbeat_at = ?2, updated_at = ?2,
            status = CASE WHEN status = 'maintenance' THEN status ELSE 'online' END
         WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// Finds or registers a power bank by serial (stations report banks the host
/// may not know yet, e.g. after a bank moved between networks' stock).
fn power_bank_id(tx: &Transaction<'_>, serial: &str, now: i64) -> Result<i64, ApiError> {
    if let Some(id) =
        tx.query_row("SELECT id FROM power_banks WHERE serial_number = ?1", [serial], |r| r.get(0)).optional()?
    {
        return Ok(id);
    }
    tx.execute(
        "INSERT INTO power_banks (serial_number, capacity_mah, status, battery_level, created_at, updated_at)
         VALUES (?1, 10000, 'in_slot', 0, ?2, ?2)",
        params![serial, now],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Puts `bank` into slot `index` of `station` (creating the slot row if new),
/// taking it out of any slot it was recorded in before.
fn seat_bank(
    tx: &Transaction<'_>,
    station: i64,
    index: u16,
    serial: &str,
    battery: Option<u8>,
    now: i64,
) -> Result<i64, ApiError> {
    let bank = power_bank_id(tx, serial, now)?;
    tx.execute(
        "UPDATE station_slots SET power_bank_id = NULL, status = 'empty', updated_at = ?2
         WHERE power_bank_id = ?1 AND NOT (station_id = ?3 AND slot_index = ?4)",
        params![bank, now, station, index],
    )?;
    tx.execute(
        "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
         VALUES (?1, ?2, 'occupied', ?3, ?4)
         ON CONFLICT (station_id, slot_index) DO UPDATE SET
            status = 'occupied', power_bank_id = excluded.power_bank_id, updated_at = excluded.updated_at",
        params![station, index, bank, now],
    )?;
    tx.execute(
        "UPDATE power_banks SET status = 'in_slot', station_id = ?2,
            battery_level = COALESCE(?3, battery_level), updated_at = ?4
         WHERE id = ?1",
        params![bank, station, battery.map(|b| i64::from(b.min(100))), now],
    )?;
    Ok(bank)
}

fn set_slot(tx: &Transaction<'_>, station: i64, index: u16, status: &str, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
         VALUES (?1, ?2, ?3, NULL, ?4)
         ON CONFLICT (station_id, slot_index) DO UPDATE SET
            status = excluded.status, power_bank_id = NULL, updated_at = excluded.updated_at",
        params![station, index, status, now],
    )?;
    Ok(())
}

pub fn status(tx: &Transaction<'_>, sn: &str, msg: &StatusMessage, now: i64) -> Result<Applied, ApiError> {
    let Some(id) = station_id(tx, sn)? else { return Ok(Applied::UnknownStation) };
    if !msg.online {
        tx.execute(
            "UPDATE stations SET status = 'offline', updated_at = ?2 WHERE id = ?1 AND status = 'online'",
            params![id, now],
        )?;
        return Ok(Applied::Done);
    }
    mark_seen(tx, id, now)?;
    if let Some(fw) = &msg.firmware {
        let fw: String = fw.chars().take(64).collect();
        tx.execute("UPDATE stations SET firmware_version = ?2 WHERE id = ?1", params![id, fw])?;
    }
    for SlotReport { index, state, power_bank, battery } in msg.slots.iter().flatten() {
        // A slot the host reserved for an eject in flight keeps its reservation.
        let reserved: bool = tx
            .query_row(
                "SELECT status = 'reserved' FROM station_slots WHERE station_id = ?1 AND slot_index = ?2",
                params![id, index],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false);
        if reserved {
            continue;
        }
        match (state, power_bank) {
            (SlotState::Occupied, Some(serial)) => {
                seat_bank(tx, id, *index, serial, *battery, now)?;
            }
            (SlotState::Fault, _) => set_slot(tx, id, *index, "fault", now)?,
            _ => set_slot(tx, id, *index, "empty", now)?,
        }
    }
    Ok(Applied::Done)
}

pub fn heartbeat(tx: &Transaction<'_>, sn: &str, _hb: &Heartbeat, now: i64) -> Result<Applied, ApiError> {
    let Some(id) = station_id(tx, sn)? else { return Ok(Applied::UnknownStation) };
    mark_seen(tx, id, now)?;
    Ok(Applied::Done)
}

pub fn event(tx: &Transaction<'_>, sn: &str, event: &StationEvent, now: i64) -> Result<Applied, ApiError> {
    let Some(id) = station_id(tx, sn)? else { return Ok(Applied::UnknownStation) };
    mark_seen(tx, id, now)?;
    match event {
        StationEvent::Ejected { slot, power_bank, .. } => {
            set_slot(tx, id, *slot, "empty", now)?;
            let bank = power_bank_id(tx, power_bank, now)?;
            tx.execute(
                "UPDATE power_banks SET status = 'rented', station_id = NULL, updated_at = ?2 WHERE id = ?1",
                params![bank, now],
            )?;
        }
        StationEvent::EjectFailed { slot, .. } => {
            // The bank stayed in: release a reservation so the slot shows occupied again.
            tx.execute(
                "UPDATE station_slots SET status = CASE WHEN power_bank_id IS NULL THEN 'empty' ELSE 'occupied' END,
                    updated_at = ?3
                 WHERE station_id = ?1 AND slot_index = ?2 AND status = 'reserved'",
                params![id, slot, now],
            )?;
        }
        StationEvent::Returned { slot, power_bank, battery } => {
            seat_bank(tx, id, *slot, power_bank, *battery, now)?;
            // Closing the rental (pricing, charging, points) runs as a durable
            // job enqueued with this change, so a crash cannot lose a return.
            crate::core::jobs::enqueue(
                tx,
                crate::core::jobs::NewJob::new(
                    crate::rentals::lifecycle::RETURNED_JOB,
                    serde_json::json!({ "station_id": id, "power_bank": power_bank, "returned_at": now }),
                ),
            )?;
        }
        StationEvent::SlotFault { slot, .. } => {
            tx.execute(
                "UPDATE station_slots SET status = 'fault', updated_at = ?3 WHERE station_id = ?1 AND slot_index = ?2",
                params![id, slot, now],
            )?;
        }
    }
    Ok(Applied::Done)
}

/// Stations whose heartbeats stopped more than `timeout_secs` ago go offline.
pub fn expire_heartbeats(tx: &Transaction<'_>, now: i64, timeout_secs: i64) -> Result<usize, ApiError> {
    Ok(tx.execute(
        "UPDATE stations SET status = 'offline', updated_at = ?1
         WHERE status = 'online' AND (last_heartbeat_at IS NULL OR last_heartbeat_at < ?1 - ?2)",
        params![now, timeout_secs],
    )?)
}
