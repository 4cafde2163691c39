//! Rental orders: rentals paid through a payment gateway (Khalti, eSewa,
//! Stripe plugins) before they start. The endpoints are in
//! [`super::order_routes`].
//!
//! `POST /api/rentals/initiate` with a gateway as `payment_method` charges
//! and ejects nothing: it prices the rental (coupon included), opens the
//! payment through the payments domain's intent machinery (purpose `rental`)
//! and records a rental order `awaiting_payment`. The payment is confirmed by
//! `POST /api/rentals/verify-payment`, by the gateway's webhook or by the
//! background check, whichever comes first; the payments domain records the
//! money as a `rental` transaction through the gateway and hands it to
//! [`RentalPayments`], registered for the `rental` purpose, once. `POST /api/rentals/start` then reserves a slot
//! and ejects exactly as a wallet rental does; if the eject fails, the amount
//! paid goes to the wallet (a `refund` ledger row).
//!
//! An order whose payment ends unpaid ends with it (`payment_ended`, from
//! the payments domain's expiry and cancellation); money that arrives for an
//! order that ended, or a paid order not started within
//! [`PAID_ORDER_TTL_SECS`], goes to the wallet. Every transition is one
//! transaction guarded by the state it leaves.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    charge,
    initiate::{Priced, StationRef, check_can_start, check_no_open_order, online_station},
};
use crate::{
    core::{ApiError, money::format_npr, now_ts, text_enum::text_enum, ts_to_rfc3339},
    ledger::TransactionKind,
    payments::{
        intents::{IntentOut, IntentPurpose, IntentStatus, find_intent, open_at_gateway, store_intent},
        purposes::{IntentPaid, PurposeHandler},
    },
    promotions::coupons,
    state::AppState,
    stations::slots,
};

/// A paid order not started within this long is refunded to the wallet.
pub const PAID_ORDER_TTL_SECS: i64 = 30 * 60;

text_enum! {
    /// Where a rental order stands (`rental_orders.status`), see the module docs.
    pub enum OrderStatus {
        AwaitingPayment = "awaiting_payment",
        Paid = "paid",
        Started = "started",
        Expired = "expired",
        Cancelled = "cancelled",
        Failed = "failed",
        /// The money went to the wallet.
        Refunded = "refunded",
    }
}

/// A rental paid (or to be paid) through a gateway, before and after it starts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RentalOrderOut {
    pub id: i64,
    pub status: OrderStatus,
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
pub(super) struct Order {
    pub(super) id: i64,
    pub(super) user_id: i64,
    pub(super) station_id: i64,
    pub(super) package_id: i64,
    pub(super) gateway: String,
    pub(super) payment_intent_id: String,
    pub(super) status: OrderStatus,
    pub(super) discount_paisa: i64,
    pub(super) amount_paisa: i64,
    pub(super) coupon_id: Option<i64>,
    pub(super) due_minutes: i64,
    pub(super) transaction_id: Option<i64>,
    pub(super) rental_id: Option<i64>,
}

const ORDER_COLUMNS: &str = "id, user_id, station_id, package_id, gateway, payment_intent_id, status, discount_paisa,
    amount_paisa, coupon_id, due_minutes, transaction_id, rental_id";

fn order_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
    Ok(Order {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        station_id: r.get("station_id")?,
        package_id: r.get("package_id")?,
        gateway: r.get("gateway")?,
        payment_intent_id: r.get("payment_intent_id")?,
        status: r.get("status")?,
        discount_paisa: r.get("discount_paisa")?,
        amount_paisa: r.get("amount_paisa")?,
        coupon_id: r.get("coupon_id")?,
        due_minutes: r.get("due_minutes")?,
        transaction_id: r.get("transaction_id")?,
        rental_id: r.get("rental_id")?,
    })
}

pub(super) fn order_by_intent(c: &Connection, intent_id: &str) -> Result<Option<Order>, ApiError> {
    Ok(c.query_row(
        &format!("SELECT {ORDER_COLUMNS} FROM rental_orders WHERE payment_intent_id = ?1"),
        [intent_id],
        order_from_row,
    )
    .optional()?)
}

