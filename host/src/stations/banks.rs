//! Power banks: where each one is (`power_banks.status`).

use rusqlite::{Transaction, params};

use crate::core::{ApiError, text_enum::text_enum};

text_enum! {
    /// Where a power bank is (`power_banks.status`).
    pub enum BankStatus {
        /// Seated in a station slot.
        InSlot = "in_slot",
        /// Out with a user.
        Rented = "rented",
        Maintenance = "maintenance",
        Lost = "lost",
    }
}

/// Marks a bank that is out with a user and never came back as lost (the
/// rentals sweep declares it). Seating it in any station later makes it
/// `in_slot` again, as any returned bank.
pub fn mark_lost(tx: &Transaction<'_>, bank_id: i64, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE power_banks SET status = ?3, station_id = NULL, updated_at = ?2 WHERE id = ?1 AND status = ?4",
        params![bank_id, now, BankStatus::Lost, BankStatus::Rented],
    )?;
    Ok(())
}
