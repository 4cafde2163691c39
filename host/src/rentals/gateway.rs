//! Rentals paid through a payment gateway (Khalti, eSewa, Stripe plugins).
//!
//! `POST /api/rentals/initiate` with a gateway as `payment_method` charges
//! and ejects nothing: it prices the rental (coupon included), opens the
//! payment through the payments domain's intent machinery (purpose `rental`)
//! and records a rental order `awaiting_payment`. The payment is confirmed by
//! `POST /api/rentals/verify-payment`, by the gateway's webhook or by the
//! background check, whichever comes first; the payments domain records the
//! money as a `rental` transaction through the gateway and calls
//! `payment_received`, once. `POST /api/rentals/start` then reserves a slot
//! and ejects exactly as a wallet rental does; if the eject fails, the amount
//! paid goes to the wallet (a `refund` ledger row).
//!
//! An order whose payment ends unpaid ends with it ([`payment_ended`], from
//! the payments domain's expiry and cancellation); money that arrives for an
//! order that ended, or a paid order not started within
//! [`PAID_ORDER_TTL_SECS`], goes to the wallet. Every transition is one
//! transaction guarded by the state it leaves.

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode};
use powerbank_plugin_runtime::types::GatewayError;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{
    charge,
    initiate::{
        NewRental, Priced, RefundNote, StationRef, check_can_start, check_no_open_order, eject_and_settle,
        online_station, reserve,
    },
    model::RentalOut,
};
use crate::{
    core::{ApiError, ApiJson, AuthUser, error::ErrorBody, money::format_npr, now_ts, ts_to_rfc3339},
    ledger::{self, TransactionKind},
    payments::{
        gateway_errors::gateway_failure,
        intents::{
            IntentOut, IntentPurpose, IntentStatus, Settled, ask_gateway, callback_params, find_intent,
            open_at_gateway, record_failure, settle, store_intent, user_intent,
        },
        purposes::{IntentPaid, PurposeHandler},
    },
    promotions::coupons,
    state::AppState,
    stations::slots,
};

/// A paid order not started within this long is refunded to the wallet.
pub const PAID_ORDER_TTL_SECS: i64 = 30 * 60;

/// A rental paid (or to be paid) through a gateway, before and after it starts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RentalOrderOut {
    pub id: i64,
    /// `awaiting_payment`, `paid`, `started`, `expired`, `cancelled`,
    /// `failed` or `refunded` (the money went to the wallet).
    pub status: String,
    /// `pay` (at the gateway, then verify-payment), `start`, or `none`.
    pub next_step: String,
    pub station_sn: String,
    pub station_name: String,
    pub package_id: i64,
    pub package_code: String,
    /// The gateway plugin: `khalti`, `esewa`, `stripe`, ...
    pub gateway: String,
    /// The package price before any coupon, paisa.
    pub list_amount_paisa: i64,
    pub discount_paisa: i64,
    pub coupon_code: Option<String>,
    /// What is paid at the gateway, paisa.
    pub amount_paisa: i64,
    pub amount_npr: String,
    pub due_minutes: i64,
    /// The rental, once started.
    pub rental_id: Option<i64>,
    /// The gateway payment, once it arrived.
    pub transaction_id: Option<i64>,
    pub paid_at: Option<String>,
    pub created_at: String,
    /// The gateway payment: `payment_url` (Khalti), `form` (eSewa) or
    /// `client_secret` (Stripe) open the gateway's checkout.
    pub intent: IntentOut,
}

/// Columns the transitions need.
struct Order {
    id: i64,
    user_id: i64,
    station_id: i64,
    package_id: i64,
    gateway: String,
    payment_intent_id: String,
    status: String,
    discount_paisa: i64,
    amount_paisa: i64,
    coupon_id: Option<i64>,
    due_minutes: i64,
    transaction_id: Option<i64>,
    rental_id: Option<i64>,
}

const ORDER_COLUMNS: &str = "id, user_id, station_id, package_id, gateway, payment_intent_id, status, discount_paisa,
    amount_paisa, coupon_id, due_minutes, transaction_id, rental_id";

fn order_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
    Ok(Order {
        id: r.get(0)?,
        user_id: r.get(1)?,
        station_id: r.get(2)?,
        package_id: r.get(3)?,
        gateway: r.get(4)?,
        payment_intent_id: r.get(5)?,
        status: r.get(6)?,
        discount_paisa: r.get(7)?,
        amount_paisa: r.get(8)?,
        coupon_id: r.get(9)?,
        due_minutes: r.get(10)?,
        transaction_id: r.get(11)?,
        rental_id: r.get(12)?,
    })
}

fn order_by_intent(c: &Connection, intent_id: &str) -> Result<Option<Order>, ApiError> {
    Ok(c.query_row(
        &format!("SELECT {ORDER_COLUMNS} FROM rental_orders WHERE payment_intent_id = ?1"),
        [intent_id],
        order_from_row,
    )
    .optional()?)
}

