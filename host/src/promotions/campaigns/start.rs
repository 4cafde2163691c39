//! What happens when a campaign starts, through the job queue: a coupon
//! grant issues each member of the audience a personal coupon, and
//! `push_at_start` tells each member. The audience is walked in batches, one
//! transaction each, resuming after the last rider served, so a restart
//! neither skips nor doubles anyone (a rider's coupon code is unique).

use rusqlite::{Transaction, params};
use serde_json::{Value, json};

use super::{CampaignRow, CampaignState, OfferIn, load};
use crate::{
    core::{
        ApiError,
        jobs::{self, NewJob},
        now_ts,
    },
    notifications::notify,
    state::AppState,
};

pub const START_JOB: &str = "promotions.campaign_start";
/// Riders served per transaction.
const BATCH: i64 = 200;
const DAY_SECS: i64 = 86_400;

/// Schedules the start job of a campaign that has one (a coupon grant or a
/// push), at its start.
pub fn schedule(tx: &Transaction<'_>, campaign: &CampaignRow, after_id: i64) -> Result<(), ApiError> {
    let needed = matches!(campaign.offer, OfferIn::CouponGrant { .. }) || campaign.push_at_start;
    if !needed || campaign.started_job_at.is_some() {
        return Ok(());
    }
    jobs::enqueue(
        tx,
        NewJob::new(START_JOB, json!({ "campaign_id": campaign.id, "after_id": after_id }))
            .at(campaign.starts_at.max(now_ts()))
            .dedupe(format!("{START_JOB}:{}:{after_id}", campaign.id)),
    )?;
    Ok(())
}

/// The personal coupon code of a rider in a campaign.
pub fn coupon_code(campaign_id: i64, user_id: i64) -> String {
    format!("C{campaign_id}U{user_id}")
}

fn issue_coupon(tx: &Transaction<'_>, campaign: &CampaignRow, user_id: i64, now: i64) -> Result<(), ApiError> {
    let OfferIn::CouponGrant { percentage_bp, fixed_paisa, max_discount_paisa, min_amount_paisa, valid_days } =
        &campaign.offer
    else {
        return Ok(());
    };
    let (kind, value) = match (percentage_bp, fixed_paisa) {
        (Some(bp), _) => ("percentage", *bp),
        (None, Some(paisa)) => ("fixed", paisa.get()),
        (None, None) => return Ok(()),
    };
    let until = campaign.starts_at.saturating_add(valid_days.saturating_mul(DAY_SECS));
    tx.execute(
        "INSERT OR IGNORE INTO coupons (code, name, description, discount_type, discount_value, max_discount_paisa,
            min_amount_paisa, valid_from, valid_until, max_uses_per_user, is_public, owner_user_id, campaign_id,
            created_at, updated_at)
         VALUES (?1, ?2, '', ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11, ?12, ?12)",
        params![
            coupon_code(campaign.id, user_id),
            campaign.name,
            kind,
            value,
            max_discount_paisa.map(|p| p.get()),
            min_amount_paisa.map_or(0, |p| p.get()),
            campaign.starts_at,
            until,
            campaign.limit_per_user.unwrap_or(1),
            user_id,
            campaign.id,
            now
        ],
    )?;
    Ok(())
}

/// Serves one batch; returns the last rider served when more may follow.
fn serve_batch(tx: &Transaction<'_>, campaign_id: i64, after_id: i64) -> Result<Option<i64>, ApiError> {
    let now = now_ts();
    let campaign = load(tx, campaign_id)?;
    match campaign.state(now) {
        // Resuming schedules the job again.
        CampaignState::Paused | CampaignState::Stopped | CampaignState::Ended => return Ok(None),
        CampaignState::Scheduled | CampaignState::Running => {}
    }
    let members = campaign.audience.batch(tx, now, after_id, BATCH)?;
    for &user_id in &members {
        issue_coupon(tx, &campaign, user_id, now)?;
        if campaign.push_at_start {
            let message = campaign.banner_title.clone().unwrap_or_else(|| format!("{} has started", campaign.name));
            notify(tx, user_id, "campaign_started", json!({ "name": campaign.name, "message": message }))?;
        }
    }
    match members.last() {
        Some(&last) if members.len() as i64 == BATCH => Ok(Some(last)),
        _ => {
            tx.execute("UPDATE campaigns SET started_job_at = ?2 WHERE id = ?1", params![campaign_id, now])?;
            Ok(None)
        }
    }
}

/// The job: one batch, then the next batch as its own job.
pub async fn start_job(state: AppState, payload: Value) -> Result<(), String> {
    let campaign_id = payload["campaign_id"].as_i64().ok_or("payload without campaign_id")?;
    let after_id = payload["after_id"].as_i64().unwrap_or(0);
    state
        .db
        .write(move |tx| {
            if let Some(last) = serve_batch(tx, campaign_id, after_id)? {
                jobs::enqueue(
                    tx,
                    NewJob::new(START_JOB, json!({ "campaign_id": campaign_id, "after_id": last }))
                        .dedupe(format!("{START_JOB}:{campaign_id}:{last}")),
                )?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
}
