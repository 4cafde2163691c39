//! A compiled, checked plugin ready to serve calls, and how one is made.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use crate::bindings::payment_gateway::{PaymentGateway, PaymentGatewayPre};
use crate::bindings::points::{PointsRules, PointsRulesPre};
use crate::bindings::pricing::{Pricing, PricingPre};
use crate::bindings::promotions::{Promotions, PromotionsPre};
use crate::bindings::shared::{self, PluginInfo};
use crate::bindings::station_protocol::{StationProtocol, StationProtocolPre};
use crate::config::{PluginConfig, PluginKind};
use crate::engine::{Runtime, classify};
use crate::error::Failure;
use crate::state::{PluginEnv, StoreState, unix_ms};
use crate::stats::Stats;

/// The pre-linked component of one world; instantiating it is the cheap,
/// per-call part.
pub(crate) enum KindPre {
    Pricing(PricingPre<StoreState>),
    Points(PointsRulesPre<StoreState>),
    Promotions(PromotionsPre<StoreState>),
    Gateway(PaymentGatewayPre<StoreState>),
    StationProtocol(StationProtocolPre<StoreState>),
}

impl KindPre {
    /// Checks the component against `kind`'s world: every export present
    /// with the right type.
    fn new(kind: PluginKind, pre: InstancePre<StoreState>) -> wasmtime::Result<Self> {
        Ok(match kind {
            PluginKind::Pricing => KindPre::Pricing(PricingPre::new(pre)?),
            PluginKind::PointsRules => KindPre::Points(PointsRulesPre::new(pre)?),
            PluginKind::Promotions => KindPre::Promotions(PromotionsPre::new(pre)?),
            PluginKind::PaymentGateway => KindPre::Gateway(PaymentGatewayPre::new(pre)?),
            PluginKind::StationProtocol => KindPre::StationProtocol(StationProtocolPre::new(pre)?),
        })
    }
}

pub(crate) struct Loaded {
    pub env: Arc<PluginEnv>,
    pub version: Arc<str>,
    pub sha256: String,
    pub path: PathBuf,
    pub loaded_at_unix_ms: i64,
    pub stats: Stats,
    pre: KindPre,
    /// The config entry it was loaded from, to tell whether a reload changes it.
    pub source: PluginConfig,
}

macro_rules! instance_fn {
    ($fn_name:ident, $variant:ident, $ty:ty) => {
        /// A fresh instance in `store`; `Failure::Internal` if this plugin is of another kind.
        pub async fn $fn_name(&self, store: &mut Store<StoreState>) -> Result<$ty, Failure> {
            match &self.pre {
                KindPre::$variant(pre) => match pre.instantiate_async(&mut *store).await {
                    Ok(instance) => Ok(instance),
                    Err(e) => Err(classify(store, e)),
                },
                _ => Err(Failure::Internal(format!("plugin {} is a {} plugin", self.env.name, self.env.kind))),
            }
        }
    };
}

impl Loaded {
    instance_fn!(pricing, Pricing, Pricing);
    instance_fn!(points, Points, PointsRules);
    instance_fn!(promotions, Promotions, Promotions);
    instance_fn!(gateway, Gateway, PaymentGateway);
    instance_fn!(station_protocol, StationProtocol, StationProtocol);

    /// Calls `info` then `self-check` on a fresh instance.
    async fn probe(&self, store: &mut Store<StoreState>) -> Result<PluginInfo, Failure> {
        // Each world has its own generated instance type, hence one arm each.
        macro_rules! probe {
            ($instance:expr) => {{
                let i = $instance;
                let info = match i.call_info(&mut *store).await {
                    Ok(info) => info,
                    Err(e) => return Err(classify(store, e)),
                };
                match i.call_self_check(&mut *store).await {
                    Ok(check) => (info, check),
                    Err(e) => return Err(classify(store, e)),
                }
            }};
        }
        let (info, check) = match &self.pre {
            KindPre::Pricing(_) => probe!(self.pricing(store).await?),
            KindPre::Points(_) => probe!(self.points(store).await?),
            KindPre::Promotions(_) => probe!(self.promotions(store).await?),
            KindPre::Gateway(_) => probe!(self.gateway(store).await?),
            KindPre::StationProtocol(_) => probe!(self.station_protocol(store).await?),
        };
        check.map_err(|msg| Failure::Rejected(format!("self-check failed: {msg}")))?;
        Ok(info)
    }
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
pub(crate) async fn load(rt: &Arc<Runtime>, cache: &Arc<ComponentCache>, cfg: &PluginConfig) -> Result<Loaded, String> {
    let bytes = tokio::fs::read(&cfg.path).await.map_err(|e| format!("cannot read {}: {e}", cfg.path.display()))?;
    let sha256 = sha256_hex(&bytes);
    let limit = rt.options.max_memory_mb;
    if cfg.limits.memory_mb > limit {
        return Err(format!("limits.memory_mb = {} exceeds the host's ceiling of {limit}", cfg.limits.memory_mb));
    }
    let mut secrets = BTreeMap::new();
    for (key, source) in &cfg.secrets {
        secrets.insert(key.clone(), source.resolve(key)?);
    }
    let env = Arc::new(PluginEnv {
        name: cfg.name.clone(),
        kind: cfg.kind,
        config: cfg.config.clone(),
        secrets,
        allowed_hosts: cfg.allowed_hosts.clone(),
        limits: cfg.limits,
    });
    load_bytes(rt, cache, env, cfg.clone(), bytes, sha256).await
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
    let pre = rt
        .linker(kind)
        .instantiate_pre(&component)
        .map_err(|e| format!("imports something the host does not provide: {e:#}"))?;
    let pre = KindPre::new(kind, pre).map_err(|e| format!("does not implement the {kind} world: {e:#}"))?;
    let mut loaded = Loaded {
        env,
        version: Arc::from("?"),
        sha256,
        path: source.path.clone(),
        loaded_at_unix_ms: unix_ms(SystemTime::now()),
        stats: Stats::default(),
        pre,
        source,
    };
    // `run` would count the probe as a served call; probe on a bare store.
    let mut store = rt.new_store(&loaded.env, &loaded.version);
    let info = loaded.probe(&mut store).await.map_err(|f| match f {
        Failure::Rejected(msg) => msg,
        other => format!("info/self-check: {other}"),
    })?;
    let declared = declared_kind(info.kind);
    if declared != kind {
        return Err(format!("says it is a {declared} plugin but is configured as {kind}"));
    }
    loaded.version = Arc::from(info.version.as_str());
    Ok(loaded)
}

/// Which worlds a component satisfies, for `validate`.
pub(crate) fn detect_kind(rt: &Runtime, component: &Component) -> Result<PluginKind, String> {
    let mut reasons = Vec::new();
    for kind in PluginKind::ALL {
        match rt.linker(kind).instantiate_pre(component).and_then(|pre| KindPre::new(kind, pre)) {
            Ok(_) => return Ok(kind),
            Err(e) => reasons.push(format!("{kind}: {e:#}")),
        }
    }
    Err(format!("implements none of the plugin worlds ({})", reasons.join("; ")))
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

pub(crate) fn declared_kind(kind: shared::PluginKind) -> PluginKind {
    match kind {
        shared::PluginKind::Pricing => PluginKind::Pricing,
        shared::PluginKind::PointsRules => PluginKind::PointsRules,
        shared::PluginKind::Promotions => PluginKind::Promotions,
        shared::PluginKind::PaymentGateway => PluginKind::PaymentGateway,
        shared::PluginKind::StationProtocol => PluginKind::StationProtocol,
    }
}
