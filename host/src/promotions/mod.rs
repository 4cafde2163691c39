//! Promotions: coupons. Operators manage them (`/api/admin/coupons`), the app
//! lists and previews them (`/api/promotions/coupons/...`), and rentals redeem
//! them: the promotions plugin decides what a coupon takes off, the host owns
//! the coupons and counts their redemptions (see [`coupons`]).

pub mod admin;
pub mod coupons;
pub mod user;

use crate::state::AppState;
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
}
