//! What the gateway plugins share: turning HTTP outcomes into
//! `GatewayError`s the host can act on, form encoding, HMAC-SHA256, and
//! paisa <-> rupee text.
//!
//! How HTTP outcomes map to `GatewayError` (the host answers each differently):
//! - the time budget ran out: `Timeout` (504);
//! - the gateway could not be reached, answered 5xx or 429, or answered
//!   unreadable JSON: `Unavailable` (502, retry later);
//! - the gateway refused our credentials, or our config is wrong: `Internal`;
//! - the gateway refused the request itself (4xx): `InvalidRequest`.

use hmac::{Hmac, Mac};
use powerbank_plugin_sdk::http::{self, HttpError, HttpMethod, HttpRequest, HttpResponse};
use powerbank_plugin_sdk::payment_gateway::GatewayError;
use powerbank_plugin_sdk::{CallError, config, secret};
use serde_json::Value;
use sha2::Sha256;

/// A required config value, e.g. `base_url`, without a trailing slash.
pub fn base_url(key: &str) -> Result<String, CallError> {
    let url = config::required(key)?;
    let url = url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(config::misconfigured(key, format!("must be an http(s) URL, got `{url}`")));
    }
    Ok(url)
}

/// A required secret; its absence is a configuration error.
pub fn required_secret(key: &str) -> Result<String, CallError> {
    match secret(key) {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(CallError::Misconfigured(format!("secret `{key}` is not configured"))),
    }
}

/// `required_secret` for business calls.
pub fn secret_or_internal(key: &str) -> Result<String, GatewayError> {
    Ok(required_secret(key)?)
}

/// `base_url` for business calls.
pub fn config_or_internal(key: &str) -> Result<String, GatewayError> {
    Ok(base_url(key)?)
}

/// Maps a transport-level failure of `http-fetch`.
pub fn http_error(url: &str, e: HttpError) -> GatewayError {
    match e {
        HttpError::Timeout => GatewayError::Timeout(format!("no answer from {url} within the time budget")),
        HttpError::Transport(m) => GatewayError::Unavailable(format!("{url}: {m}")),
        HttpError::TooManyCalls => GatewayError::Internal("outbound call budget exhausted".into()),
        HttpError::ForbiddenHost(h) => GatewayError::Internal(format!("{h} is not in allowed_hosts")),
        HttpError::InvalidUrl(m) => GatewayError::Internal(format!("invalid URL: {m}")),
        HttpError::ResponseTooLarge => GatewayError::Unavailable(format!("{url}: response too large")),
    }
}

/// Sends a request and maps failures; any status comes back as a response.
pub fn send(
    method: HttpMethod,
    url: &str,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
) -> Result<HttpResponse, GatewayError> {
    let request = HttpRequest { method, url: url.to_string(), headers, body };
    http::fetch(&request).map_err(|e| http_error(url, e))
}

/// The first 300 characters of a body, for error messages.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(300).collect()
}

/// Classifies a non-2xx answer.
pub fn status_error(url: &str, response: &HttpResponse) -> GatewayError {
    let status = response.status;
    let text = excerpt(&response.body);
    match status {
        429 | 500..=599 => GatewayError::Unavailable(format!("{url} answered HTTP {status}: {text}")),
        401 | 403 => GatewayError::Internal(format!("{url} refused the credentials (HTTP {status}): {text}")),
        _ => GatewayError::InvalidRequest(format!("{url} answered HTTP {status}: {text}")),
    }
}

/// Parses a 2xx JSON answer; anything else is an error.
pub fn json_ok(url: &str, response: &HttpResponse) -> Result<Value, GatewayError> {
    if !(200..300).contains(&response.status) {
        return Err(status_error(url, response));
    }
    serde_json::from_slice(&response.body).map_err(|e| {
        GatewayError::Unavailable(format!("{url} answered with invalid JSON ({e}): {}", excerpt(&response.body)))
    })
}

/// A JSON field as text: strings as they are, numbers and booleans as JSON.
pub fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

pub fn int(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A header value, case-insensitively.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// A parameter, exact key match.
pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn encode_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// `application/x-www-form-urlencoded` text of `pairs`.
pub fn form_encode(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(k, &mut out);
        out.push('=');
        encode_component(v, &mut out);
    }
    out
}

/// Percent-encodes one query value.
pub fn query_value(s: &str) -> String {
    let mut out = String::new();
    encode_component(s, &mut out);
    out
}

fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=1&b=2` form or query text.
pub fn form_decode(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode_component(k), decode_component(v)),
            None => (decode_component(kv), String::new()),
        })
        .collect()
}

/// Fields of a webhook body that is either a JSON object or a form.
pub fn body_fields(headers: &[(String, String)], body: &[u8]) -> Result<Vec<(String, String)>, GatewayError> {
    let raw = std::str::from_utf8(body).map_err(|_| GatewayError::InvalidRequest("body is not UTF-8".into()))?;
    let is_json =
        header(headers, "content-type").is_some_and(|c| c.contains("json")) || raw.trim_start().starts_with('{');
    if !is_json {
        return Ok(form_decode(raw.trim()));
    }
    let value: Value =
        serde_json::from_str(raw).map_err(|e| GatewayError::InvalidRequest(format!("body is not JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| GatewayError::InvalidRequest("body is not a JSON object".into()))?;
    Ok(object.keys().filter_map(|k| text(&value, k).map(|v| (k.clone(), v))).collect())
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Compares without leaking where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Paisa as rupee text the way eSewa expects amounts: `100`, `100.5`, `0.25`.
pub fn paisa_to_rupees(paisa: i64) -> String {
    let (whole, frac) = (paisa / 100, paisa % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

/// Rupee text (`1,000.0`, `100`, `99.5`) as paisa; `None` when it is not an
/// amount or has more than two decimals.
pub fn rupees_to_paisa(text: &str) -> Option<i64> {
    let cleaned: String = text.trim().chars().filter(|c| *c != ',').collect();
    let (whole, frac) = match cleaned.split_once('.') {
        Some((w, f)) => (w, f),
        None => (cleaned.as_str(), ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 2 {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac_paisa: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    whole.checked_mul(100)?.checked_add(frac_paisa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupees_round_trip() {
        for p in [0, 1, 10, 99, 100, 10_050, 10_005, 123_456] {
            assert_eq!(rupees_to_paisa(&paisa_to_rupees(p)), Some(p), "{p}");
        }
        assert_eq!(rupees_to_paisa("1,000.0"), Some(100_000));
        assert_eq!(rupees_to_paisa("1.005"), None);
        assert_eq!(rupees_to_paisa("abc"), None);
    }

    #[test]
    fn forms_round_trip() {
        let text = form_encode(&[("a b", "x&y=z".to_string()), ("c", "é".to_string())]);
        assert_eq!(form_decode(&text), vec![("a b".into(), "x&y=z".into()), ("c".into(), "é".into())]);
    }
}
