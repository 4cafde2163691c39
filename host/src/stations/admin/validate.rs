//! Field rules of the operator endpoints: each turns raw input into a clean
//! value or a 400 naming the field.

use chrono::NaiveTime;
use rusqlite::{Transaction, params};

use crate::{
    core::ApiError,
    state::AppState,
    stations::{listing::validate_amenity_code, status::StationStatus},
};

pub(super) fn serial(field: &str, raw: &str) -> Result<String, ApiError> {
    let s = raw.trim();
    let ok = (3..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(ApiError::invalid_field(field, "3 to 64 characters: letters, digits, - and _"));
    }
    Ok(s.to_string())
}

/// A protocol must be a station-protocol plugin in plugins.toml (loaded or
/// not: an operator may register stations before their plugin is deployed).
pub(super) fn protocol(state: &AppState, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(name) = raw.map(str::trim) else { return Ok(None) };
    let configured = state
        .plugins
        .status()
        .iter()
        .any(|p| p.kind == powerbank_plugin_runtime::PluginKind::StationProtocol && p.name == name);
    if !configured {
        return Err(ApiError::invalid_field(
            "protocol",
            format!("no station-protocol plugin named `{name}` in plugins.toml"),
        ));
    }
    Ok(Some(name.to_string()))
}

/// A device id must not name another station, by its device id or its serial.
pub(super) fn ensure_device_id_free(tx: &Transaction<'_>, device_id: &str, own_serial: &str) -> Result<(), ApiError> {
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM stations
            WHERE serial_number != ?2 AND (device_id = ?1 OR (device_id IS NULL AND serial_number = ?1)))",
        params![device_id, own_serial],
        |r| r.get(0),
    )?;
    if taken {
        return Err(ApiError::conflict("duplicate_device_id", "another station uses this device id"));
    }
    Ok(())
}

pub(super) fn text(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n < 2 || n > max {
        return Err(ApiError::invalid_field(field, format!("must be 2 to {max} characters")));
    }
    crate::core::text::check_user_text(field, s, false)?;
    Ok(s.to_string())
}

pub(super) fn opt_text(field: &str, raw: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    raw.map(|r| text(field, r, max)).transpose()
}

pub(super) fn latitude(v: f64) -> Result<f64, ApiError> {
    if v.is_finite() && (-90.0..=90.0).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::invalid_field("latitude", "must be between -90 and 90"))
    }
}

pub(super) fn longitude(v: f64) -> Result<f64, ApiError> {
    if v.is_finite() && (-180.0..=180.0).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::invalid_field("longitude", "must be between -180 and 180"))
    }
}

/// A status an operator may set (retiring has its own route).
pub(super) fn status(raw: Option<&str>) -> Result<Option<StationStatus>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    match StationStatus::parse(raw) {
        Some(s) if StationStatus::LISTED.contains(&s) => Ok(Some(s)),
        _ => {
            let listed: Vec<&str> = StationStatus::LISTED.iter().map(|s| s.as_str()).collect();
            Err(ApiError::invalid_field("status", format!("must be one of {}", listed.join(", "))))
        }
    }
}

pub(super) fn opening_hours(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = || ApiError::invalid_field("opening_hours", "must be HH:MM-HH:MM");
    let (open, close) = raw.trim().split_once('-').ok_or_else(bad)?;
    let open = NaiveTime::parse_from_str(open.trim(), "%H:%M").map_err(|_| bad())?;
    let close = NaiveTime::parse_from_str(close.trim(), "%H:%M").map_err(|_| bad())?;
    Ok(Some(format!("{}-{}", open.format("%H:%M"), close.format("%H:%M"))))
}

pub(super) fn http_url(field: &str, raw: &str) -> Result<String, ApiError> {
    let url = raw.trim();
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && url.len() <= 500
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(ApiError::invalid_field(field, "must be an http(s) URL up to 500 characters"));
    }
    Ok(url.to_string())
}

pub(super) fn amenity_codes(codes: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::with_capacity(codes.len());
    for code in codes {
        let code = code.trim().to_ascii_lowercase();
        validate_amenity_code(&code).map_err(|m| ApiError::invalid_field("amenities", m))?;
        if !out.contains(&code) {
            out.push(code);
        }
    }
    if out.len() > 50 {
        return Err(ApiError::invalid_field("amenities", "at most 50 amenities"));
    }
    Ok(out)
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

pub(super) fn is_foreign_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules() {
        assert!(serial("sn", "KTM-THAMEL-01").is_ok());
        assert!(serial("sn", "ab").is_err());
        assert!(serial("sn", "has space").is_err());
        assert!(text("name", " x ", 100).is_err());
        assert!(text("name", "Thamel\u{0}", 100).is_err());
        assert_eq!(opening_hours(Some("6:00 - 22:00")).unwrap().unwrap(), "06:00-22:00");
        assert!(opening_hours(Some("25:00-26:00")).is_err());
        assert!(opening_hours(Some("always")).is_err());
        assert!(http_url("url", "javascript:alert(1)").is_err());
        assert!(http_url("url", "https://example.com/a.jpg").is_ok());
        assert!(latitude(f64::INFINITY).is_err());
        assert!(longitude(180.5).is_err());
        assert_eq!(amenity_codes(&["WiFi".into(), "wifi".into()]).unwrap(), vec!["wifi"]);
    }
}
