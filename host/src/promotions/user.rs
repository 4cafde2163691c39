//! What the app shows of coupons: `GET /api/promotions/coupons/active`,
//! previews (`POST /api/promotions/coupons/apply` and `.../validate`) and the
//! caller's redemptions (`GET /api/promotions/coupons/my`).
//!
//! A preview records nothing: a coupon is redeemed when a rental is paid with
//! it (`coupon_code` on `POST /api/rentals/initiate`).

use axum::{Json, extract::State};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    admin::{CouponUsageOut, USAGE_SELECT, usage_from_row},
    coupons::{self, AppliedCoupon, COUPON_COLUMNS, coupon_from_row},
};
use crate::{
    core::{
        ApiError, ApiJson, ApiQuery, AuthUser, Page, PageParams, error::ErrorBody, money::NonNegativePaisa, now_ts,
        ts_to_rfc3339,
    },
    state::AppState,
};

/// A coupon anyone may use, as the app lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveCoupon {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub description: String,
    /// `percentage` or `fixed`.
    pub discount_type: String,
    /// Percentage coupons: basis points (1000 = 10 %).
    pub percentage_bp: Option<i64>,
    /// Fixed coupons: paisa taken off.
    pub fixed_paisa: Option<i64>,
    pub max_discount_paisa: Option<i64>,
    pub min_amount_paisa: i64,
    pub valid_until: String,
    /// Null: unlimited.
    pub max_uses_per_user: Option<i64>,
}

/// Public coupons valid now and not used up, newest first.
#[utoipa::path(
    get, path = "/api/promotions/coupons/active", tag = "promotions",
    params(PageParams),
    responses(
        (status = 200, description = "A page of coupons", body = Page<ActiveCoupon>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    )
)]
pub async fn active_coupons(
    State(state): State<AppState>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<ActiveCoupon>>, ApiError> {
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COUPON_COLUMNS} FROM coupons
                 WHERE is_active = 1 AND is_public = 1 AND valid_from <= ?1 AND valid_until >= ?1 AND id < ?2
                   AND (max_uses_total IS NULL OR max_uses_total >
                        (SELECT COUNT(*) FROM coupon_usages u WHERE u.coupon_id = coupons.id AND u.released_at IS NULL))
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(params![now_ts(), before, limit + 1], |r| {
                    let c = coupon_from_row(r)?;
                    let percentage = c.discount_type == "percentage";
                    Ok(ActiveCoupon {
                        id: c.id,
                        percentage_bp: percentage.then_some(c.discount_value),
                        fixed_paisa: (!percentage).then_some(c.discount_value),
                        code: c.code,
                        name: c.name,
                        description: c.description,
                        discount_type: c.discount_type,
                        max_discount_paisa: c.max_discount_paisa,
                        min_amount_paisa: c.min_amount_paisa,
                        valid_until: ts_to_rfc3339(c.valid_until),
                        max_uses_per_user: c.max_uses_per_user,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |c| c.id)))
}

/// A coupon applied to a rental package (priced as `initiate` prices it) or
/// to an amount. Exactly one of `package_id` and `amount_paisa`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponPreviewIn {
    pub coupon_code: String,
    pub package_id: Option<i64>,
    pub amount_paisa: Option<NonNegativePaisa>,
    /// The station the rental would start at, for pricing (optional).
    pub station_sn: Option<String>,
}

/// The discount a coupon would give now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponPreview {
    #[serde(flatten)]
    pub applied: AppliedCoupon,
    /// The package priced, when one was given.
    pub package_code: Option<String>,
}

