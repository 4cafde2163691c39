//! Payments (seed §5): the wallet and transaction views, idempotent
//! money-moving requests, payment options, and gateway payments. Gateways
//! (any number, each a plugin named in plugins.toml) plug in through the plugin runtime's
//! `payment-gateway` world: payment intents, top-ups, webhooks and refunds
//! live here. Balances themselves change only in [`crate::ledger`].

pub mod gateway_errors;
pub mod idempotency;
pub mod intent_checks;
pub mod intents;
pub mod options;
pub mod purposes;
pub mod refunds;
pub mod settings;
pub mod topup;
pub mod wallet;
pub mod webhooks;

use crate::{core::jobs::JobsBuilder, state::AppState};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(wallet::wallet))
        .routes(routes!(wallet::balance))
        .routes(routes!(wallet::transactions))
        .routes(routes!(topup::topup_intent))
        .routes(routes!(topup::verify_topup))
        .routes(routes!(intents::status))
        .routes(routes!(intents::cancel))
        .routes(routes!(options::methods))
        .routes(routes!(options::calculate_options))
        .routes(routes!(webhooks::webhook))
        .routes(routes!(refunds::request_refund))
        .routes(routes!(refunds::my_refunds))
        .routes(routes!(refunds::admin_list))
        .routes(routes!(refunds::approve))
        .routes(routes!(refunds::reject))
}

/// The background jobs of the payments domain (registered by `server::job_handlers`).
pub fn jobs(jobs: JobsBuilder<AppState>) -> JobsBuilder<AppState> {
    jobs.handle(intent_checks::VERIFY_JOB, intent_checks::verify_job)
        .handle(refunds::REFUND_JOB, refunds::refund_job)
        .handle(topup::TOPUP_POINTS_JOB, topup::topup_points_job)
}
