//! Host-side bindings of the current contract, `wit/` (`powerbank:plugins@0.4.0`).
//!
//! The `pricing` world generates the shared `types` and `host` interfaces;
//! the other worlds reuse them through `with`, so one `Host` implementation
//! and one set of shared types serve all kinds. The values of these bindings
//! are the runtime's public types (`crate::types`); older contracts convert
//! to and from them (`super::v0_3`, `super::v0_2`, `super::v0_1`).
//!
//! Exports are called asynchronously: a call runs on a tokio worker inside a
//! wasmtime fiber that yields back to tokio at every epoch tick, so even a
//! plugin that spins until its timeout never holds a worker for long.

pub mod pricing {
    wasmtime::component::bindgen!({
        world: "pricing",
        path: "../wit",
        additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
        // Outbound HTTP awaits the network without blocking a tokio worker;
        // the other host functions are quick and stay synchronous.
        imports: { "powerbank:plugins/host.http-fetch": async },
        exports: { default: async },
    });
}

/// A world that shares `types` and `host` with `pricing`.
macro_rules! world_sharing_host {
    ($module:ident, $world:literal) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                world: $world,
                path: "../wit",
                additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
                exports: { default: async },
                with: {
                    "powerbank:plugins/types": crate::contract::current::pricing::powerbank::plugins::types,
                    "powerbank:plugins/host": crate::contract::current::pricing::powerbank::plugins::host,
                },
            });
        }
    };
}

// `info` and `self-check` of any world, through the world they all include.
world_sharing_host!(plugin, "plugin");
world_sharing_host!(points, "points-rules");
world_sharing_host!(promotions, "promotions");
world_sharing_host!(payment_gateway, "payment-gateway");
world_sharing_host!(station_protocol, "station-protocol");

pub use pricing::powerbank::plugins::host;
pub use pricing::powerbank::plugins::types as shared;
