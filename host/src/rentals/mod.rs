//! Rentals (seed §4): starting a rental with an eject over the station link
//! (paid from the balance, or first through a payment gateway:
//! [`orders`]), coupons on the price, returns at any station, extensions,
//! dues (also paid through a gateway: [`due_payments`]) and history; banks
//! that never come back ([`lost`]); the operators' side ([`admin`],
//! [`issues_admin`]).

pub mod active_and_history;
pub mod admin;
pub mod cancel;
pub mod charge;
pub mod due_payments;
pub mod dues;
pub mod extend;
pub mod initiate;
pub mod issues_admin;
pub mod lifecycle;
pub mod lost;
pub mod model;
pub mod order_routes;
pub mod orders;
pub mod postpaid;
pub mod pricing_preview;
pub mod problem_reports;
pub mod settings;
pub mod swap;
pub mod tracking;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{core::jobs::JobsBuilder, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(initiate::initiate))
        .routes(routes!(order_routes::verify_payment))
        .routes(routes!(order_routes::start))
        .routes(routes!(active_and_history::active))
        .routes(routes!(active_and_history::history))
        .routes(routes!(extend::extend))
        .routes(routes!(cancel::cancel))
        .routes(routes!(cancel::cancel_order))
        .routes(routes!(swap::request_swap, swap::swap_status))
        .routes(routes!(tracking::location))
        .routes(routes!(problem_reports::report_issue))
        .routes(routes!(dues::calculate_due))
        .routes(routes!(dues::pay_due))
        .routes(routes!(due_payments::verify_payment))
        .routes(routes!(pricing_preview::preview))
        .routes(routes!(admin::list_rentals))
        .routes(routes!(admin::rental_detail))
        .routes(routes!(admin::force_complete))
        .routes(routes!(admin::mark_lost))
        .routes(routes!(admin::waive_due))
        .routes(routes!(issues_admin::list_rental_issues))
        .routes(routes!(issues_admin::update_rental_issue))
}

/// The background jobs of the rentals domain (registered by `server::job_handlers`).
pub fn jobs(jobs: JobsBuilder<AppState>) -> JobsBuilder<AppState> {
    jobs.handle(lifecycle::RETURNED_JOB, lifecycle::on_returned)
        .handle(lifecycle::SWEEP_JOB, lifecycle::sweep)
        .handle(swap::SWAP_JOB, swap::run_swap)
}
