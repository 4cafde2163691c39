//! Campaigns: a time window, an audience ([`crate::audiences::Audience`]) and
//! an offer the promotions plugin judges at creation and prices when a rider
//! rents or tops up: an automatic rental discount (by station and/or
//! package), a points multiplier on top-ups, or a personal coupon for each
//! member of the audience, issued at the start by a job.
//!
//! The host owns the window, the status (operators pause, resume and stop),
//! the audience and the limits; redemptions are written in the transaction
//! that charges the rental or credits the top-up, which checks the limits
//! again, so concurrent rentals cannot exceed them. Stacking (docs/campaigns.md):
//! the best single automatic discount wins, and a coupon and an automatic
//! discount never both apply; the rider gets the better of the two.

pub mod admin;
pub mod apply;
pub mod start;

use powerbank_plugin_runtime::types::{
    Campaign, CampaignOffer, CouponDiscount, CouponGrant, PointsMultiplier, RentalDiscount,
};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    audiences::Audience,
    core::{
        ApiError,
        money::{NonNegativePaisa, PositivePaisa},
        text_enum::text_enum,
        ts_to_rfc3339,
    },
};

text_enum! {
    /// What operators set on a campaign (`campaigns.status`).
    pub enum CampaignStatus {
        /// Runs within its window.
        Active = "active",
        /// Offers nothing until resumed.
        Paused = "paused",
        /// Ended early, for good.
        Stopped = "stopped",
    }
}

text_enum! {
    /// Where a campaign is now: its status with its window applied.
    pub enum CampaignState {
        Scheduled = "scheduled",
        Running = "running",
        Paused = "paused",
        Stopped = "stopped",
        Ended = "ended",
    }
}

text_enum! {
    /// The kind of offer (`campaigns.offer_kind`).
    pub enum OfferKind {
        RentalDiscount = "rental_discount",
        PointsMultiplier = "points_multiplier",
        CouponGrant = "coupon_grant",
    }
}

/// What a campaign offers. A discount is exactly one of `percentage_bp`
/// (basis points, 1000 = 10 %) and `fixed_paisa`. JSON:
/// `{"kind": "rental_discount", "percentage_bp": 2000, "station_sns": ["KTM-THAMEL-01"]}`,
/// `{"kind": "points_multiplier", "multiplier_bp": 20000, "on_top_ups": true}`,
/// `{"kind": "coupon_grant", "fixed_paisa": 1000, "valid_days": 7}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OfferIn {
    /// Taken off every matching rental, no code needed.
    RentalDiscount {
        percentage_bp: Option<i64>,
        fixed_paisa: Option<PositivePaisa>,
        /// Cap on a percentage discount.
        max_discount_paisa: Option<PositivePaisa>,
        /// Stations it applies at; empty or absent: every station.
        #[serde(default)]
        station_sns: Vec<String>,
        /// Package codes it applies to; empty or absent: every package.
        #[serde(default)]
        package_codes: Vec<String>,
    },
    /// The points a top-up earns, multiplied (basis points: 20000 = twice).
    PointsMultiplier {
        multiplier_bp: i64,
        #[serde(default)]
        on_top_ups: bool,
        #[serde(default)]
        on_rentals: bool,
    },
    /// A personal coupon for each member of the audience, issued at the start.
    CouponGrant {
        percentage_bp: Option<i64>,
        fixed_paisa: Option<PositivePaisa>,
        max_discount_paisa: Option<PositivePaisa>,
        min_amount_paisa: Option<NonNegativePaisa>,
        /// How long each coupon stays valid from the campaign's start.
        valid_days: i64,
    },
}

fn as_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Exactly one of a percentage and a fixed amount (400 otherwise).
fn discount(percentage_bp: Option<i64>, fixed_paisa: Option<PositivePaisa>) -> Result<CouponDiscount, ApiError> {
    match (percentage_bp, fixed_paisa) {
        (Some(bp), None) => Ok(CouponDiscount::PercentageBp(as_u32(bp))),
        (None, Some(paisa)) => Ok(CouponDiscount::FixedPaisa(paisa.get())),
        _ => Err(ApiError::invalid_field("offer", "give exactly one of percentage_bp and fixed_paisa")),
    }
}