fn order_by_id(c: &Connection, id: i64) -> Result<Option<Order>, ApiError> {
    Ok(c.query_row(&format!("SELECT {ORDER_COLUMNS} FROM rental_orders WHERE id = ?1"), [id], order_from_row)
        .optional()?)
}

/// The order as the API shows it.
pub fn load_order_out(c: &Connection, id: i64) -> Result<RentalOrderOut, ApiError> {
    let intent_id: String = c
        .query_row("SELECT payment_intent_id FROM rental_orders WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| ApiError::not_found("rental order"))?;
    let intent = find_intent(c, &intent_id)?.ok_or_else(|| ApiError::internal("rental order without its intent"))?;
    let intent = IntentOut::from(intent);
    Ok(c.query_row(
        "SELECT o.id, o.status, s.serial_number, s.name, p.id, p.code, o.gateway, o.list_amount_paisa,
                o.discount_paisa, cp.code, o.amount_paisa, o.due_minutes, o.rental_id, o.transaction_id,
                o.paid_at, o.created_at
         FROM rental_orders o
         JOIN stations s ON s.id = o.station_id
         JOIN rental_packages p ON p.id = o.package_id
         LEFT JOIN coupons cp ON cp.id = o.coupon_id
         WHERE o.id = ?1",
        [id],
        move |r| {
            let status: String = r.get(1)?;
            let amount: i64 = r.get(10)?;
            Ok(RentalOrderOut {
                id: r.get(0)?,
                next_step: match status.as_str() {
                    "awaiting_payment" => "pay",
                    "paid" => "start",
                    _ => "none",
                }
                .to_string(),
                status,
                station_sn: r.get(2)?,
                station_name: r.get(3)?,
                package_id: r.get(4)?,
                package_code: r.get(5)?,
                gateway: r.get(6)?,
                list_amount_paisa: r.get(7)?,
                discount_paisa: r.get(8)?,
                coupon_code: r.get(9)?,
                amount_paisa: amount,
                amount_npr: format_npr(amount),
                due_minutes: r.get(11)?,
                rental_id: r.get(12)?,
                transaction_id: r.get(13)?,
                paid_at: r.get::<_, Option<i64>>(14)?.map(ts_to_rfc3339),
                created_at: ts_to_rfc3339(r.get(15)?),
                intent,
            })
        },
    )?)
}

/// The caller's order waiting for payment or to be started, if any.
pub fn open_order_of(c: &Connection, user_id: i64) -> Result<Option<RentalOrderOut>, ApiError> {
    let id: Option<i64> = c
        .query_row(
            "SELECT id FROM rental_orders WHERE user_id = ?1 AND status IN ('awaiting_payment', 'paid')",
            [user_id],
            |r| r.get(0),
        )
        .optional()?;
    id.map(|id| load_order_out(c, id)).transpose()
}

/// Opens the gateway payment of a priced rental (from `initiate`).
pub(super) async fn open_order(
    state: &AppState,
    user_id: i64,
    station_sn: String,
    package_id: i64,
    gateway: String,
    priced: Priced,
    return_url: Option<String>,
) -> Result<RentalOrderOut, ApiError> {
    // Everything a wallet rental would be refused for is refused before the
    // user pays, including a station that could not eject now.
    let sn = station_sn.clone();
    let station_id = state
        .db
        .read(move |c| {
            check_can_start(c, user_id)?;
            check_no_open_order(c, user_id)?;
            let (station_id, _) = online_station(c, StationRef::Serial(&sn))?;
            slots::rentable_bank(c, station_id)?;
            Ok(station_id)
        })
        .await?;
    let description = format!("powerbank rental {} at {station_sn}", priced.package_code);
    let opened = open_at_gateway(state, user_id, &gateway, priced.amount_paisa, description, return_url).await?;
    state
        .db
        .write(move |tx| {
            check_can_start(tx, user_id)?;
            check_no_open_order(tx, user_id)?;
            let now = now_ts();
            store_intent(tx, user_id, IntentPurpose::Rental, &opened)?;
            tx.execute(
                "INSERT INTO rental_orders (user_id, package_id, station_id, gateway, payment_intent_id, status,
                    list_amount_paisa, discount_paisa, amount_paisa, coupon_id, due_minutes, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'awaiting_payment', ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                params![
                    user_id,
                    package_id,
                    station_id,
                    gateway,
                    opened.id,
                    priced.list_amount_paisa,
                    priced.discount_paisa(),
                    priced.amount_paisa,
                    priced.coupon_id(),
                    priced.due_minutes,
                    now
                ],
            )?;
            let order_id = tx.last_insert_rowid();
            if let Some(c) = &priced.coupon {
                coupons::redeem(tx, user_id, c, None, Some(order_id))?;
            }
            load_order_out(tx, order_id)
        })
        .await
}

/// How the payments domain hands rental payments to this module: registered
/// for the `rental` purpose by `server::build_state`.
pub struct RentalPayments;

impl PurposeHandler for RentalPayments {
    fn transaction_kind(&self) -> TransactionKind {
        TransactionKind::Rental
    }

    fn description(&self) -> &'static str {
        "Rental payment"
    }

    fn paid(&self, tx: &Transaction<'_>, payment: IntentPaid<'_>) -> Result<(), ApiError> {
        payment_received(tx, payment.intent_id, payment.transaction_id, payment.amount_paisa)
    }

    fn ended(&self, tx: &Transaction<'_>, intent_id: &str, status: IntentStatus) -> Result<(), ApiError> {
        payment_ended(tx, intent_id, status)
    }
}