pub(super) fn order_by_id(c: &Connection, id: i64) -> Result<Option<Order>, ApiError> {
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
            let status: OrderStatus = r.get(1)?;
            let amount: i64 = r.get(10)?;
            Ok(RentalOrderOut {
                id: r.get(0)?,
                next_step: match status {
                    OrderStatus::AwaitingPayment => "pay",
                    OrderStatus::Paid => "start",
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
            "SELECT id FROM rental_orders WHERE user_id = ?1 AND status IN (?2, ?3)",
            params![user_id, OrderStatus::AwaitingPayment, OrderStatus::Paid],
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
    let (settings, first_check) = (state.settings.clone(), state.settings.clone());
    let station_id = state
        .db
        .read(move |c| {
            check_can_start(c, &first_check, user_id)?;
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
            check_can_start(tx, &settings, user_id)?;
            check_no_open_order(tx, user_id)?;
            let now = now_ts();
            store_intent(tx, user_id, IntentPurpose::Rental, &opened)?;
            tx.execute(
                "INSERT INTO rental_orders (user_id, package_id, station_id, gateway, payment_intent_id, status,
                    list_amount_paisa, discount_paisa, amount_paisa, coupon_id, due_minutes, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?12, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
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
                    now,
                    OrderStatus::AwaitingPayment
                ],
            )?;
            let order_id = tx.last_insert_rowid();
            if let Some(c) = &priced.coupon {
                coupons::redeem(tx, user_id, c, None, Some(order_id))?;
            }
            priced.redeem_campaign(tx, user_id, None, Some(order_id))?;
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
        "UPDATE rental_orders SET status = ?4, paid_at = ?2, transaction_id = ?3, updated_at = ?2
         WHERE payment_intent_id = ?1 AND status = ?5",
        params![intent_id, now, transaction_id, OrderStatus::Paid, OrderStatus::AwaitingPayment],
    )?;
    if paid == 1 {
        return Ok(());
    }
    tx.execute(
        "UPDATE rental_orders SET status = ?4, transaction_id = ?3, updated_at = ?2
         WHERE payment_intent_id = ?1 AND status IN (?5, ?6, ?7)",
        params![
            intent_id,
            now,
            transaction_id,
            OrderStatus::Refunded,
            OrderStatus::Expired,
            OrderStatus::Cancelled,
            OrderStatus::Failed
        ],
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
        IntentStatus::Expired => OrderStatus::Expired,
        IntentStatus::Cancelled => OrderStatus::Cancelled,
        _ => OrderStatus::Failed,
    };
    let ended: Option<i64> = tx
        .query_row(
            "UPDATE rental_orders SET status = ?2, updated_at = ?3
             WHERE payment_intent_id = ?1 AND status = ?4 RETURNING id",
            params![intent_id, status, now_ts(), OrderStatus::AwaitingPayment],
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
    // The literal matches the partial index `rental_orders_paid`.
    let mut stmt = tx.prepare("SELECT id FROM rental_orders WHERE status = 'paid' AND paid_at < ?1")?;
    let stale: Vec<i64> = stmt.query_map([now - PAID_ORDER_TTL_SECS], |r| r.get(0))?.collect::<Result<_, _>>()?;
    drop(stmt);
    for id in stale {
        refund_paid_order(tx, id, now, "Rental not started: payment returned to the wallet")?;
    }
    Ok(())
}

/// paid → refunded: the payment goes to the wallet and the coupon counts as
/// unused. Returns whether this call refunded it (false: not `paid` any more).
pub(super) fn refund_paid_order(tx: &Transaction<'_>, id: i64, now: i64, description: &str) -> Result<bool, ApiError> {
    let row: Option<(i64, Option<i64>, i64)> = tx
        .query_row(
            "UPDATE rental_orders SET status = ?3, updated_at = ?2 WHERE id = ?1 AND status = ?4
             RETURNING user_id, transaction_id, amount_paisa",
            params![id, now, OrderStatus::Refunded, OrderStatus::Paid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((user_id, transaction_id, amount)) = row else { return Ok(false) };
    charge::refund(tx, user_id, transaction_id, amount, 0, description)?;
    coupons::release_for_order(tx, id)?;
    tracing::info!(order = id, user_id, amount, description, "paid rental order refunded to the wallet");
    Ok(true)
}
