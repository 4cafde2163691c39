//! Stations whose heartbeats stopped go offline: a periodic sweep.

use super::apply;
use crate::{core::now_ts, state::AppState};

pub(super) async fn sweep_task(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let link = state.station_link.clone();
    let mut tick = tokio::time::interval(link.config.sweep_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let timeout = link.config.heartbeat_timeout_secs;
        match state.db.write(move |tx| apply::expire_heartbeats(tx, now_ts(), timeout)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(stations = n, "stations marked offline: heartbeats stopped"),
            Err(e) => tracing::error!(error = %e, "heartbeat sweep failed"),
        }
    }
}
