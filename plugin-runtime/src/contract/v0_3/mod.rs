//! Contract `powerbank:plugins@0.3.0`, kept so that plugins built before
//! 0.4 keep loading and serving unchanged.
//!
//! The 0.3 WIT is frozen in `wit/compat/0.3.0/`. This module binds it, gives
//! 0.3 plugins the host interface they import (by delegating to the current
//! one), and adapts each export to the current types (`adapt`). 0.4 only
//! added the promotions world's campaign exports, so a 0.3 plugin is read
//! value for value, and the host answers what it cannot.

mod adapt;

/// Bindings of the frozen 0.3 worlds; `pricing` generates the shared
/// interfaces, as in the current bindings.
pub(crate) mod bindings {
    pub mod pricing {
        wasmtime::component::bindgen!({
            world: "pricing",
            path: "../wit/compat/0.3.0",
            imports: { "powerbank:plugins/host.http-fetch": async },
            exports: { default: async },
        });
    }

    macro_rules! world_sharing_host {
        ($module:ident, $world:literal) => {
            pub mod $module {
                wasmtime::component::bindgen!({
                    world: $world,
                    path: "../wit/compat/0.3.0",
                    exports: { default: async },
                    with: {
                        "powerbank:plugins/types": crate::contract::v0_3::bindings::pricing::powerbank::plugins::types,
                        "powerbank:plugins/host": crate::contract::v0_3::bindings::pricing::powerbank::plugins::host,
                    },
                });
            }
        };
    }

    world_sharing_host!(points, "points-rules");
    world_sharing_host!(promotions, "promotions");
    world_sharing_host!(payment_gateway, "payment-gateway");
    world_sharing_host!(station_protocol, "station-protocol");

    pub use pricing::powerbank::plugins::{host, types};
}

host_delegating_to_current!(
    bindings,
    [
        bindings::pricing::powerbank::plugins::pricing_types,
        bindings::points::powerbank::plugins::points_types,
        bindings::promotions::powerbank::plugins::promotion_types,
        bindings::payment_gateway::powerbank::plugins::payment_types,
        bindings::station_protocol::powerbank::plugins::station_types,
    ]
);
