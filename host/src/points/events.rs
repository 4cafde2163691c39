//! Points for the events of contract 0.3: profile completed, KYC approved,
//! on-time return, and a referee's first completed rental (the referral
//! payout when the points plugin pays referrals then).
//!
//! The change that earns the points enqueues a durable job in its own
//! transaction ([`enqueue_award`]), so a points plugin that is down delays
//! the award instead of failing the change, and a crash cannot lose it. The
//! job asks the plugin and writes the grant together with the event's key in
//! `points_event_grants`: each event earns once, however often it is
//! enqueued or retried.
//!
//! The KYC domain sits below this one: approving a KYC enqueues its own
//! [`crate::kyc::APPROVED_JOB`], which this domain handles
//! (registered in [`super::jobs`]).

use powerbank_plugin_runtime::types::{KycApprovedEvent, PointsEvent};
use rusqlite::{Connection, Transaction, params};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    core::{
        ApiError,
        jobs::{self, NewJob},
        now_ts,
    },
    state::AppState,
};

/// Job kind: award the points of one event, once.
pub const AWARD_JOB: &str = "points.award_event";

/// The event's key in `points_event_grants`: what makes it happen once.
/// `None` for the events that are not awarded through here.
pub fn once_key(event: &PointsEvent) -> Option<String> {
    Some(match event {
        PointsEvent::ProfileCompleted(e) => format!("profile_completed:{}", e.user_id),
        PointsEvent::KycApproved(e) => format!("kyc_approved:{}", e.user_id),
        PointsEvent::OnTimeReturn(e) => format!("on_time_return:{}", e.rental_id),
        PointsEvent::RefereeFirstRental(e) => format!("referee_first_rental:{}", e.referee_id),
        PointsEvent::Signup(_) | PointsEvent::Referral(_) | PointsEvent::TopUp(_) | PointsEvent::RentalCompleted(_) => {
            return None;
        }
    })
}

/// Enqueues the award of `event` in the caller's transaction: a no-op for
/// an event awarded before or without a once key. A duplicate waiting job is
/// merged.
pub fn enqueue_award(tx: &Transaction<'_>, event: PointsEvent) -> Result<(), ApiError> {
    let Some(key) = once_key(&event) else { return Ok(()) };
    if granted(tx, &key)? {
        return Ok(());
    }
    jobs::enqueue(tx, NewJob::new(AWARD_JOB, json!({ "event": event })).dedupe(format!("{AWARD_JOB}:{key}")))?;
    Ok(())
}

fn granted(c: &Connection, key: &str) -> Result<bool, ApiError> {
    Ok(c.query_row("SELECT EXISTS (SELECT 1 FROM points_event_grants WHERE event_key = ?1)", [key], |r| r.get(0))?)
}

#[derive(Debug, Deserialize)]
struct AwardPayload {
    event: PointsEvent,
}

/// Runs [`AWARD_JOB`].
pub async fn award_job(state: AppState, payload: Value) -> Result<(), String> {
    let AwardPayload { event } = serde_json::from_value(payload).map_err(|e| format!("bad payload: {e}"))?;
    award_once(&state, event).await.map_err(|e| e.message)
}

#[derive(Debug, Deserialize)]
struct KycApprovedPayload {
    user_id: i64,
}

/// Runs the KYC domain's [`crate::kyc::APPROVED_JOB`].
pub async fn kyc_approved_job(state: AppState, payload: Value) -> Result<(), String> {
    let KycApprovedPayload { user_id } = serde_json::from_value(payload).map_err(|e| format!("bad payload: {e}"))?;
    let event = PointsEvent::KycApproved(KycApprovedEvent { user_id: user_id.to_string() });
    award_once(&state, event).await.map_err(|e| e.message)
}

/// Asks the plugin what `event` earns and grants it, unless its key was
/// granted before (then nothing, not even a plugin call).
async fn award_once(state: &AppState, event: PointsEvent) -> Result<(), ApiError> {
    let Some(key) = once_key(&event) else { return Ok(()) };
    let seen = key.clone();
    if state.db.read(move |c| granted(c, &seen)).await? {
        return Ok(());
    }
    let awards = super::plan_awards(state, event).await?;
    let expiry_days = super::expiry_days(state).await?;
    state
        .db
        .write(move |tx| {
            let now = now_ts();
            let points: i64 = awards.iter().map(|a| a.points).sum();
            let first = tx.execute(
                "INSERT INTO points_event_grants (event_key, points, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (event_key) DO NOTHING",
                params![key, points, now],
            )?;
            if first == 1 {
                super::grant(tx, &awards, expiry_days, now)?;
            }
            Ok(())
        })
        .await?;
    state.jobs.wake();
    Ok(())
}
