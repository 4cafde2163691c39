//! A rental's unpaid due (`pay-due`) or an extension (`extend`) paid through
//! a gateway, the way a gateway rental is paid ([`super::orders`]).
//!
//! With a gateway as `payment_method`, those requests answer 202 with a
//! [`RentalGatewayPaymentOut`]: a payment intent opened by the payments
//! domain (purpose `rental_due` or `rental_extension`) and a
//! `rental_gateway_payments` row saying what it pays for. The payment is
//! confirmed by `POST /api/rentals/{id}/verify-payment`, the gateway's
//! webhook or the background check, whichever comes first; the payments
//! domain records the money once (an `overdue` or `rental_extension`
//! transaction through the gateway) and hands it to [`DuePayments`] or
//! [`ExtensionPayments`] in the same transaction. There the due is settled
//! or the extension made, if it still applies; if the due was paid another
//! way meanwhile, the rental is no longer active, or the intent had expired
//! or ended, the money goes to the wallet instead (`unapplied_payment`), so
//! it is never lost and never counted twice.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use powerbank_plugin_runtime::types::GatewayError;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{
    extend,
    model::{self, RentalOut, RentalStatus},
    order_routes::VerifyRentalPaymentIn,
};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, AuthUser, error::ErrorBody, money::format_npr, now_ts, text_enum::text_enum,
        ts_to_rfc3339,
    },
    ledger::{self, TransactionKind, TransactionStatus, WalletKind},
    payments::{
        gateway_errors::gateway_failure,
        intents::{
            IntentOut, IntentPurpose, IntentStatus, Settled, ask_gateway, callback_params, find_intent,
            open_at_gateway, record_failure, settle, store_intent, user_intent,
        },
        purposes::{IntentPaid, PurposeHandler},
    },
    state::AppState,
};

text_enum! {
    /// What a gateway payment of a rental pays for (`rental_gateway_payments.purpose`,
    /// the same text as its intent's purpose).
    pub enum RentalPaymentPurpose {
        /// The rental's unpaid due.
        Due = "rental_due",
        /// More minutes for an active rental.
        Extension = "rental_extension",
    }
}

text_enum! {
    /// Where a gateway payment of a rental stands (`rental_gateway_payments.status`).
    pub enum RentalPaymentStatus {
        AwaitingPayment = "awaiting_payment",
        /// Paid while it applied: the due settled, the extension made.
        Applied = "applied",
        /// Paid when it no longer applied: the money went to the wallet.
        CreditedToWallet = "credited_to_wallet",
        Expired = "expired",
        Cancelled = "cancelled",
        Failed = "failed",
    }
}

impl RentalPaymentPurpose {
    fn intent_purpose(self) -> IntentPurpose {
        match self {
            RentalPaymentPurpose::Due => IntentPurpose::RentalDue,
            RentalPaymentPurpose::Extension => IntentPurpose::RentalExtension,
        }
    }
}

/// A rental's due or extension paid (or to be paid) through a gateway.
#[derive(Debug, Serialize, ToSchema)]
pub struct RentalGatewayPaymentOut {
    pub id: i64,
    pub rental_id: i64,
    pub purpose: RentalPaymentPurpose,
    pub status: RentalPaymentStatus,
    /// `pay` (at the gateway, then `POST /api/rentals/{id}/verify-payment`) or `none`.
    pub next_step: String,
    /// The gateway plugin: `khalti`, `esewa`, `stripe`, ...
    pub gateway: String,
    /// What is paid at the gateway, paisa.
    pub amount_paisa: i64,
    pub amount_npr: String,
    /// Extensions: the minutes bought.
    pub extra_minutes: Option<i64>,
    /// The gateway payment, once it arrived.
    pub transaction_id: Option<i64>,
    /// When the payment was applied or credited to the wallet.
    pub settled_at: Option<String>,
    pub created_at: String,
    /// The gateway payment: `payment_url` (Khalti), `form` (eSewa) or
    /// `client_secret` (Stripe) open the gateway's checkout.
    pub intent: IntentOut,
}

/// What `POST /api/rentals/{id}/verify-payment` found and did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RentalGatewayPaymentResult {
    /// `applied` (by this request), `already_applied`, `credited_to_wallet`
    /// (it no longer applied when paid), `pending`, `expired`, `cancelled`
    /// or `failed`.
    pub outcome: String,
    /// Whether this request recorded the payment.
    pub paid_now: bool,
    pub payment: RentalGatewayPaymentOut,
    /// The rental as it is now (its due cleared, its due time moved).
    pub rental: RentalOut,
}

/// Columns the transitions need.
struct Payment {
    id: i64,
    rental_id: i64,
    user_id: i64,
    purpose: RentalPaymentPurpose,
    status: RentalPaymentStatus,
    amount_paisa: i64,
    extra_minutes: Option<i64>,
    expires_at: i64,
}

