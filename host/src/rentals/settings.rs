//! The rentals domain's operator settings (see `crate::settings`).

use crate::{
    config::RentalsConfig,
    settings::{IntKey, Kind, SettingDef, SettingsBuilder, Unit},
};

/// A rental returned within this many minutes of its start is free.
pub const FREE_RETURN_MINUTES: IntKey = IntKey("rentals.free_return_minutes");

/// How long initiate waits for the station's `ejected` answer.
pub const EJECT_TIMEOUT_SECONDS: IntKey = IntKey("rentals.eject_timeout_seconds");

/// Registers the settings, with defaults from the configuration.
pub fn register(settings: SettingsBuilder, config: &RentalsConfig) -> SettingsBuilder {
    settings
        .int(
            SettingDef {
                key: FREE_RETURN_MINUTES.0,
                description: "A rental returned within this many minutes of its start is refunded in full.",
                kind: Kind::Integer { min: 0, max: 120, unit: Unit::Minutes },
                public: true,
            },
            config.grace_minutes,
        )
        .int(
            SettingDef {
                key: EJECT_TIMEOUT_SECONDS.0,
                description: "How long a rental waits for the station to eject the power bank before it fails and is refunded.",
                kind: Kind::Integer { min: 1, max: 120, unit: Unit::Seconds },
                public: false,
            },
            i64::try_from(config.eject_timeout.as_secs()).unwrap_or(15),
        )
}
