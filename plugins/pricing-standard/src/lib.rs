//! Seed pricing: the user pays the package price for the package duration
//! (whole packages if they ask for longer), a late fee in one of three modes,
//! and a penalty for a bank that never comes back.
//!
//! Config (all optional; every value is checked by `self-check`, so a bad one
//! fails the load and the previous version keeps serving):
//! - `overdue_mode`: how lateness is priced (default `per_started_hour`):
//!   - `per_started_hour`: `overdue_paisa_per_hour` for every started hour;
//!   - `per_minute`: pro rata, `overdue_paisa_per_hour` / 60 per started
//!     minute (the total rounded up to a paisa);
//!   - `package_rate`: the package's own rate (price / duration) per started
//!     minute, times `overdue_rate_percent` / 100 (rounded up to a paisa);
//! - `overdue_paisa_per_hour` (default 500 = NPR 5)
//! - `overdue_rate_percent`: multiplier of the package rate in percent
//!   (default 100; 150 = one and a half times the rate)
//! - `overdue_grace_minutes`: lateness up to this is free (default 0); past
//!   it, the whole lateness counts
//! - `overdue_daily_cap_paisa`: at most this for each 24 hours late (default none)
//! - `overdue_cap_paisa`: upper bound of one overdue charge (default none)
//! - `service_fee_paisa`: flat fee added to each quote (default 0)
//! - `lost_after_hours`: hours after the due time at which a bank still out
//!   is declared lost (default 24, 1 to 720)
//! - `lost_penalty_paisa`: charged on top of the overdue so far when a bank
//!   is declared lost (default 500000 = NPR 5,000)
//! - `overdue_reminder_minutes`: comma-separated minutes after the due time
//!   at which the user is reminded (default `0,60,720`)

use powerbank_plugin_sdk::money::{div_ceil, format_npr};
use powerbank_plugin_sdk::pricing::{
    BreakdownLine, ExtensionRequest, Guest, LostPolicy, LostRequest, OverdueCharge, OverdueRequest, PackageInfo, Quote,
    QuoteRequest,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, plugin_info};

const MS_PER_MINUTE: i64 = 60_000;
const MINUTES_PER_DAY: i64 = 24 * 60;

/// How lateness is priced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OverdueMode {
    PerStartedHour,
    PerMinute,
    PackageRate,
}

struct Rules {
    overdue_mode: OverdueMode,
    overdue_paisa_per_hour: i64,
    overdue_rate_percent: i64,
    overdue_grace_minutes: i64,
    overdue_daily_cap_paisa: Option<i64>,
    overdue_cap_paisa: Option<i64>,
    service_fee_paisa: i64,
    lost_after_hours: u32,
    lost_penalty_paisa: i64,
    overdue_reminder_minutes: Vec<u32>,
}

fn misconfigured(message: impl Into<String>) -> CallError {
    CallError::Misconfigured(message.into())
}

impl Rules {
    fn from_config() -> Result<Self, CallError> {
        let mode = match config::get("overdue_mode").as_deref().map(str::trim) {
            None | Some("per_started_hour") => OverdueMode::PerStartedHour,
            Some("per_minute") => OverdueMode::PerMinute,
            Some("package_rate") => OverdueMode::PackageRate,
            Some(other) => {
                return Err(config::misconfigured(
                    "overdue_mode",
                    format!("`{other}` is not one of per_started_hour, per_minute, package_rate"),
                ));
            }
        };
        let reminders = match config::get("overdue_reminder_minutes") {
            None => vec![0, 60, 720],
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(|m| config::parse_value::<u32>("overdue_reminder_minutes", m))
                .collect::<Result<Vec<u32>, CallError>>()?,
        };
        let rules = Rules {
            overdue_mode: mode,
            overdue_paisa_per_hour: config::parse_or("overdue_paisa_per_hour", 500)?,
            overdue_rate_percent: config::parse_or("overdue_rate_percent", 100)?,
            overdue_grace_minutes: config::parse_or("overdue_grace_minutes", 0)?,
            overdue_daily_cap_paisa: config::parse_opt("overdue_daily_cap_paisa")?,
            overdue_cap_paisa: config::parse_opt("overdue_cap_paisa")?,
            service_fee_paisa: config::parse_or("service_fee_paisa", 0)?,
            lost_after_hours: config::parse_or("lost_after_hours", 24)?,
            lost_penalty_paisa: config::parse_or("lost_penalty_paisa", 500_000)?,
            overdue_reminder_minutes: reminders,
        };
        if rules.overdue_paisa_per_hour < 0
            || rules.overdue_grace_minutes < 0
            || rules.service_fee_paisa < 0
            || rules.lost_penalty_paisa < 0
            || rules.overdue_cap_paisa.is_some_and(|c| c < 0)
            || rules.overdue_daily_cap_paisa.is_some_and(|c| c < 0)
        {
            return Err(misconfigured("pricing config values must not be negative"));
        }
        if !(1..=1_000).contains(&rules.overdue_rate_percent) {
            return Err(config::misconfigured("overdue_rate_percent", "must be between 1 and 1000"));
        }
        if !(1..=720).contains(&rules.lost_after_hours) {
            return Err(config::misconfigured("lost_after_hours", "must be between 1 and 720"));
        }
        if rules.overdue_grace_minutes >= i64::from(rules.lost_after_hours) * 60 {
            return Err(config::misconfigured("overdue_grace_minutes", "must be shorter than lost_after_hours"));
        }
        Ok(rules)
    }

