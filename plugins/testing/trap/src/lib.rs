//! Traps: `quote` panics (an abort with panic=abort), `overdue-charge` executes
//! `unreachable`.

use powerbank_plugin_sdk::pricing::{
    ExtensionRequest, Guest, LostPolicy, LostRequest, OverdueCharge, OverdueRequest, Quote, QuoteRequest,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, plugin_info};

struct Trap;

impl Guest for Trap {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing)
    }

    fn self_check() -> Result<(), CallError> {
        Ok(())
    }

    fn quote(request: QuoteRequest) -> Result<Quote, CallError> {
        panic!("trap plugin asked to quote {}", request.package.code);
    }

    fn price_extension(_request: ExtensionRequest) -> Result<i64, CallError> {
        Ok(0)
    }

    fn overdue_charge(_request: OverdueRequest) -> Result<OverdueCharge, CallError> {
        core::arch::wasm32::unreachable()
    }

    fn lost_penalty(_request: LostRequest) -> Result<LostPolicy, CallError> {
        core::arch::wasm32::unreachable()
    }
}

powerbank_plugin_sdk::export_pricing!(Trap);
