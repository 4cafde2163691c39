//! Postpaid packages (`payment_model = postpaid`): nothing is charged at the
//! start, which needs only `rentals.postpaid_min_balance_paisa` in the
//! wallet; at the return the pricing plugin's price for the package is
//! charged from the wallet (with any overdue charge, as for every rental),
//! and what the wallet cannot cover is recorded as a due, which blocks the
//! next rental until paid. A return within the free window costs nothing.

use axum::http::StatusCode;
use powerbank_plugin_runtime::types::{CallContext, QuoteRequest};
use rusqlite::{Transaction, params};
use serde_json::json;

use super::{
    charge,
    initiate::{
        NewRental, RefundNote, StationRef, check_can_start, check_no_open_order, eject_and_settle, online_station,
        reserve,
    },
    model::{RentalCore, RentalOut},
    settings::POSTPAID_MIN_BALANCE_PAISA,
};
use crate::{
    core::{ApiError, money::format_npr},
    ledger::{self, TransactionKind, WalletKind},
    packages::{self, PaymentModel},
    state::AppState,
};

/// Whether the package is paid at return.
pub async fn is_postpaid(state: &AppState, package_id: i64) -> Result<bool, ApiError> {
    let model = state.db.read(move |c| packages::payment_model(c, package_id)).await?;
    Ok(model == PaymentModel::Postpaid)
}

fn below_minimum(balance: i64, minimum: i64) -> ApiError {
    ApiError::new(
        StatusCode::PAYMENT_REQUIRED,
        "postpaid_min_balance",
        format!("a postpaid rental needs at least NPR {} in your wallet", format_npr(minimum)),
    )
    .with_details(json!({"min_balance_paisa": minimum, "balance_paisa": balance}))
}

/// Starts a postpaid rental: the wallet must hold the minimum; nothing is
/// charged; the eject is as for any rental.
pub async fn initiate(
    state: &AppState,
    user_id: i64,
    station_sn: String,
    package_id: i64,
    payment_method: &str,
    coupon_code: Option<&str>,
) -> Result<RentalOut, ApiError> {
    if payment_method.trim() != "wallet" {
        return Err(ApiError::invalid_field(
            "payment_method",
            "a postpaid package is paid from the wallet at return: use `wallet`",
        ));
    }
    if coupon_code.is_some_and(|c| !c.trim().is_empty()) {
        return Err(ApiError::invalid_field("coupon_code", "coupons apply to prepaid packages"));
    }
    // The due time comes from the plugin, as for prepaid packages.
    let (_, quote) = packages::quote(state, user_id, package_id, Some(station_sn.clone())).await?;
    let settings = state.settings.clone();
    let reserved = state
        .db
        .write(move |tx| {
            check_can_start(tx, &settings, user_id)?;
            check_no_open_order(tx, user_id)?;
            let minimum = settings.int(tx, POSTPAID_MIN_BALANCE_PAISA)?;
            let balance = ledger::wallet_balance(tx, user_id)?.unwrap_or(0);
            if balance < minimum {
                return Err(below_minimum(balance, minimum));
            }
            let (station_id, sn) = online_station(tx, StationRef::Serial(&station_sn))?;
            let reserved = reserve(
                tx,
                sn,
                NewRental {
                    user_id,
                    package_id,
                    payment_method: "wallet",
                    station_id,
                    amount_paisa: 0,
                    due_minutes: i64::from(quote.due_minutes),
                    discount_paisa: 0,
                    coupon_id: None,
                },
            )?;
            tx.execute(
                "UPDATE rentals SET payment_model = ?2 WHERE id = ?1",
                params![reserved.rental_id, PaymentModel::Postpaid],
            )?;
            Ok(reserved)
        })
        .await?;
    let refund = RefundNote { message: "nothing was charged".into(), details: json!({}) };
    eject_and_settle(state, reserved, refund).await
}

/// The price a postpaid rental pays at return (0 for a prepaid one, or a
/// return within the free window): the pricing plugin's quote for its
/// package, at the return time.
pub async fn price_at_return(
    state: &AppState,
    rental: &RentalCore,
    returned_at: i64,
    in_grace: bool,
) -> Result<i64, ApiError> {
    let id = rental.id;
    let model: PaymentModel = state
        .db
        .read(move |c| Ok(c.query_row("SELECT payment_model FROM rentals WHERE id = ?1", [id], |r| r.get(0))?))
        .await?;
    if model != PaymentModel::Postpaid || in_grace {
        return Ok(0);
    }
    let context =
        CallContext { user_id: Some(rental.user_id.to_string()), station_sn: None, now_unix_ms: returned_at * 1000 };
    let quote = state
        .plugins
        .pricing()
        .quote(QuoteRequest { package: rental.package_info(), requested_minutes: None, context })
        .await?;
    Ok(quote.amount_paisa.max(0))
}

/// Charges a postpaid rental's price at return, in the transaction that
/// closes it: from the wallet as far as it goes, the rest as a due.
pub fn charge_at_return(tx: &Transaction<'_>, rental_id: i64, user_id: i64, price: i64) -> Result<(), ApiError> {
    if price <= 0 {
        return Ok(());
    }
    let balance = ledger::wallet_balance(tx, user_id)?.unwrap_or(0);
    let from_wallet = balance.min(price);
    let code: String = tx.query_row("SELECT code FROM rentals WHERE id = ?1", [rental_id], |r| r.get(0))?;
    let transaction_id = if from_wallet > 0 {
        charge::charge(
            tx,
            user_id,
            from_wallet,
            charge::Split::wallet(from_wallet),
            charge::ChargeFor {
                kind: TransactionKind::Rental,
                wallet_kind: WalletKind::RentalCharge,
                rental_id: Some(rental_id),
                description: &format!("Rental {code} (postpaid, charged at return)"),
            },
        )?
        .transaction_id
    } else {
        None
    };
    tx.execute(
        "UPDATE rentals SET amount_paisa = ?2, wallet_paisa = ?3, transaction_id = COALESCE(?4, transaction_id),
            unpaid_due_paisa = unpaid_due_paisa + ?5
         WHERE id = ?1",
        params![rental_id, price, from_wallet, transaction_id, price - from_wallet],
    )?;
    Ok(())
}
