//! Promotions: coupons and campaigns. Operators manage them
//! (`/api/admin/coupons`, `/api/admin/campaigns`), the app lists and previews
//! them (`/api/promotions/...`), and rentals redeem them: the promotions
//! plugin decides what a coupon or a campaign offer takes off, the host owns
//! them and counts their redemptions (see [`coupons`], [`campaigns`]).

pub mod admin;
pub mod campaigns;
pub mod coupons;
pub mod user;

use crate::{core::jobs::JobsBuilder, state::AppState};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user::active_coupons))
        .routes(routes!(user::apply_coupon))
        .routes(routes!(user::validate_coupon))
        .routes(routes!(user::my_coupons))
        .routes(routes!(admin::list_coupons, admin::create_coupon))
        .routes(routes!(admin::get_coupon, admin::update_coupon, admin::delete_coupon))
        .routes(routes!(admin::coupon_usages))
        .routes(routes!(campaigns::admin::my_campaigns))
        .routes(routes!(campaigns::admin::list_campaigns, campaigns::admin::create_campaign))
        .routes(routes!(campaigns::admin::get_campaign))
        .routes(routes!(campaigns::admin::pause_campaign))
        .routes(routes!(campaigns::admin::resume_campaign))
        .routes(routes!(campaigns::admin::stop_campaign))
        .routes(routes!(campaigns::admin::campaign_analytics))
}

pub fn jobs(jobs: JobsBuilder<AppState>) -> JobsBuilder<AppState> {
    jobs.handle(campaigns::start::START_JOB, campaigns::start::start_job)
}
