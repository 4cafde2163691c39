//! Shared test helpers: the built plugins and scratch plugins.toml files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use powerbank_plugin_runtime::types::{CallContext, PackageInfo, QuoteRequest};
use powerbank_plugin_runtime::{PluginHost, PluginHostOptions, ReloadReport};
use tempfile::TempDir;

/// Path of a built plugin in plugins/dist. Missing plugins fail the test
/// loudly: these tests are about the real .wasm files, never skipped.
pub fn dist(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist").join(file);
    assert!(
        path.is_file(),
        "{} is missing: build the plugins first with `cargo xtask build-plugins` \
         (or: cd plugins && cargo build --release --target wasm32-wasip2, then copy \
         the .wasm files into plugins/dist/)",
        path.display()
    );
    path
}

/// A scratch folder holding a plugins.toml.
pub struct Scratch {
    pub dir: TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch { dir: tempfile::tempdir().expect("create a temp dir") }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("plugins.toml")
    }

    pub fn write_config(&self, toml: &str) {
        // Write-then-rename so a concurrent reader never sees half a file.
        let tmp = self.dir.path().join("plugins.toml.tmp");
        std::fs::write(&tmp, toml).expect("write plugins.toml");
        std::fs::rename(&tmp, self.config_path()).expect("rename plugins.toml");
    }

    /// Copies a built plugin into the scratch folder under `name`.
    pub fn copy_plugin(&self, file: &str, name: &str) -> PathBuf {
        let to = self.dir.path().join(name);
        std::fs::copy(dist(file), &to).expect("copy plugin");
        to
    }

    pub async fn start(&self) -> (PluginHost, ReloadReport) {
        self.start_with(PluginHostOptions::default()).await
    }

    pub async fn start_with(&self, options: PluginHostOptions) -> (PluginHost, ReloadReport) {
        PluginHost::start(self.config_path(), options).await.expect("plugins.toml is valid")
    }
}

/// A plugins.toml entry for a built plugin, with optional extra TOML lines.
pub fn entry(name: &str, kind: &str, file: &str, extra: &str) -> String {
    format!("[plugins.{name}]\nkind = \"{kind}\"\npath = \"{}\"\n{extra}\n", dist(file).display())
}

/// The three standard plugins with their default config.
pub fn standard_plugins() -> String {
    [
        entry("pricing-standard", "pricing", "pricing_standard.wasm", ""),
        entry("points-standard", "points-rules", "points_standard.wasm", ""),
        entry("promotions-standard", "promotions", "promotions_standard.wasm", ""),
    ]
    .concat()
}

pub const HOUR_MS: i64 = 3_600_000;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn context() -> CallContext {
    CallContext { user_id: Some("user-1".to_string()), station_sn: Some("ST-0001".to_string()), now_unix_ms: now_ms() }
}

/// NPR 50 for one hour.
pub fn one_hour_package() -> PackageInfo {
    PackageInfo { id: "pkg-1".to_string(), code: "HOUR1".to_string(), price_paisa: 5_000, duration_minutes: 60 }
}

pub fn quote_request() -> QuoteRequest {
    QuoteRequest { package: one_hour_package(), requested_minutes: None, context: context() }
}
