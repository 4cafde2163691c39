//! What `status()` reports for each plugin: what serves, what failed to
//! load and why, and call statistics.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::Inner;
use crate::config::PluginKind;

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
    /// The contract version the serving build was built against (`0.4.0`).
    pub contract: Option<String>,
    pub sha256: Option<String>,
    /// The promoted release serving instead of the file plugins.toml names;
    /// `None` when the file serves (or nothing does).
    pub release_id: Option<i64>,
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
    /// The staged release running beside the serving build, and how
    /// (`shadow` or `canary`).
    pub candidate_release_id: Option<i64>,
    pub candidate_mode: Option<String>,
    /// The last thing the runtime did to this slot on its own (a canary
    /// stopped for failing), for operators.
    pub notice: Option<String>,
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

pub(super) struct LoadError {
    pub message: String,
    pub at_unix_ms: i64,
}

impl Inner {
    pub(super) fn status(&self) -> Vec<PluginStatus> {
        let set = self.active.load();
        let errors = self.errors_lock();
        let config = self.last_config.lock().unwrap_or_else(|p| p.into_inner());
        let candidates = self.candidates.load();
        let notices = self.notices_log.lock().unwrap_or_else(|p| p.into_inner());
        let candidate = |name: &str| {
            candidates.get(name).map(|c| {
                let mode = match c.mode {
                    super::CandidateMode::Shadow { .. } => "shadow",
                    super::CandidateMode::Canary { .. } => "canary",
                };
                (c.release_id, mode.to_string())
            })
        };
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
                    release_id: l.release_id,
                    path: l.path.clone(),
                    loaded_at_unix_ms: Some(l.loaded_at_unix_ms),
                    state: PluginState::Active,
                    last_error: error.map(|e| e.message.clone()),
                    last_error_at_unix_ms: error.map(|e| e.at_unix_ms),
                    calls: stats.calls,
                    failures: stats.failures,
                    p50_us: stats.p50_us,
                    p99_us: stats.p99_us,
                    candidate_release_id: candidate(&l.env.name).map(|c| c.0),
                    candidate_mode: candidate(&l.env.name).map(|c| c.1),
                    notice: notices.get(&l.env.name).cloned(),
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
                    release_id: None,
                    path: cfg.path.clone(),
                    loaded_at_unix_ms: None,
                    state: if cfg.enabled { PluginState::Failed } else { PluginState::Disabled },
                    last_error: error.map(|e| e.message.clone()),
                    last_error_at_unix_ms: error.map(|e| e.at_unix_ms),
                    calls: 0,
                    failures: 0,
                    p50_us: None,
                    p99_us: None,
                    candidate_release_id: None,
                    candidate_mode: None,
                    notice: notices.get(&cfg.name).cloned(),
                },
            );
        }
        out.into_values().collect()
    }
}
