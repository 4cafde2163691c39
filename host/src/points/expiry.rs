//! Points expiry: a durable job that runs every hour and removes what is left
//! of grants past their `expires_at`, through the payments ledger (one
//! `expired` row per user).
//!
//! Each run enqueues the next one, at the start of the next hour, and
//! [`schedule_expiry`] (at start-up) brings the waiting run forward to now,
//! so exactly one run is ever waiting however often the server restarts.

use rusqlite::Transaction;
use serde_json::{Value, json};

use crate::{
    core::{
        ApiError,
        jobs::{self, IfWaiting, NewJob},
        now_ts,
    },
    ledger,
    state::AppState,
};

pub const EXPIRY_JOB: &str = "points.expire";
const EVERY_SECS: i64 = 60 * 60;

/// Makes sure one run is waiting, due no later than `at`.
fn schedule(tx: &Transaction<'_>, at: i64) -> Result<(), ApiError> {
    jobs::ensure_scheduled(tx, NewJob::new(EXPIRY_JOB, json!({})).at(at), IfWaiting::BringForward)
}

/// Makes sure expiry runs: enqueues a run now, which catches up on anything
/// that expired while the server was down and then keeps the hourly chain
/// going. Called when the server starts; harmless to call again.
pub async fn schedule_expiry(state: &AppState) -> Result<(), ApiError> {
    state.db.write(|tx| schedule(tx, now_ts())).await?;
    state.jobs.wake();
    Ok(())
}

/// The job handler (registered for [`EXPIRY_JOB`]).
pub async fn expiry_job(state: AppState, _payload: Value) -> Result<(), String> {
    // The next run is enqueued first, in its own transaction, so a run that
    // fails (and is retried) never breaks the chain.
    state
        .db
        .write(|tx| {
            let now = now_ts();
            schedule(tx, now - now.rem_euclid(EVERY_SECS) + EVERY_SECS)
        })
        .await
        .map_err(|e| e.to_string())?;
    let expired = state.db.write(|tx| ledger::expire_points(tx, now_ts())).await.map_err(|e| e.to_string())?;
    if expired > 0 {
        tracing::info!(points = expired, "expired points removed");
    }
    Ok(())
}
