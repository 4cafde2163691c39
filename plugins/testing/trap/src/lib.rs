//! Traps: `quote` panics (an abort with panic=abort), `overdue-charge` executes
//! `unreachable`.

use powerbank_plugin_sdk::plugin_info;
use powerbank_plugin_sdk::pricing::{
    ExtensionRequest, Guest, OverdueCharge, OverdueRequest, PluginInfo, PluginKind, Quote, QuoteRequest,
};

struct Trap;

impl Guest for Trap {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing)
    }

    fn self_check() -> Result<(), String> {
        Ok(())
    }

    fn quote(request: QuoteRequest) -> Result<Quote, String> {
        panic!("trap plugin asked to quote {}", request.package.code);
    }

    fn price_extension(_request: ExtensionRequest) -> Result<i64, String> {
        Ok(0)
    }

    fn overdue_charge(_request: OverdueRequest) -> Result<OverdueCharge, String> {
        core::arch::wasm32::unreachable()
    }
}

powerbank_plugin_sdk::export_pricing!(Trap);
