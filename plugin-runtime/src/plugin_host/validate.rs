//! Checking a `.wasm` file without loading it into the serving set, for
//! `powerbank plugins validate`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{PluginConfig, PluginKind};
use crate::engine::{PluginHostOptions, Runtime};
use crate::loaded::{self, ComponentCache};

/// Result of `validate`: what a .wasm file is and whether it passes its self-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    pub kind: PluginKind,
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// The contract version it was built against (`0.4.0`, `0.3.0`, `0.2.0`, `0.1.0`).
    pub contract: String,
}

pub(super) async fn validate_with(
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
        allow_unsigned: true,
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
    Ok(ValidationReport {
        kind,
        name,
        version: loaded.version.to_string(),
        sha256,
        contract: loaded.contract.version().to_string(),
    })
}

/// `validate` without a running host, for the CLI
/// (`powerbank plugins validate FILE`). Builds a small throwaway runtime;
/// call it inside a tokio runtime.
pub async fn validate_file(path: impl AsRef<Path>) -> Result<ValidationReport, String> {
    let options = PluginHostOptions { max_concurrent_calls: 2, pooling: false, ..PluginHostOptions::default() };
    let rt = Arc::new(Runtime::new(options).map_err(|e| format!("plugin runtime: {e:#}"))?);
    validate_with(&rt, &Arc::default(), path.as_ref()).await
}
