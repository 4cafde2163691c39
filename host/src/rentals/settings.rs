//! The rentals domain's operator settings (see `crate::settings`).

use crate::{
    config::RentalsConfig,
    settings::{FlagKey, IntKey, Kind, SettingDef, SettingsBuilder, Unit},
};

/// A rental returned within this many minutes of its start is free.
pub const FREE_RETURN_MINUTES: IntKey = IntKey("rentals.free_return_minutes");

/// How long initiate waits for the station's `ejected` answer.
pub const EJECT_TIMEOUT_SECONDS: IntKey = IntKey("rentals.eject_timeout_seconds");

/// A rental's bank may be swapped at its station within this many minutes
/// of the start.
pub const SWAP_WINDOW_MINUTES: IntKey = IntKey("rentals.swap_window_minutes");

/// A postpaid rental starts only with at least this much in the wallet.
pub const POSTPAID_MIN_BALANCE_PAISA: IntKey = IntKey("rentals.postpaid_min_balance_paisa");

/// Whether a rider needs approved KYC to start a rental.
pub const KYC_REQUIRED: FlagKey = FlagKey("rentals.kyc_required");

/// How many rentals one rider may have in progress at once.
pub const MAX_ACTIVE_PER_USER: IntKey = IntKey("rentals.max_active_per_user");

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
        .int(
            SettingDef {
                key: SWAP_WINDOW_MINUTES.0,
                description: "A rental's power bank can be swapped for another at the station it came from within this many minutes of the start.",
                kind: Kind::Integer { min: 0, max: 60, unit: Unit::Minutes },
                public: true,
            },
            5,
        )
        .int(
            SettingDef {
                key: POSTPAID_MIN_BALANCE_PAISA.0,
                description: "A postpaid rental (paid at return) starts only with at least this much in the wallet.",
                kind: Kind::Integer { min: 0, max: 10_000_000, unit: Unit::Paisa },
                public: true,
            },
            10_000,
        )
        .flag(
            SettingDef {
                key: KYC_REQUIRED.0,
                description: "A rider needs approved KYC to start a rental.",
                kind: Kind::Flag,
                public: true,
            },
            true,
        )
        .int(
            SettingDef {
                key: MAX_ACTIVE_PER_USER.0,
                description: "How many rentals one rider may have in progress at once.",
                kind: Kind::Integer { min: 1, max: 5, unit: Unit::Count },
                public: true,
            },
            1,
        )
}