fn payment_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Payment> {
    Ok(Payment {
        id: r.get("id")?,
        rental_id: r.get("rental_id")?,
        user_id: r.get("user_id")?,
        purpose: r.get("purpose")?,
        status: r.get("status")?,
        amount_paisa: r.get("amount_paisa")?,
        extra_minutes: r.get("extra_minutes")?,
        expires_at: r.get("expires_at")?,
    })
}

fn payment_by_intent(c: &Connection, intent_id: &str) -> Result<Option<Payment>, ApiError> {
    Ok(c.query_row(
        "SELECT id, rental_id, user_id, purpose, status, amount_paisa, extra_minutes, expires_at
         FROM rental_gateway_payments WHERE payment_intent_id = ?1",
        [intent_id],
        payment_from_row,
    )
    .optional()?)
}

/// The payment as the API shows it.
fn load_out(c: &Connection, id: i64) -> Result<RentalGatewayPaymentOut, ApiError> {
    let (out, intent_id) = c
        .query_row(
            "SELECT id, rental_id, purpose, status, gateway, amount_paisa, extra_minutes, transaction_id, settled_at,
                    created_at, payment_intent_id
             FROM rental_gateway_payments WHERE id = ?1",
            [id],
            |r| {
                let status: RentalPaymentStatus = r.get("status")?;
                let amount: i64 = r.get("amount_paisa")?;
                let intent_id: String = r.get("payment_intent_id")?;
                Ok((
                    (
                        r.get::<_, i64>("id")?,
                        r.get::<_, i64>("rental_id")?,
                        r.get::<_, RentalPaymentPurpose>("purpose")?,
                        status,
                        r.get::<_, String>("gateway")?,
                        amount,
                        r.get::<_, Option<i64>>("extra_minutes")?,
                        r.get::<_, Option<i64>>("transaction_id")?,
                        r.get::<_, Option<i64>>("settled_at")?,
                        r.get::<_, i64>("created_at")?,
                    ),
                    intent_id,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| ApiError::not_found("rental payment"))?;
    let intent = find_intent(c, &intent_id)?.ok_or_else(|| ApiError::internal("rental payment without its intent"))?;
    let (id, rental_id, purpose, status, gateway, amount, extra_minutes, transaction_id, settled_at, created_at) = out;
    Ok(RentalGatewayPaymentOut {
        id,
        rental_id,
        purpose,
        next_step: if status == RentalPaymentStatus::AwaitingPayment { "pay" } else { "none" }.to_string(),
        status,
        gateway,
        amount_paisa: amount,
        amount_npr: format_npr(amount),
        extra_minutes,
        transaction_id,
        settled_at: settled_at.map(ts_to_rfc3339),
        created_at: ts_to_rfc3339(created_at),
        intent: intent.into(),
    })
}

/// What a gateway payment of a rental is for, as `pay-due` and `extend` ask.
pub(super) struct Wanted {
    pub rental_id: i64,
    pub purpose: RentalPaymentPurpose,
    pub amount_paisa: i64,
    /// Extensions only.
    pub extra_minutes: Option<i64>,
}

/// Refuses a payment that does not apply now: the due must still be the
/// one priced, the rental to extend still active, and no other payment of
/// the same kind for the rental waiting at a gateway.
fn check_applies(c: &Connection, user_id: i64, w: &Wanted) -> Result<(), ApiError> {
    let rental = model::load_core(c, w.rental_id)?
        .filter(|r| r.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("rental"))?;
    match w.purpose {
        RentalPaymentPurpose::Due if rental.unpaid_due_paisa != w.amount_paisa => {
            return Err(ApiError::conflict("nothing_due", "this due was already paid"));
        }
        RentalPaymentPurpose::Extension if rental.status != RentalStatus::Active => {
            return Err(model::illegal(rental.status, "extend"));
        }
        _ => {}
    }
    let open: Option<String> = c
        .query_row(
            "SELECT payment_intent_id FROM rental_gateway_payments
             WHERE rental_id = ?1 AND purpose = ?2 AND status = ?3",
            params![w.rental_id, w.purpose, RentalPaymentStatus::AwaitingPayment],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(intent_id) = open {
        return Err(ApiError::conflict(
            "payment_in_progress",
            "a gateway payment for this is waiting: pay it, or cancel it with POST /api/payment/cancel/{intent_id}",
        )
        .with_details(json!({ "intent_id": intent_id, "purpose": w.purpose })));
    }
    Ok(())
}

/// Opens the gateway payment of a due or an extension: 202 with the payment.
pub(super) async fn open(
    state: &AppState,
    user_id: i64,
    wanted: Wanted,
    gateway: String,
    return_url: Option<String>,
) -> Result<Response, ApiError> {
    crate::payments::intents::check_return_url(return_url.as_deref())?;
    let rental_id = wanted.rental_id;
    let (checked, code) = state
        .db
        .read(move |c| {
            check_applies(c, user_id, &wanted)?;
            let code: String = c.query_row("SELECT code FROM rentals WHERE id = ?1", [rental_id], |r| r.get(0))?;
            Ok((wanted, code))
        })
        .await?;
    let purpose = checked.purpose;
    let description = match purpose {
        RentalPaymentPurpose::Due => format!("powerbank rental {code}: unpaid due"),
        RentalPaymentPurpose::Extension => {
            format!("powerbank rental {code}: {} more minutes", checked.extra_minutes.unwrap_or_default())
        }
    };
    let opened = open_at_gateway(state, user_id, &gateway, checked.amount_paisa, description, return_url).await?;
    let out = state
        .db
        .write(move |tx| {
            // Checked again where it counts: the state may have moved while
            // the gateway answered.
            check_applies(tx, user_id, &checked)?;
            let intent = store_intent(tx, user_id, purpose.intent_purpose(), &opened)?;
            let now = now_ts();
            tx.execute(
                "INSERT INTO rental_gateway_payments (rental_id, user_id, payment_intent_id, purpose, gateway, status,
                    amount_paisa, extra_minutes, expires_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![
                    checked.rental_id,
                    user_id,
                    intent.id,
                    purpose,
                    gateway,
                    RentalPaymentStatus::AwaitingPayment,
                    checked.amount_paisa,
                    checked.extra_minutes,
                    intent.expires_at,
                    now
                ],
            )?;
            load_out(tx, tx.last_insert_rowid())
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}

/// How the payments domain hands paid dues to this module: registered for
/// the `rental_due` purpose by `server::build_state`.
pub struct DuePayments;

impl PurposeHandler for DuePayments {
    fn transaction_kind(&self) -> TransactionKind {
        TransactionKind::Overdue
    }

    fn description(&self) -> &'static str {
        "Overdue charge"
    }

    fn paid(&self, tx: &Transaction<'_>, payment: IntentPaid<'_>) -> Result<(), ApiError> {
        payment_received(tx, payment)
    }

    fn ended(&self, tx: &Transaction<'_>, intent_id: &str, status: IntentStatus) -> Result<(), ApiError> {
        payment_ended(tx, intent_id, status)
    }
}

/// How the payments domain hands paid extensions to this module: registered
/// for the `rental_extension` purpose by `server::build_state`.
pub struct ExtensionPayments;

impl PurposeHandler for ExtensionPayments {
    fn transaction_kind(&self) -> TransactionKind {
        TransactionKind::RentalExtension
    }

    fn description(&self) -> &'static str {
        "Rental extension"
    }

    fn paid(&self, tx: &Transaction<'_>, payment: IntentPaid<'_>) -> Result<(), ApiError> {
        payment_received(tx, payment)
    }

    fn ended(&self, tx: &Transaction<'_>, intent_id: &str, status: IntentStatus) -> Result<(), ApiError> {
        payment_ended(tx, intent_id, status)
    }
}

/// The payments domain recorded the money (once, in this transaction): the
/// due is settled or the extension made if it still applies; otherwise the
/// money goes to the wallet.
fn payment_received(tx: &Transaction<'_>, paid: IntentPaid<'_>) -> Result<(), ApiError> {
    let now = now_ts();
    let p = payment_by_intent(tx, paid.intent_id)?
        .ok_or_else(|| ApiError::internal(format!("no rental payment for intent {}", paid.intent_id)))?;
    ledger::attach_rental(tx, paid.transaction_id, p.rental_id)?;
    let applies = p.status == RentalPaymentStatus::AwaitingPayment && now <= p.expires_at;
    let applied = applies
        && match p.purpose {
            RentalPaymentPurpose::Due => {
                // Only the due it was opened for: one paid another way, or
                // changed since, is not paid twice.
                tx.execute(
                    "UPDATE rentals SET unpaid_due_paisa = 0, updated_at = ?3
                     WHERE id = ?1 AND unpaid_due_paisa = ?2 AND unpaid_due_paisa > 0",
                    params![p.rental_id, p.amount_paisa, now],
                )? == 1
            }
            RentalPaymentPurpose::Extension => extend::apply(
                tx,
                p.rental_id,
                p.extra_minutes.unwrap_or_default(),
                p.amount_paisa,
                Some(paid.transaction_id),
                now,
            )?,
        };
    let status = if applied {
        RentalPaymentStatus::Applied
    } else {
        let why = match p.purpose {
            RentalPaymentPurpose::Due => "Due payment that no longer applied, credited to the wallet",
            RentalPaymentPurpose::Extension => "Extension payment that no longer applied, credited to the wallet",
        };
        ledger::wallet_change(
            tx,
            p.user_id,
            p.amount_paisa,
            WalletKind::UnappliedPayment,
            Some(paid.transaction_id),
            why,
        )?;
        // The payment now lives in the wallet: it is not refundable again as a due or extension.
        ledger::set_transaction_status(tx, paid.transaction_id, TransactionStatus::Refunded)?;
        tracing::info!(
            intent_id = paid.intent_id,
            user_id = p.user_id,
            amount = p.amount_paisa,
            "late rental payment credited to the wallet"
        );
        RentalPaymentStatus::CreditedToWallet
    };
    tx.execute(
        "UPDATE rental_gateway_payments SET status = ?2, transaction_id = ?3, settled_at = ?4, updated_at = ?4
         WHERE id = ?1",
        params![p.id, status, paid.transaction_id, now],
    )?;
    Ok(())
}

/// The intent ended unpaid: so does the payment (money that arrives later
/// goes to the wallet).
fn payment_ended(tx: &Transaction<'_>, intent_id: &str, intent_status: IntentStatus) -> Result<(), ApiError> {
    let status = match intent_status {
        IntentStatus::Expired => RentalPaymentStatus::Expired,
        IntentStatus::Cancelled => RentalPaymentStatus::Cancelled,
        _ => RentalPaymentStatus::Failed,
    };
    tx.execute(
        "UPDATE rental_gateway_payments SET status = ?2, updated_at = ?3 WHERE payment_intent_id = ?1 AND status = ?4",
        params![intent_id, status, now_ts(), RentalPaymentStatus::AwaitingPayment],
    )?;
    Ok(())
}

fn result_out(
    c: &Connection,
    user_id: i64,
    rental_id: i64,
    payment_id: i64,
    paid_now: bool,
) -> Result<RentalGatewayPaymentResult, ApiError> {
    let payment = load_out(c, payment_id)?;
    let paid_now = paid_now && payment.status != RentalPaymentStatus::AwaitingPayment;
    let outcome = match (paid_now, payment.status) {
        (true, RentalPaymentStatus::Applied) => "applied",
        (false, RentalPaymentStatus::Applied) => "already_applied",
        (_, RentalPaymentStatus::AwaitingPayment) => "pending",
        (_, other) => other.as_str(),
    }
    .to_string();
    let rental = model::load_own(c, user_id, rental_id)?;
    Ok(RentalGatewayPaymentResult { outcome, paid_now, payment, rental })
}

/// Confirms the gateway payment of a rental's due or extension after the
/// user comes back. Safe to repeat, and safe alongside the gateway's
/// webhook and the background check: a payment is recorded once.
#[utoipa::path(
    post, path = "/api/rentals/{id}/verify-payment", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = VerifyRentalPaymentIn,
    responses(
        (status = 200, description = "What the gateway says and what became of the payment", body = RentalGatewayPaymentResult),
        (status = 400, description = "The callback data's signature does not verify", body = ErrorBody),
        (status = 404, description = "No such rental of yours, or no such payment for it", body = ErrorBody),
        (status = 409, description = "The gateway reports another amount; nothing was recorded", body = ErrorBody),
        (status = 422, description = "The gateway refused the verification", body = ErrorBody),
        (status = 502, description = "The gateway is unavailable; the payment stays pending", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time; the payment stays pending", body = ErrorBody),
    )
)]
pub async fn verify_payment(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<VerifyRentalPaymentIn>,
) -> Result<Json<RentalGatewayPaymentResult>, ApiError> {
    let user_id = user.id;
    model::own_core(&state, user_id, id).await?;
    let (intent, payment_id) = {
        let intent_id = body.intent_id.clone();
        state
            .db
            .read(move |c| {
                let intent = user_intent(c, user_id, &intent_id)?;
                let payment = payment_by_intent(c, &intent.id)?
                    .filter(|p| p.rental_id == id)
                    .ok_or_else(|| ApiError::not_found("rental payment"))?;
                Ok((intent, payment.id))
            })
            .await?
    };
    // Recorded before: nothing to ask.
    if intent.status == IntentStatus::Completed {
        return Ok(Json(state.db.read(move |c| result_out(c, user_id, id, payment_id, false)).await?));
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
        Settled::Credited(_) => result_out(tx, user_id, id, payment_id, true).map(Some),
        _ => result_out(tx, user_id, id, payment_id, false).map(Some),
    })
    .await?;
    out.map(Json).ok_or_else(|| gateway_failure(&intent.gateway, GatewayError::AmountMismatch))
}
