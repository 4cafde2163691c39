//! A pricing plugin as a 0.1 plugin was written: string errors, no display
//! name. Charges `paisa_per_minute` (config, default 100) per minute.
//!
//! - `quote`: the requested (or the package's) minutes at that rate, one
//!   breakdown line; more than a day is refused with a message.
//! - `price-extension`: the extra minutes at that rate.
//! - `overdue-charge`: every late minute at twice the rate.
//! - `self-check`: fails when `paisa_per_minute` does not parse.

use contract_v0_1_bindings::host::{self, LogLevel};
use contract_v0_1_bindings::plugin_info;
use contract_v0_1_bindings::pricing::{
    BreakdownLine, ExtensionRequest, Guest, OverdueCharge, OverdueRequest, PluginInfo, PluginKind, Quote, QuoteRequest,
};

fn rate() -> Result<i64, String> {
    match host::config_get("paisa_per_minute") {
        None => Ok(100),
        Some(raw) => raw.trim().parse().map_err(|_| format!("paisa_per_minute `{raw}` is not a number")),
    }
}

struct PerMinute;

impl Guest for PerMinute {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing)
    }

    fn self_check() -> Result<(), String> {
        rate().map(|_| ())
    }

    fn quote(request: QuoteRequest) -> Result<Quote, String> {
        let minutes = request.requested_minutes.unwrap_or(request.package.duration_minutes);
        if minutes > 24 * 60 {
            return Err(format!("{minutes} minutes is longer than a day"));
        }
        let amount = rate()? * i64::from(minutes);
        host::log(LogLevel::Debug, "quoted", &[("minutes".to_string(), minutes.to_string())]);
        Ok(Quote {
            amount_paisa: amount,
            breakdown: vec![BreakdownLine { label: format!("{minutes} min"), amount_paisa: amount }],
            due_minutes: minutes,
        })
    }

    fn price_extension(request: ExtensionRequest) -> Result<i64, String> {
        Ok(rate()? * i64::from(request.extra_minutes))
    }

    fn overdue_charge(request: OverdueRequest) -> Result<OverdueCharge, String> {
        let late_minutes = (request.returned_unix_ms - request.due_unix_ms).max(0) / 60_000;
        Ok(OverdueCharge {
            amount_paisa: late_minutes * rate()? * 2,
            explanation: format!("{late_minutes} min late at twice the rate"),
        })
    }
}

contract_v0_1_bindings::export_pricing!(PerMinute);
