//! Payments (seed §5): the wallet and points ledgers, transactions and
//! idempotent money-moving requests. Gateways plug in through the plugin
//! runtime's `payment-gateway` world.

pub mod idempotency;
pub mod ledger;
pub mod wallet;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::core::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(wallet::wallet))
        .routes(routes!(wallet::balance))
        .routes(routes!(wallet::transactions))
}