impl OfferIn {
    pub fn kind(&self) -> OfferKind {
        match self {
            OfferIn::RentalDiscount { .. } => OfferKind::RentalDiscount,
            OfferIn::PointsMultiplier { .. } => OfferKind::PointsMultiplier,
            OfferIn::CouponGrant { .. } => OfferKind::CouponGrant,
        }
    }

    /// The offer as the promotions plugin takes it; 400 for a shape no plugin
    /// could read (both or neither of a percentage and a fixed amount).
    pub fn to_plugin(&self) -> Result<CampaignOffer, ApiError> {
        Ok(match self {
            OfferIn::RentalDiscount { percentage_bp, fixed_paisa, max_discount_paisa, station_sns, package_codes } => {
                CampaignOffer::RentalDiscount(RentalDiscount {
                    discount: discount(*percentage_bp, *fixed_paisa)?,
                    max_discount_paisa: max_discount_paisa.map(|p| p.get()),
                    station_sns: station_sns.iter().map(|s| s.trim().to_string()).collect(),
                    package_codes: package_codes.iter().map(|s| s.trim().to_string()).collect(),
                })
            }
            OfferIn::PointsMultiplier { multiplier_bp, on_top_ups, on_rentals } => {
                CampaignOffer::PointsMultiplier(PointsMultiplier {
                    multiplier_bp: as_u32(*multiplier_bp),
                    on_top_ups: *on_top_ups,
                    on_rentals: *on_rentals,
                })
            }
            OfferIn::CouponGrant { percentage_bp, fixed_paisa, max_discount_paisa, min_amount_paisa, valid_days } => {
                CampaignOffer::CouponGrant(CouponGrant {
                    discount: discount(*percentage_bp, *fixed_paisa)?,
                    max_discount_paisa: max_discount_paisa.map(|p| p.get()),
                    min_amount_paisa: min_amount_paisa.map_or(0, |p| p.get()),
                    valid_days: as_u32(*valid_days),
                })
            }
        })
    }
}

/// A `campaigns` row.
#[derive(Debug, Clone)]
pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub audience: Audience,
    pub offer: OfferIn,
    pub limit_total: Option<i64>,
    pub limit_per_user: Option<i64>,
    pub banner_title: Option<String>,
    pub banner_image_url: Option<String>,
    pub push_at_start: bool,
    pub status: CampaignStatus,
    pub started_job_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A JSON column read into its type; a value that does not parse fails the read.
