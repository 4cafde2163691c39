//! What one call's `Store` holds, and the host functions a plugin may call.
//!
//! A store lives for exactly one call: it is created with the plugin's limits
//! and dropped afterwards, so nothing (memory, counters, a trapped instance)
//! carries over from one user's call to the next.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::config::{AllowedHost, Limits, PluginKind};
use crate::contract::current::{self, host};
use crate::types::{HttpError, HttpMethod, HttpRequest, HttpResponse, LogLevel};

/// Caps on what a plugin can push into the host's logs in one call.
const MAX_LOG_LINES_PER_CALL: u32 = 64;
const MAX_LOG_MESSAGE_CHARS: usize = 2048;
/// Responses larger than this are refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Table growth cap; plugins need a few hundred entries at most.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// A plugin's configuration as its calls see it; shared by all its stores.
#[derive(Debug)]
pub(crate) struct PluginEnv {
    pub name: String,
    pub kind: PluginKind,
    pub config: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub allowed_hosts: Vec<AllowedHost>,
    pub limits: Limits,
}

/// Outbound HTTP plumbing shared by every call.
pub(crate) struct Outbound {
    pub client: Option<reqwest::Client>,
}

impl Outbound {
    pub fn new() -> Self {
        // Redirects are off: following one could leave the allowlist.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| tracing::error!(error = %e, "cannot build the plugins' HTTP client"))
            .ok();
        Outbound { client }
    }
}

pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub env: Arc<PluginEnv>,
    pub version: Arc<str>,
    /// When this call's `timeout_ms` runs out.
    pub deadline: Instant,
    outbound: Arc<Outbound>,
    /// http-fetch calls made so far in this call.
    pub outbound_calls: u32,
    /// The last host:port the plugin was refused, if any.
    pub forbidden_host: Option<String>,
    log_lines: u32,
}

impl StoreState {
    pub fn new(env: Arc<PluginEnv>, version: Arc<str>, outbound: Arc<Outbound>) -> Self {
        let memory_bytes = (env.limits.memory_mb as usize).saturating_mul(1 << 20);
        let timeout = Duration::from_millis(env.limits.timeout_ms);
        StoreState {
            // Grants nothing: no preopened dirs, env, args, sockets or stdio.
            // Rust std guests still import WASI, so the context must exist.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            env,
            version,
            deadline: Instant::now() + timeout,
            outbound,
            outbound_calls: 0,
            forbidden_host: None,
            log_lines: 0,
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Enforces `memory_mb` and remembers a refusal, so a trap that follows
/// (Rust aborts when an allocation fails) is reported as out-of-memory.
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    pub refused: bool,
}

impl MemoryLimiter {
    fn new(max_bytes: usize) -> Self {
        MemoryLimiter { max_bytes, refused: false }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes && maximum.is_none_or(|m| desired <= m);
        if !allowed {
            self.refused = true;
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused = true;
        Ok(())
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|m| desired <= m))
    }
}

// Interfaces with only types have empty host traits.
impl current::shared::Host for StoreState {}
impl current::pricing::powerbank::plugins::pricing_types::Host for StoreState {}
impl current::points::powerbank::plugins::points_types::Host for StoreState {}
impl current::promotions::powerbank::plugins::promotion_types::Host for StoreState {}
impl current::payment_gateway::powerbank::plugins::payment_types::Host for StoreState {}
impl current::station_protocol::powerbank::plugins::station_types::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: LogLevel, message: String, fields: Vec<(String, String)>) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            return;
        }
        let message: String = message.chars().take(MAX_LOG_MESSAGE_CHARS).collect();
        let plugin = self.env.name.as_str();
        let version = &*self.version;
        // tracing needs the level at compile time, hence one macro per level.
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "plugin", plugin, version, ?fields, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "plugin", plugin, version, ?fields, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "plugin", plugin, version, ?fields, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "plugin", plugin, version, ?fields, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "plugin", plugin, version, ?fields, "{message}")
            }
        }
    }

    fn now_unix_ms(&mut self) -> i64 {
        unix_ms(SystemTime::now())
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.env.config.get(&key).cloned()
    }

    fn secret_get(&mut self, key: String) -> Option<String> {
        self.env.secrets.get(&key).cloned()
    }

    async fn http_fetch(&mut self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        if self.outbound_calls >= self.env.limits.max_outbound_calls {
            return Err(HttpError::TooManyCalls);
        }
        self.outbound_calls += 1;

        let url =
            reqwest::Url::parse(&request.url).map_err(|e| HttpError::InvalidUrl(format!("{}: {e}", request.url)))?;
        let scheme = url.scheme().to_string();
        if scheme != "http" && scheme != "https" {
            return Err(HttpError::InvalidUrl(format!("{}: only http and https are allowed", request.url)));
        }
        let host_name =
            url.host_str().ok_or_else(|| HttpError::InvalidUrl(format!("{}: no host", request.url)))?.to_string();
        let port = url.port_or_known_default().unwrap_or(0);
        let allowed = self.env.allowed_hosts.iter().any(|h| h.allows(&scheme, &host_name, port));
        if !allowed {
            let target = format!("{scheme}://{host_name}:{port}");
            tracing::warn!(
                plugin = %self.env.name,
                version = %self.version,
                target = %target,
                "plugin tried to reach a host outside its allowlist"
            );
            self.forbidden_host = Some(target.clone());
            return Err(HttpError::ForbiddenHost(target));
        }

        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HttpError::Timeout);
        }
        let Some(client) = &self.outbound.client else {
            return Err(HttpError::Transport("outbound HTTP is not available in this host".to_string()));
        };
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
            HttpMethod::Head => reqwest::Method::HEAD,
        };
        let mut builder = client.request(method, url).timeout(remaining);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let fetch = async {
            let mut response = builder.send().await.map_err(transport_error)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::ResponseTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpResponse { status, headers, body })
        };
        tokio::time::timeout(remaining, fetch).await.unwrap_or(Err(HttpError::Timeout))
    }
}

fn transport_error(e: reqwest::Error) -> HttpError {
    if e.is_timeout() { HttpError::Timeout } else { HttpError::Transport(e.to_string()) }
}

pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}
