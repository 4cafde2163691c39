//! Seed pricing: the user pays the package price for the package duration
//! (whole packages if they ask for longer), and an overdue fee per started
//! hour late.
//!
//! Config (all optional):
//! - `overdue_paisa_per_hour` (default 500 = NPR 5)
//! - `overdue_grace_minutes`: lateness up to this is free (default 0)
//! - `overdue_cap_paisa`: upper bound of one overdue charge (default none)
//! - `service_fee_paisa`: flat fee added to each quote (default 0)

use powerbank_plugin_sdk::money::{div_ceil, format_npr};
use powerbank_plugin_sdk::pricing::{
    BreakdownLine, ExtensionRequest, Guest, OverdueCharge, OverdueRequest, PackageInfo, Quote, QuoteRequest,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, plugin_info};

const MS_PER_MINUTE: i64 = 60_000;

struct Rules {
    overdue_paisa_per_hour: i64,
    overdue_grace_minutes: i64,
    overdue_cap_paisa: Option<i64>,
    service_fee_paisa: i64,
}

impl Rules {
    fn from_config() -> Result<Self, CallError> {
        let rules = Rules {
            overdue_paisa_per_hour: config::parse_or("overdue_paisa_per_hour", 500)?,
            overdue_grace_minutes: config::parse_or("overdue_grace_minutes", 0)?,
            overdue_cap_paisa: config::parse_opt("overdue_cap_paisa")?,
            service_fee_paisa: config::parse_or("service_fee_paisa", 0)?,
        };
        if rules.overdue_paisa_per_hour < 0
            || rules.overdue_grace_minutes < 0
            || rules.service_fee_paisa < 0
            || rules.overdue_cap_paisa.is_some_and(|c| c < 0)
        {
            return Err(CallError::Misconfigured("pricing config values must not be negative".to_string()));
        }
        Ok(rules)
    }
}

fn check_package(package: &PackageInfo) -> Result<(), CallError> {
    if package.price_paisa < 0 {
        return Err(invalid(format!("package {} has a negative price", package.code)));
    }
    if package.duration_minutes == 0 {
        return Err(invalid(format!("package {} has no duration", package.code)));
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> CallError {
    CallError::InvalidInput(message.into())
}

/// Number of whole packages needed to cover `minutes`, at least one.
fn packages_for(package: &PackageInfo, minutes: u32) -> i64 {
    div_ceil(i64::from(minutes), i64::from(package.duration_minutes)).max(1)
}

struct StandardPricing;

impl Guest for StandardPricing {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing, "Standard pricing")
    }

    fn self_check() -> Result<(), CallError> {
        Rules::from_config().map(|_| ())
    }

    fn quote(request: QuoteRequest) -> Result<Quote, CallError> {
        let rules = Rules::from_config()?;
        let package = &request.package;
        check_package(package)?;
        let minutes = request.requested_minutes.unwrap_or(package.duration_minutes);
        let count = packages_for(package, minutes);
        let rental = package.price_paisa.checked_mul(count).ok_or_else(|| invalid("quote amount overflows"))?;
        let due_minutes = u32::try_from(count * i64::from(package.duration_minutes))
            .map_err(|_| invalid("requested duration is too long"))?;

        let label = if count == 1 {
            format!("Package {}", package.code)
        } else {
            format!("Package {} x {count}", package.code)
        };
        let mut breakdown = vec![BreakdownLine { label, amount_paisa: rental }];
        if rules.service_fee_paisa > 0 {
            breakdown.push(BreakdownLine { label: "Service fee".to_string(), amount_paisa: rules.service_fee_paisa });
        }
        let amount_paisa = breakdown.iter().map(|l| l.amount_paisa).sum();
        Ok(Quote { amount_paisa, breakdown, due_minutes })
    }

    fn price_extension(request: ExtensionRequest) -> Result<i64, CallError> {
        check_package(&request.package)?;
        if request.extra_minutes == 0 {
            return Ok(0);
        }
        let count = packages_for(&request.package, request.extra_minutes);
        request.package.price_paisa.checked_mul(count).ok_or_else(|| invalid("extension amount overflows"))
    }

    fn overdue_charge(request: OverdueRequest) -> Result<OverdueCharge, CallError> {
        let rules = Rules::from_config()?;
        let late_ms = request.returned_unix_ms.saturating_sub(request.due_unix_ms);
        if late_ms <= rules.overdue_grace_minutes.saturating_mul(MS_PER_MINUTE) {
            let explanation = if late_ms <= 0 {
                "Returned on time".to_string()
            } else {
                format!("Returned within the {} minute grace period", rules.overdue_grace_minutes)
            };
            return Ok(OverdueCharge { amount_paisa: 0, explanation });
        }
        // Every started hour counts, so one minute late is one hour.
        let hours = div_ceil(late_ms, 60 * MS_PER_MINUTE);
        let mut amount = hours.saturating_mul(rules.overdue_paisa_per_hour);
        let mut explanation =
            format!("{hours} started hour(s) late x {} per hour", format_npr(rules.overdue_paisa_per_hour));
        if let Some(cap) = rules.overdue_cap_paisa
            && amount > cap
        {
            amount = cap;
            explanation.push_str(&format!(", capped at {}", format_npr(cap)));
        }
        Ok(OverdueCharge { amount_paisa: amount, explanation })
    }
}

powerbank_plugin_sdk::export_pricing!(StandardPricing);
