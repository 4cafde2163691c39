//! `PluginHost`: the handle the HTTP host keeps. It owns the runtime, the
//! active plugin set (swapped atomically on reload) and the per-plugin status.

mod candidates;
mod releases;
mod reload;
mod status;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use crate::config::{PluginKind, PluginsConfig};
use crate::engine::{PluginHostOptions, Runtime};
use crate::error::{ConfigError, PluginError};
use crate::loaded::{ComponentCache, Loaded};
pub use candidates::{
    CandidateMode, CandidateReport, Decided, ReleaseNotice, SHADOW_QUEUE, ShadowDifference, canary_bucket,
};
pub(crate) use candidates::{ShadowJob, release_label};
pub use releases::{ReleaseCheck, SlotRelease};
use reload::PluginSet;
pub use reload::ReloadReport;
use status::LoadError;
pub use status::{DisplayInfo, PluginState, PluginStatus};
pub use validate::{ValidationReport, validate_file};

/// Replaced gateway builds kept for the payments they created.
pub const KEPT_GATEWAY_BUILDS: usize = 16;

pub(crate) struct Inner {
    pub runtime: Arc<Runtime>,
    pub config_path: PathBuf,
    active: ArcSwap<PluginSet>,
    /// Last plugins.toml that parsed, for status of disabled/failed entries.
    last_config: Mutex<Option<PluginsConfig>>,
    errors: Mutex<BTreeMap<String, LoadError>>,
    /// Slots served by a promoted release instead of the file plugins.toml
    /// names, by slot name.
    releases: Mutex<BTreeMap<String, SlotRelease>>,
    cache: Arc<ComponentCache>,
    slots: Arc<Semaphore>,
    /// One reload at a time; a second waits and then loads the newest files.
    reload_lock: tokio::sync::Mutex<()>,
    /// Dropping this (with the last host clone) stops the file watcher.
    pub(crate) watch_stop: std::sync::OnceLock<tokio::sync::oneshot::Sender<()>>,
    /// Bumped after every reload that swapped a set in.
    generation: tokio::sync::watch::Sender<u64>,
    /// The shadow or canary running beside each slot's serving build.
    candidates: ArcSwap<BTreeMap<String, Arc<candidates::Candidate>>>,
    /// The last candidate of each slot, running or stopped, for its report.
    finished: Mutex<BTreeMap<String, Arc<candidates::Candidate>>>,
    /// What the runtime did on its own (a canary stopped), for the host.
    notices: tokio::sync::broadcast::Sender<ReleaseNotice>,
    /// Gateway builds replaced by a reload (newest last, at most
    /// [`KEPT_GATEWAY_BUILDS`]): payments they created keep verifying through them.
    kept: Mutex<Vec<Arc<Loaded>>>,
    /// The last notice of each slot, shown by `status()`.
    notices_log: Mutex<BTreeMap<String, String>>,
    /// Queue of the shadow worker, started with the first shadow.
    shadow_tx: std::sync::OnceLock<tokio::sync::mpsc::Sender<candidates::ShadowJob>>,
}

/// Loads, runs and hot-swaps the plugins listed in a plugins.toml.
///
/// Cheap to clone; every clone shares the same runtime and plugins.
#[derive(Clone)]
pub struct PluginHost {
    pub(crate) inner: Arc<Inner>,
}

impl PluginHost {
    /// Builds the runtime and loads every enabled plugin in `config_path`.
    ///
    /// Fails only if the runtime cannot start or plugins.toml is unreadable or
    /// invalid; a plugin that fails to load is reported by `status()` (and in
    /// the returned report) while the others serve. Must be called inside a
    /// tokio runtime.
    pub async fn start(
        config_path: impl AsRef<Path>,
        options: PluginHostOptions,
    ) -> Result<(PluginHost, ReloadReport), ConfigError> {
        Self::start_with_releases(config_path, options, BTreeMap::new()).await
    }

