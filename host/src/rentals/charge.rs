//! Paying for rentals, extensions and dues from points and the wallet, and
//! giving it back. Points go first, at the points plugin's rate, then the
//! wallet (seed §5, "payment priority").

use rusqlite::Transaction;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    core::ApiError,
    ledger::{self, NewTransaction, TransactionKind, TransactionStatus, WalletKind},
    payments::options::{points_covering, points_worth_at_most},
    state::AppState,
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

/// How a charge is split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub wallet_paisa: i64,
    pub points: i64,
    pub points_value_paisa: i64,
}

impl Split {
    pub fn wallet(amount: i64) -> Self {
        Split { wallet_paisa: amount, ..Split::default() }
    }
}

/// Splits `amount` for `method` at the points plugin's rate, with the same
/// rules `POST /api/payment/calculate-options` shows the user. The balances
/// are checked again when the charge is written.
pub async fn plan_split(state: &AppState, user_id: i64, amount: i64, method: PaymentMethod) -> Result<Split, ApiError> {
    if amount == 0 || method == PaymentMethod::Wallet {
        return Ok(Split::wallet(amount));
    }
    let balance: i64 = state.db.read(move |c| ledger::points_balance(c, user_id)).await?;
    match method {
        PaymentMethod::Points => match points_covering(state, balance, amount).await? {
            // Points worth at least the amount pay all of it.
            Some((points, _)) => Ok(Split { wallet_paisa: 0, points, points_value_paisa: amount }),
            None => Err(ApiError::new(
                axum::http::StatusCode::PAYMENT_REQUIRED,
                "insufficient_balance",
                format!("{balance} points are not worth {amount} paisa"),
            )
            .with_details(serde_json::json!({"available": balance, "required_paisa": amount}))),
        },
        _ => {
            let (points, value) = points_worth_at_most(state, balance, amount).await?;
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
    /// `rental`, `rental_extension` or `overdue`.
    pub kind: TransactionKind,
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
    split: Split,
    what: ChargeFor<'_>,
) -> Result<Charged, ApiError> {
    let ChargeFor { kind, wallet_kind, rental_id, description } = what;
    if amount == 0 {
        return Ok(Charged { split: Split::default(), transaction_id: None });
    }
    if split.wallet_paisa + split.points_value_paisa != amount {
        return Err(ApiError::internal("payment split does not add up to the amount"));
    }
    let (transaction_id, _) = ledger::record_transaction(
        tx,
        NewTransaction {
            user_id,
            kind,
            status: TransactionStatus::Success,
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
        ledger::set_transaction_status(tx, id, TransactionStatus::Refunded)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Config,
        core::now_ts,
        users::{auth::create_user, identifier::Identifier},
    };

    /// Through the real points plugin (10 points = NPR 1, so 10 paisa a point).
    #[tokio::test]
    async fn points_first_then_wallet() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::server::build_state(Config::for_tests(dir.path())).await.unwrap();
        let with_points = |phone: &'static str, points: i64| {
            let state = state.clone();
            async move {
                state
                    .db
                    .write(move |tx| {
                        let now = now_ts();
                        let id = create_user(
                            tx,
                            &Identifier::Phone(phone.into()),
                            crate::core::Role::User,
                            None,
                            None,
                            None,
                            now,
                        )?;
                        ledger::points_earn(tx, id, points, "test", None, None)?;
                        Ok(id)
                    })
                    .await
                    .unwrap()
            }
        };
        let some = with_points("+9779800000101", 120).await;
        let many = with_points("+9779800000102", 10_000).await;
        let odd = with_points("+9779800000103", 501).await;
        let few = with_points("+9779800000104", 499).await;
        let split = |user, amount, method| plan_split(&state, user, amount, method);
        assert_eq!(
            split(some, 5_000, PaymentMethod::WalletPoints).await.unwrap(),
            Split { wallet_paisa: 3_800, points: 120, points_value_paisa: 1_200 }
        );
        assert_eq!(
            split(many, 5_000, PaymentMethod::WalletPoints).await.unwrap(),
            Split { wallet_paisa: 0, points: 500, points_value_paisa: 5_000 }
        );
        assert_eq!(split(odd, 5_005, PaymentMethod::Points).await.unwrap().points, 501, "a part-point rounds up");
        assert_eq!(
            split(odd, 5_005, PaymentMethod::WalletPoints).await.unwrap(),
            Split { wallet_paisa: 5, points: 500, points_value_paisa: 5_000 },
            "mixed payments never overspend points"
        );
        assert!(split(few, 5_000, PaymentMethod::Points).await.is_err());
        assert_eq!(split(many, 5_000, PaymentMethod::Wallet).await.unwrap(), Split::wallet(5_000));
    }
}
