//! Hot reload on file changes: plugins.toml and the configured .wasm files.
//!
//! Folders are watched rather than files, because editors and build tools
//! often replace a file (write a new one, rename it over the old), which a
//! watch on the old file would miss. Events are debounced: a build that
//! copies several .wasm files triggers one reload, after it is done.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::plugin_host::{Inner, PluginHost};

/// Starts watching; stops when the last `PluginHost` clone is dropped.
pub(crate) fn spawn(host: &PluginHost, debounce: Duration) -> Result<(), String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            for path in event.paths {
                // Only fails once the reload task has stopped; nothing to do then.
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|e| e.to_string())?;
    let watcher = Arc::new(Mutex::new(WatchedDirs { watcher, dirs: BTreeSet::new() }));
    watcher.lock().unwrap_or_else(|p| p.into_inner()).update(&host.inner.watched_files());

    // A weak handle, so the watcher does not keep the host alive, and a stop
    // signal that fires when the host is dropped.
    let weak: Weak<Inner> = Arc::downgrade(&host.inner);
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    if host.inner.watch_stop.set(stop_tx).is_err() {
        return Err("this host is already watching its files".to_string());
    }
    tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                event = rx.recv() => match event {
                    Some(path) => path,
                    None => break,
                },
                _ = &mut stop_rx => break,
            };
            let mut touched = vec![first];
            // Wait for a quiet period so one build causes one reload.
            while let Ok(Some(more)) = tokio::time::timeout(debounce, rx.recv()).await {
                touched.push(more);
            }
            let Some(inner) = weak.upgrade() else { break };
            let host = PluginHost { inner };
            let files = host.inner.watched_files();
            if !touched.iter().any(|t| is_watched(t, &files)) {
                continue;
            }
            tracing::info!(changed = ?touched, "plugin files changed; reloading");
            match host.reload().await {
                Ok(report) => tracing::info!(?report, "plugins reloaded"),
                Err(e) => tracing::error!(error = %e, "plugin reload failed"),
            }
            // The new config may name files in other folders.
            watcher.lock().unwrap_or_else(|p| p.into_inner()).update(&host.inner.watched_files());
        }
    });
    Ok(())
}

struct WatchedDirs {
    watcher: RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
}

impl WatchedDirs {
    fn update(&mut self, files: &[PathBuf]) {
        let wanted: BTreeSet<PathBuf> = files.iter().map(|f| parent_dir(f)).collect();
        for dir in self.dirs.difference(&wanted) {
            let _ = self.watcher.unwatch(dir);
        }
        for dir in wanted.difference(&self.dirs) {
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch plugin folder");
            }
        }
        self.dirs = wanted;
    }
}

fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether an event path is one of the watched files (comparing canonical
/// forms where possible, as the watcher may report absolute paths).
fn is_watched(touched: &Path, files: &[PathBuf]) -> bool {
    let canon =
        |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| std::path::absolute(p).unwrap_or(p.to_path_buf()));
    let touched = canon(touched);
    files.iter().any(|f| canon(f) == touched || f.file_name() == touched.file_name())
}
