//! Typed reads of the plugin's `[plugins.NAME.config]` table.
//!
//! Values arrive as strings. Each reader returns `Err` with a message naming
//! the key when a value does not parse, so a plugin can reject bad config in
//! `self-check` (the host then keeps the previous version serving).

use core::str::FromStr;

use crate::host;

/// The raw string value of `key`, if configured.
pub fn get(key: &str) -> Option<String> {
    host::config_get(key)
}

/// `key` parsed as `T`, or `default` when it is not configured.
pub fn parse_or<T: FromStr>(key: &str, default: T) -> Result<T, String> {
    match get(key) {
        None => Ok(default),
        Some(raw) => parse_value(key, &raw),
    }
}

/// `key` parsed as `T`, or `None` when it is not configured.
pub fn parse_opt<T: FromStr>(key: &str) -> Result<Option<T>, String> {
    get(key).map(|raw| parse_value(key, &raw)).transpose()
}

/// `key` as a boolean (`true`/`false`/`1`/`0`/`yes`/`no`), or `default`.
pub fn bool_or(key: &str, default: bool) -> Result<bool, String> {
    match get(key) {
        None => Ok(default),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(format!("config `{key}`: expected true or false, got `{raw}`")),
        },
    }
}

/// Parses `raw`, trimming spaces and underscores used as digit separators.
pub fn parse_value<T: FromStr>(key: &str, raw: &str) -> Result<T, String> {
    let cleaned: String = raw.trim().chars().filter(|c| *c != '_').collect();
    cleaned.parse().map_err(|_| format!("config `{key}`: cannot parse `{raw}`"))
}
