//! Power banks: where each one is (`power_banks.status`).

use crate::core::text_enum::text_enum;

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
