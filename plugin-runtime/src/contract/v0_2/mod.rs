//! Contract `powerbank:plugins@0.2.0`, kept so that plugins built before
//! 0.3 keep loading and serving unchanged.
//!
//! The 0.2 WIT is frozen in `wit/compat/0.2.0/`. This module binds it, gives
//! 0.2 plugins the host interface they import (by delegating to the current
//! one), and adapts each export to the current types (`adapt`). 0.3 only
//! added: the pricing world's `lost-penalty` and four points events, so a
//! 0.2 plugin is read value for value, and the host answers what it cannot.

mod adapt;

/// Bindings of the frozen 0.2 worlds; `pricing` generates the shared
/// interfaces, as in the current bindings.
pub(crate) mod bindings {
    pub mod pricing {
        wasmtime::component::bindgen!({
            world: "pricing",
            path: "../wit/compat/0.2.0",
            imports: { "powerbank:plugins/host.http-fetch": async },
            exports: { default: async },
        });
    }

    macro_rules! world_sharing_host {
        ($module:ident, $world:literal) => {
            pub mod $module {
                wasmtime::component::bindgen!({
                    world: $world,
                    path: "../wit/compat/0.2.0",
                    exports: { default: async },
                    with: {
                        "powerbank:plugins/types": crate::contract::v0_2::bindings::pricing::powerbank::plugins::types,
                        "powerbank:plugins/host": crate::contract::v0_2::bindings::pricing::powerbank::plugins::host,
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

use crate::contract::convert::Convert;
use crate::contract::current;
use crate::state::StoreState;

// Interfaces with only types have empty host traits.
impl bindings::types::Host for StoreState {}
impl bindings::pricing::powerbank::plugins::pricing_types::Host for StoreState {}
impl bindings::points::powerbank::plugins::points_types::Host for StoreState {}
impl bindings::promotions::powerbank::plugins::promotion_types::Host for StoreState {}
impl bindings::payment_gateway::powerbank::plugins::payment_types::Host for StoreState {}
impl bindings::station_protocol::powerbank::plugins::station_types::Host for StoreState {}

/// The 0.2 host interface is the current one with its own types: same
/// functions, same limits, one implementation.
impl bindings::host::Host for StoreState {
    fn log(&mut self, level: bindings::types::LogLevel, message: String, fields: Vec<(String, String)>) {
        current::host::Host::log(self, level.convert(), message, fields)
    }

    fn now_unix_ms(&mut self) -> i64 {
        current::host::Host::now_unix_ms(self)
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        current::host::Host::config_get(self, key)
    }

    fn secret_get(&mut self, key: String) -> Option<String> {
        current::host::Host::secret_get(self, key)
    }

    async fn http_fetch(
        &mut self,
        request: bindings::host::HttpRequest,
    ) -> Result<bindings::host::HttpResponse, bindings::host::HttpError> {
        current::host::Host::http_fetch(self, request.convert()).await.convert()
    }
}
