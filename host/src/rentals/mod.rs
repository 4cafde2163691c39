//! Rentals (seed §4): starting a rental with an eject over the station link
//! (paid from the balance, or first through a payment gateway:
//! [`gateway`]), coupons on the price, returns at any station, extensions,
//! dues and history.

pub mod actions;
pub mod charge;
pub mod gateway;
pub mod initiate;
pub mod lifecycle;
pub mod model;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{core::jobs::JobsBuilder, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(initiate::initiate))
        .routes(routes!(gateway::verify_payment))
        .routes(routes!(gateway::start))
        .routes(routes!(actions::active))
        .routes(routes!(actions::history))
        .routes(routes!(actions::extend))
        .routes(routes!(actions::cancel))
        .routes(routes!(actions::location))
        .routes(routes!(actions::report_issue))
        .routes(routes!(actions::calculate_due))
        .routes(routes!(actions::pay_due))
}

/// The background jobs of the rentals domain (registered by `server::job_handlers`).
pub fn jobs(jobs: JobsBuilder<AppState>) -> JobsBuilder<AppState> {
    jobs.handle(lifecycle::RETURNED_JOB, lifecycle::on_returned).handle(lifecycle::SWEEP_JOB, lifecycle::sweep)
}
