//! Applies what stations report to `stations`, `station_slots` and
//! `power_banks`: all events of one message in one transaction.

use powerbank_plugin_runtime::types::{
    EjectFailedEvent, EjectedEvent, HeartbeatReport, ReturnedEvent, SlotFaultEvent, SlotReport, SlotState,
    StationEvent, StatusReport,
};
use rusqlite::{OptionalExtension, Transaction, params};

use super::hooks::{BankEjected, BankReturned, LinkHooks};
use crate::{
    core::ApiError,
    stations::{
        banks::BankStatus,
        status::{SlotStatus, StationStatus},
    },
};

/// What applying one decoded message did.
#[derive(Debug, PartialEq)]
pub enum Applied {
    /// Applied to this station. `events` are the message's events with what
    /// the station left out filled in from the database (the bank of an
    /// `ejected` that named only its slot).
    Done { station_id: i64, station_sn: String, events: Vec<StationEvent> },
    /// No registered (non-retired) station has this device id.
    UnknownStation,
    /// The station is registered with another protocol; nothing was applied.
    WrongProtocol { station_sn: String, expected: String },
}

/// A registered station as the link sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StationRef {
    pub id: i64,
    pub serial: String,
    pub device_id: String,
    pub protocol: String,
}

/// The station a device id names: its `device_id`, or its serial number when
/// it has none. Retired stations are not looked up.
pub fn station_by_device(c: &rusqlite::Connection, device_id: &str) -> Result<Option<StationRef>, ApiError> {
    Ok(c.query_row(
        "SELECT id, serial_number, COALESCE(device_id, serial_number), protocol FROM stations
          WHERE device_id = ?1 AND status != ?2
         UNION ALL
         SELECT id, serial_number, serial_number, protocol FROM stations
          WHERE device_id IS NULL AND serial_number = ?1 AND status != ?2
         LIMIT 1",
        params![device_id, StationStatus::Retired],
        |r| Ok(StationRef { id: r.get(0)?, serial: r.get(1)?, device_id: r.get(2)?, protocol: r.get(3)? }),
    )
    .optional()?)
}

/// The same by serial number, for commands the host starts.
pub fn station_by_serial(c: &rusqlite::Connection, serial: &str) -> Result<Option<StationRef>, ApiError> {
    Ok(c.query_row(
        "SELECT id, serial_number, COALESCE(device_id, serial_number), protocol FROM stations
          WHERE serial_number = ?1 AND status != ?2",
        params![serial, StationStatus::Retired],
        |r| Ok(StationRef { id: r.get(0)?, serial: r.get(1)?, device_id: r.get(2)?, protocol: r.get(3)? }),
    )
    .optional()?)
}

/// The serial of the bank recorded in a slot, if any.
pub fn bank_in_slot(c: &rusqlite::Connection, station: i64, slot: u16) -> Result<Option<String>, ApiError> {
    Ok(c.query_row(
        "SELECT b.serial_number FROM station_slots s JOIN power_banks b ON b.id = s.power_bank_id
          WHERE s.station_id = ?1 AND s.slot_index = ?2",
        params![station, slot],
        |r| r.get(0),
    )
    .optional()?)
}

/// Applies every event of one message from `device_id`, decoded by the
/// `protocol` plugin, in the caller's transaction, calling the `hooks`
/// other domains registered for banks leaving and entering slots.
pub fn message(
    tx: &Transaction<'_>,
    device_id: &str,
    protocol: &str,
    events: &[StationEvent],
    now: i64,
    hooks: &LinkHooks,
) -> Result<Applied, ApiError> {
    let Some(station) = station_by_device(tx, device_id)? else { return Ok(Applied::UnknownStation) };
    if station.protocol != protocol {
        return Ok(Applied::WrongProtocol { station_sn: station.serial, expected: station.protocol });
    }
    let mut applied = Vec::with_capacity(events.len());
    for event in events {
        applied.push(match event {
            StationEvent::Status(s) => {
                status(tx, station.id, s, now)?;
                event.clone()
            }
            StationEvent::Heartbeat(h) => {
                heartbeat(tx, station.id, h, now)?;
                event.clone()
            }
            StationEvent::Ejected(e) => StationEvent::Ejected(ejected(tx, station.id, e, now, hooks)?),
            StationEvent::EjectFailed(e) => StationEvent::EjectFailed(eject_failed(tx, station.id, e, now)?),
            StationEvent::Returned(e) => {
                returned(tx, station.id, e, now, hooks)?;
                event.clone()
            }
            StationEvent::SlotFault(e) => {
                slot_fault(tx, station.id, e, now)?;
                event.clone()
            }
        });
    }
    Ok(Applied::Done { station_id: station.id, station_sn: station.serial, events: applied })
}

/// Marks the station seen now; online unless an operator put it in maintenance.
fn mark_seen(tx: &Transaction<'_>, id: i64, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE stations SET last_heartbeat_at = ?2, updated_at = ?2,
            status = CASE WHEN status = ?3 THEN status ELSE ?4 END
         WHERE id = ?1",
        params![id, now, StationStatus::Maintenance, StationStatus::Online],
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
         VALUES (?1, 10000, ?3, 0, ?2, ?2)",
        params![serial, now, BankStatus::InSlot],
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
        "UPDATE station_slots SET power_bank_id = NULL, status = ?5, updated_at = ?2
         WHERE power_bank_id = ?1 AND NOT (station_id = ?3 AND slot_index = ?4)",
        params![bank, now, station, index, SlotStatus::Empty],
    )?;
    tx.execute(
        "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
         VALUES (?1, ?2, ?5, ?3, ?4)
         ON CONFLICT (station_id, slot_index) DO UPDATE SET
            status = excluded.status, power_bank_id = excluded.power_bank_id, updated_at = excluded.updated_at",
        params![station, index, bank, now, SlotStatus::Occupied],
    )?;
    // A bank an operator took out of service stays out of service where it
    // sits (the literals are `BankStatus::held_by_operator`).
    tx.execute(
        "UPDATE power_banks SET station_id = ?2, battery_level = COALESCE(?3, battery_level), updated_at = ?4,
            status = CASE WHEN status IN ('maintenance', 'damaged', 'retired') THEN status ELSE ?5 END
         WHERE id = ?1",
        params![bank, station, battery.map(|b| i64::from(b.min(100))), now, BankStatus::InSlot],
    )?;
    Ok(bank)
}

