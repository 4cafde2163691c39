//! Operator endpoints for campaigns (roles admin and owner, audited):
//! `/api/admin/campaigns` (list, create), `/api/admin/campaigns/{id}`,
//! `.../pause`, `.../resume`, `.../stop` and `.../analytics`; and the rider's
//! `GET /api/promotions/campaigns`.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{
    Banner, CAMPAIGN_SELECT, CampaignRow, CampaignState, CampaignStatus, OfferIn, RiderCampaignOut, campaign_from_row,
    load, running_for, start,
};
use crate::{
    audiences::Audience,
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, AuthUser, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        now_ts,
        text::check_user_text,
        ts_to_rfc3339,
    },
    state::AppState,
};

/// Redemption limits; absent: unlimited.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Redemptions across all riders, at least 1.
    pub total: Option<i64>,
    /// Redemptions per rider, at least 1 (a coupon grant: uses of each coupon, default 1).
    pub per_user: Option<i64>,
}

/// A new campaign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignIn {
    /// 1 to 120 characters.
    pub name: String,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339, after `starts_at` and in the future.
    pub ends_at: String,
    pub audience: Audience,
    pub offer: OfferIn,
    pub limits: Option<Limits>,
    pub banner: Option<Banner>,
    /// Notify each member of the audience when the campaign starts.
    pub push_at_start: Option<bool>,
    /// Kept in the audit log.
    pub reason: Option<String>,
}

/// A campaign as operators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignOut {
    pub id: i64,
    pub name: String,
    pub starts_at: String,
    pub ends_at: String,
    pub audience: Audience,
    pub offer: OfferIn,
    pub limits: Limits,
    pub banner: Option<Banner>,
    pub push_at_start: bool,
    /// What operators set: `active`, `paused` or `stopped`.
    pub status: CampaignStatus,
    /// Now: `scheduled`, `running`, `paused`, `stopped` or `ended`.
    pub state: CampaignState,
    /// Redemptions that count (released ones do not).
    pub redemptions: i64,
    pub created_at: String,
    pub updated_at: String,
}

fn redemptions(c: &Connection, id: i64) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT (SELECT COUNT(*) FROM campaign_redemptions WHERE campaign_id = ?1 AND released_at IS NULL)
              + (SELECT COUNT(*) FROM coupon_usages u JOIN coupons c ON c.id = u.coupon_id
                 WHERE c.campaign_id = ?1 AND u.released_at IS NULL)",
        [id],
        |r| r.get(0),
    )
}

fn out(c: &Connection, row: CampaignRow, now: i64) -> Result<CampaignOut, ApiError> {
    Ok(CampaignOut {
        redemptions: redemptions(c, row.id)?,
        state: row.state(now),
        banner: row.banner(),
        id: row.id,
        name: row.name,
        starts_at: ts_to_rfc3339(row.starts_at),
        ends_at: ts_to_rfc3339(row.ends_at),
        audience: row.audience,
        offer: row.offer,
        limits: Limits { total: row.limit_total, per_user: row.limit_per_user },
        push_at_start: row.push_at_start,
        status: row.status,
        created_at: ts_to_rfc3339(row.created_at),
        updated_at: ts_to_rfc3339(row.updated_at),
    })
}

fn timestamp(field: &str, raw: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp())
        .map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 date-time, e.g. 2025-01-31T18:00:00+05:45"))
}

