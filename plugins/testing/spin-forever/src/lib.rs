//! Loops forever in `quote`; the host must interrupt it at the call's deadline.

use powerbank_plugin_sdk::plugin_info;
use powerbank_plugin_sdk::pricing::{
    ExtensionRequest, Guest, OverdueCharge, OverdueRequest, PluginInfo, PluginKind, Quote, QuoteRequest,
};

struct SpinForever;

impl Guest for SpinForever {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing)
    }

    fn self_check() -> Result<(), String> {
        Ok(())
    }

    fn quote(_request: QuoteRequest) -> Result<Quote, String> {
        let mut n: u64 = 0;
        loop {
            // black_box keeps the loop from being optimised into anything else.
            n = core::hint::black_box(n.wrapping_add(1));
        }
    }

    fn price_extension(_request: ExtensionRequest) -> Result<i64, String> {
        Ok(0)
    }

    fn overdue_charge(_request: OverdueRequest) -> Result<OverdueCharge, String> {
        Err("not implemented".to_string())
    }
}

powerbank_plugin_sdk::export_pricing!(SpinForever);
