//! Candidates: a staged release running beside the build that serves its
//! slot, either as a **shadow** (every sampled live call is repeated on it
//! off the request's path and the two answers compared) or as a **canary**
//! (a sticky share of riders is answered by it for real).
//!
//! A shadow never decides anything and never delays the live answer: its
//! calls are queued on a bounded channel served by one background worker;
//! when the queue is full the call is dropped and counted. A canary whose
//! failure rate passes its threshold is stopped at once by the call that
//! crossed it, and a [`ReleaseNotice`] tells the host.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{PluginHost, SlotRelease};
use crate::config::PluginKind;
use crate::error::{Failure, PluginError};
use crate::loaded::{self, Loaded};
use crate::stats::Stats;

/// Shadow calls waiting for the worker; more are dropped (and counted).
pub const SHADOW_QUEUE: usize = 64;
/// Differing answers kept per shadow, for the report.
pub const SHADOW_SAMPLES: usize = 20;

pub(crate) type ShadowJob = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How a candidate runs beside the serving build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum CandidateMode {
    /// Sees `sample_percent` % of live calls (1..=100), decides none.
    Shadow { sample_percent: u8 },
    /// Decides for `percent` % of riders (1..=99), sticky by rider id; it is
    /// stopped once at least `min_calls` calls failed more than
    /// `max_failure_percent` % of the time.
    Canary { percent: u8, min_calls: u64, max_failure_percent: u8 },
}

/// A staged release running beside the serving build of its slot.
pub(crate) struct Candidate {
    pub slot: String,
    pub release_id: i64,
    pub mode: CandidateMode,
    pub loaded: Arc<Loaded>,
    pub started_at_unix_ms: i64,
    seen: AtomicU64,
    // Shadow counters.
    sent: AtomicU64,
    equal: AtomicU64,
    different: AtomicU64,
    shadow_failures: AtomicU64,
    dropped: AtomicU64,
    live_us: Stats,
    shadow_us: Stats,
    samples: Mutex<VecDeque<ShadowDifference>>,
    // Canary counters (calls it decided, and how many failed).
    canary_calls: AtomicU64,
    canary_failures: AtomicU64,
    stopped: AtomicBool,
    stop_reason: Mutex<Option<String>>,
}

/// One live call whose shadow answered differently (or failed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowDifference {
    pub operation: String,
    /// The call's arguments, as JSON.
    pub input: serde_json::Value,
    /// The serving build's answer (`{"error": code}` when it failed).
    pub live: serde_json::Value,
    /// The shadow's answer (`{"error": code}` when it failed).
    pub shadow: serde_json::Value,
}

/// What a candidate did so far, for the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateReport {
    pub slot: String,
    pub release_id: i64,
    #[serde(flatten)]
    pub mode: CandidateMode,
    /// `true` while it runs; `false` once stopped (by an operator or
    /// automatically, see `stop_reason`).
    pub running: bool,
    pub stop_reason: Option<String>,
    pub started_at_unix_ms: i64,
    /// Shadow: live calls sent to the shadow, answered the same, answered
    /// differently, failed on the shadow, dropped because its queue was full.
    pub calls: u64,
    pub equal: u64,
    pub different: u64,
    pub shadow_failures: u64,
    pub dropped: u64,
    /// Latency of the live calls seen while shadowing, and of the shadow's.
    pub live_p50_us: Option<u64>,
    pub live_p99_us: Option<u64>,
    pub shadow_p50_us: Option<u64>,
    pub shadow_p99_us: Option<u64>,
    /// Up to the first 20 differences.
    pub samples: Vec<ShadowDifference>,
    /// Canary: calls it decided, and how many failed (traps, timeouts, errors).
    pub canary_calls: u64,
    pub canary_failures: u64,
}

/// Something the runtime did on its own that operators must hear about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseNotice {
    pub slot: String,
    pub release_id: i64,
    /// `canary_stopped`.
    pub event: &'static str,
    pub message: String,
    pub calls: u64,
    pub failures: u64,
}

/// Which build answers one call, and which candidate hears of it.
pub(crate) struct Route {
    pub loaded: Arc<Loaded>,
    /// The canary that decides this call.
    pub canary: Option<Arc<Candidate>>,
    /// The shadow that repeats this call.
    pub shadow: Option<Arc<Candidate>>,
}