fn refused(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn short_text(field: &str, raw: &str) -> Result<String, ApiError> {
    let t = raw.trim();
    check_user_text(field, t, false)?;
    if t.is_empty() || t.chars().count() > 120 {
        return Err(ApiError::invalid_field(field, "must be 1 to 120 characters"));
    }
    Ok(t.to_string())
}

/// Creates a campaign. Refused with 422 and nothing stored: an end not after
/// the start or already past (`campaign_window_invalid`), an audience rule
/// that cannot be evaluated (`invalid_audience`) or that matches nobody
/// (`audience_empty`), an offer the promotions plugin rejects
/// (`campaign_offer_rejected`).
#[utoipa::path(
    post, path = "/api/admin/campaigns", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = CampaignIn,
    responses(
        (status = 201, description = "Created", body = CampaignOut),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 422, description = "`campaign_window_invalid`, `invalid_audience`, `audience_empty`, `campaign_offer_rejected`, or `invalid_amount`", body = ErrorBody),
        (status = 502, description = "The promotions plugin failed", body = ErrorBody),
    )
)]
pub async fn create_campaign(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<CampaignIn>,
) -> Result<(StatusCode, Json<CampaignOut>), ApiError> {
    let now = now_ts();
    let reason = audit::optional_reason(body.reason.as_deref())?;
    let name = short_text("name", &body.name)?;
    let (starts_at, ends_at) = (timestamp("starts_at", &body.starts_at)?, timestamp("ends_at", &body.ends_at)?);
    let limits = body.limits.unwrap_or_default();
    for (field, value) in [("limits.total", limits.total), ("limits.per_user", limits.per_user)] {
        if value.is_some_and(|v| v < 1) {
            return Err(ApiError::invalid_field(field, "must be at least 1"));
        }
    }
    let banner = match body.banner {
        Some(b) => {
            let title = short_text("banner.title", &b.title)?;
            let image_url = b.image_url.map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
            if image_url.as_deref().is_some_and(|u| !u.starts_with("https://") || u.len() > 500) {
                return Err(ApiError::invalid_field("banner.image_url", "must be an https:// URL"));
            }
            Some(Banner { title, image_url })
        }
        None => None,
    };
    if ends_at <= starts_at {
        return Err(refused("campaign_window_invalid", "ends_at must be after starts_at"));
    }
    if ends_at <= now {
        return Err(refused("campaign_window_invalid", "ends_at is in the past"));
    }
    body.audience.validate()?;
    let audience = body.audience.clone();
    let members = state.db.read(move |c| Ok(audience.count(c, now)?)).await?;
    if members == 0 {
        return Err(refused("audience_empty", "the audience matches no rider"));
    }
    let mut row = CampaignRow {
        id: 0,
        name,
        starts_at,
        ends_at,
        audience: body.audience,
        offer: body.offer,
        limit_total: limits.total,
        limit_per_user: limits.per_user,
        banner_title: banner.as_ref().map(|b| b.title.clone()),
        banner_image_url: banner.and_then(|b| b.image_url),
        push_at_start: body.push_at_start.unwrap_or(false),
        status: CampaignStatus::Active,
        started_job_at: None,
        created_at: now,
        updated_at: now,
    };
    let verdict = state.plugins.promotions().validate_campaign(row.to_plugin()?).await?;
    if let Err(rejection) = verdict {
        use powerbank_plugin_runtime::types::CampaignRejection;
        let reason = match rejection {
            CampaignRejection::InvalidOffer(r) | CampaignRejection::UnsupportedOffer(r) => r,
        };
        return Err(refused("campaign_offer_rejected", format!("the promotions plugin rejects the offer: {reason}"))
            .with_details(json!({ "reason": reason })));
    }
    let audience_json = serde_json::to_string(&row.audience).map_err(|e| ApiError::internal(e.to_string()))?;
    let offer_json = serde_json::to_string(&row.offer).map_err(|e| ApiError::internal(e.to_string()))?;
    let created = state
        .db
        .write(move |tx| {
            tx.execute(
                "INSERT INTO campaigns (name, starts_at, ends_at, audience_json, offer_kind, offer_json, limit_total,
                    limit_per_user, banner_title, banner_image_url, push_at_start, status, created_by, created_at,
                    updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'active', ?12, ?13, ?13)",
                params![
                    row.name,
                    row.starts_at,
                    row.ends_at,
                    audience_json,
                    row.offer.kind(),
                    offer_json,
                    row.limit_total,
                    row.limit_per_user,
                    row.banner_title,
                    row.banner_image_url,
                    row.push_at_start,
                    operator.id,
                    now
                ],
            )?;
            row.id = tx.last_insert_rowid();
            start::schedule(tx, &row, 0)?;
            let created = out(tx, row, now)?;
            audit::record(
                tx,
                &operator,
                "campaign.create",
                Target::new("campaign", created.id),
                &(),
                &created,
                reason.as_deref(),
            )?;
            Ok(created)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignFilter {
    /// `active`, `paused` or `stopped`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Campaigns, newest first.
#[utoipa::path(
    get, path = "/api/admin/campaigns", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(CampaignFilter),
    responses(
        (status = 200, description = "A page of campaigns", body = Page<CampaignOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn list_campaigns(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<CampaignFilter>,
) -> Result<Json<Page<CampaignOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = f
        .status
        .as_deref()
        .map(str::parse::<CampaignStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let now = now_ts();
    let page = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{CAMPAIGN_SELECT} WHERE id < ?1 AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(params![before, status, limit + 1], campaign_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let rows = rows.into_iter().map(|r| out(c, r, now)).collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_rows(rows, limit, |c| c.id))
        })
        .await?;
    Ok(Json(page))
}

/// One campaign.
#[utoipa::path(
    get, path = "/api/admin/campaigns/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The campaign", body = CampaignOut),
        (status = 404, description = "No such campaign", body = ErrorBody),
    )
)]
pub async fn get_campaign(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CampaignOut>, ApiError> {
    let now = now_ts();
    Ok(Json(state.db.read(move |c| out(c, load(c, id)?, now)).await?))
}

/// Why an operator paused, resumed or stopped a campaign (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignActionIn {
    /// Kept in the audit log.
    pub reason: Option<String>,
}

