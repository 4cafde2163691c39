//! The wasmtime side: one engine, one linker per world, the epoch ticker that
//! enforces timeouts, and running one call in a fresh store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline};

use crate::config::PluginKind;
use crate::contract;
use crate::error::{Failure, PluginError};
use crate::loaded::Loaded;
use crate::state::{Outbound, PluginEnv, StoreState};

/// Epoch tick: how often a running plugin yields to tokio and its deadline
/// is checked.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// What a typed call does with its fresh store; boxed because it borrows the
/// store and the plugin for the length of an async call.
pub(crate) type CallFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 'a>>;

/// Sizing of the runtime, fixed for the life of a `PluginHost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginHostOptions {
    /// Calls running at once; further calls wait for a slot. Also sizes the
    /// instance pool.
    pub max_concurrent_calls: u32,
    /// Ceiling for any plugin's `limits.memory_mb`; sizes each pool slot.
    pub max_memory_mb: u32,
    /// Pooling allocator (fast instantiation) or on-demand allocation.
    pub pooling: bool,
    /// Watch plugins.toml and the .wasm files and reload on change.
    pub watch: bool,
    /// Quiet period after the last file event before reloading.
    pub watch_debounce: Duration,
}

impl Default for PluginHostOptions {
    fn default() -> Self {
        PluginHostOptions {
            max_concurrent_calls: 64,
            max_memory_mb: 256,
            pooling: true,
            watch: false,
            watch_debounce: Duration::from_millis(300),
        }
    }
}

pub(crate) struct Runtime {
    pub engine: Engine,
    pricing: Linker<StoreState>,
    points: Linker<StoreState>,
    promotions: Linker<StoreState>,
    gateway: Linker<StoreState>,
    station_protocol: Linker<StoreState>,
    pub outbound: Arc<Outbound>,
    pub options: PluginHostOptions,
    /// Told about every finished call (the host's metrics), once set.
    pub observer: std::sync::OnceLock<CallObserver>,
    _ticker: EpochTicker,
}

/// One finished plugin call, as handed to the observer set with
/// [`PluginHost::observe_calls`](crate::PluginHost::observe_calls).
#[derive(Debug)]
pub struct CallRecord<'a> {
    pub plugin: &'a str,
    pub kind: PluginKind,
    pub version: &'a str,
    pub sha256: &'a str,
    pub operation: &'a str,
    pub elapsed: Duration,
    /// `None` when the call succeeded.
    pub failure: Option<&'a Failure>,
}

