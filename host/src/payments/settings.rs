//! The payments domain's operator settings (see `crate::settings`).

use crate::settings::{IntKey, Kind, SettingDef, SettingsBuilder, Unit};

/// The smallest top-up, in paisa.
pub const MIN_TOPUP_PAISA: IntKey = IntKey("payments.min_topup_paisa");

/// The largest top-up, in paisa.
pub const MAX_TOPUP_PAISA: IntKey = IntKey("payments.max_topup_paisa");

/// Registers the settings with their defaults: NPR 10 (Khalti's own minimum)
/// to NPR 100,000.
pub fn register(settings: SettingsBuilder) -> SettingsBuilder {
    // Bounds: no gateway takes less than NPR 1; NPR 1,000,000 is far above any
    // wallet a rider needs.
    let bounds = Kind::Integer { min: 100, max: 100_000_000, unit: Unit::Paisa };
    settings
        .int(
            SettingDef {
                key: MIN_TOPUP_PAISA.0,
                description: "The smallest wallet top-up, in paisa.",
                kind: bounds,
                public: true,
            },
            1_000,
        )
        .int(
            SettingDef {
                key: MAX_TOPUP_PAISA.0,
                description: "The largest wallet top-up, in paisa.",
                kind: bounds,
                public: true,
            },
            10_000_000,
        )
        .range(MIN_TOPUP_PAISA, MAX_TOPUP_PAISA)
}