impl Candidate {
    fn new(slot: String, release_id: i64, mode: CandidateMode, loaded: Arc<Loaded>) -> Self {
        Candidate {
            slot,
            release_id,
            mode,
            loaded,
            started_at_unix_ms: crate::state::unix_ms(std::time::SystemTime::now()),
            seen: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            equal: AtomicU64::new(0),
            different: AtomicU64::new(0),
            shadow_failures: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            live_us: Stats::default(),
            shadow_us: Stats::default(),
            samples: Mutex::new(VecDeque::new()),
            canary_calls: AtomicU64::new(0),
            canary_failures: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            stop_reason: Mutex::new(None),
        }
    }

    fn report(&self) -> CandidateReport {
        let live = self.live_us.snapshot();
        let shadow = self.shadow_us.snapshot();
        CandidateReport {
            slot: self.slot.clone(),
            release_id: self.release_id,
            mode: self.mode,
            running: !self.stopped.load(Ordering::Acquire),
            stop_reason: self.stop_reason.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            started_at_unix_ms: self.started_at_unix_ms,
            calls: self.sent.load(Ordering::Relaxed),
            equal: self.equal.load(Ordering::Relaxed),
            different: self.different.load(Ordering::Relaxed),
            shadow_failures: self.shadow_failures.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            live_p50_us: live.p50_us,
            live_p99_us: live.p99_us,
            shadow_p50_us: shadow.p50_us,
            shadow_p99_us: shadow.p99_us,
            samples: self.samples.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect(),
            canary_calls: self.canary_calls.load(Ordering::Relaxed),
            canary_failures: self.canary_failures.load(Ordering::Relaxed),
        }
    }

