//! The state every handler receives, assembled by `server::build_state`.
//!
//! It lives in the composition root, not in `core`, because it names the
//! domains' long-lived parts (the station link, the app-version cache, the
//! plugins). Core code never sees it: extractors and the job worker take
//! what they need through axum's [`FromRef`] (the `Db`, the JWT keys, the
//! job registry), so they work on any state that can hand those out.

use std::{sync::Arc, time::Instant};

use axum::extract::FromRef;

use crate::{
    app_core::VersionCache,
    config::Config,
    core::{
        Db,
        access::{JwtKeys, RouteRoles},
        jobs::Jobs,
        messenger::Messenger,
        metrics::Metrics,
        storage::{PublicStore, StorageBackend},
    },
    payments::purposes::PaymentPurposes,
    settings::Settings,
    stations::{link::StationLink, page_cache::PageCache},
};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub jwt: Arc<JwtKeys>,
    /// The operator roles each admin route accepts (its `x-roles`).
    pub route_roles: Arc<RouteRoles>,
    /// Server-side secret mixed into OTP hashes, so a leaked table is useless.
    pub otp_pepper: Arc<[u8]>,
    /// SMS and email: one-time codes, and the SMS fallback of push.
    pub messenger: Arc<Messenger>,
    /// Uploads served to anyone with the URL (avatars, issue photos).
    pub storage: Arc<dyn StorageBackend>,
    /// Uploads served only to their owner and operators (KYC documents).
    pub private_storage: Arc<dyn StorageBackend>,
    pub started_at: Instant,
    pub app_versions: VersionCache,
    /// Operator settings, registered by the domains that read them.
    pub settings: Settings,
    pub jobs: Jobs<AppState>,
    pub station_link: Arc<StationLink>,
    /// Rendered public station answers, valid for one station-state version.
    pub station_pages: Arc<PageCache>,
    /// What each gateway payment purpose other than top-ups does when paid
    /// or ended (registered by the domains that sell through gateways).
    pub payment_purposes: PaymentPurposes,
    /// Pricing, points, promotions, payment gateways and station protocols
    /// (Wasm plugins).
    pub plugins: powerbank_plugin_runtime::PluginHost,
    /// Prometheus metrics of this server (`GET /metrics`).
    pub metrics: Arc<Metrics>,
}

impl FromRef<AppState> for PublicStore {
    fn from_ref(state: &AppState) -> Self {
        PublicStore(state.storage.clone())
    }
}

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

impl FromRef<AppState> for Arc<RouteRoles> {
    fn from_ref(state: &AppState) -> Self {
        state.route_roles.clone()
    }
}

impl FromRef<AppState> for Jobs<AppState> {
    fn from_ref(state: &AppState) -> Self {
        state.jobs.clone()
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}