#[derive(Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Stop,
}

/// The 409 for a campaign whose state does not allow `action`, named after that state.
fn not_allowed(state: CampaignState) -> ApiError {
    let (code, what) = match state {
        CampaignState::Scheduled | CampaignState::Running => ("campaign_active", "is active"),
        CampaignState::Paused => ("campaign_paused", "is paused"),
        CampaignState::Stopped => ("campaign_stopped", "was stopped"),
        CampaignState::Ended => ("campaign_ended", "has ended"),
    };
    ApiError::conflict(code, format!("the campaign {what}"))
}

fn transition(
    tx: &Transaction<'_>,
    operator: &Operator,
    id: i64,
    action: Action,
    reason: Option<&str>,
) -> Result<CampaignOut, ApiError> {
    let now = now_ts();
    let row = load(tx, id)?;
    let state = row.state(now);
    let (to, name) = match (action, state) {
        (Action::Pause, CampaignState::Scheduled | CampaignState::Running) => {
            (CampaignStatus::Paused, "campaign.pause")
        }
        (Action::Resume, CampaignState::Paused) => (CampaignStatus::Active, "campaign.resume"),
        (Action::Stop, CampaignState::Scheduled | CampaignState::Running | CampaignState::Paused) => {
            (CampaignStatus::Stopped, "campaign.stop")
        }
        (_, state) => return Err(not_allowed(state)),
    };
    let before = out(tx, row, now)?;
    tx.execute("UPDATE campaigns SET status = ?2, updated_at = ?3 WHERE id = ?1", params![id, to, now])?;
    let row = load(tx, id)?;
    if to == CampaignStatus::Active {
        // A start job that found the campaign paused did nothing: run it again.
        start::schedule(tx, &row, 0)?;
    }
    let after = out(tx, row, now)?;
    audit::record(tx, operator, name, Target::new("campaign", id), &before, &after, reason)?;
    Ok(after)
}

async fn act(
    state: AppState,
    operator: Operator,
    id: i64,
    body: CampaignActionIn,
    action: Action,
) -> Result<Json<CampaignOut>, ApiError> {
    let reason = audit::optional_reason(body.reason.as_deref())?;
    let out = state.db.write(move |tx| transition(tx, &operator, id, action, reason.as_deref())).await?;
    Ok(Json(out))
}

/// Pauses a scheduled or running campaign: it offers nothing until resumed.
#[utoipa::path(
    post, path = "/api/admin/campaigns/{id}/pause", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Campaign id")),
    request_body = CampaignActionIn,
    responses(
        (status = 200, description = "The paused campaign", body = CampaignOut),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "`campaign_paused`, `campaign_stopped` or `campaign_ended`", body = ErrorBody),
    )
)]
pub async fn pause_campaign(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CampaignActionIn>,
) -> Result<Json<CampaignOut>, ApiError> {
    act(state, operator, id, body, Action::Pause).await
}

/// Resumes a paused campaign.
#[utoipa::path(
    post, path = "/api/admin/campaigns/{id}/resume", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Campaign id")),
    request_body = CampaignActionIn,
    responses(
        (status = 200, description = "The resumed campaign", body = CampaignOut),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "`campaign_active`, `campaign_stopped` or `campaign_ended`", body = ErrorBody),
    )
)]
pub async fn resume_campaign(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CampaignActionIn>,
) -> Result<Json<CampaignOut>, ApiError> {
    act(state, operator, id, body, Action::Resume).await
}

/// Stops a campaign for good.
#[utoipa::path(
    post, path = "/api/admin/campaigns/{id}/stop", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Campaign id")),
    request_body = CampaignActionIn,
    responses(
        (status = 200, description = "The stopped campaign", body = CampaignOut),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "`campaign_stopped` or `campaign_ended`", body = ErrorBody),
    )
)]
pub async fn stop_campaign(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CampaignActionIn>,
) -> Result<Json<CampaignOut>, ApiError> {
    act(state, operator, id, body, Action::Stop).await
}

