//! Hot reload on file changes: plugins.toml and the configured .wasm files.
//!
//! Folders are watched rather than files, because editors and build tools
//! often replace a file (write a new one, rename it over the old), which a
//! watch on the old file would miss. A folder also holds files that are none
//! of our business (the SQLite database and its WAL, logs): their events are
//! dropped as they arrive, before they can touch the quiet period, so a busy
//! neighbour never holds a reload off. Events for watched files are
//! debounced: a build that copies several .wasm files triggers one reload,
//! after it is done.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::plugin_host::{Inner, PluginHost};

/// Starts watching; stops when the last `PluginHost` clone is dropped.
pub(crate) fn spawn(host: &PluginHost, debounce: Duration) -> Result<(), String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let wanted = Arc::new(RwLock::new(HashSet::new()));
    let filter = wanted.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let wanted = filter.read().unwrap_or_else(|p| p.into_inner());
        for path in event.paths.into_iter().filter(|p| wanted.contains(p)) {
            // Only fails once the reload task has stopped; nothing to do then.
            let _ = tx.send(path);
        }
    })
    .map_err(|e| e.to_string())?;
    let watcher = Arc::new(Mutex::new(WatchedDirs { watcher, dirs: BTreeSet::new(), wanted }));
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
            // One entry per watched file at most, however many events.
            let mut touched = BTreeSet::from([first]);
            // Wait for a quiet period so one build causes one reload.
            while let Ok(Some(more)) = tokio::time::timeout(debounce, rx.recv()).await {
                touched.insert(more);
            }
            let Some(inner) = weak.upgrade() else { break };
            let host = PluginHost { inner };
            tracing::info!(changed = ?touched, "plugin files changed; reloading");
            match host.reload().await {
                Ok(report) => tracing::info!(?report, "plugins reloaded"),
                Err(e) => tracing::error!(error = %e, "plugin reload failed"),
            }
            // The new config may name other files, in other folders.
            watcher.lock().unwrap_or_else(|p| p.into_inner()).update(&host.inner.watched_files());
        }
    });
    Ok(())
}

struct WatchedDirs {
    watcher: RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
    /// The files whose events count, as the watcher reports them: a watched
    /// folder (canonical, as registered) joined with the file's name.
    wanted: Arc<RwLock<HashSet<PathBuf>>>,
}

impl WatchedDirs {
    fn update(&mut self, files: &[PathBuf]) {
        let entries: Vec<(PathBuf, PathBuf)> = files.iter().filter_map(|f| watched_entry(f)).collect();
        let dirs: BTreeSet<PathBuf> = entries.iter().map(|(dir, _)| dir.clone()).collect();
        for dir in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(dir);
        }
        for dir in dirs.difference(&self.dirs) {
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch plugin folder");
            }
        }
        self.dirs = dirs;
        *self.wanted.write().unwrap_or_else(|p| p.into_inner()) = entries.into_iter().map(|(_, file)| file).collect();
    }
}

/// The canonical folder of `file` and the path events will name it by. The
/// folder must exist; the file need not (it may be about to be created).
fn watched_entry(file: &Path) -> Option<(PathBuf, PathBuf)> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| tracing::warn!(dir = %dir.display(), error = %e, "cannot watch plugin folder"))
        .ok()?;
    let name = file.file_name()?;
    Some((dir.clone(), dir.join(name)))
}
