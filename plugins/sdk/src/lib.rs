//! SDK for powerbank plugins, contract `powerbank:plugins@0.4.0`.
//!
//! A plugin crate depends only on this crate, implements the `Guest` trait of
//! one world (`info` and `self_check`, which every world has, plus the
//! kind's own functions) and calls that world's export macro:
//!
//! ```ignore
//! use powerbank_plugin_sdk::pricing::{Guest, Quote, QuoteRequest /* ... */};
//! use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, plugin_info};
//!
//! struct MyPricing;
//! impl Guest for MyPricing {
//!     fn info() -> PluginInfo { plugin_info!(PluginKind::Pricing) }
//!     fn self_check() -> Result<(), CallError> { Ok(()) }
//!     /* quote, price_extension, overdue_charge */
//! }
//! powerbank_plugin_sdk::export_pricing!(MyPricing);
//! ```
//!
//! Bindings for every world live here, so all plugins share one generated
//! copy of the host interface and the helpers below work in any of them.

// Lets generated code name this crate by its external path from inside it too.
extern crate self as powerbank_plugin_sdk;

pub mod config;
pub mod http;
pub mod log;
pub mod money;

// Generated code and the export macros refer to wit-bindgen through this path,
// so plugin crates need no direct wit-bindgen dependency.
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub use types::{CallContext, CallError, LogLevel, PluginInfo, PluginKind};

/// Bindings of one world.
macro_rules! world {
    ($(#[$doc:meta])* $module:ident, $world:literal, $export_macro:literal, $bindings:literal, $types:ident, { $($with:tt)* }) => {
        $(#[$doc])*
        pub mod $module {
            #[doc(hidden)]
            #[allow(clippy::too_many_arguments)] // generated code
            pub mod bindings {
                wit_bindgen::generate!({
                    world: $world,
                    path: "../../wit",
                    pub_export_macro: true,
                    export_macro_name: $export_macro,
                    default_bindings_module: $bindings,
                    runtime_path: "powerbank_plugin_sdk::__wit_bindgen::rt",
                    with: { $($with)* },
                    generate_all,
                });
            }
            pub use crate::types::{CallContext, CallError, LogLevel, PluginInfo, PluginKind};
            pub use bindings::Guest;
            pub use bindings::powerbank::plugins::$types::*;
        }
    };
}

world!(
    /// Bindings of the `pricing` world; its host interface and shared types
    /// are the ones the other worlds reuse.
    pricing, "pricing", "export_pricing", "powerbank_plugin_sdk::pricing::bindings", pricing_types, {}
);

/// A world that shares `types` and `host` with `pricing`.
macro_rules! world_sharing_host {
    ($(#[$doc:meta])* $module:ident, $world:literal, $export_macro:literal, $bindings:literal, $types:ident) => {
        world!($(#[$doc])* $module, $world, $export_macro, $bindings, $types, {
            "powerbank:plugins/types@0.4.0": crate::pricing::bindings::powerbank::plugins::types,
            "powerbank:plugins/host@0.4.0": crate::pricing::bindings::powerbank::plugins::host,
        });
    };
}

world_sharing_host!(
    /// Bindings of the `points-rules` world.
    points, "points-rules", "export_points_rules", "powerbank_plugin_sdk::points::bindings", points_types
);
world_sharing_host!(
    /// Bindings of the `promotions` world.
    promotions, "promotions", "export_promotions", "powerbank_plugin_sdk::promotions::bindings", promotion_types
);
world_sharing_host!(
    /// Bindings of the `payment-gateway` world.
    payment_gateway,
    "payment-gateway",
    "export_payment_gateway",
    "powerbank_plugin_sdk::payment_gateway::bindings",
    payment_types
);
world_sharing_host!(
    /// Bindings of the `station-protocol` world.
    station_protocol,
    "station-protocol",
    "export_station_protocol",
    "powerbank_plugin_sdk::station_protocol::bindings",
    station_types
);

/// Types shared by all worlds.
pub mod types {
    pub use crate::pricing::bindings::powerbank::plugins::types::{
        CallContext, CallError, LogLevel, PluginInfo, PluginKind,
    };
}

/// Raw host imports, for what the helpers do not cover.
pub use pricing::bindings::powerbank::plugins::host;

impl CallError {
    /// The message a case carries.
    pub fn message(&self) -> &str {
        match self {
            CallError::InvalidInput(m)
            | CallError::Misconfigured(m)
            | CallError::NotSupported(m)
            | CallError::Unavailable(m) => m,
        }
    }
}

/// A gateway reports a shared failure (bad config, say) in its own terms.
impl From<CallError> for payment_gateway::GatewayError {
    fn from(e: CallError) -> Self {
        use payment_gateway::GatewayError;
        match e {
            CallError::InvalidInput(m) => GatewayError::InvalidRequest(m),
            CallError::Misconfigured(m) => GatewayError::Internal(m),
            CallError::NotSupported(_) => GatewayError::NotSupported,
            CallError::Unavailable(m) => GatewayError::Unavailable(m),
        }
    }
}

/// The host's wall clock in Unix milliseconds.
pub fn now_unix_ms() -> i64 {
    host::now_unix_ms()
}

/// A secret configured for this plugin, if any.
pub fn secret(key: &str) -> Option<String> {
    host::secret_get(key)
}

/// Builds this plugin's `PluginInfo`: name and version from its Cargo
/// package, the display name given (the package name if omitted).
///
/// The config keys `display_name` and `icon_url`, when set in plugins.toml,
/// override the display name and set the icon: how an operator brands a
/// gateway without rebuilding it.
///
/// A macro so that `env!` reads the plugin crate's manifest, not the SDK's.
#[macro_export]
macro_rules! plugin_info {
    ($kind:expr) => {
        $crate::plugin_info!($kind, ::core::env!("CARGO_PKG_NAME"))
    };
    ($kind:expr, $display_name:expr) => {
        $crate::types::PluginInfo {
            name: ::core::env!("CARGO_PKG_NAME").to_string(),
            version: ::core::env!("CARGO_PKG_VERSION").to_string(),
            kind: $kind,
            display_name: $crate::config::get("display_name").unwrap_or_else(|| ($display_name).to_string()),
            icon_url: $crate::config::get("icon_url"),
        }
    };
}

#[doc(inline)]
pub use payment_gateway::bindings::export_payment_gateway;
#[doc(inline)]
pub use points::bindings::export_points_rules;
#[doc(inline)]
pub use pricing::bindings::export_pricing;
#[doc(inline)]
pub use promotions::bindings::export_promotions;
#[doc(inline)]
pub use station_protocol::bindings::export_station_protocol;
