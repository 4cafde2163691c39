//! Releases: a build uploaded for a plugins.toml slot, checked before it is
//! kept, and promoted to serve instead of the file the slot names.
//!
//! The runtime knows nothing of how releases are stored; the host hands it
//! the bytes to check, and the stored file and config of the release to
//! promote.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::PluginHost;
use crate::config::{PluginConfig, PluginKind};
use crate::loaded;

/// A promoted release serving a slot in place of the slot's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRelease {
    pub release_id: i64,
    /// The stored component.
    pub path: PathBuf,
    /// The release's own config table, which replaces the slot's.
    pub config: BTreeMap<String, String>,
    /// Hex ed25519 signature over its sha256, checked at every load like a
    /// file's `.sig`.
    pub signature: Option<String>,
}

impl SlotRelease {
    /// The slot's entry with this release's file and config.
    pub(crate) fn apply(&self, slot: &PluginConfig) -> PluginConfig {
        PluginConfig { path: self.path.clone(), config: self.config.clone(), ..slot.clone() }
    }
}

/// What checking an uploaded build found: it implements the slot's world and
/// passed `info` and `self-check` with the release's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseCheck {
    pub kind: PluginKind,
    /// The name and version the build reports in `info`.
    pub name: String,
    pub version: String,
    pub contract: String,
    pub sha256: String,
    /// The trusted key that signed it, when plugins.toml trusts keys.
    pub signed_by: Option<String>,
}

impl PluginHost {
    /// The slot `name` as the last valid plugins.toml declares it.
    pub fn slot(&self, name: &str) -> Option<PluginConfig> {
        let config = self.inner.last_config.lock().unwrap_or_else(|p| p.into_inner());
        config.as_ref().and_then(|c| c.plugins.iter().find(|p| p.name == name).cloned())
    }

    /// Checks `bytes` as a build for the slot `slot` with `config` as its
    /// config table: compiles it, links it against the slot's world and runs
    /// `info` and `self-check` with the slot's secrets, limits and allowed
    /// hosts, after checking its signature when plugins.toml trusts keys.
    /// Nothing serving changes. The error says why the build is refused.
    pub async fn check_release(
        &self,
        slot: &PluginConfig,
        bytes: Vec<u8>,
        config: BTreeMap<String, String>,
        signature: Option<&str>,
    ) -> Result<ReleaseCheck, String> {
        let cfg = PluginConfig { config, ..slot.clone() };
        let sha256 = loaded::sha256_hex(&bytes);
        let signed_by = crate::signing::check(&self.trusted_keys(), cfg.allow_unsigned, &sha256, signature)?;
        let env = loaded::env_for(&self.inner.runtime, &cfg)?;
        // A throwaway cache: a build that is only staged must not stay
        // compiled; the next reload drops what no serving plugin uses anyway.
        let cache = Arc::default();
        let loaded = loaded::load_bytes(&self.inner.runtime, &cache, env, cfg, bytes, sha256.clone()).await?;
        Ok(ReleaseCheck {
            kind: loaded.env.kind,
            name: loaded.info.name.clone(),
            version: loaded.version.to_string(),
            contract: loaded.contract.version().to_string(),
            sha256,
            signed_by,
        })
    }

    /// The keys the last valid plugins.toml trusts.
    pub fn trusted_keys(&self) -> Vec<String> {
        let config = self.inner.last_config.lock().unwrap_or_else(|p| p.into_inner());
        config.as_ref().map(|c| c.trusted_keys.clone()).unwrap_or_default()
    }

    /// Makes `release` serve the slot `slot` (or, with `None`, the file
    /// plugins.toml names), by a reload that swaps the new build in at once:
    /// calls in flight finish on the build they started with, later calls
    /// get the new one. If the new build fails to load, nothing changes and
    /// the error says why.
    pub async fn serve_release(&self, slot: &str, release: Option<SlotRelease>) -> Result<(), String> {
        let _one_at_a_time = self.inner.reload_lock.lock().await;
        let previous = {
            let mut releases = self.inner.releases_lock();
            match release {
                Some(r) => releases.insert(slot.to_string(), r),
                None => releases.remove(slot),
            }
        };
        let restore = |inner: &super::Inner| {
            let mut releases = inner.releases_lock();
            match previous.clone() {
                Some(p) => releases.insert(slot.to_string(), p),
                None => releases.remove(slot),
            };
        };
        let report = match self.inner.reload_now().await {
            Ok(report) => report,
            Err(e) => {
                restore(&self.inner);
                return Err(e.to_string());
            }
        };
        if let Some((_, error)) = report.failed.iter().find(|(name, _)| name == slot) {
            // The reload kept the previous build serving; keep it on the next one too.
            restore(&self.inner);
            return Err(error.clone());
        }
        if !self.slot(slot).is_some_and(|s| s.enabled) {
            restore(&self.inner);
            return Err(format!("plugins.toml has no enabled plugin `{slot}`"));
        }
        // A shadow or canary compared against (or shared with) the build
        // that served; a new one is started for the new build if wanted.
        self.stop_candidate(slot, None, "the slot's serving build changed");
        Ok(())
    }
}
