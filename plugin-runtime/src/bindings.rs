//! Host-side bindings of the worlds in `wit/`.
//!
//! The `pricing` world generates the shared `types` and `host` interfaces;
//! the other worlds reuse them through `with`, so one `Host` implementation
//! and one set of shared types serve all kinds.
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

pub mod points {
    wasmtime::component::bindgen!({
        world: "points-rules",
        path: "../wit",
        additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
        exports: { default: async },
        with: {
            "powerbank:plugins/types": crate::bindings::pricing::powerbank::plugins::types,
            "powerbank:plugins/host": crate::bindings::pricing::powerbank::plugins::host,
        },
    });
}

pub mod promotions {
    wasmtime::component::bindgen!({
        world: "promotions",
        path: "../wit",
        additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
        exports: { default: async },
        with: {
            "powerbank:plugins/types": crate::bindings::pricing::powerbank::plugins::types,
            "powerbank:plugins/host": crate::bindings::pricing::powerbank::plugins::host,
        },
    });
}

pub mod payment_gateway {
    wasmtime::component::bindgen!({
        world: "payment-gateway",
        path: "../wit",
        additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
        exports: { default: async },
        with: {
            "powerbank:plugins/types": crate::bindings::pricing::powerbank::plugins::types,
            "powerbank:plugins/host": crate::bindings::pricing::powerbank::plugins::host,
        },
    });
}

pub mod station_protocol {
    wasmtime::component::bindgen!({
        world: "station-protocol",
        path: "../wit",
        additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
        exports: { default: async },
        with: {
            "powerbank:plugins/types": crate::bindings::pricing::powerbank::plugins::types,
            "powerbank:plugins/host": crate::bindings::pricing::powerbank::plugins::host,
        },
    });
}

pub use pricing::powerbank::plugins::host;
pub use pricing::powerbank::plugins::types as shared;
