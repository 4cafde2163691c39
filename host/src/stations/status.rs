//! Station and slot statuses (`stations.status`, `station_slots.status`).

use crate::core::text_enum::text_enum;

text_enum! {
    /// Whether a station serves (`stations.status`).
    pub enum StationStatus {
        /// Its link is up: heartbeats arrive.
        Online = "online",
        /// No heartbeat within the sweep's window.
        Offline = "offline",
        /// Taken out of service by an operator; heartbeats do not bring it back.
        Maintenance = "maintenance",
        /// Removed from the network; never listed, kept for history.
        Retired = "retired",
    }
}

impl StationStatus {
    /// The statuses a client may filter the station list on (`retired` stations are never listed).
    pub const LISTED: &'static [StationStatus] =
        &[StationStatus::Online, StationStatus::Offline, StationStatus::Maintenance];
}

text_enum! {
    /// What a slot holds (`station_slots.status`).
    pub enum SlotStatus {
        Empty = "empty",
        /// A power bank is seated (`power_bank_id` names it).
        Occupied = "occupied",
        /// Held for an eject in flight.
        Reserved = "reserved",
        /// Reported broken by the station.
        Fault = "fault",
    }
}