fn json_column<T: serde::de::DeserializeOwned>(r: &Row<'_>, col: &str) -> rusqlite::Result<T> {
    let text: String = r.get(col)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

pub const CAMPAIGN_SELECT: &str = "SELECT id, name, starts_at, ends_at, audience_json, offer_json, limit_total,
    limit_per_user, banner_title, banner_image_url, push_at_start, status, started_job_at, created_at, updated_at
    FROM campaigns";

pub fn campaign_from_row(r: &Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok(CampaignRow {
        id: r.get("id")?,
        name: r.get("name")?,
        starts_at: r.get("starts_at")?,
        ends_at: r.get("ends_at")?,
        audience: json_column(r, "audience_json")?,
        offer: json_column(r, "offer_json")?,
        limit_total: r.get("limit_total")?,
        limit_per_user: r.get("limit_per_user")?,
        banner_title: r.get("banner_title")?,
        banner_image_url: r.get("banner_image_url")?,
        push_at_start: r.get("push_at_start")?,
        status: r.get("status")?,
        started_job_at: r.get("started_job_at")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// The campaign, or 404.
pub fn load(c: &Connection, id: i64) -> Result<CampaignRow, ApiError> {
    c.query_row(&format!("{CAMPAIGN_SELECT} WHERE id = ?1"), [id], campaign_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("campaign"))
}

impl CampaignRow {
    pub fn state(&self, now: i64) -> CampaignState {
        match self.status {
            CampaignStatus::Stopped => CampaignState::Stopped,
            _ if now >= self.ends_at => CampaignState::Ended,
            CampaignStatus::Paused => CampaignState::Paused,
            CampaignStatus::Active if now < self.starts_at => CampaignState::Scheduled,
            CampaignStatus::Active => CampaignState::Running,
        }
    }

    /// The campaign as the promotions plugin takes it.
    pub fn to_plugin(&self) -> Result<Campaign, ApiError> {
        Ok(Campaign {
            id: self.id,
            name: self.name.clone(),
            starts_unix_ms: self.starts_at.saturating_mul(1000),
            ends_unix_ms: self.ends_at.saturating_mul(1000),
            offer: self.offer.to_plugin()?,
        })
    }
}

/// Redemptions that count: (everyone's, this rider's).
pub fn redemption_counts(c: &Connection, campaign_id: i64, user_id: i64) -> rusqlite::Result<(i64, i64)> {
    c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(user_id = ?2), 0) FROM campaign_redemptions
         WHERE campaign_id = ?1 AND released_at IS NULL",
        [campaign_id, user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

impl CampaignRow {
    /// Whether the limits leave this rider another redemption.
    pub fn within_limits(&self, c: &Connection, user_id: i64) -> rusqlite::Result<bool> {
        let (total, mine) = redemption_counts(c, self.id, user_id)?;
        Ok(self.limit_total.is_none_or(|max| total < max) && self.limit_per_user.is_none_or(|max| mine < max))
    }
}

/// Running campaigns of `kind` whose audience includes the rider, oldest first.
pub fn running_for(
    c: &Connection,
    now: i64,
    user_id: i64,
    kind: Option<OfferKind>,
) -> Result<Vec<CampaignRow>, ApiError> {
    let mut stmt = c.prepare_cached(&format!(
        "{CAMPAIGN_SELECT} WHERE status = 'active' AND starts_at <= ?1 AND ends_at > ?1
           AND (?2 IS NULL OR offer_kind = ?2) ORDER BY id"
    ))?;
    let rows = stmt.query_map(rusqlite::params![now, kind], campaign_from_row)?.collect::<Result<Vec<_>, _>>()?;
    let mut mine = Vec::new();
    for campaign in rows {
        if campaign.audience.contains(c, now, user_id)? {
            mine.push(campaign);
        }
    }
    Ok(mine)
}

/// A campaign's banner, shown in the app while it runs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Banner {
    /// 1 to 120 characters.
    pub title: String,
    /// An `https://` image.
    pub image_url: Option<String>,
}

/// What a rider sees of a campaign that includes them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RiderCampaignOut {
    pub id: i64,
    pub name: String,
    pub starts_at: String,
    pub ends_at: String,
    pub offer: OfferIn,
    pub banner: Option<Banner>,
}

impl CampaignRow {
    pub fn banner(&self) -> Option<Banner> {
        self.banner_title.clone().map(|title| Banner { title, image_url: self.banner_image_url.clone() })
    }

    pub fn rider_view(&self) -> RiderCampaignOut {
        RiderCampaignOut {
            id: self.id,
            name: self.name.clone(),
            starts_at: ts_to_rfc3339(self.starts_at),
            ends_at: ts_to_rfc3339(self.ends_at),
            offer: self.offer.clone(),
            banner: self.banner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_read_their_documented_json_and_refuse_two_discounts() {
        let offer: OfferIn =
            serde_json::from_str(r#"{"kind":"rental_discount","percentage_bp":2000,"station_sns":["KTM-1"]}"#).unwrap();
        let CampaignOffer::RentalDiscount(d) = offer.to_plugin().unwrap() else { panic!("{offer:?}") };
        assert_eq!((d.discount, d.station_sns), (CouponDiscount::PercentageBp(2000), vec!["KTM-1".to_string()]));
        let both: OfferIn =
            serde_json::from_str(r#"{"kind":"coupon_grant","percentage_bp":100,"fixed_paisa":100,"valid_days":3}"#)
                .unwrap();
        assert_eq!(both.to_plugin().unwrap_err().code, "validation_failed");
        assert!(serde_json::from_str::<OfferIn>(r#"{"kind":"cashback"}"#).is_err());
        // Stored and read back unchanged.
        let stored = serde_json::to_string(&offer).unwrap();
        assert_eq!(serde_json::from_str::<OfferIn>(&stored).unwrap(), offer);
    }
}
