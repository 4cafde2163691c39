//! A compiled, checked plugin ready to serve calls, and how one is made.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::Component;

use crate::config::{PluginConfig, PluginKind};
use crate::contract::{self, Contract, WorldPre};
use crate::engine::Runtime;
use crate::error::Failure;
use crate::state::{PluginEnv, StoreState, unix_ms};
use crate::stats::Stats;
use crate::types::PluginInfo;

pub(crate) struct Loaded {
    pub env: Arc<PluginEnv>,
    pub version: Arc<str>,
    /// What the plugin said about itself when it loaded.
    pub info: PluginInfo,
    /// The contract version it was built against.
    pub contract: Contract,
    pub sha256: String,
    pub path: PathBuf,
    pub loaded_at_unix_ms: i64,
    /// The promoted release serving in place of the slot's file, if any.
    pub release_id: Option<i64>,
    pub stats: Stats,
    pre: WorldPre,
    /// The config entry it was loaded from, to tell whether a reload changes it.
    pub source: PluginConfig,
}

macro_rules! instance_fn {
    ($fn_name:ident, $ty:ty) => {
        /// A fresh instance in `store`; `Failure::Internal` if this plugin is of another kind.
        pub async fn $fn_name(&self, store: &mut Store<StoreState>) -> Result<$ty, Failure> {
            match self.pre.$fn_name(store).await {
                Some(instance) => instance,
                None => Err(Failure::Internal(format!("plugin {} is a {} plugin", self.env.name, self.env.kind))),
            }
        }
    };
}

impl Loaded {
    instance_fn!(pricing, contract::Pricing);
    instance_fn!(points, contract::PointsRules);
    instance_fn!(promotions, contract::Promotions);
    instance_fn!(gateway, contract::PaymentGateway);
    instance_fn!(station_protocol, contract::StationProtocol);
}

/// Compiled components by sha256, so a reload that keeps a file (or only
/// changes config) does not compile it again.
#[derive(Default)]
pub(crate) struct ComponentCache {
    by_sha: Mutex<HashMap<String, Component>>,
}

impl ComponentCache {
    fn get_or_compile(&self, rt: &Runtime, sha: &str, bytes: &[u8]) -> Result<Component, String> {
        if let Some(c) = self.lock().get(sha) {
            return Ok(c.clone());
        }
        // Compile outside the lock: it takes milliseconds to seconds.
        let component = rt.compile(bytes)?;
        self.lock().insert(sha.to_string(), component.clone());
        Ok(component)
    }

