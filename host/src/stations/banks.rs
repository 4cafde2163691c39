//! Power banks: where each one is and whether it may be rented
//! (`power_banks.status`), and the record of its status changes
//! (`power_bank_status_changes`).

use rusqlite::{Transaction, params};

use crate::core::{ApiError, text_enum::text_enum};

text_enum! {
    /// Where a power bank is and whether it may be rented
    /// (`power_banks.status`). Only `in_slot` banks are offered for rent; the
    /// station link keeps an operator's `maintenance`, `damaged` and
    /// `retired` when it seats or ejects the bank.
    pub enum BankStatus {
        /// Seated in a station slot.
        InSlot = "in_slot",
        /// Out with a user.
        Rented = "rented",
        /// In service but in no slot (stock, or returned by an operator until
        /// the station reports its slot).
        Available = "available",
        /// Taken out of service for a check.
        Maintenance = "maintenance",
        /// Broken; out of service.
        Damaged = "damaged",
        /// Never came back (the rentals sweep or an operator said so).
        Lost = "lost",
        /// Out of the fleet for good.
        Retired = "retired",
    }
}

impl BankStatus {
    /// Out of service by an operator's decision: the station link keeps it.
    pub fn held_by_operator(self) -> bool {
        matches!(self, BankStatus::Maintenance | BankStatus::Damaged | BankStatus::Retired)
    }
}

/// Who changed a bank's status and why, for its history.
#[derive(Debug, Clone, Copy)]
pub struct ChangedBy<'a> {
    /// `None`: the system (the lost sweep).
    pub operator_id: Option<i64>,
    pub reason: &'a str,
    pub rental_id: Option<i64>,
}

/// Appends a status change to the bank's history.
pub fn record_change(
    tx: &Transaction<'_>,
    bank_id: i64,
    from: BankStatus,
    to: BankStatus,
    by: ChangedBy<'_>,
    now: i64,
) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO power_bank_status_changes (power_bank_id, from_status, to_status, reason, operator_id, rental_id,
                                                created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![bank_id, from, to, by.reason, by.operator_id, by.rental_id, now],
    )?;
    Ok(())
}

/// Marks a bank that is out with a user and never came back as lost (the
/// rentals sweep, or an operator through the same path). Seating it in any
/// station later makes it `in_slot` again, as any returned bank.
pub fn mark_lost(tx: &Transaction<'_>, bank_id: i64, by: ChangedBy<'_>, now: i64) -> Result<(), ApiError> {
    let changed = tx.execute(
        "UPDATE power_banks SET status = ?3, station_id = NULL, updated_at = ?2 WHERE id = ?1 AND status = ?4",
        params![bank_id, now, BankStatus::Lost, BankStatus::Rented],
    )?;
    if changed > 0 {
        record_change(tx, bank_id, BankStatus::Rented, BankStatus::Lost, by, now)?;
    }
    Ok(())
}

/// A rented bank an operator says came back to `station_id` (its `returned`
/// event was lost): in service at that station, in no slot until the
/// station reports where it sits. A bank the station already seated stays
/// as it is.
pub fn returned_by_operator(
    tx: &Transaction<'_>,
    bank_id: i64,
    station_id: i64,
    by: ChangedBy<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let changed = tx.execute(
        "UPDATE power_banks SET status = ?4, station_id = ?2, updated_at = ?3 WHERE id = ?1 AND status = ?5",
        params![bank_id, station_id, now, BankStatus::Available, BankStatus::Rented],
    )?;
    if changed > 0 {
        record_change(tx, bank_id, BankStatus::Rented, BankStatus::Available, by, now)?;
    }
    Ok(())
}
