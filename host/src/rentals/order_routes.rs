//! The endpoints of rentals paid at a gateway after `initiate` answered 202:
//! `POST /api/rentals/verify-payment` confirms the payment (safe alongside
//! the webhook and the background check: a payment is recorded once), and
//! `POST /api/rentals/start` reserves a slot and ejects as a wallet rental
//! does, crediting the payment to the wallet if the eject fails.

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode};
use powerbank_plugin_runtime::types::GatewayError;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{
    initiate::{NewRental, RefundNote, StationRef, check_can_start, eject_and_settle, online_station, reserve},
    model::RentalOut,
    orders::{OrderStatus, RentalOrderOut, load_order_out, order_by_id, order_by_intent},
};
use crate::{
    core::{ApiError, ApiJson, AuthUser, error::ErrorBody, money::format_npr, now_ts},
    ledger::{self},
    payments::{
        gateway_errors::gateway_failure,
        intents::{IntentStatus, Settled, ask_gateway, callback_params, record_failure, settle, user_intent},
    },
    promotions::coupons,
    state::AppState,
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRentalPaymentIn {
    /// The `intent.id` from `initiate`.
    pub intent_id: String,
    /// Khalti: the `pidx` the user came back with.
    pub pidx: Option<String>,
    /// eSewa: the base64 `data` the user came back with.
    pub data: Option<String>,
    /// Any other parameters the gateway sent back with the user.
    pub params: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RentalPaymentOut {
    /// `paid` (by this request), `already_paid`, `pending`, `expired`,
    /// `cancelled`, `failed`, or `refunded_to_wallet` (paid after the order
    /// ended, or never started).
    pub outcome: String,
    /// Whether this request recorded the payment.
    pub paid_now: bool,
    pub order: RentalOrderOut,
}

fn payment_out(c: &Connection, order_id: i64, paid_now: bool) -> Result<RentalPaymentOut, ApiError> {
    let order = load_order_out(c, order_id)?;
    let outcome = match (paid_now, order.status) {
        (true, OrderStatus::Paid) => "paid",
        (_, OrderStatus::Refunded) => "refunded_to_wallet",
        (_, OrderStatus::Paid | OrderStatus::Started) => "already_paid",
        (_, OrderStatus::AwaitingPayment) => "pending",
        (_, other) => other.as_str(),
    }
    .to_string();
    Ok(RentalPaymentOut { outcome, paid_now: paid_now && order.status == OrderStatus::Paid, order })
}

/// Confirms a rental's gateway payment after the user comes back. Safe to
/// repeat, and safe alongside the gateway's webhook: a payment is recorded once.
#[utoipa::path(
    post, path = "/api/rentals/verify-payment", tag = "rentals",
    security(("bearer" = [])),
    request_body = VerifyRentalPaymentIn,
    responses(
        (status = 200, description = "What the gateway says and the order's state", body = RentalPaymentOut),
        (status = 400, description = "The callback data's signature does not verify", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such rental payment of the caller's", body = ErrorBody),
        (status = 409, description = "The gateway reports another amount; nothing was recorded", body = ErrorBody),
        (status = 422, description = "The gateway refused the verification", body = ErrorBody),
        (status = 502, description = "The gateway is unavailable; the payment stays pending", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time; the payment stays pending", body = ErrorBody),
    )
)]
pub async fn verify_payment(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<VerifyRentalPaymentIn>,
) -> Result<Json<RentalPaymentOut>, ApiError> {
    let (intent, order_id) = {
        let id = body.intent_id.clone();
        state
            .db
            .read(move |c| {
                let intent = user_intent(c, user.id, &id)?;
                let order = order_by_intent(c, &intent.id)?.ok_or_else(|| ApiError::not_found("rental payment"))?;
                Ok((intent, order.id))
            })
            .await?
    };
    // Recorded before: nothing to ask.
    if intent.status == IntentStatus::Completed {
        return Ok(Json(state.db.read(move |c| payment_out(c, order_id, false)).await?));
    }
    let callback = callback_params(body.pidx, body.data, body.params);
    let verified = match ask_gateway(&state, &intent, callback).await {
        Ok(v) => v,
        Err(e) => {
            record_failure(&state, &intent, &e).await;
            return Err(e);
        }
    };
    let (_, out) = settle(&state, &intent, &verified, move |tx, settled| match settled {
        Settled::AmountMismatch => Ok(None),
        Settled::Credited(_) => payment_out(tx, order_id, true).map(Some),
        _ => payment_out(tx, order_id, false).map(Some),
    })
    .await?;
    out.map(Json).ok_or_else(|| gateway_failure(&intent.gateway, GatewayError::AmountMismatch))
}

/// Which paid order to start: `intent_id` or `order_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRentalIn {
    /// The `intent.id` from `initiate`.
    pub intent_id: Option<String>,
    /// The order `id` from `initiate`.
    pub order_id: Option<i64>,
}

/// Starts a rental paid through a gateway: reserves a slot at the order's
/// station and ejects, exactly as a wallet rental. If the station refuses or
/// stays silent, the rental fails and the amount paid is credited to the
/// wallet (the error says so).
#[utoipa::path(
    post, path = "/api/rentals/start", tag = "rentals",
    security(("bearer" = [])),
    request_body = StartRentalIn,
    responses(
        (status = 201, description = "The station ejected a power bank; the rental is active", body = RentalOut),
        (status = 400, description = "Neither intent_id nor order_id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 402, description = "Unpaid dues", body = ErrorBody),
        (status = 404, description = "No such rental order of the caller's", body = ErrorBody),
        (status = 409, description = "Not paid yet (`payment_pending`), already started or ended (`invalid_rental_state`), a rental in progress, station offline or no charged power bank", body = ErrorBody),
        (status = 502, description = "The station could not eject: the payment went to the wallet", body = ErrorBody),
        (status = 504, description = "The station did not answer in time: the payment went to the wallet", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<StartRentalIn>,
) -> Result<(StatusCode, Json<RentalOut>), ApiError> {
    let user_id = user.id;
    let settings = state.settings.clone();
    let (reserved, amount) = state
        .db
        .write(move |tx| {
            let order = match (body.order_id, body.intent_id.as_deref()) {
                (Some(id), _) => order_by_id(tx, id)?,
                (None, Some(intent)) => order_by_intent(tx, intent.trim())?,
                (None, None) => return Err(ApiError::bad_request("give intent_id or order_id")),
            }
            .filter(|o| o.user_id == user_id)
            .ok_or_else(|| ApiError::not_found("rental order"))?;
            match order.status {
                OrderStatus::Paid => {}
                OrderStatus::AwaitingPayment => {
                    return Err(ApiError::conflict(
                        "payment_pending",
                        "the payment is not confirmed yet: pay at the gateway, then POST /api/rentals/verify-payment",
                    )
                    .with_details(json!({"intent_id": order.payment_intent_id})));
                }
                OrderStatus::Started => {
                    return Err(ApiError::conflict("invalid_rental_state", "this rental has already started")
                        .with_details(json!({"rental_id": order.rental_id})));
                }
                other => {
                    return Err(ApiError::conflict(
                        "invalid_rental_state",
                        format!("cannot start a rental whose payment is {other}"),
                    ));
                }
            }
            check_can_start(tx, &settings, user_id)?;
            let (station_id, sn) = online_station(tx, StationRef::Id(order.station_id))?;
            let reserved = reserve(
                tx,
                sn,
                NewRental {
                    user_id,
                    package_id: order.package_id,
                    payment_method: &order.gateway,
                    station_id,
                    amount_paisa: order.amount_paisa,
                    due_minutes: order.due_minutes,
                    discount_paisa: order.discount_paisa,
                    coupon_id: order.coupon_id,
                },
            )?;
            let rental_id = reserved.rental_id;
            tx.execute(
                "UPDATE rentals SET gateway_paisa = ?2, transaction_id = ?3 WHERE id = ?1",
                params![rental_id, order.amount_paisa, order.transaction_id],
            )?;
            if let Some(t) = order.transaction_id {
                ledger::attach_rental(tx, t, rental_id)?;
            }
            let started = tx.execute(
                "UPDATE rental_orders SET status = ?4, rental_id = ?2, updated_at = ?3
                 WHERE id = ?1 AND status = ?5",
                params![order.id, rental_id, now_ts(), OrderStatus::Started, OrderStatus::Paid],
            )?;
            if started == 0 {
                return Err(ApiError::conflict("invalid_rental_state", "this rental payment is no longer open"));
            }
            coupons::attach_rental(tx, order.id, rental_id)?;
            Ok((reserved, order.amount_paisa))
        })
        .await?;
    let refund = RefundNote {
        message: format!("the NPR {} you paid was credited to your wallet", format_npr(amount)),
        details: json!({"refunded_to": "wallet", "refunded_paisa": amount}),
    };
    let rental = eject_and_settle(&state, reserved, refund).await?;
    Ok((StatusCode::CREATED, Json(rental)))
}
