//! Points and referrals (seed §7): how many points an event earns is the
//! points plugin's decision; this module asks it, writes the grants through
//! the payments ledger, records the referral chain and expires old points.
//! The events that earn once (profile, KYC, on-time return, a referee's
//! first rental) go through a durable job: [`events`].
//!
//! Other domains award points in two steps, because a plugin call is async
//! and must not run inside a database transaction (the writer would wait on
//! the plugin):
//!
//! ```ignore
//! let awards = points::plan_awards(&state, PointsEvent::TopUp(..)).await?;
//! let days = points::expiry_days(&state).await?;
//! state.db.write(move |tx| {
//!     // ... the change that earns the points ...
//!     points::grant(tx, &awards, days, now_ts())
//! }).await?;
//! ```

pub mod events;
pub mod expiry;
pub mod history;
pub mod referral;

use rusqlite::Transaction;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use powerbank_plugin_runtime::types::{CallContext, PointsEvent, ReferralEvent, SignupEvent};

use crate::{
    core::{ApiError, jobs::JobsBuilder, now_ts},
    ledger,
    notifications::notify,
    state::AppState,
};

pub use expiry::schedule_expiry;

const DAY_SECS: i64 = 24 * 60 * 60;

/// Points the plugin decided to give one user, not yet written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAward {
    pub user_id: i64,
    pub points: i64,
    /// The plugin's reason, e.g. `signup`, `referral`, `top-up`; stored on the
    /// ledger row and shown in the notification.
    pub reason: String,
    /// The points build that decided it (stored on the ledger row).
    pub plugin_release: Option<String>,
}

/// Asks the points plugin what `event` earns. Zero awards are dropped, so an
/// empty list means "nothing to grant". Call it before the write transaction.
pub async fn plan_awards(state: &AppState, event: PointsEvent) -> Result<Vec<PlannedAward>, ApiError> {
    let subject = match &event {
        PointsEvent::Signup(e) => e.user_id.clone(),
        PointsEvent::Referral(e) => e.referee_id.clone(),
        PointsEvent::TopUp(e) => e.user_id.clone(),
        PointsEvent::RentalCompleted(e) => e.user_id.clone(),
        PointsEvent::ProfileCompleted(e) => e.user_id.clone(),
        PointsEvent::KycApproved(e) => e.user_id.clone(),
        PointsEvent::OnTimeReturn(e) => e.user_id.clone(),
        PointsEvent::RefereeFirstRental(e) => e.referee_id.clone(),
    };
    let context = CallContext { user_id: Some(subject), station_sn: None, now_unix_ms: now_ts().saturating_mul(1000) };
    let decided = state.plugins.points().award_traced(event, context).await?;
    let release = decided.release;
    decided
        .value
        .into_iter()
        .filter(|a| a.points > 0)
        .map(|a| {
            // The runtime already checked that every award names a user of the
            // event, and the host put only decimal ids in the event.
            let user_id = a
                .user_id
                .parse()
                .map_err(|_| ApiError::internal(format!("points plugin awarded to non-numeric user {}", a.user_id)))?;
            Ok(PlannedAward { user_id, points: a.points, reason: a.reason, plugin_release: Some(release.clone()) })
        })
        .collect()
}

/// Days after which newly granted points expire (the plugin's rule).
pub async fn expiry_days(state: &AppState) -> Result<u32, ApiError> {
    Ok(state.plugins.points().expiry_days().await?)
}

/// Writes planned awards in the caller's transaction: one ledger grant per
/// award, expiring `expiry_days` after `now`, and a `points_awarded`
/// notification each.
pub fn grant(tx: &Transaction<'_>, awards: &[PlannedAward], expiry_days: u32, now: i64) -> Result<(), ApiError> {
    write_awards(tx, awards, expiry_days, now, None)
}