/// Called after every plugin call, on the calling task: keep it cheap.
pub type CallObserver = Arc<dyn Fn(&CallRecord<'_>) + Send + Sync>;

impl Runtime {
    pub fn new(options: PluginHostOptions) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        if options.pooling {
            // Reload checks instantiate too, hence the headroom over the call slots.
            let instances = options.max_concurrent_calls.saturating_add(16);
            let max_memory = (options.max_memory_mb as usize).saturating_mul(1 << 20);
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(instances);
            // A Rust wasip2 component holds a few core instances (the module
            // plus adapter shims), but only one memory and a couple of tables.
            pool.total_core_instances(instances.saturating_mul(4));
            pool.total_memories(instances.saturating_mul(2));
            pool.total_tables(instances.saturating_mul(4));
            pool.max_memory_size(max_memory);
            pool.total_stacks(instances);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            // Reserve only what a slot may use (plus the default guard)
            // instead of 4 GiB per memory: modest address space per slot.
            config.memory_reservation(max_memory as u64);
        }
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Runtime {
            pricing: linker(&engine, PluginKind::Pricing)?,
            points: linker(&engine, PluginKind::PointsRules)?,
            promotions: linker(&engine, PluginKind::Promotions)?,
            gateway: linker(&engine, PluginKind::PaymentGateway)?,
            station_protocol: linker(&engine, PluginKind::StationProtocol)?,
            engine,
            outbound: Arc::new(Outbound::new()),
            options,
            observer: std::sync::OnceLock::new(),
            _ticker: ticker,
        })
    }

    pub fn linker(&self, kind: PluginKind) -> &Linker<StoreState> {
        match kind {
            PluginKind::Pricing => &self.pricing,
            PluginKind::PointsRules => &self.points,
            PluginKind::Promotions => &self.promotions,
            PluginKind::PaymentGateway => &self.gateway,
            PluginKind::StationProtocol => &self.station_protocol,
        }
    }

    pub fn compile(&self, bytes: &[u8]) -> Result<Component, String> {
        Component::new(&self.engine, bytes).map_err(|e| format!("not a valid component: {e:#}"))
    }

    /// A fresh store for one call of the plugin described by `env`.
    pub fn new_store(&self, env: &Arc<PluginEnv>, version: &Arc<str>) -> Store<StoreState> {
        let state = StoreState::new(env.clone(), version.clone(), self.outbound.clone());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // At every tick: past the deadline, interrupt; otherwise yield to
        // tokio so other tasks on this worker get their turn, then go on.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Error::new(Trap::Interrupt))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Runs `f` against a fresh store of `loaded`, classifying failures,
    /// recording stats and logging failures with the plugin's name and version.
    pub async fn run<T, F>(&self, loaded: &Loaded, operation: &str, f: F) -> Result<T, PluginError>
    where
        F: for<'a> FnOnce(&'a mut Store<StoreState>, &'a Loaded) -> CallFuture<'a, T>,
    {
        let started = Instant::now();
        let mut store = self.new_store(&loaded.env, &loaded.version);
        let result = f(&mut store, loaded).await;
        let elapsed = started.elapsed();
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        loaded.stats.record(micros, result.is_err());
        let result = result.map_err(|failure| {
            // A plugin that reports an error after being refused a host has
            // most likely failed because of that refusal: say so.
            match (failure, store.data().forbidden_host.clone()) {
                (
                    Failure::Rejected(_) | Failure::Trap(_) | Failure::Misconfigured(_) | Failure::Unavailable(_),
                    Some(host),
                ) => Failure::ForbiddenHost(host),
                (failure, _) => failure,
            }
        });
        if let Some(observe) = self.observer.get() {
            observe(&CallRecord {
                plugin: &loaded.env.name,
                kind: loaded.env.kind,
                version: &loaded.version,
                sha256: &loaded.sha256,
                operation,
                elapsed,
                failure: result.as_ref().err(),
            });
        }
        result.map_err(|failure| {
            let err = PluginError {
                plugin: loaded.env.name.clone(),
                version: loaded.version.to_string(),
                kind: loaded.env.kind,
                operation: operation.to_string(),
                failure,
            };
            tracing::warn!(
                plugin = %err.plugin,
                version = %err.version,
                kind = %err.kind,
                operation,
                failure = err.failure.code(),
                micros,
                "plugin call failed: {}",
                err.failure
            );
            err
        })
    }
}

/// Turns a wasmtime error from instantiating or calling a plugin into a `Failure`.
pub(crate) fn classify(store: &Store<StoreState>, err: wasmtime::Error) -> Failure {
    let state = store.data();
    if state.limiter.refused {
        return Failure::OutOfMemory { memory_mb: state.env.limits.memory_mb };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::Timeout { timeout_ms: state.env.limits.timeout_ms },
        Some(trap) => Failure::Trap(trap.to_string()),
        None => Failure::Trap(format!("{err:#}")),
    }
}

/// A linker with WASI (granting nothing) and every supported contract
/// version of `kind`'s world.
fn linker(engine: &Engine, kind: PluginKind) -> anyhow::Result<Linker<StoreState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    contract::add_to_linker(&mut linker, kind).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok(linker)
}

/// Advances the engine's epoch every `TICK` so deadlines fire; stops when dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = thread::Builder::new().name("plugin-epoch".to_string()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                thread::sleep(TICK);
                engine.increment_epoch();
            }
        });
        if let Err(e) = spawned {
            // Without ticks no deadline ever fires: say so loudly.
            tracing::error!(error = %e, "cannot start the plugin epoch ticker; timeouts will not fire");
        }
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