    /// [`PluginHost::start`], with some slots served by promoted releases
    /// from the first load on (as stored by the host before a restart).
    pub async fn start_with_releases(
        config_path: impl AsRef<Path>,
        options: PluginHostOptions,
        releases: BTreeMap<String, SlotRelease>,
    ) -> Result<(PluginHost, ReloadReport), ConfigError> {
        let runtime = Runtime::new(options).map_err(|e| ConfigError(format!("plugin runtime: {e:#}")))?;
        let permits = usize::try_from(options.max_concurrent_calls).unwrap_or(64).max(1);
        let host = PluginHost {
            inner: Arc::new(Inner {
                runtime: Arc::new(runtime),
                config_path: config_path.as_ref().to_path_buf(),
                active: ArcSwap::from_pointee(PluginSet::default()),
                last_config: Mutex::new(None),
                errors: Mutex::new(BTreeMap::new()),
                releases: Mutex::new(releases),
                cache: Arc::default(),
                slots: Arc::new(Semaphore::new(permits)),
                reload_lock: tokio::sync::Mutex::new(()),
                watch_stop: std::sync::OnceLock::new(),
                generation: tokio::sync::watch::Sender::new(0),
                candidates: ArcSwap::from_pointee(BTreeMap::new()),
                finished: Mutex::new(BTreeMap::new()),
                notices: tokio::sync::broadcast::Sender::new(64),
                notices_log: Mutex::new(BTreeMap::new()),
                kept: Mutex::new(Vec::new()),
                shadow_tx: std::sync::OnceLock::new(),
            }),
        };
        let report = host.reload().await?;
        if options.watch {
            crate::watch::spawn(&host, options.watch_debounce)
                .map_err(|e| ConfigError(format!("cannot watch plugin files: {e}")))?;
        }
        Ok((host, report))
    }

    /// Hands every finished plugin call to `observer` (the host's metrics).
    /// Set once; returns `false` if an observer was already set.
    pub fn observe_calls(&self, observer: crate::engine::CallObserver) -> bool {
        self.inner.runtime.observer.set(observer).is_ok()
    }

    /// Path of the plugins.toml this host reads.
    pub fn config_path(&self) -> &Path {
        &self.inner.config_path
    }

    /// Re-reads plugins.toml and loads every plugin in the background
    /// (compile, link against its world, `info`, `self-check`), then swaps the
    /// new set in at once. Calls in flight finish on the version they started
    /// with. A plugin that fails keeps its previous version serving (for
    /// pricing, points and promotions: the previous plugin of that kind).
    pub async fn reload(&self) -> Result<ReloadReport, ConfigError> {
        let _one_at_a_time = self.inner.reload_lock.lock().await;
        self.inner.reload_now().await
    }

    /// Status of every configured or serving plugin, sorted by name.
    pub fn status(&self) -> Vec<PluginStatus> {
        self.inner.status()
    }

    /// Checks a .wasm file without loading it: which world it implements, its
    /// `info`, and that `self-check` passes with an empty config.
    pub async fn validate(&self, path: impl AsRef<Path>) -> Result<ValidationReport, String> {
        // A throwaway cache: a file being validated must not stay compiled.
        validate::validate_with(&self.inner.runtime, &Arc::default(), path.as_ref()).await
    }

    /// Name and version of the plugin serving `kind` (pricing, points-rules or
    /// promotions), if any.
    pub fn active(&self, kind: PluginKind) -> Option<(String, String)> {
        let set = self.inner.active.load();
        set.singletons.get(&kind).map(|l| (l.env.name.clone(), l.version.to_string()))
    }

    /// How to show the serving plugin `name` (a gateway, say) to people:
    /// its display name and icon, from its `info`.
    pub fn display_info(&self, name: &str) -> Option<DisplayInfo> {
        let set = self.inner.active.load();
        set.by_name(name).map(|l| DisplayInfo {
            name: l.env.name.clone(),
            display_name: l.info.display_name.clone(),
            icon_url: l.info.icon_url.clone(),
        })
    }

    /// Names of the loaded payment gateways.
    pub fn gateway_names(&self) -> Vec<String> {
        self.names_of(PluginKind::PaymentGateway)
    }

    /// Names of the loaded plugins of a kind addressed by name, sorted.
    pub fn names_of(&self, kind: PluginKind) -> Vec<String> {
        let set = self.inner.active.load();
        set.named.values().filter(|l| l.env.kind == kind).map(|l| l.env.name.clone()).collect()
    }

    /// Changes each time a reload swaps in a new plugin set, so a caller
    /// holding derived state (the station link's MQTT subscriptions) can refresh it.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    pub(crate) fn lookup(
        &self,
        kind: PluginKind,
        name: Option<&str>,
        operation: &str,
    ) -> Result<Arc<Loaded>, PluginError> {
        let set = self.inner.active.load();
        let found = match name {
            Some(name) => set.named.get(name).filter(|l| l.env.kind == kind),
            None => set.singletons.get(&kind),
        };
        found.cloned().ok_or_else(|| PluginError::not_loaded(kind, name.unwrap_or(kind.as_str()), operation))
    }
}

impl Inner {
    fn errors_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LoadError>> {
        self.errors.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn kept_lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Loaded>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finished_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<candidates::Candidate>>> {
        self.finished.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn releases_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SlotRelease>> {
        self.releases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files a watcher should follow: plugins.toml and every configured .wasm.
    pub(crate) fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.config_path.clone()];
        let config = self.last_config.lock().unwrap_or_else(|p| p.into_inner());
        files.extend(config.iter().flat_map(|c| c.plugins.iter().map(|p| p.path.clone())));
        files
    }
}