async fn preview(state: &AppState, user_id: i64, body: CouponPreviewIn) -> Result<CouponPreview, ApiError> {
    if body.coupon_code.trim().is_empty() {
        return Err(ApiError::invalid_field("coupon_code", "must not be empty"));
    }
    let station_sn = body.station_sn.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let (amount, package_code) = match (body.package_id, body.amount_paisa) {
        (Some(id), None) => {
            let (package, quote) = crate::packages::quote(state, user_id, id, station_sn.clone()).await?;
            (quote.amount_paisa, Some(package.code))
        }
        (None, Some(amount)) => (amount.get(), None),
        _ => return Err(ApiError::bad_request("give either package_id or amount_paisa")),
    };
    let applied = coupons::apply(state, user_id, &body.coupon_code, amount, package_code.clone(), station_sn).await?;
    Ok(CouponPreview { applied, package_code })
}

/// Applies a coupon to a package or an amount and shows the discount. Nothing
/// is redeemed: pass `coupon_code` when renting.
#[utoipa::path(
    post, path = "/api/promotions/coupons/apply", tag = "promotions",
    security(("bearer" = [])),
    request_body = CouponPreviewIn,
    responses(
        (status = 200, description = "The discount the coupon gives", body = CouponPreview),
        (status = 400, description = "Neither or both of package_id and amount_paisa", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown package", body = ErrorBody),
        (status = 422, description = "The coupon does not apply: `coupon_invalid`, `coupon_expired`, `coupon_not_yet_valid`, `coupon_below_minimum`, `coupon_usage_limit_reached` or `coupon_user_limit_reached`; `invalid_amount` for an amount outside 0 to 1,000,000,000 paisa", body = ErrorBody),
    )
)]
pub async fn apply_coupon(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CouponPreviewIn>,
) -> Result<Json<CouponPreview>, ApiError> {
    Ok(Json(preview(&state, user.id, body).await?))
}

/// Whether a coupon applies, as an answer rather than an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponValidation {
    pub valid: bool,
    pub coupon_code: String,
    /// When not valid: the same `coupon_*` code `apply` and `initiate` answer with.
    pub reason_code: Option<String>,
    pub message: String,
    /// When valid: the discount it gives.
    pub preview: Option<CouponPreview>,
}

/// Checks a coupon against a package or an amount; a coupon that does not
/// apply is a 200 with `valid: false` and the reason.
#[utoipa::path(
    post, path = "/api/promotions/coupons/validate", tag = "promotions",
    security(("bearer" = [])),
    request_body = CouponPreviewIn,
    responses(
        (status = 200, description = "Whether the coupon applies, and why not", body = CouponValidation),
        (status = 400, description = "Neither or both of package_id and amount_paisa", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown package", body = ErrorBody),
        (status = 422, description = "`invalid_amount`: an amount outside 0 to 1,000,000,000 paisa", body = ErrorBody),
    )
)]
pub async fn validate_coupon(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CouponPreviewIn>,
) -> Result<Json<CouponValidation>, ApiError> {
    let code = body.coupon_code.trim().to_uppercase();
    match preview(&state, user.id, body).await {
        Ok(p) => Ok(Json(CouponValidation {
            valid: true,
            coupon_code: p.applied.coupon_code.clone(),
            reason_code: None,
            message: format!("coupon {} takes {} paisa off", p.applied.coupon_code, p.applied.discount_paisa),
            preview: Some(p),
        })),
        Err(e) if e.code.starts_with("coupon_") => Ok(Json(CouponValidation {
            valid: false,
            coupon_code: code,
            reason_code: Some(e.code.to_string()),
            message: e.message,
            preview: None,
        })),
        Err(e) => Err(e),
    }
}

/// The caller's coupon redemptions, newest first (released ones included).
#[utoipa::path(
    get, path = "/api/promotions/coupons/my", tag = "promotions",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of redemptions", body = Page<CouponUsageOut>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn my_coupons(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<CouponUsageOut>>, ApiError> {
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{USAGE_SELECT} WHERE u.user_id = ?1 AND u.id < ?2 ORDER BY u.id DESC LIMIT ?3"
            ))?;
            let rows =
                stmt.query_map(params![user.id, before, limit + 1], usage_from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |u| u.id)))
}