    /// Records the shadow's answer beside the live one.
    pub(crate) fn record_shadow(
        &self,
        operation: &str,
        input: serde_json::Value,
        live: Result<serde_json::Value, String>,
        shadow: Result<serde_json::Value, String>,
        shadow_took: Duration,
    ) {
        self.shadow_us.record(micros(shadow_took), shadow.is_err());
        let same = live == shadow;
        if shadow.is_err() && live.is_ok() {
            self.shadow_failures.fetch_add(1, Ordering::Relaxed);
        } else if same {
            self.equal.fetch_add(1, Ordering::Relaxed);
        } else {
            self.different.fetch_add(1, Ordering::Relaxed);
        }
        if !same {
            let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
            if samples.len() < SHADOW_SAMPLES {
                let show =
                    |r: Result<serde_json::Value, String>| r.unwrap_or_else(|e| serde_json::json!({ "error": e }));
                samples.push_back(ShadowDifference {
                    operation: operation.to_string(),
                    input,
                    live: show(live),
                    shadow: show(shadow),
                });
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Which of 100 buckets a rider falls in for a release: the same rider stays
/// on the same side for the whole canary, and each release splits riders
/// differently.
pub fn canary_bucket(rider: &str, release_id: i64) -> u8 {
    let digest = Sha256::digest(format!("{rider}#{release_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // The modulo is below 100, so it fits in a u8.
    u8::try_from(u64::from_be_bytes(first) % 100).unwrap_or(0)
}

/// Failures a canary is judged by: the plugin breaking, not the plugin
/// declining an input or the host being busy.
fn counts_against(failure: &Failure) -> bool {
    !matches!(failure, Failure::Rejected(_) | Failure::Busy | Failure::NotLoaded)
}

/// Which build decided a call: `<slot>@<version>#<sha256 first 8>`, with
/// `+r<release id>` when a release (not the slot's file) decided.
pub fn release_label(loaded: &Loaded) -> String {
    let sha8 = loaded.sha256.get(..8).unwrap_or(&loaded.sha256);
    match loaded.release_id {
        Some(id) => format!("{}@{}#{sha8}+r{id}", loaded.env.name, loaded.version),
        None => format!("{}@{}#{sha8}", loaded.env.name, loaded.version),
    }
}

impl PluginHost {
    /// Starts `release` as a shadow or canary of the slot `slot`, replacing
    /// any candidate it had. The build is loaded and checked like a promote;
    /// nothing serving changes.
    pub async fn start_candidate(&self, slot: &str, release: SlotRelease, mode: CandidateMode) -> Result<(), String> {
        let slot_cfg = self.slot(slot).filter(|s| s.enabled).ok_or_else(|| format!("no enabled plugin `{slot}`"))?;
        match (slot_cfg.kind, mode) {
            (PluginKind::PaymentGateway, _) => {
                return Err("a payment gateway cannot run a shadow or canary (its calls move money)".into());
            }
            (PluginKind::StationProtocol, CandidateMode::Canary { .. }) => {
                return Err("a station protocol cannot run a canary: stations are not riders".into());
            }
            _ => {}
        }
        let cfg = release.apply(&slot_cfg);
        let mut loaded = loaded::load(
            &self.inner.runtime,
            &Arc::default(),
            &cfg,
            &self.trusted_keys(),
            release.signature.as_deref(),
        )
        .await?;
        loaded.release_id = Some(release.release_id);
        let candidate = Arc::new(Candidate::new(slot.to_string(), release.release_id, mode, Arc::new(loaded)));
        if matches!(mode, CandidateMode::Shadow { .. }) {
            self.shadow_worker();
        }
        let previous = self.swap_candidate(slot, Some(candidate));
        if let Some(p) = previous {
            p.stop("replaced by another candidate");
        }
        Ok(())
    }

    /// Stops the candidate of `slot` (if it is `release_id`, when given);
    /// its report stays readable. Returns whether one was running.
    pub fn stop_candidate(&self, slot: &str, release_id: Option<i64>, reason: &str) -> bool {
        let current = self.inner.candidates.load().get(slot).cloned();
        match current {
            Some(c) if release_id.is_none_or(|id| id == c.release_id) => {
                self.swap_candidate(slot, None);
                c.stop(reason);
                true
            }
            _ => false,
        }
    }

    /// The report of the running (or last stopped) candidate of `slot` for `release_id`.
    pub fn candidate_report(&self, slot: &str, release_id: i64) -> Option<CandidateReport> {
        let running = self.inner.candidates.load().get(slot).cloned();
        let last = self.inner.finished_lock().get(slot).cloned();
        running.into_iter().chain(last).find(|c| c.release_id == release_id).map(|c| c.report())
    }

    /// [`release_label`] of the build serving the plugin `name`.
    pub fn serving_release(&self, name: &str) -> Option<String> {
        self.inner.active.load().by_name(name).map(|l| release_label(l))
    }

    /// The running candidate of each slot.
    pub fn candidates(&self) -> Vec<CandidateReport> {
        self.inner.candidates.load().values().map(|c| c.report()).collect()
    }

    /// Notices of what the runtime did on its own (a canary stopped).
    pub fn release_notices(&self) -> tokio::sync::broadcast::Receiver<ReleaseNotice> {
        self.inner.notices.subscribe()
    }

    fn swap_candidate(&self, slot: &str, next: Option<Arc<Candidate>>) -> Option<Arc<Candidate>> {
        let mut previous = None;
        self.inner.candidates.rcu(|map| {
            let mut map = BTreeMap::clone(map);
            previous = match &next {
                Some(c) => map.insert(slot.to_string(), c.clone()),
                None => map.remove(slot),
            };
            map
        });
        if let Some(p) = &previous {
            self.inner.finished_lock().insert(slot.to_string(), p.clone());
        }
        if let Some(n) = &next {
            // Its report is readable from the start.
            self.inner.finished_lock().insert(slot.to_string(), n.clone());
        }
        previous
    }

    /// Picks the build that answers a call: the canary for riders in its
    /// share, else the serving build; and the shadow that repeats it.
    pub(crate) fn route(
        &self,
        kind: PluginKind,
        name: Option<&str>,
        pin: Option<&str>,
        operation: &str,
        rider: Option<&str>,
    ) -> Result<Route, PluginError> {
        let active = self.lookup(kind, name, operation)?;
        if let Some(pin) = pin
            && release_label(&active) != pin
            && let Some(kept) = self.inner.kept_lock().iter().rev().find(|l| release_label(l) == pin)
        {
            return Ok(Route { loaded: kept.clone(), canary: None, shadow: None });
        }
        let candidates = self.inner.candidates.load();
        let Some(c) = candidates.get(&active.env.name) else {
            return Ok(Route { loaded: active, canary: None, shadow: None });
        };
        match c.mode {
            CandidateMode::Shadow { sample_percent } => {
                let n = c.seen.fetch_add(1, Ordering::Relaxed);
                let sampled = (n % 100) < u64::from(sample_percent);
                Ok(Route { loaded: active, canary: None, shadow: sampled.then(|| c.clone()) })
            }
            CandidateMode::Canary { percent, .. } => match rider {
                Some(rider) if canary_bucket(rider, c.release_id) < percent => {
                    Ok(Route { loaded: c.loaded.clone(), canary: Some(c.clone()), shadow: None })
                }
                _ => Ok(Route { loaded: active, canary: None, shadow: None }),
            },
        }
    }

    /// Counts a call the canary decided; stops it (and tells the host) once
    /// its failure rate passes the threshold.
    pub(crate) fn canary_result(&self, canary: &Arc<Candidate>, failure: Option<&Failure>) {
        let CandidateMode::Canary { min_calls, max_failure_percent, .. } = canary.mode else { return };
        let calls = canary.canary_calls.fetch_add(1, Ordering::AcqRel) + 1;
        let failures = if failure.is_some_and(counts_against) {
            canary.canary_failures.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            canary.canary_failures.load(Ordering::Acquire)
        };
        if calls < min_calls || failures * 100 <= calls * u64::from(max_failure_percent) {
            return;
        }
        let message = format!(
            "canary of release {} stopped: {failures} of {calls} calls failed (more than {max_failure_percent} %); \
             the serving build keeps serving",
            canary.release_id
        );
        if !self.stop_candidate(&canary.slot, Some(canary.release_id), &message) {
            return; // another call stopped it first
        }
        tracing::error!(plugin = %canary.slot, release = canary.release_id, calls, failures, "{message}");
        self.inner.notices_log.lock().unwrap_or_else(|p| p.into_inner()).insert(canary.slot.clone(), message.clone());
        // No receiver is fine: the log line above still says it.
        let _ = self.inner.notices.send(ReleaseNotice {
            slot: canary.slot.clone(),
            release_id: canary.release_id,
            event: "canary_stopped",
            message,
            calls,
            failures,
        });
    }

    /// Records a live call the shadow will repeat, and queues the repeat;
    /// a full queue drops it.
    pub(crate) fn queue_shadow(&self, shadow: &Arc<Candidate>, live_took: Duration, job: ShadowJob) {
        shadow.live_us.record(micros(live_took), false);
        shadow.sent.fetch_add(1, Ordering::Relaxed);
        let sent = self.inner.shadow_tx.get().map(|tx| tx.try_send(job).is_ok()).unwrap_or(false);
        if !sent {
            shadow.sent.fetch_sub(1, Ordering::Relaxed);
            shadow.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs `f` on `loaded` (a shadow) once a call slot is free.
    pub(crate) async fn call_on<T, F>(&self, loaded: &Loaded, operation: &'static str, f: F) -> Result<T, PluginError>
    where
        F: for<'a> FnOnce(
            &'a mut wasmtime::Store<crate::state::StoreState>,
            &'a Loaded,
        ) -> crate::engine::CallFuture<'a, T>,
    {
        let _slot = self.inner.slots.acquire().await.map_err(|e| PluginError {
            plugin: loaded.env.name.clone(),
            version: loaded.version.to_string(),
            kind: loaded.env.kind,
            operation: operation.to_string(),
            failure: Failure::Internal(e.to_string()),
        })?;
        self.inner.runtime.run(loaded, operation, f).await
    }

    /// Starts the one worker that runs shadow calls, one after another, so a
    /// slow shadow costs at most one call slot and one task.
    fn shadow_worker(&self) {
        self.inner.shadow_tx.get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<ShadowJob>(SHADOW_QUEUE);
            tokio::spawn(async move {
                while let Some(job) = rx.recv().await {
                    job.await;
                }
            });
            tx
        });
    }
}

impl Candidate {
    fn stop(&self, reason: &str) {
        if !self.stopped.swap(true, Ordering::AcqRel) {
            *self.stop_reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        }
    }
}

/// An answer and the build that decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided<T> {
    pub value: T,
    /// [`release_label`] of the build that answered.
    pub release: String,
}
