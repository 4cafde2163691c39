//! `PluginHost`: the handle the HTTP host keeps. It owns the runtime, the
//! active plugin set (swapped atomically on reload) and the per-plugin status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::Semaphore;
use wasmtime::Store;

use crate::config::{PluginConfig, PluginKind, PluginsConfig};
use crate::engine::{CallFuture, PluginHostOptions, Runtime};
use crate::error::{ConfigError, Failure, PluginError};
use crate::loaded::{self, ComponentCache, Loaded};
use crate::state::{StoreState, unix_ms};

/// The plugins serving right now. Replaced whole on reload, never mutated, so
/// a call that picked a plugin keeps it until it finishes.
#[derive(Default)]
pub(crate) struct PluginSet {
    singletons: BTreeMap<PluginKind, Arc<Loaded>>,
    /// Kinds of which several serve at once (gateways, station protocols), by name.
    named: BTreeMap<String, Arc<Loaded>>,
}

impl PluginSet {
    fn all(&self) -> impl Iterator<Item = &Arc<Loaded>> {
        self.singletons.values().chain(self.named.values())
    }

    fn by_name(&self, name: &str) -> Option<&Arc<Loaded>> {
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

/// One plugin's state, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginStatus {
    pub name: String,
    pub kind: PluginKind,
    /// Version reported by the serving build; `None` if nothing is serving.
    pub version: Option<String>,
    /// How to show the serving build to people (its `info`).
    pub display_name: Option<String>,
    pub icon_url: Option<String>,
    /// The contract version the serving build was built against (`0.2.0`).
    pub contract: Option<String>,
    pub sha256: Option<String>,
    pub path: PathBuf,
    pub loaded_at_unix_ms: Option<i64>,
    pub state: PluginState,
    /// The most recent load failure, if it happened after the serving build loaded.
    pub last_error: Option<String>,
    pub last_error_at_unix_ms: Option<i64>,
    pub calls: u64,
    pub failures: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

/// How to show a plugin to people (a payment method, say), from its `info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisplayInfo {
    pub name: String,
    pub display_name: String,
    /// An `https://` URL or a `data:` URI; `None` for a generic icon.
    pub icon_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    /// Serving calls. `last_error` may tell why a newer build was not swapped in.
    Active,
    /// Configured and enabled but nothing is serving: see `last_error`.
    Failed,
    /// `enabled = false` in plugins.toml.
    Disabled,
}

/// Result of `validate`: what a .wasm file is and whether it passes its self-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    pub kind: PluginKind,
    pub name: String,
    pub version: String,
    pub sha256: String,
}

struct LoadError {
    message: String,
    at_unix_ms: i64,
}

pub(crate) struct Inner {
    pub runtime: Arc<Runtime>,
    pub config_path: PathBuf,
    active: ArcSwap<PluginSet>,
    /// Last plugins.toml that parsed, for status of disabled/failed entries.
    last_config: Mutex<Option<PluginsConfig>>,
    errors: Mutex<BTreeMap<String, LoadError>>,
    cache: Arc<ComponentCache>,
    slots: Arc<Semaphore>,
    /// One reload at a time; a second waits and then loads the newest files.
    reload_lock: tokio::sync::Mutex<()>,
    /// Dropping this (with the last host clone) stops the file watcher.
    pub(crate) watch_stop: std::sync::OnceLock<tokio::sync::oneshot::Sender<()>>,
    /// Bumped after every reload that swapped a set in.
    generation: tokio::sync::watch::Sender<u64>,
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
        let runtime = Runtime::new(options).map_err(|e| ConfigError(format!("plugin runtime: {e:#}")))?;
        let permits = usize::try_from(options.max_concurrent_calls).unwrap_or(64).max(1);
        let host = PluginHost {
            inner: Arc::new(Inner {
                runtime: Arc::new(runtime),
                config_path: config_path.as_ref().to_path_buf(),
                active: ArcSwap::from_pointee(PluginSet::default()),
                last_config: Mutex::new(None),
                errors: Mutex::new(BTreeMap::new()),
                cache: Arc::default(),
                slots: Arc::new(Semaphore::new(permits)),
                reload_lock: tokio::sync::Mutex::new(()),
                watch_stop: std::sync::OnceLock::new(),
                generation: tokio::sync::watch::Sender::new(0),
            }),
        };
        let report = host.reload().await?;
        if options.watch {
            crate::watch::spawn(&host, options.watch_debounce)
                .map_err(|e| ConfigError(format!("cannot watch plugin files: {e}")))?;
        }
        Ok((host, report))
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
        validate_with(&self.inner.runtime, &Arc::default(), path.as_ref()).await
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