/// The payments domain recorded the money of a rental intent (a `rental`
/// transaction through the gateway): the order is paid. Money for an order
/// that already ended goes to the wallet instead.
fn payment_received(
    tx: &Transaction<'_>,
    intent_id: &str,
    transaction_id: i64,
    amount_paisa: i64,
) -> Result<(), ApiError> {
    let now = now_ts();
    let paid = tx.execute(
        "UPDATE rental_orders SET status = 'paid', paid_at = ?2, transaction_id = ?3, updated_at = ?2
         WHERE payment_intent_id = ?1 AND status = 'awaiting_payment'",
        params![intent_id, now, transaction_id],
    )?;
    if paid == 1 {
        return Ok(());
    }
    tx.execute(
        "UPDATE rental_orders SET status = 'refunded', transaction_id = ?3, updated_at = ?2
         WHERE payment_intent_id = ?1 AND status IN ('expired', 'cancelled', 'failed')",
        params![intent_id, now, transaction_id],
    )?;
    let user_id: i64 = tx.query_row("SELECT user_id FROM payment_intents WHERE id = ?1", [intent_id], |r| r.get(0))?;
    charge::refund(
        tx,
        user_id,
        Some(transaction_id),
        amount_paisa,
        0,
        "Rental payment arrived after the rental order had ended",
    )?;
    tracing::info!(intent_id, user_id, amount_paisa, "late rental payment credited to the wallet");
    Ok(())
}

/// The payment of an order ended unpaid (`expired`, `cancelled`, `failed`):
/// the order ends too and its coupon redemption is released.
fn payment_ended(tx: &Transaction<'_>, intent_id: &str, intent_status: IntentStatus) -> Result<(), ApiError> {
    let status = match intent_status {
        IntentStatus::Expired => "expired",
        IntentStatus::Cancelled => "cancelled",
        _ => "failed",
    };
    let ended: Option<i64> = tx
        .query_row(
            "UPDATE rental_orders SET status = ?2, updated_at = ?3
             WHERE payment_intent_id = ?1 AND status = 'awaiting_payment' RETURNING id",
            params![intent_id, status, now_ts()],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = ended {
        coupons::release_for_order(tx, id)?;
    }
    Ok(())
}

/// Paid orders not started within [`PAID_ORDER_TTL_SECS`]: the money goes to
/// the wallet (from the rentals sweep).
pub fn refund_stale_paid_orders(tx: &Transaction<'_>, now: i64) -> Result<(), ApiError> {
    let mut stmt = tx.prepare("SELECT id FROM rental_orders WHERE status = 'paid' AND paid_at < ?1")?;
    let stale: Vec<i64> = stmt.query_map([now - PAID_ORDER_TTL_SECS], |r| r.get(0))?.collect::<Result<_, _>>()?;
    drop(stmt);
    for id in stale {
        let row: Option<(i64, Option<i64>, i64)> = tx
            .query_row(
                "UPDATE rental_orders SET status = 'refunded', updated_at = ?2 WHERE id = ?1 AND status = 'paid'
                 RETURNING user_id, transaction_id, amount_paisa",
                params![id, now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((user_id, transaction_id, amount)) = row else { continue };
        charge::refund(tx, user_id, transaction_id, amount, 0, "Rental not started: payment returned to the wallet")?;
        coupons::release_for_order(tx, id)?;
        tracing::info!(order = id, user_id, amount, "paid rental order not started; refunded to the wallet");
    }
    Ok(())
}

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
    let outcome = match (paid_now, order.status.as_str()) {
        (true, "paid") => "paid",
        (_, "refunded") => "refunded_to_wallet",
        (_, "paid" | "started") => "already_paid",
        (_, "awaiting_payment") => "pending",
        (_, other) => other,
    }
    .to_string();
    Ok(RentalPaymentOut { outcome, paid_now: paid_now && order.status == "paid", order })
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
            match order.status.as_str() {
                "paid" => {}
                "awaiting_payment" => {
                    return Err(ApiError::conflict(
                        "payment_pending",
                        "the payment is not confirmed yet: pay at the gateway, then POST /api/rentals/verify-payment",
                    )
                    .with_details(json!({"intent_id": order.payment_intent_id})));
                }
                "started" => {
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
            check_can_start(tx, user_id)?;
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
                "UPDATE rental_orders SET status = 'started', rental_id = ?2, updated_at = ?3
                 WHERE id = ?1 AND status = 'paid'",
                params![order.id, rental_id, now_ts()],
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