    /// Drops compiled components no longer used by any loaded plugin.
    pub fn retain(&self, keep: &[&str]) {
        self.lock().retain(|sha, _| keep.contains(&sha.as_str()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Component>> {
        // The map holds no invariant a panic could break.
        self.by_sha.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads, compiles, links, checks against the configured kind's world and
/// runs `info` + `self-check`. Any failure leaves nothing loaded.
pub(crate) async fn load(
    rt: &Arc<Runtime>,
    cache: &Arc<ComponentCache>,
    cfg: &PluginConfig,
    trusted_keys: &[String],
    signature: Option<&str>,
) -> Result<Loaded, String> {
    let bytes = tokio::fs::read(&cfg.path).await.map_err(|e| format!("cannot read {}: {e}", cfg.path.display()))?;
    let sha256 = sha256_hex(&bytes);
    crate::signing::check(trusted_keys, cfg.allow_unsigned, &sha256, signature)?;
    let env = env_for(rt, cfg)?;
    load_bytes(rt, cache, env, cfg.clone(), bytes, sha256).await
}

/// What a plugin configured as `cfg` sees: its config, its secrets (read
/// now), its allowed hosts and limits.
pub(crate) fn env_for(rt: &Runtime, cfg: &PluginConfig) -> Result<Arc<PluginEnv>, String> {
    let limit = rt.options.max_memory_mb;
    if cfg.limits.memory_mb > limit {
        return Err(format!("limits.memory_mb = {} exceeds the host's ceiling of {limit}", cfg.limits.memory_mb));
    }
    let mut secrets = BTreeMap::new();
    for (key, source) in &cfg.secrets {
        secrets.insert(key.clone(), source.resolve(key)?);
    }
    Ok(Arc::new(PluginEnv {
        name: cfg.name.clone(),
        kind: cfg.kind,
        config: cfg.config.clone(),
        secrets,
        allowed_hosts: cfg.allowed_hosts.clone(),
        limits: cfg.limits,
    }))
}

pub(crate) async fn load_bytes(
    rt: &Arc<Runtime>,
    cache: &Arc<ComponentCache>,
    env: Arc<PluginEnv>,
    source: PluginConfig,
    bytes: Vec<u8>,
    sha256: String,
) -> Result<Loaded, String> {
    let kind = env.kind;
    let component = compile_off_thread(rt, cache, sha256.clone(), bytes).await?;
    let contract = Contract::of(&rt.engine, &component)?;
    let pre = link(rt, kind, contract, &component)?;
    // `run` would count the probe as a served call; probe on a bare store.
    let mut store = rt.new_store(&env, &Arc::from("?"));
    let (info, checked) = pre.probe(&mut store).await.map_err(|f| format!("info/self-check: {f}"))?;
    if let Err(e) = checked {
        return Err(format!("self-check failed: {}", Failure::from(e)));
    }
    let declared = declared_kind(info.kind);
    if declared != kind {
        return Err(format!("says it is a {declared} plugin but is configured as {kind}"));
    }
    Ok(Loaded {
        env,
        version: Arc::from(info.version.as_str()),
        info,
        contract,
        sha256,
        path: source.path.clone(),
        loaded_at_unix_ms: unix_ms(SystemTime::now()),
        release_id: None,
        stats: Stats::default(),
        pre,
        source,
    })
}

/// Links `component` against `kind`'s world in its contract version.
fn link(rt: &Runtime, kind: PluginKind, contract: Contract, component: &Component) -> Result<WorldPre, String> {
    let pre = rt
        .linker(kind)
        .instantiate_pre(component)
        .map_err(|e| format!("imports something this host does not provide (contract {contract}): {e:#}"))?;
    WorldPre::new(contract, kind, pre)
        .map_err(|e| format!("does not implement the {kind} world of contract {contract}: {e:#}"))
}

/// Which world a component implements, for `validate`.
pub(crate) fn detect_kind(rt: &Runtime, component: &Component) -> Result<PluginKind, String> {
    let contract = Contract::of(&rt.engine, component)?;
    let mut reasons = Vec::new();
    for kind in PluginKind::ALL {
        match link(rt, kind, contract, component) {
            Ok(_) => return Ok(kind),
            Err(e) => reasons.push(format!("{kind}: {e}")),
        }
    }
    Err(format!("implements none of the plugin worlds of contract {contract} ({})", reasons.join("; ")))
}

/// Compiles (or finds in the cache) on the blocking pool: compiling takes
/// milliseconds to seconds of CPU, too long for an async worker.
pub(crate) async fn compile_off_thread(
    rt: &Arc<Runtime>,
    cache: &Arc<ComponentCache>,
    sha256: String,
    bytes: Vec<u8>,
) -> Result<Component, String> {
    let (rt, cache) = (rt.clone(), cache.clone());
    tokio::task::spawn_blocking(move || cache.get_or_compile(&rt, &sha256, &bytes))
        .await
        .map_err(|e| format!("compile task failed: {e}"))?
}

pub(crate) fn declared_kind(kind: contract::current::shared::PluginKind) -> PluginKind {
    use contract::current::shared;
    match kind {
        shared::PluginKind::Pricing => PluginKind::Pricing,
        shared::PluginKind::PointsRules => PluginKind::PointsRules,
        shared::PluginKind::Promotions => PluginKind::Promotions,
        shared::PluginKind::PaymentGateway => PluginKind::PaymentGateway,
        shared::PluginKind::StationProtocol => PluginKind::StationProtocol,
    }
}
