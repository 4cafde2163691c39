//! Cancelling a rental: putting the bank back within the grace window after
//! the start, which refunds it in full.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    model::{
        RentalStatus, {self},
    },
    settings::FREE_RETURN_MINUTES,
};
use crate::{
    core::{ApiError, ApiPath, AuthUser, error::ErrorBody, now_ts},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelOut {
    pub message: String,
    /// A return at any station before this time is refunded in full.
    pub refund_if_returned_by: Option<String>,
}

/// Cancelling a rental means putting the bank back: a return within the grace
/// window after the start is refunded in full, at any station. The window is
/// the operator setting `rentals.free_return_minutes` (default 5 minutes,
/// public at `GET /api/app/config`).
#[utoipa::path(
    post, path = "/api/rentals/{id}/cancel", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    responses(
        (status = 200, description = "Within the grace window: return the bank by the given time for a full refund", body = CancelOut),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "The grace window has passed, or the rental is not active", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CancelOut>, ApiError> {
    let rental = model::own_core(&state, user.id, id).await?;
    if rental.status != RentalStatus::Active {
        return Err(model::illegal(rental.status, "cancel"));
    }
    let settings = state.settings.clone();
    let free_minutes = state.db.read(move |c| settings.int(c, FREE_RETURN_MINUTES)).await?;
    let refund_until = rental.started_at.unwrap_or_default() + free_minutes * 60;
    if now_ts() > refund_until {
        return Err(ApiError::conflict(
            "grace_window_passed",
            "the free cancellation window has passed; return the bank to end the rental",
        ));
    }
    Ok(Json(CancelOut {
        message:
            "put the power bank into any station's free slot; a return within the grace window is refunded in full"
                .into(),
        refund_if_returned_by: Some(crate::core::ts_to_rfc3339(refund_until)),
    }))
}
