//! The state every handler receives.

use std::{sync::Arc, time::Instant};

use super::{auth::JwtKeys, db::Db, jobs::Jobs, messenger::Messenger, storage::StorageBackend};
use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub jwt: Arc<JwtKeys>,
    /// Server-side secret mixed into OTP hashes, so a leaked table is useless.
    pub otp_pepper: Arc<[u8]>,
    /// SMS and email: one-time codes, and the SMS fallback of push.
    pub messenger: Arc<Messenger>,
    /// Uploads served to anyone with the URL (avatars, issue photos).
    pub storage: Arc<dyn StorageBackend>,
    /// Uploads served only to their owner and operators (KYC documents).
    pub private_storage: Arc<dyn StorageBackend>,
    pub started_at: Instant,
    pub app_versions: crate::app_core::VersionCache,
    pub jobs: Jobs,
    pub station_link: Arc<crate::stations::link::StationLink>,
    /// Pricing, points, promotions and payment gateways (Wasm plugins).
    pub plugins: powerbank_plugin_runtime::PluginHost,
}
