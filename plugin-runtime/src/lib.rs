//! Runs powerbank's Wasm component plugins (pricing, points rules,
//! promotions, payment gateways, station protocols) in a sandbox, and swaps them without downtime.
//!
//! The HTTP host keeps one [`PluginHost`]:
//!
//! ```no_run
//! # use powerbank_plugin_runtime::{PluginHost, PluginHostOptions, types::QuoteRequest};
//! # async fn demo(request: QuoteRequest) -> Result<(), Box<dyn std::error::Error>> {
//! let (plugins, report) = PluginHost::start("plugins.toml", PluginHostOptions::default()).await?;
//! let quote = plugins.pricing().quote(request).await?;
//! # Ok(()) }
//! ```
//!
//! Every call gets a fresh instance in a fresh store (nothing leaks between
//! users), bounded by the plugin's `timeout_ms`, `memory_mb` and outbound
//! call budget. See `docs/plugins.md` for the plugins.toml format.

mod api;
pub mod config;
mod contract;
mod engine;
mod error;
mod loaded;
mod plugin_host;
pub mod signing;
mod state;
mod stats;
pub mod types;
mod watch;

pub use api::{GatewayPlugin, PointsPlugin, PricingPlugin, PromotionsPlugin, StationProtocolPlugin, station_limits};
pub use config::{Limits, PluginKind, PluginsConfig};
pub use contract::Contract;
pub use engine::{CallObserver, CallRecord, PluginHostOptions};
pub use error::{ConfigError, Failure, PluginError};
pub use plugin_host::{
    CandidateMode, CandidateReport, Decided, DisplayInfo, PluginHost, PluginState, PluginStatus, ReleaseCheck,
    ReleaseNotice, ReloadReport, SHADOW_QUEUE, ShadowDifference, SlotRelease, ValidationReport, canary_bucket,
    validate_file,
};