    /// Runs `f` against a fresh instance of the plugin serving `kind` (or the
    /// gateway `name`), once a call slot is free.
    pub(crate) async fn call<T, F>(
        &self,
        kind: PluginKind,
        name: Option<&str>,
        operation: &'static str,
        f: F,
    ) -> Result<T, PluginError>
    where
        F: for<'a> FnOnce(&'a mut Store<StoreState>, &'a Loaded) -> CallFuture<'a, T>,
    {
        // Pick the plugin before waiting, so the call is tied to one version.
        let loaded = self.lookup(kind, name, operation)?;
        let _slot = self.inner.slots.acquire().await.map_err(|e| PluginError {
            plugin: loaded.env.name.clone(),
            version: loaded.version.to_string(),
            kind,
            operation: operation.to_string(),
            failure: Failure::Internal(e.to_string()),
        })?;
        self.inner.runtime.run(&loaded, operation, f).await
    }
}

impl Inner {
    async fn reload_now(&self) -> Result<ReloadReport, ConfigError> {
        let config = PluginsConfig::load(&self.config_path).map_err(|e| {
            tracing::error!(error = %e, "plugins.toml rejected; keeping the current plugins");
            ConfigError(e)
        })?;
        let old = self.active.load_full();
        let mut next = PluginSet::default();
        let mut report = ReloadReport::default();
        let mut failed_kinds = Vec::new();

        for cfg in config.enabled() {
            match self.load_or_reuse(&old, cfg).await {
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

        let keep: Vec<&str> = next.all().map(|l| l.sha256.as_str()).collect();
        self.cache.retain(&keep);
        self.active.store(Arc::new(next));
        *self.last_config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config);
        self.generation.send_modify(|g| *g += 1);
        Ok(report)
    }

    /// Reuses the serving build when neither its file nor its config changed,
    /// keeping its stats; otherwise loads afresh.
    async fn load_or_reuse(&self, old: &PluginSet, cfg: &PluginConfig) -> Result<(Arc<Loaded>, bool), String> {
        if let Some(current) = old.by_name(&cfg.name)
            && current.source == *cfg
        {
            let bytes =
                tokio::fs::read(&cfg.path).await.map_err(|e| format!("cannot read {}: {e}", cfg.path.display()))?;
            if loaded::sha256_hex(&bytes) == current.sha256 {
                return Ok((current.clone(), true));
            }
        }
        loaded::load(&self.runtime, &self.cache, cfg).await.map(|l| (Arc::new(l), false))
    }

    fn status(&self) -> Vec<PluginStatus> {
        let set = self.active.load();
        let errors = self.errors_lock();
        let config = self.last_config.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: BTreeMap<String, PluginStatus> = BTreeMap::new();

        for l in set.all() {
            let stats = l.stats.snapshot();
            // Only errors newer than the serving build are still news.
            let error = errors.get(&l.env.name).filter(|e| e.at_unix_ms >= l.loaded_at_unix_ms);
            out.insert(
                l.env.name.clone(),
                PluginStatus {
                    name: l.env.name.clone(),
                    kind: l.env.kind,
                    version: Some(l.version.to_string()),
                    display_name: Some(l.info.display_name.clone()),
                    icon_url: l.info.icon_url.clone(),
                    contract: Some(l.contract.version().to_string()),
                    sha256: Some(l.sha256.clone()),
                    path: l.path.clone(),
                    loaded_at_unix_ms: Some(l.loaded_at_unix_ms),
                    state: PluginState::Active,
                    last_error: error.map(|e| e.message.clone()),
                    last_error_at_unix_ms: error.map(|e| e.at_unix_ms),
                    calls: stats.calls,
                    failures: stats.failures,
                    p50_us: stats.p50_us,
                    p99_us: stats.p99_us,
                },
            );
        }
        for cfg in config.iter().flat_map(|c| c.plugins.iter()) {
            if out.contains_key(&cfg.name) {
                continue;
            }
            let error = errors.get(&cfg.name);
            out.insert(
                cfg.name.clone(),
                PluginStatus {
                    name: cfg.name.clone(),
                    kind: cfg.kind,
                    version: None,
                    display_name: None,
                    icon_url: None,
                    contract: None,
                    sha256: None,
                    path: cfg.path.clone(),
                    loaded_at_unix_ms: None,
                    state: if cfg.enabled { PluginState::Failed } else { PluginState::Disabled },
                    last_error: error.map(|e| e.message.clone()),
                    last_error_at_unix_ms: error.map(|e| e.at_unix_ms),
                    calls: 0,
                    failures: 0,
                    p50_us: None,
                    p99_us: None,
                },
            );
        }
        out.into_values().collect()
    }

    fn errors_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LoadError>> {
        self.errors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files a watcher should follow: plugins.toml and every configured .wasm.
    pub(crate) fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.config_path.clone()];
        let config = self.last_config.lock().unwrap_or_else(|p| p.into_inner());
        files.extend(config.iter().flat_map(|c| c.plugins.iter().map(|p| p.path.clone())));
        files
    }
}