/// [`grant`], except that `quiet` gets no notification: the user whose own
/// request earned the points (registering, claiming a code) sees them in its
/// answer, so only the other party is told.
fn write_awards(
    tx: &Transaction<'_>,
    awards: &[PlannedAward],
    expiry_days: u32,
    now: i64,
    quiet: Option<i64>,
) -> Result<(), ApiError> {
    let expires_at = now.saturating_add(i64::from(expiry_days).saturating_mul(DAY_SECS));
    for award in awards.iter().filter(|a| a.points > 0) {
        let balance = ledger::points_earn(tx, award.user_id, award.points, &award.reason, Some(expires_at), None)?;
        // The ledger row just written (triggers do not move last_insert_rowid).
        tx.execute(
            "UPDATE points_transactions SET plugin_release = ?2 WHERE id = ?1",
            rusqlite::params![tx.last_insert_rowid(), award.plugin_release],
        )?;
        if quiet != Some(award.user_id) {
            notify(
                tx,
                award.user_id,
                "points_awarded",
                json!({ "points": award.points, "reason": award.reason, "balance": balance }),
            )?;
        }
    }
    Ok(())
}

/// Stands for the account being registered: its id exists only inside the
/// registration transaction. SQLite row ids start at 1, so 0 is never a user.
const NEW_USER: i64 = 0;

/// What registration will grant, worked out before its transaction.
#[derive(Debug, Clone)]
pub struct SignupPlan {
    signup: Vec<PlannedAward>,
    referral: Option<referral::ReferralPlan>,
    expiry_days: u32,
}

/// Plans the signup award and, when the user typed a referral code, the
/// referral awards. An unknown code (or one of an account that is no longer
/// active) is refused with 404 `referral_code_not_found` before anything is
/// written, so the app can ask the user to correct it.
pub async fn plan_signup(state: &AppState, referral_code: Option<&str>) -> Result<SignupPlan, ApiError> {
    let signup = plan_awards(state, PointsEvent::Signup(SignupEvent { user_id: NEW_USER.to_string() })).await?;
    let referral = match referral_code {
        Some(code) => {
            let code = referral::normalize_code(code)?;
            let referrer = {
                let code = code.clone();
                state.db.read(move |c| referral::find_referrer(c, &code)).await?
            };
            let awards = plan_awards(
                state,
                PointsEvent::Referral(ReferralEvent {
                    referrer_id: referrer.to_string(),
                    referee_id: NEW_USER.to_string(),
                }),
            )
            .await?;
            Some(referral::ReferralPlan { code, referrer, awards })
        }
        None => None,
    };
    Ok(SignupPlan { signup, referral, expiry_days: expiry_days(state).await? })
}

/// Grants what [`plan_signup`] planned to the new account `user_id`, and
/// records its referral, inside the registration transaction. The referrer
/// is notified; the new user is not (registration itself is the news).
pub fn settle_signup(tx: &Transaction<'_>, plan: &SignupPlan, user_id: i64, now: i64) -> Result<(), ApiError> {
    let bind = |awards: &[PlannedAward]| -> Vec<PlannedAward> {
        awards
            .iter()
            .map(|a| PlannedAward { user_id: if a.user_id == NEW_USER { user_id } else { a.user_id }, ..a.clone() })
            .collect()
    };
    write_awards(tx, &bind(&plan.signup), plan.expiry_days, now, Some(user_id))?;
    if let Some(r) = &plan.referral {
        let bound = referral::ReferralPlan { awards: bind(&r.awards), ..r.clone() };
        referral::record(tx, &bound, user_id, referral::Source::Signup, plan.expiry_days, now)?;
    }
    Ok(())
}

/// The background jobs of the points domain (registered by `server::job_handlers`).
pub fn jobs(jobs: JobsBuilder<AppState>) -> JobsBuilder<AppState> {
    jobs.handle(expiry::EXPIRY_JOB, expiry::expiry_job)
        .handle(events::AWARD_JOB, events::award_job)
        .handle(crate::kyc::APPROVED_JOB, events::kyc_approved_job)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(history::history))
        .routes(routes!(history::summary))
        .routes(routes!(referral::my_code))
        .routes(routes!(referral::validate))
        .routes(routes!(referral::claim))
}
