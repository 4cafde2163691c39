//! Loops forever in `quote`; the host must interrupt it at the call's deadline.

use powerbank_plugin_sdk::pricing::{
    ExtensionRequest, Guest, LostPolicy, LostRequest, OverdueCharge, OverdueRequest, Quote, QuoteRequest,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, plugin_info};

struct SpinForever;

impl Guest for SpinForever {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing)
    }

    fn self_check() -> Result<(), CallError> {
        Ok(())
    }

    fn quote(_request: QuoteRequest) -> Result<Quote, CallError> {
        let mut n: u64 = 0;
        loop {
            // black_box keeps the loop from being optimised into anything else.
            n = core::hint::black_box(n.wrapping_add(1));
        }
    }

    fn price_extension(_request: ExtensionRequest) -> Result<i64, CallError> {
        Ok(0)
    }

    fn overdue_charge(_request: OverdueRequest) -> Result<OverdueCharge, CallError> {
        Err(CallError::NotSupported("not implemented".to_string()))
    }

    fn lost_penalty(_request: LostRequest) -> Result<LostPolicy, CallError> {
        Err(CallError::NotSupported("not implemented".to_string()))
    }
}

powerbank_plugin_sdk::export_pricing!(SpinForever);