    /// The charge for `minutes` late (more than zero), before any cap.
    fn uncapped(&self, package: &PackageInfo, minutes: i64) -> i64 {
        match self.overdue_mode {
            OverdueMode::PerStartedHour => div_ceil(minutes, 60).saturating_mul(self.overdue_paisa_per_hour),
            OverdueMode::PerMinute => div_ceil(minutes.saturating_mul(self.overdue_paisa_per_hour), 60),
            OverdueMode::PackageRate => div_ceil(
                minutes.saturating_mul(package.price_paisa).saturating_mul(self.overdue_rate_percent),
                i64::from(package.duration_minutes).saturating_mul(100),
            ),
        }
    }

    /// The charge for `minutes` late with the daily cap applied to each
    /// 24 hours (the last, partial day too).
    fn daily_capped(&self, package: &PackageInfo, minutes: i64) -> i64 {
        let Some(cap) = self.overdue_daily_cap_paisa else { return self.uncapped(package, minutes) };
        let (days, rest) = (minutes / MINUTES_PER_DAY, minutes % MINUTES_PER_DAY);
        let full_day = self.uncapped(package, MINUTES_PER_DAY).min(cap);
        let last = if rest > 0 { self.uncapped(package, rest).min(cap) } else { 0 };
        days.saturating_mul(full_day).saturating_add(last)
    }

    fn rate_text(&self, package: &PackageInfo) -> String {
        match self.overdue_mode {
            OverdueMode::PerStartedHour => format!("{} per started hour", format_npr(self.overdue_paisa_per_hour)),
            OverdueMode::PerMinute => format!("{} per hour, by the minute", format_npr(self.overdue_paisa_per_hour)),
            OverdueMode::PackageRate => format!(
                "{}% of the package rate ({} per {} min), by the minute",
                self.overdue_rate_percent,
                format_npr(package.price_paisa),
                package.duration_minutes
            ),
        }
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
        check_package(&request.package)?;
        let late_ms = request.returned_unix_ms.saturating_sub(request.due_unix_ms);
        if late_ms <= rules.overdue_grace_minutes.saturating_mul(MS_PER_MINUTE) {
            let explanation = if late_ms <= 0 {
                "Returned on time".to_string()
            } else {
                format!("Returned within the {} minute grace period", rules.overdue_grace_minutes)
            };
            return Ok(OverdueCharge { amount_paisa: 0, explanation });
        }
        // Every started minute counts (and every started hour, per hour).
        let minutes = div_ceil(late_ms, MS_PER_MINUTE);
        let mut amount = rules.daily_capped(&request.package, minutes);
        let mut explanation = format!("{minutes} min late at {}", rules.rate_text(&request.package));
        if let Some(cap) = rules.overdue_daily_cap_paisa {
            explanation.push_str(&format!(", at most {} a day", format_npr(cap)));
        }
        if let Some(cap) = rules.overdue_cap_paisa
            && amount > cap
        {
            amount = cap;
            explanation.push_str(&format!(", capped at {}", format_npr(cap)));
        }
        Ok(OverdueCharge { amount_paisa: amount, explanation })
    }

    fn lost_penalty(_request: LostRequest) -> Result<LostPolicy, CallError> {
        let rules = Rules::from_config()?;
        Ok(LostPolicy {
            reminder_minutes: rules.overdue_reminder_minutes,
            lost_after_minutes: rules.lost_after_hours * 60,
            penalty_paisa: rules.lost_penalty_paisa,
            explanation: format!(
                "Power bank not returned within {} hours of its due time: {} penalty",
                rules.lost_after_hours,
                format_npr(rules.lost_penalty_paisa)
            ),
        })
    }
}

powerbank_plugin_sdk::export_pricing!(StandardPricing);
