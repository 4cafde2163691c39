//! Works, but its self-check fails: the host must refuse to swap it in.

use powerbank_plugin_sdk::pricing::{
    BreakdownLine, ExtensionRequest, Guest, LostPolicy, LostRequest, OverdueCharge, OverdueRequest, Quote, QuoteRequest,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, plugin_info};

struct BadSelfCheck;

impl Guest for BadSelfCheck {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing)
    }

    fn self_check() -> Result<(), CallError> {
        Err(CallError::Misconfigured("bad-self-check always fails its self-check".to_string()))
    }

    fn quote(_request: QuoteRequest) -> Result<Quote, CallError> {
        Ok(Quote {
            amount_paisa: 1,
            breakdown: vec![BreakdownLine { label: "should never be served".to_string(), amount_paisa: 1 }],
            due_minutes: 1,
        })
    }

    fn price_extension(_request: ExtensionRequest) -> Result<i64, CallError> {
        Ok(1)
    }

    fn overdue_charge(_request: OverdueRequest) -> Result<OverdueCharge, CallError> {
        Err(CallError::NotSupported("not implemented".to_string()))
    }

    fn lost_penalty(_request: LostRequest) -> Result<LostPolicy, CallError> {
        Err(CallError::NotSupported("not implemented".to_string()))
    }
}

powerbank_plugin_sdk::export_pricing!(BadSelfCheck);
