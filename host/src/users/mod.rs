//! Users: OTP sign-in, registration, sessions, profile, account deletion
//! (seed §2).

pub mod auth;
pub mod identifier;
pub mod operator_signin;
pub mod otp;
pub mod profile;
pub mod sessions;
pub mod usage;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(otp::get_otp))
        .routes(routes!(otp::verify_otp))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::admin_login))
        .routes(routes!(profile::get_profile, profile::update_profile))
        .routes(routes!(profile::delete_account))
        .routes(routes!(usage::usage_stats))
}
