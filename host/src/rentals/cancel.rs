//! Cancelling a rental, by the state it is in:
//!
//! - waiting for its eject (`pending_eject`): ended at once with everything
//!   given back, as a failed eject is (a late `ejected` still revives it,
//!   since the user then holds the bank);
//! - active, inside the free-return window: the answer says by when a return
//!   at any station is refunded in full (the bank must go back first);
//! - active after the window: 409 `return_required`;
//! - a gateway order waiting for its payment, or paid and not started
//!   (`POST /api/rentals/orders/{id}/cancel`): ended at once; money already
//!   paid goes to the wallet, a payment that arrives later too.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    lifecycle,
    model::{self, RentalOut, RentalStatus},
    orders::{self, OrderStatus, RentalOrderOut},
    settings::FREE_RETURN_MINUTES,
};
use crate::{
    core::{ApiError, ApiPath, AuthUser, error::ErrorBody, now_ts, ts_to_rfc3339},
    payments::intents::{IntentStatus, finish_unpaid},
    state::AppState,
};

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// Ended now, everything paid given back.
    Cancelled,
    /// The bank is out: return it by `refund_if_returned_by` for a full refund.
    ReturnToCancel,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelOut {
    pub outcome: CancelOutcome,
    pub message: String,
    /// A return at any station before this time is refunded in full.
    pub refund_if_returned_by: Option<String>,
    /// The rental as it is now.
    pub rental: RentalOut,
}

/// Cancels a rental: one waiting for its eject ends at once and is refunded;
/// an active one is cancelled by putting the bank back within the free
/// window (refunded in full, at any station). The window is the operator setting `rentals.free_return_minutes` (default 5 minutes,
/// public at `GET /api/app/config`).
#[utoipa::path(
    post, path = "/api/rentals/{id}/cancel", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    responses(
        (status = 200, description = "`cancelled`: ended and refunded now; `return_to_cancel`: return the bank by the given time for a full refund", body = CancelOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "`return_required`: the free window has passed, return the bank to end the rental; `invalid_rental_state`: the rental has ended", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CancelOut>, ApiError> {
    let rental = model::own_core(&state, user.id, id).await?;
    if rental.status == RentalStatus::PendingEject {
        // Guarded by the state it leaves: if the station's answer activated
        // the rental first, this fails nothing and the active rules apply.
        let failed = state
            .db
            .write(move |tx| lifecycle::fail(tx, id, "eject_timeout", "cancelled before the station answered"))
            .await?;
        if failed {
            let rental = state.db.read(move |c| model::load_own(c, user.id, id)).await?;
            return Ok(Json(CancelOut {
                outcome: CancelOutcome::Cancelled,
                message: "cancelled before the power bank came out; everything you paid was given back".into(),
                refund_if_returned_by: None,
                rental,
            }));
        }
    }
    let rental = model::own_core(&state, user.id, id).await?;
    if rental.status != RentalStatus::Active {
        return Err(model::illegal(rental.status, "cancel"));
    }
    let settings = state.settings.clone();
    let free_minutes = state.db.read(move |c| settings.int(c, FREE_RETURN_MINUTES)).await?;
    let refund_until = rental.started_at.unwrap_or_default() + free_minutes * 60;
    if now_ts() > refund_until {
        return Err(ApiError::conflict(
            "return_required",
            "the free cancellation window has passed; return the power bank to any station to end the rental",
        )
        .with_details(serde_json::json!({"free_window_ended_at": ts_to_rfc3339(refund_until)})));
    }
    let out = state.db.read(move |c| model::load_own(c, user.id, id)).await?;
    Ok(Json(CancelOut {
        outcome: CancelOutcome::ReturnToCancel,
        message: "put the power bank into any station's free slot; a return within the free window is refunded in full"
            .into(),
        refund_if_returned_by: Some(ts_to_rfc3339(refund_until)),
        rental: out,
    }))
}

/// Cancels a rental paid through a gateway that has not started: waiting for
/// its payment (the payment is cancelled; should it arrive anyway, it goes to
/// the wallet) or paid and not started (the payment goes to the wallet now).
/// The coupon counts as unused.
#[utoipa::path(
    post, path = "/api/rentals/orders/{id}/cancel", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental order id (`order.id` from initiate or GET /api/rentals/active)")),
    responses(
        (status = 200, description = "The order, `cancelled` or `refunded` (money to the wallet)", body = RentalOrderOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such rental order of yours", body = ErrorBody),
        (status = 409, description = "`invalid_order_state`: the order has started or ended", body = ErrorBody),
    )
)]
pub async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RentalOrderOut>, ApiError> {
    let purposes = state.payment_purposes.clone();
    let order = state
        .db
        .write(move |tx| {
            let order = orders::order_by_id(tx, id)?
                .filter(|o| o.user_id == user.id)
                .ok_or_else(|| ApiError::not_found("rental order"))?;
            match order.status {
                OrderStatus::AwaitingPayment => {
                    // The order ends with its intent (the `rental` purpose
                    // handler releases the coupon).
                    finish_unpaid(
                        tx,
                        &purposes,
                        &order.payment_intent_id,
                        IntentStatus::Cancelled,
                        "cancelled by the user",
                    )?;
                }
                OrderStatus::Paid => {
                    orders::refund_paid_order(
                        tx,
                        id,
                        now_ts(),
                        "Rental cancelled before it started: payment returned to the wallet",
                    )?;
                }
                other => {
                    return Err(ApiError::conflict(
                        "invalid_order_state",
                        format!("cannot cancel a rental order that is {other}"),
                    ));
                }
            }
            orders::load_order_out(tx, id)
        })
        .await?;
    Ok(Json(order))
}
