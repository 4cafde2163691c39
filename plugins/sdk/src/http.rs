//! Outbound HTTP through the host; only the plugin's allowed hosts are reachable.

pub use crate::host::{HttpError, HttpMethod, HttpRequest, HttpResponse};

/// Sends `request`. The host refuses hosts outside the plugin's allowlist with
/// `HttpError::ForbiddenHost` and counts the call against the plugin's budget.
pub fn fetch(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    crate::host::http_fetch(request)
}

/// A GET of `url` with no headers.
pub fn get(url: &str) -> Result<HttpResponse, HttpError> {
    fetch(&HttpRequest { method: HttpMethod::Get, url: url.to_string(), headers: Vec::new(), body: None })
}
