//! A pricing plugin as a 0.2 plugin was written: no `lost-penalty`. Charges
//! `paisa_per_minute` (config, default 100) per minute.
//!
//! - `quote`: the requested (or the package's) minutes at that rate, one
//!   breakdown line; more than a day is `invalid-input`.
//! - `price-extension`: the extra minutes at that rate.
//! - `overdue-charge`: every late minute at three times the rate.
//! - `self-check`: `misconfigured` when `paisa_per_minute` does not parse.

use contract_v0_2_bindings::plugin_info;
use contract_v0_2_bindings::pricing::{
    BreakdownLine, CallError, ExtensionRequest, Guest, OverdueCharge, OverdueRequest, PluginInfo, PluginKind, Quote,
    QuoteRequest,
};

fn rate() -> Result<i64, CallError> {
    match contract_v0_2_bindings::host::config_get("paisa_per_minute") {
        None => Ok(100),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| CallError::Misconfigured(format!("paisa_per_minute `{raw}` is not a number"))),
    }
}

struct PerMinute;

impl Guest for PerMinute {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing, "Per minute (0.2)")
    }

    fn self_check() -> Result<(), CallError> {
        rate().map(|_| ())
    }

    fn quote(request: QuoteRequest) -> Result<Quote, CallError> {
        let minutes = request.requested_minutes.unwrap_or(request.package.duration_minutes);
        if minutes > 24 * 60 {
            return Err(CallError::InvalidInput(format!("{minutes} minutes is longer than a day")));
        }
        let amount = rate()? * i64::from(minutes);
        Ok(Quote {
            amount_paisa: amount,
            breakdown: vec![BreakdownLine { label: format!("{minutes} min"), amount_paisa: amount }],
            due_minutes: minutes,
        })
    }

    fn price_extension(request: ExtensionRequest) -> Result<i64, CallError> {
        Ok(rate()? * i64::from(request.extra_minutes))
    }

    fn overdue_charge(request: OverdueRequest) -> Result<OverdueCharge, CallError> {
        let late_minutes = (request.returned_unix_ms - request.due_unix_ms).max(0) / 60_000;
        Ok(OverdueCharge {
            amount_paisa: late_minutes * rate()? * 3,
            explanation: format!("{late_minutes} min late at three times the rate"),
        })
    }
}

contract_v0_2_bindings::export_pricing!(PerMinute);
