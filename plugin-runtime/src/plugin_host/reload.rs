//! Reloading: plugins.toml read again, every enabled plugin loaded or kept,
//! and the new set swapped in at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::status::LoadError;
use super::{Inner, SlotRelease};
use crate::config::{PluginConfig, PluginKind, PluginsConfig};
use crate::error::ConfigError;
use crate::loaded::{self, Loaded};
use crate::state::unix_ms;

/// The plugins serving right now. Replaced whole on reload, never mutated, so
/// a call that picked a plugin keeps it until it finishes.
#[derive(Default)]
pub(crate) struct PluginSet {
    pub(super) singletons: BTreeMap<PluginKind, Arc<Loaded>>,
    /// Kinds of which several serve at once (gateways, station protocols), by name.
    pub(super) named: BTreeMap<String, Arc<Loaded>>,
}

impl PluginSet {
    pub(super) fn all(&self) -> impl Iterator<Item = &Arc<Loaded>> {
        self.singletons.values().chain(self.named.values())
    }

    pub(super) fn by_name(&self, name: &str) -> Option<&Arc<Loaded>> {
        self.all().find(|l| l.env.name == name)
    }
}

/// What happened in one reload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Newly loaded or replaced (new file or new config).
    pub loaded: Vec<String>,
    /// Same file and config as before; kept as is.
    pub unchanged: Vec<String>,
    /// Could not be loaded, with the reason. If an older version was serving,
    /// it still is.
    pub failed: Vec<(String, String)>,
    /// No longer configured (or disabled) and dropped.
    pub removed: Vec<String>,
}

impl Inner {
    pub(super) async fn reload_now(&self) -> Result<ReloadReport, ConfigError> {
        let config = PluginsConfig::load(&self.config_path).map_err(|e| {
            tracing::error!(error = %e, "plugins.toml rejected; keeping the current plugins");
            ConfigError(e)
        })?;
        let old = self.active.load_full();
        let mut next = PluginSet::default();
        let mut report = ReloadReport::default();
        let mut failed_kinds = Vec::new();
        let releases = self.releases_lock().clone();

        for file_cfg in config.enabled() {
            // A promoted release replaces the file and its config; the slot
            // keeps its kind, secrets, limits and allowed hosts.
            let release = releases.get(&file_cfg.name);
            let release_cfg = release.map(|r| r.apply(file_cfg));
            let cfg = release_cfg.as_ref().unwrap_or(file_cfg);
            match self.load_or_reuse(&old, cfg, release, &config.trusted_keys).await {
                Ok((loaded, reused)) => {
                    if reused {
                        report.unchanged.push(cfg.name.clone());
                    } else {
                        tracing::info!(
                            plugin = %cfg.name,
                            version = %loaded.version,
                            kind = %cfg.kind,
                            sha256 = %loaded.sha256,
                            "plugin loaded"
                        );
                        report.loaded.push(cfg.name.clone());
                    }
                    self.errors_lock().remove(&cfg.name);
                    insert(&mut next, loaded);
                }
                Err(message) => {
                    tracing::error!(
                        plugin = %cfg.name,
                        kind = %cfg.kind,
                        path = %cfg.path.display(),
                        error = %message,
                        "plugin failed to load; the previous version (if any) keeps serving"
                    );
                    self.errors_lock().insert(
                        cfg.name.clone(),
                        LoadError { message: message.clone(), at_unix_ms: unix_ms(SystemTime::now()) },
                    );
                    report.failed.push((cfg.name.clone(), message));
                    failed_kinds.push((cfg.kind, cfg.name.clone()));
                }
            }
        }
        // Keep the old build of whatever failed to load.
        for (kind, name) in failed_kinds {
            let previous = if kind.is_singleton() { old.singletons.get(&kind) } else { old.named.get(&name) };
            if let Some(previous) = previous {
                insert(&mut next, previous.clone());
            }
        }
        for gone in old.all() {
            if next.by_name(&gone.env.name).is_none() {
                report.removed.push(gone.env.name.clone());
            }
        }

        // A replaced gateway build stays callable for the payments it created.
        {
            let mut kept = self.kept_lock();
            for old_gateway in old.named.values().filter(|l| l.env.kind == PluginKind::PaymentGateway) {
                let replaced = next.named.get(&old_gateway.env.name).is_none_or(|n| !Arc::ptr_eq(n, old_gateway));
                if replaced {
                    kept.push(old_gateway.clone());
                }
            }
            let excess = kept.len().saturating_sub(super::KEPT_GATEWAY_BUILDS);
            *kept = kept.split_off(excess);
        }
        let mut keep: Vec<&str> = next.all().map(|l| l.sha256.as_str()).collect();
        let kept = self.kept_lock().iter().map(|l| l.sha256.clone()).collect::<Vec<_>>();
        keep.extend(kept.iter().map(String::as_str));
        self.cache.retain(&keep);
        self.active.store(Arc::new(next));
        *self.last_config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config);
        self.generation.send_modify(|g| *g += 1);
        Ok(report)
    }

    /// Reuses the serving build when neither its file nor its config changed,
    /// keeping its stats; otherwise loads afresh.
    async fn load_or_reuse(
        &self,
        old: &PluginSet,
        cfg: &PluginConfig,
        release: Option<&SlotRelease>,
        trusted_keys: &[String],
    ) -> Result<(Arc<Loaded>, bool), String> {
        let release_id = release.map(|r| r.release_id);
        // A release carries its signature; a file has it beside it, in `<file>.sig`.
        let signature = match release {
            Some(r) => r.signature.clone(),
            None => {
                let mut sig_path = cfg.path.clone().into_os_string();
                sig_path.push(".sig");
                tokio::fs::read_to_string(&sig_path).await.ok().map(|s| s.trim().to_string())
            }
        };
        if let Some(current) = old.by_name(&cfg.name)
            && current.source == *cfg
            && current.release_id == release_id
        {
            let bytes =
                tokio::fs::read(&cfg.path).await.map_err(|e| format!("cannot read {}: {e}", cfg.path.display()))?;
            if loaded::sha256_hex(&bytes) == current.sha256 {
                // Trusted keys may have been added since it loaded.
                crate::signing::check(trusted_keys, cfg.allow_unsigned, &current.sha256, signature.as_deref())?;
                return Ok((current.clone(), true));
            }
        }
        let mut loaded = loaded::load(&self.runtime, &self.cache, cfg, trusted_keys, signature.as_deref()).await?;
        loaded.release_id = release_id;
        Ok((Arc::new(loaded), false))
    }
}

fn insert(set: &mut PluginSet, loaded: Arc<Loaded>) {
    if loaded.env.kind.is_singleton() {
        set.singletons.insert(loaded.env.kind, loaded);
    } else {
        set.named.insert(loaded.env.name.clone(), loaded);
    }
}
