//! Campaign offers at rental and top-up time.
//!
//! The plugin calls are async and run before the paying transaction, so two
//! riders may both be offered the last redemption. The paying transaction
//! checks the campaign and its limits again ([`redeem`]; writers are
//! serialised, so it sees every redemption committed before it): a rental
//! is refused with 409 `campaign_limit_reached` (a retry is priced without
//! it), a top-up is credited without the bonus.

use axum::http::StatusCode;
use powerbank_plugin_runtime::types::{CallContext, CampaignEvent, OfferDecision, OrderSummary, TopUpSummary};
use rusqlite::{Transaction, params};
use serde::Serialize;
use utoipa::ToSchema;

use super::{CampaignState, OfferKind, load, running_for};
use crate::{
    core::{ApiError, now_ts},
    state::AppState,
};

/// An automatic discount a running campaign gives a rental.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AutoDiscount {
    pub campaign_id: i64,
    pub campaign_name: String,
    pub discount_paisa: i64,
    pub final_amount_paisa: i64,
}

fn context(user_id: i64, station_sn: Option<String>) -> CallContext {
    CallContext { user_id: Some(user_id.to_string()), station_sn, now_unix_ms: chrono::Utc::now().timestamp_millis() }
}

/// The best automatic discount of the running campaigns that include the
/// rider and whose plugin decision applies to this package at this station:
/// the largest discount wins (the oldest campaign on a tie). A campaign the
/// plugin cannot decide is skipped: the rider pays the list price rather
/// than being refused a rental.
pub async fn best_rental_discount(
    state: &AppState,
    user_id: i64,
    amount_paisa: i64,
    package_code: &str,
    station_sn: Option<&str>,
) -> Result<Option<AutoDiscount>, ApiError> {
    if amount_paisa <= 0 {
        return Ok(None);
    }
    let now = now_ts();
    let candidates = state
        .db
        .read(move |c| {
            let mut open = Vec::new();
            for campaign in running_for(c, now, user_id, Some(OfferKind::RentalDiscount))? {
                if campaign.within_limits(c, user_id)? {
                    open.push(campaign);
                }
            }
            Ok(open)
        })
        .await?;
    let mut best: Option<AutoDiscount> = None;
    for campaign in candidates {
        let event = CampaignEvent::Rental(OrderSummary {
            amount_paisa,
            package_code: Some(package_code.to_string()),
            context: context(user_id, station_sn.map(str::to_string)),
        });
        match state.plugins.promotions().decide_campaign_offer(campaign.to_plugin()?, event).await {
            Ok(OfferDecision::Discount(d)) if d.discount_paisa > 0 => {
                if best.as_ref().is_none_or(|b| d.discount_paisa > b.discount_paisa) {
                    best = Some(AutoDiscount {
                        campaign_id: campaign.id,
                        campaign_name: campaign.name.clone(),
                        discount_paisa: d.discount_paisa,
                        final_amount_paisa: d.final_amount_paisa,
                    });
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(campaign_id = campaign.id, error = ?e, "campaign offer not decided; skipped"),
        }
    }
    Ok(best)
}

/// A top-up's bonus: the campaign with the largest multiplier wins.
#[derive(Debug, Clone)]
pub struct TopupBonus {
    pub campaign_id: i64,
    pub multiplier_bp: u32,
}

/// The best points multiplier running campaigns give this rider's top-up.
pub async fn best_topup_multiplier(state: &AppState, user_id: i64, amount_paisa: i64) -> Option<TopupBonus> {
    let now = now_ts();
    let candidates = state
        .db
        .read(move |c| {
            let mut open = Vec::new();
            for campaign in running_for(c, now, user_id, Some(OfferKind::PointsMultiplier))? {
                if campaign.within_limits(c, user_id)? {
                    open.push(campaign);
                }
            }
            Ok(open)
        })
        .await
        .ok()?;
    let mut best: Option<TopupBonus> = None;
    for campaign in candidates {
        let Ok(offer) = campaign.to_plugin() else { continue };
        let event = CampaignEvent::TopUp(TopUpSummary { amount_paisa, context: context(user_id, None) });
        match state.plugins.promotions().decide_campaign_offer(offer, event).await {
            Ok(OfferDecision::PointsMultiplierBp(bp)) if bp > 10_000 => {
                if best.as_ref().is_none_or(|b| bp > b.multiplier_bp) {
                    best = Some(TopupBonus { campaign_id: campaign.id, multiplier_bp: bp });
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(campaign_id = campaign.id, error = ?e, "campaign offer not decided; skipped"),
        }
    }
    best
}

/// Points beyond the usual award that a multiplier adds (rounded down).
pub fn extra_points(points: i64, multiplier_bp: u32) -> i64 {
    let total = i128::from(points.max(0)) * i128::from(multiplier_bp) / 10_000;
    i64::try_from(total).unwrap_or(i64::MAX).saturating_sub(points.max(0)).max(0)
}

/// What a redemption was for.
pub struct Redemption {
    pub rental_id: Option<i64>,
    pub rental_order_id: Option<i64>,
    pub transaction_id: Option<i64>,
    pub discount_paisa: i64,
    pub points: i64,
}

fn limit_reached(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "campaign_limit_reached",
        format!("the offer of campaign {name} has just run out; try again for the current price"),
    )
}

/// Records a redemption inside the paying transaction after checking again
/// that the campaign runs and its limits hold: 409 `campaign_limit_reached`
/// (or `campaign_ended` for one paused, stopped or ended meanwhile).
pub fn redeem(tx: &Transaction<'_>, campaign_id: i64, user_id: i64, what: Redemption) -> Result<(), ApiError> {
    let now = now_ts();
    let campaign = load(tx, campaign_id)?;
    if campaign.state(now) != CampaignState::Running {
        return Err(ApiError::conflict(
            "campaign_ended",
            format!("campaign {} no longer runs; try again for the current price", campaign.name),
        ));
    }
    if !campaign.within_limits(tx, user_id)? {
        return Err(limit_reached(&campaign.name));
    }
    tx.execute(
        "INSERT INTO campaign_redemptions (campaign_id, user_id, rental_id, rental_order_id, transaction_id,
            discount_paisa, points, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            campaign_id,
            user_id,
            what.rental_id,
            what.rental_order_id,
            what.transaction_id,
            what.discount_paisa,
            what.points,
            now
        ],
    )?;
    Ok(())
}

/// Releases the redemptions of a rental whose payment was given back.
pub fn release_for_rental(tx: &Transaction<'_>, rental_id: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE campaign_redemptions SET released_at = ?2 WHERE rental_id = ?1 AND released_at IS NULL",
        params![rental_id, now_ts()],
    )?;
    Ok(())
}

/// Releases the redemptions of a gateway rental order that was never used.
pub fn release_for_order(tx: &Transaction<'_>, order_id: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE campaign_redemptions SET released_at = ?2 WHERE rental_order_id = ?1 AND released_at IS NULL",
        params![order_id, now_ts()],
    )?;
    Ok(())
}

/// Counts a released rental redemption again (the rental was charged after all).
pub fn restore_for_rental(tx: &Transaction<'_>, rental_id: i64) -> Result<(), ApiError> {
    tx.execute("UPDATE campaign_redemptions SET released_at = NULL WHERE rental_id = ?1", [rental_id])?;
    Ok(())
}

/// Links an order's redemption to the rental the order started.
pub fn attach_rental(tx: &Transaction<'_>, rental_order_id: i64, rental_id: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE campaign_redemptions SET rental_id = ?2 WHERE rental_order_id = ?1",
        params![rental_order_id, rental_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::extra_points;

    #[test]
    fn a_multiplier_adds_the_points_beyond_the_usual_award() {
        assert_eq!(extra_points(100, 20_000), 100);
        assert_eq!(extra_points(7, 15_000), 3, "10.5 rounds down");
        assert_eq!(extra_points(0, 30_000), 0);
        assert_eq!(extra_points(100, 10_000), 0);
    }
}
