//! Guest bindings of `wit/compat/0.1.0` (`powerbank:plugins@0.1.0`), laid
//! out as the 0.1 SDK had them: `pricing` generates the shared interfaces,
//! the other worlds reuse them.

// Lets generated code name this crate by its external path from inside it too.
extern crate self as contract_v0_1_bindings;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

#[allow(clippy::too_many_arguments)] // generated code
pub mod pricing {
    wit_bindgen::generate!({
        world: "pricing",
        path: "../../../../wit/compat/0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_pricing",
        default_bindings_module: "contract_v0_1_bindings::pricing",
        runtime_path: "contract_v0_1_bindings::__wit_bindgen::rt",
        generate_all,
    });
    pub use powerbank::plugins::pricing_types::*;
    pub use powerbank::plugins::types::PluginKind;
}

macro_rules! world_sharing_host {
    ($module:ident, $world:literal, $export_macro:literal, $bindings:literal, $types:ident) => {
        #[allow(clippy::too_many_arguments)] // generated code
        pub mod $module {
            wit_bindgen::generate!({
                world: $world,
                path: "../../../../wit/compat/0.1.0",
                pub_export_macro: true,
                export_macro_name: $export_macro,
                default_bindings_module: $bindings,
                runtime_path: "contract_v0_1_bindings::__wit_bindgen::rt",
                with: {
                    "powerbank:plugins/types@0.1.0": crate::pricing::powerbank::plugins::types,
                    "powerbank:plugins/host@0.1.0": crate::pricing::powerbank::plugins::host,
                },
                generate_all,
            });
            pub use crate::pricing::powerbank::plugins::types::PluginKind;
            pub use powerbank::plugins::$types::*;
        }
    };
}

world_sharing_host!(points, "points-rules", "export_points_rules", "contract_v0_1_bindings::points", points_types);
world_sharing_host!(
    promotions,
    "promotions",
    "export_promotions",
    "contract_v0_1_bindings::promotions",
    promotion_types
);
world_sharing_host!(
    payment_gateway,
    "payment-gateway",
    "export_payment_gateway",
    "contract_v0_1_bindings::payment_gateway",
    payment_types
);
world_sharing_host!(
    station_protocol,
    "station-protocol",
    "export_station_protocol",
    "contract_v0_1_bindings::station_protocol",
    station_types
);

pub use pricing::powerbank::plugins::host;
pub use pricing::powerbank::plugins::types::LogLevel;

/// This plugin's info, as a 0.1 plugin gave it: name, version, kind.
#[macro_export]
macro_rules! plugin_info {
    ($kind:expr) => {
        $crate::pricing::PluginInfo {
            name: ::core::env!("CARGO_PKG_NAME").to_string(),
            version: ::core::env!("CARGO_PKG_VERSION").to_string(),
            kind: $kind,
        }
    };
}

pub use payment_gateway::export_payment_gateway;
pub use points::export_points_rules;
pub use pricing::export_pricing;
pub use promotions::export_promotions;
pub use station_protocol::export_station_protocol;
