//! Paying for rentals, extensions and dues from points and the wallet, and
//! giving it back. Points go first, at the points plugin's rate, then the
//! wallet (seed §5, "payment priority").

use rusqlite::Transaction;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    core::{ApiError, AppState},
    payments::ledger::{self, NewTransaction, WalletKind},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Wallet,
    Points,
    WalletPoints,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Wallet => "wallet",
            PaymentMethod::Points => "points",
            PaymentMethod::WalletPoints => "wallet_points",
        }
    }
}

/// Paisa one point is worth, from the points plugin. The rules are linear
/// (10 points = NPR 1 by default), so one call prices every split.
pub async fn paisa_per_point(state: &AppState) -> Result<i64, ApiError> {
    Ok(state.plugins.points().points_to_paisa(1000).await? / 1000)
}

/// How a charge is split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub wallet_paisa: i64,
    pub points: i64,
    pub points_value_paisa: i64,
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// Splits `amount` for `method` given the user's points; `None` when points
/// cannot pay (no value) for a points-only charge.
pub fn split(amount: i64, method: PaymentMethod, points_balance: i64, per_point: i64) -> Result<Split, ApiError> {
    if amount == 0 {
        return Ok(Split::default());
    }
    let points_for_all = if per_point > 0 { ceil_div(amount, per_point) } else { i64::MAX };
    match method {
        PaymentMethod::Wallet => Ok(Split { wallet_paisa: amount, ..Split::default() }),
        PaymentMethod::Points => {
            if points_balance < points_for_all {
                return Err(ApiError::new(
                    axum::http::StatusCode::PAYMENT_REQUIRED,
                    "insufficient_balance",
                    format!("{points_for_all} points needed, {points_balance} available"),
                )
                .with_details(serde_json::json!({"required": points_for_all, "available": points_balance})));
            }
            Ok(Split { wallet_paisa: 0, points: points_for_all, points_value_paisa: amount })
        }
        PaymentMethod::WalletPoints => {
            let points = points_balance.clamp(0, points_for_all);
            let value = if per_point > 0 { (points * per_point).min(amount) } else { 0 };
            let points = if value == 0 { 0 } else { points };
            Ok(Split { wallet_paisa: amount - value, points, points_value_paisa: value })
        }
    }
}

pub struct Charged {
    pub split: Split,
    pub transaction_id: Option<i64>,
}

/// What a charge pays for, as recorded in the ledgers.
pub struct ChargeFor<'a> {
    /// `transactions.kind`: `rental`, `rental_extension` or `overdue`.
    pub kind: &'a str,
    pub wallet_kind: WalletKind,
    pub rental_id: Option<i64>,
    pub description: &'a str,
}

/// Charges `amount` inside the caller's transaction: a `transactions` row plus
/// the wallet and points ledger rows. Fails whole if any part cannot be paid.
pub fn charge(
    tx: &Transaction<'_>,
    user_id: i64,
    amount: i64,
    method: PaymentMethod,
    per_point: i64,
    what: ChargeFor<'_>,
) -> Result<Charged, ApiError> {
    let ChargeFor { kind, wallet_kind, rental_id, description } = what;
    if amount == 0 {
        return Ok(Charged { split: Split::default(), transaction_id: None });
    }
    let points_balance: i64 =
        tx.query_row("SELECT balance FROM user_points WHERE user_id = ?1", [user_id], |r| r.get(0))?;
    let split = split(amount, method, points_balance, per_point)?;
    let (transaction_id, _) = ledger::record_transaction(
        tx,
        NewTransaction {
            user_id,
            kind,
            status: "success",
            amount_paisa: amount,
            wallet_paisa: split.wallet_paisa,
            points_used: split.points,
            points_value_paisa: split.points_value_paisa,
            gateway: None,
            payment_intent_id: None,
            rental_id,
            description,
        },
    )?;
    if split.points > 0 {
        ledger::points_spend(tx, user_id, split.points, "spent", description, Some(transaction_id))?;
    }
    if split.wallet_paisa > 0 {
        ledger::wallet_change(tx, user_id, -split.wallet_paisa, wallet_kind, Some(transaction_id), description)?;
    }
    Ok(Charged { split, transaction_id: Some(transaction_id) })
}

/// Gives back a charge in full: wallet paisa and points, with ledger rows, and
/// marks its transaction refunded.
pub fn refund(
    tx: &Transaction<'_>,
    user_id: i64,
    transaction_id: Option<i64>,
    wallet_paisa: i64,
    points: i64,
    description: &str,
) -> Result<(), ApiError> {
    if wallet_paisa > 0 {
        ledger::wallet_change(tx, user_id, wallet_paisa, WalletKind::Refund, transaction_id, description)?;
    }
    if points > 0 {
        ledger::points_earn(tx, user_id, points, description, None, transaction_id)?;
    }
    if let Some(id) = transaction_id {
        tx.execute(
            "UPDATE transactions SET status = 'refunded', updated_at = ?2 WHERE id = ?1",
            rusqlite::params![id, crate::core::now_ts()],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_first_then_wallet() {
        // 10 paisa a point (10 points = NPR 1).
        let s = split(5_000, PaymentMethod::WalletPoints, 120, 10).unwrap();
        assert_eq!(s, Split { wallet_paisa: 3_800, points: 120, points_value_paisa: 1_200 });
        let s = split(5_000, PaymentMethod::WalletPoints, 10_000, 10).unwrap();
        assert_eq!(s, Split { wallet_paisa: 0, points: 500, points_value_paisa: 5_000 });
        let s = split(5_005, PaymentMethod::Points, 501, 10).unwrap();
        assert_eq!(s.points, 501, "a part-point rounds up");
        assert!(split(5_000, PaymentMethod::Points, 499, 10).is_err());
        assert_eq!(split(5_000, PaymentMethod::Wallet, 10_000, 10).unwrap().wallet_paisa, 5_000);
        assert_eq!(split(5_000, PaymentMethod::WalletPoints, 100, 0).unwrap().wallet_paisa, 5_000);
    }
}
