//! Typed reads of the plugin's `[plugins.NAME.config]` table.
//!
//! Values arrive as strings. Each reader fails with
//! `CallError::Misconfigured` naming the key when a value does not parse, so
//! `self-check` can refuse bad config with `?` (the host then keeps the
//! previous version serving); a gateway's `?` turns it into
//! `GatewayError::Internal`.

use core::str::FromStr;

use crate::host;
use crate::types::CallError;

/// The raw string value of `key`, if configured.
pub fn get(key: &str) -> Option<String> {
    host::config_get(key)
}

/// The value of `key`, which must be configured.
pub fn required(key: &str) -> Result<String, CallError> {
    get(key).ok_or_else(|| CallError::Misconfigured(format!("config `{key}` is required")))
}

/// `key` parsed as `T`, or `default` when it is not configured.
pub fn parse_or<T: FromStr>(key: &str, default: T) -> Result<T, CallError> {
    match get(key) {
        None => Ok(default),
        Some(raw) => parse_value(key, &raw),
    }
}

/// `key` parsed as `T`, or `None` when it is not configured.
pub fn parse_opt<T: FromStr>(key: &str) -> Result<Option<T>, CallError> {
    get(key).map(|raw| parse_value(key, &raw)).transpose()
}

/// `key` as a boolean (`true`/`false`/`1`/`0`/`yes`/`no`), or `default`.
pub fn bool_or(key: &str, default: bool) -> Result<bool, CallError> {
    match get(key) {
        None => Ok(default),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(misconfigured(key, format!("expected true or false, got `{raw}`"))),
        },
    }
}

/// Parses `raw`, trimming spaces and underscores used as digit separators.
pub fn parse_value<T: FromStr>(key: &str, raw: &str) -> Result<T, CallError> {
    let cleaned: String = raw.trim().chars().filter(|c| *c != '_').collect();
    cleaned.parse().map_err(|_| misconfigured(key, format!("cannot parse `{raw}`")))
}

/// `CallError::Misconfigured` naming `key`.
pub fn misconfigured(key: &str, problem: impl core::fmt::Display) -> CallError {
    CallError::Misconfigured(format!("config `{key}`: {problem}"))
}
