//! Structured logging through the host, which adds the plugin's name and version.

use crate::host;
use crate::types::LogLevel;

/// Logs `message` with key/value `fields` at `level`.
pub fn log(level: LogLevel, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
    host::log(level, message, &fields);
}

pub fn debug(message: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Debug, message, fields);
}

pub fn info(message: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Info, message, fields);
}

pub fn warn(message: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Warn, message, fields);
}

pub fn error(message: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Error, message, fields);
}
