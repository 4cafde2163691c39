//! How a payment gateway's failures reach clients: the plugin's own
//! failures (a slow gateway is a 504) and the gateway's refusals, each with
//! its status and code.

use axum::http::StatusCode;
use powerbank_plugin_runtime::{Failure, PluginError, types::GatewayError};
use serde_json::json;

use crate::core::ApiError;

/// A plugin failure on a gateway call. A plugin past its time budget is a
/// slow gateway: 504, so the app knows to check the status later.
pub fn plugin_failure(e: PluginError) -> ApiError {
    if let Failure::Timeout { timeout_ms } = e.failure {
        tracing::warn!(plugin = %e.plugin, operation = %e.operation, timeout_ms, "gateway call timed out");
        return ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "gateway_timeout",
            format!("payment gateway {} did not answer in time", e.plugin),
        )
        .with_details(json!({ "gateway": e.plugin, "timeout_ms": timeout_ms }));
    }
    if e.failure == Failure::NotLoaded {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "gateway_not_available",
            format!("payment gateway {} is not available right now", e.plugin),
        );
    }
    e.into()
}

/// The gateway's own refusal or failure, as the client should see it.
pub fn gateway_failure(gateway: &str, e: GatewayError) -> ApiError {
    let details = json!({ "gateway": gateway });
    match e {
        GatewayError::Timeout(m) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "gateway_timeout", format!("{gateway} did not answer in time"))
                .with_details(json!({ "gateway": gateway, "reason": m }))
        }
        GatewayError::Unavailable(m) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "gateway_unavailable", format!("{gateway} is unavailable: {m}"))
                .with_details(details)
        }
        GatewayError::Internal(m) => {
            tracing::error!(gateway, error = %m, "gateway plugin reports a configuration or protocol problem");
            ApiError::new(StatusCode::BAD_GATEWAY, "gateway_error", format!("{gateway} failed: {m}"))
                .with_details(details)
        }
        GatewayError::InvalidRequest(m) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "gateway_rejected", format!("{gateway} refused: {m}"))
                .with_details(details)
        }
        GatewayError::Declined(m) => {
            ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_declined", format!("{gateway} declined: {m}"))
                .with_details(details)
        }
        GatewayError::BadSignature => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_signature", "the gateway data's signature does not verify")
                .with_details(details)
        }
        GatewayError::AmountMismatch => ApiError::new(
            StatusCode::CONFLICT,
            "amount_mismatch",
            "the gateway reports another amount than this payment's; nothing was credited",
        )
        .with_details(details),
        GatewayError::NotSupported => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_supported",
            format!("{gateway} does not support this operation"),
        )
        .with_details(details),
    }
}

/// Unwraps a gateway call's two layers of failure.
pub fn gateway_result<T>(gateway: &str, r: Result<Result<T, GatewayError>, PluginError>) -> Result<T, ApiError> {
    r.map_err(plugin_failure)?.map_err(|e| gateway_failure(gateway, e))
}

/// Whether an error means "the gateway could not be asked" (retry later)
/// rather than "the gateway answered no".
pub fn is_unreachable(e: &ApiError) -> bool {
    matches!(e.status, StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE)
}