fn insert(set: &mut PluginSet, loaded: Arc<Loaded>) {
    if loaded.env.kind.is_singleton() {
        set.singletons.insert(loaded.env.kind, loaded);
    } else {
        set.named.insert(loaded.env.name.clone(), loaded);
    }
}

async fn validate_with(
    rt: &Arc<Runtime>,
    cache: &Arc<ComponentCache>,
    path: &Path,
) -> Result<ValidationReport, String> {
    let bytes = tokio::fs::read(path).await.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let sha256 = loaded::sha256_hex(&bytes);
    let component = loaded::compile_off_thread(rt, cache, sha256.clone(), bytes.clone()).await?;
    let kind = loaded::detect_kind(rt, &component)?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plugin".to_string());
    let source = PluginConfig {
        name: name.clone(),
        kind,
        path: path.to_path_buf(),
        enabled: true,
        config: BTreeMap::new(),
        secrets: BTreeMap::new(),
        limits: Default::default(),
        allowed_hosts: Vec::new(),
    };
    let env = Arc::new(crate::state::PluginEnv {
        name: name.clone(),
        kind,
        config: BTreeMap::new(),
        secrets: BTreeMap::new(),
        allowed_hosts: Vec::new(),
        limits: Default::default(),
    });
    // Compiled above, so this finds it in the cache.
    let loaded = loaded::load_bytes(rt, cache, env, source, bytes, sha256.clone()).await?;
    Ok(ValidationReport { kind, name, version: loaded.version.to_string(), sha256 })
}

/// `validate` without a running host, for the CLI
/// (`powerbank plugins validate FILE`). Builds a small throwaway runtime;
/// call it inside a tokio runtime.
pub async fn validate_file(path: impl AsRef<Path>) -> Result<ValidationReport, String> {
    let options = PluginHostOptions { max_concurrent_calls: 2, pooling: false, ..PluginHostOptions::default() };
    let rt = Arc::new(Runtime::new(options).map_err(|e| format!("plugin runtime: {e:#}"))?);
    validate_with(&rt, &Arc::default(), path.as_ref()).await
}
