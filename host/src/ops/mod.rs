//! Running a site: backups (`powerbank backup`, and on a schedule by the
//! server), restores, checking the ledgers against the balances, and the
//! Prometheus metrics at `GET /metrics`.

pub mod backup;
pub mod metrics;
pub mod restore;
pub mod verify;

use std::time::Duration;

use crate::state::AppState;

pub use crate::config::BackupSchedule;

/// How long to wait before trying again after a failed scheduled backup.
const RETRY_AFTER: Duration = Duration::from_secs(600);

/// Takes a backup every `schedule.every`, counted from the newest backup in
/// the directory: the schedule survives restarts without state of its own,
/// and a server restarted daily still backs up daily.
pub fn start(state: &AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Some(schedule) = state.config.backup.clone() else { return };
    let config = state.config.clone();
    tokio::spawn(async move {
        loop {
            let wait = match last_backup_at(&schedule) {
                Some(at) => {
                    let due = at + i64::try_from(schedule.every.as_secs()).unwrap_or(i64::MAX);
                    Duration::from_secs(u64::try_from(due - crate::core::now_ts()).unwrap_or(0))
                }
                None => Duration::ZERO,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            let (config, dir, keep) = (config.clone(), schedule.dir.clone(), schedule.keep);
            let taken = tokio::task::spawn_blocking(move || backup::backup(&config, &dir, keep)).await;
            match taken {
                Ok(Ok(outcome)) => tracing::info!(
                    backup = %outcome.dir.display(),
                    pruned = outcome.pruned.len(),
                    files = outcome.manifest.files.len(),
                    "scheduled backup taken"
                ),
                Ok(Err(e)) => {
                    tracing::error!(error = %format!("{e:#}"), dir = %schedule.dir.display(), "scheduled backup failed");
                    retry_later(&schedule, &mut shutdown).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "scheduled backup task failed");
                    retry_later(&schedule, &mut shutdown).await;
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
    });
}

/// When the newest complete backup in the schedule's directory was taken.
fn last_backup_at(schedule: &BackupSchedule) -> Option<i64> {
    let newest = backup::list(&schedule.dir).ok()?.pop()?;
    backup::read_manifest(&newest).ok().map(|m| m.created_at_unix)
}

async fn retry_later(schedule: &BackupSchedule, shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(schedule.every.min(RETRY_AFTER)) => {}
        _ = shutdown.changed() => {}
    }
}