/// Rentals started in a period and what they brought in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PeriodOut {
    pub from: String,
    pub to: String,
    pub rentals: i64,
    /// What those rentals charged, after discounts, paisa.
    pub revenue_paisa: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignAnalyticsOut {
    pub campaign_id: i64,
    pub state: CampaignState,
    /// Redemptions that count: discounted rentals, boosted top-ups, used coupons.
    pub redemptions: i64,
    /// Riders with at least one redemption.
    pub riders: i64,
    pub discount_given_paisa: i64,
    /// Points granted beyond the usual awards.
    pub points_granted: i64,
    /// Coupons issued by a coupon grant.
    pub coupons_issued: i64,
    /// From the start to now (or the end, or when it was stopped).
    pub during: PeriodOut,
    /// The same length just before the start.
    pub before: PeriodOut,
}

/// Rentals started from `from` to `to` (inclusive of `to` when `through`,
/// so a rental started this second counts during a campaign still running).
fn period(c: &Connection, from: i64, to: i64, through: bool) -> rusqlite::Result<PeriodOut> {
    c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(amount_paisa), 0) FROM rentals
         WHERE started_at >= ?1 AND (started_at < ?2 OR (?3 AND started_at = ?2))",
        params![from, to, through],
        |r| {
            Ok(PeriodOut {
                from: ts_to_rfc3339(from),
                to: ts_to_rfc3339(to),
                rentals: r.get(0)?,
                revenue_paisa: r.get(1)?,
            })
        },
    )
}

fn analytics(c: &Connection, id: i64, now: i64) -> Result<CampaignAnalyticsOut, ApiError> {
    let row = load(c, id)?;
    let state = row.state(now);
    let mut end = now.min(row.ends_at);
    if row.status == CampaignStatus::Stopped {
        end = end.min(row.updated_at);
    }
    let end = end.max(row.starts_at);
    let length = end - row.starts_at;
    let (redeemed, riders, discount, points): (i64, i64, i64, i64) = c.query_row(
        "WITH r AS (
            SELECT user_id, discount_paisa, points FROM campaign_redemptions
             WHERE campaign_id = ?1 AND released_at IS NULL
            UNION ALL
            SELECT u.user_id, u.discount_paisa, 0 FROM coupon_usages u JOIN coupons c ON c.id = u.coupon_id
             WHERE c.campaign_id = ?1 AND u.released_at IS NULL)
         SELECT COUNT(*), COUNT(DISTINCT user_id), COALESCE(SUM(discount_paisa), 0), COALESCE(SUM(points), 0) FROM r",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let coupons_issued: i64 = c.query_row("SELECT COUNT(*) FROM coupons WHERE campaign_id = ?1", [id], |r| r.get(0))?;
    Ok(CampaignAnalyticsOut {
        campaign_id: id,
        state,
        redemptions: redeemed,
        riders,
        discount_given_paisa: discount,
        points_granted: points,
        coupons_issued,
        during: period(c, row.starts_at, end, true)?,
        before: period(c, row.starts_at - length, row.starts_at, false)?,
    })
}

/// What a campaign gave and what rentals did during it, against the same
/// length of time just before it.
#[utoipa::path(
    get, path = "/api/admin/campaigns/{id}/analytics", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The campaign's figures", body = CampaignAnalyticsOut),
        (status = 404, description = "No such campaign", body = ErrorBody),
    )
)]
pub async fn campaign_analytics(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CampaignAnalyticsOut>, ApiError> {
    let now = now_ts();
    Ok(Json(state.db.read(move |c| analytics(c, id, now)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RiderCampaignQuery {
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Running campaigns whose audience includes the caller, newest first.
#[utoipa::path(
    get, path = "/api/promotions/campaigns", tag = "promotions",
    security(("bearer" = [])),
    params(RiderCampaignQuery),
    responses(
        (status = 200, description = "A page of campaigns", body = Page<RiderCampaignOut>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn my_campaigns(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<RiderCampaignQuery>,
) -> Result<Json<Page<RiderCampaignOut>>, ApiError> {
    let paging = PageParams { cursor: q.cursor, limit: q.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let user_id = user.id;
    let now = now_ts();
    let mut running = state.db.read(move |c| running_for(c, now, user_id, None)).await?;
    running.retain(|c| c.id < before);
    running.sort_by_key(|c| std::cmp::Reverse(c.id));
    running.truncate(usize::try_from(limit + 1).unwrap_or(usize::MAX));
    let rows = running.iter().map(CampaignRow::rider_view).collect();
    Ok(Json(Page::from_rows(rows, limit, |c| c.id)))
}