fn set_slot(tx: &Transaction<'_>, station: i64, index: u16, status: SlotStatus, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
         VALUES (?1, ?2, ?3, NULL, ?4)
         ON CONFLICT (station_id, slot_index) DO UPDATE SET
            status = excluded.status, power_bank_id = NULL, updated_at = excluded.updated_at",
        params![station, index, status, now],
    )?;
    Ok(())
}

fn status(tx: &Transaction<'_>, id: i64, msg: &StatusReport, now: i64) -> Result<(), ApiError> {
    if !msg.online {
        tx.execute(
            "UPDATE stations SET status = ?3, updated_at = ?2 WHERE id = ?1 AND status = ?4",
            params![id, now, StationStatus::Offline, StationStatus::Online],
        )?;
        return Ok(());
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
                "SELECT status = ?3 FROM station_slots WHERE station_id = ?1 AND slot_index = ?2",
                params![id, index, SlotStatus::Reserved],
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
            (SlotState::Fault, _) => set_slot(tx, id, *index, SlotStatus::Fault, now)?,
            _ => set_slot(tx, id, *index, SlotStatus::Empty, now)?,
        }
    }
    Ok(())
}

fn heartbeat(tx: &Transaction<'_>, id: i64, _hb: &HeartbeatReport, now: i64) -> Result<(), ApiError> {
    mark_seen(tx, id, now)
}

/// The bank left its slot. Returns the event with the bank filled in when the
/// station named only the slot.
fn ejected(
    tx: &Transaction<'_>,
    id: i64,
    e: &EjectedEvent,
    now: i64,
    hooks: &LinkHooks,
) -> Result<EjectedEvent, ApiError> {
    mark_seen(tx, id, now)?;
    let power_bank = match &e.power_bank {
        Some(bank) => Some(bank.clone()),
        None => bank_in_slot(tx, id, e.slot)?,
    };
    set_slot(tx, id, e.slot, SlotStatus::Empty, now)?;
    if let Some(serial) = &power_bank {
        let bank = power_bank_id(tx, serial, now)?;
        tx.execute(
            "UPDATE power_banks SET station_id = NULL, updated_at = ?2,
                status = CASE WHEN status IN ('maintenance', 'damaged', 'retired') THEN status ELSE ?3 END
             WHERE id = ?1",
            params![bank, now, BankStatus::Rented],
        )?;
        let event = BankEjected {
            station_id: id,
            request_id: e.request_id.as_deref(),
            slot: e.slot,
            power_bank: serial,
            at: now,
        };
        hooks.ejected(tx, &event)?;
    }
    Ok(EjectedEvent { request_id: e.request_id.clone(), slot: e.slot, power_bank })
}

/// The eject did not happen: the bank stayed in, so a reservation is released
/// and the slot shows occupied again.
fn eject_failed(tx: &Transaction<'_>, id: i64, e: &EjectFailedEvent, now: i64) -> Result<EjectFailedEvent, ApiError> {
    mark_seen(tx, id, now)?;
    // A station that named only the bank: find its slot.
    let slot = match (e.slot, &e.power_bank) {
        (Some(slot), _) => Some(slot),
        (None, Some(bank)) => tx
            .query_row(
                "SELECT s.slot_index FROM station_slots s JOIN power_banks b ON b.id = s.power_bank_id
                  WHERE s.station_id = ?1 AND b.serial_number = ?2",
                params![id, bank],
                |r| r.get::<_, u16>(0),
            )
            .optional()?,
        (None, None) => None,
    };
    if let Some(slot) = slot {
        crate::stations::slots::release_reservation(tx, id, i64::from(slot), now)?;
    }
    Ok(EjectFailedEvent { slot, ..e.clone() })
}

fn returned(tx: &Transaction<'_>, id: i64, e: &ReturnedEvent, now: i64, hooks: &LinkHooks) -> Result<(), ApiError> {
    mark_seen(tx, id, now)?;
    seat_bank(tx, id, e.slot, &e.power_bank, e.battery, now)?;
    hooks.returned(tx, &BankReturned { station_id: id, slot: e.slot, power_bank: &e.power_bank, at: now })
}

fn slot_fault(tx: &Transaction<'_>, id: i64, e: &SlotFaultEvent, now: i64) -> Result<(), ApiError> {
    mark_seen(tx, id, now)?;
    tx.execute(
        "UPDATE station_slots SET status = ?4, updated_at = ?3 WHERE station_id = ?1 AND slot_index = ?2",
        params![id, e.slot, now, SlotStatus::Fault],
    )?;
    Ok(())
}

/// Stations whose heartbeats stopped more than `timeout_secs` ago go offline.
pub fn expire_heartbeats(tx: &Transaction<'_>, now: i64, timeout_secs: i64) -> Result<usize, ApiError> {
    Ok(tx.execute(
        "UPDATE stations SET status = ?3, updated_at = ?1
         WHERE status = ?4 AND (last_heartbeat_at IS NULL OR last_heartbeat_at < ?1 - ?2)",
        params![now, timeout_secs, StationStatus::Offline, StationStatus::Online],
    )?)
}
