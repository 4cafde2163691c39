//! The ledger: the only code that changes wallet and points balances or
//! writes payment records (`transactions`). It sits below every domain that
//! moves money (payments, points, rentals) and imports none of them.
//!
//! Each function runs inside the caller's transaction and writes the balance
//! and its ledger row together; a balance that would go negative refuses the
//! whole transaction.

use rusqlite::{OptionalExtension, Transaction, params};

use rusqlite::Connection;

use crate::core::{ApiError, now_ts, text_enum::text_enum};

text_enum! {
    /// What a wallet ledger entry is for (`wallet_transactions.kind`).
    pub enum WalletKind {
        Topup = "topup",
        RentalCharge = "rental_charge",
        ExtensionCharge = "extension_charge",
        OverdueCharge = "overdue_charge",
        Refund = "refund",
        Adjustment = "adjustment",
        /// A credit or debit an operator made by hand, with a reason
        /// (`POST /api/admin/users/{id}/wallet-adjustments`).
        OperatorAdjustment = "operator_adjustment",
        /// A gateway payment for something that no longer applied when the
        /// money arrived (a due paid otherwise, an extension of a rental
        /// that ended, an intent that had expired), credited like a top-up.
        UnappliedPayment = "unapplied_payment",
    }
}

/// The points ledger kind of an operator's credit or debit by hand.
pub const POINTS_OPERATOR_ADJUSTMENT: &str = "operator_adjustment";

text_enum! {
    /// What a payment was for (`transactions.kind`).
    pub enum TransactionKind {
        Topup = "topup",
        Rental = "rental",
        RentalExtension = "rental_extension",
        Overdue = "overdue",
        Refund = "refund",
    }
}

text_enum! {
    /// Where a payment stands (`transactions.status`).
    pub enum TransactionStatus {
        Pending = "pending",
        Success = "success",
        Failed = "failed",
        Refunded = "refunded",
    }
}

fn insufficient(what: &str, have: i64, need: i64) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYMENT_REQUIRED,
        "insufficient_balance",
        format!("{what} balance too low: {have} available, {need} needed"),
    )
    .with_details(serde_json::json!({ "available": have, "required": need, "missing": need - have }))
}

/// Adds (`delta > 0`) or removes (`delta < 0`) paisa; returns the new balance.
pub fn wallet_change(
    tx: &Transaction<'_>,
    user_id: i64,
    delta: i64,
    kind: WalletKind,
    transaction_id: Option<i64>,
    description: &str,
) -> Result<i64, ApiError> {
    if delta == 0 {
        return Err(ApiError::internal("zero wallet change"));
    }
    let now = now_ts();
    // The guard in the WHERE clause makes check-and-update one statement, so
    // no interleaving can spend the same paisa twice.
    let balance: Option<i64> = tx
        .query_row(
            "UPDATE wallets SET balance_paisa = balance_paisa + ?2, updated_at = ?3
             WHERE user_id = ?1 AND balance_paisa + ?2 >= 0
             RETURNING balance_paisa",
            params![user_id, delta, now],
            |r| r.get(0),
        )
        .optional()?;
    let Some(balance) = balance else {
        let have: i64 = tx
            .query_row("SELECT balance_paisa FROM wallets WHERE user_id = ?1", [user_id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| ApiError::not_found("wallet"))?;
        return Err(insufficient("wallet", have, -delta));
    };
    tx.execute(
        "INSERT INTO wallet_transactions
            (user_id, direction, kind, amount_paisa, balance_after_paisa, transaction_id, description, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            user_id,
            if delta > 0 { "credit" } else { "debit" },
            kind,
            delta.abs(),
            balance,
            transaction_id,
            description,
            now
        ],
    )?;
    Ok(balance)
}

/// Grants points that expire at `expires_at`; returns the new balance.
pub fn points_earn(
    tx: &Transaction<'_>,
    user_id: i64,
    points: i64,
    reason: &str,
    expires_at: Option<i64>,
    transaction_id: Option<i64>,
) -> Result<i64, ApiError> {
    if points <= 0 {
        return Err(ApiError::internal("points to earn must be positive"));
    }
    let now = now_ts();
    let balance: i64 = tx.query_row(
        "UPDATE user_points SET balance = balance + ?2, total_earned = total_earned + ?2, updated_at = ?3
         WHERE user_id = ?1 RETURNING balance",
        params![user_id, points, now],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO points_transactions
            (user_id, direction, kind, points, balance_after, reason, expires_at, remaining, transaction_id, created_at)
         VALUES (?1, 'credit', 'earned', ?2, ?3, ?4, ?5, ?2, ?6, ?7)",
        params![user_id, points, balance, reason, expires_at, transaction_id, now],
    )?;
    Ok(balance)
}

/// Spends points, oldest grants first; returns the new balance.
pub fn points_spend(
    tx: &Transaction<'_>,
    user_id: i64,
    points: i64,
    kind: &str,
    reason: &str,
    transaction_id: Option<i64>,
) -> Result<i64, ApiError> {
    if points <= 0 {
        return Err(ApiError::internal("points to spend must be positive"));
    }
    let now = now_ts();
    let balance: Option<i64> = tx
        .query_row(
            "UPDATE user_points SET balance = balance - ?2, total_spent = total_spent + ?2, updated_at = ?3
             WHERE user_id = ?1 AND balance >= ?2 RETURNING balance",
            params![user_id, points, now],
            |r| r.get(0),
        )
        .optional()?;
    let Some(balance) = balance else {
        let have: i64 = tx.query_row("SELECT balance FROM user_points WHERE user_id = ?1", [user_id], |r| r.get(0))?;
        return Err(insufficient("points", have, points));
    };
    consume_grants(tx, user_id, points)?;
    tx.execute(
        "INSERT INTO points_transactions
            (user_id, direction, kind, points, balance_after, reason, transaction_id, created_at)
         VALUES (?1, 'debit', ?2, ?3, ?4, ?5, ?6, ?7)",
        params![user_id, kind, points, balance, reason, transaction_id, now],
    )?;
    Ok(balance)
}

/// An operator's points credit (`delta > 0`, a grant that does not expire)
/// or debit (`delta < 0`, oldest grants first), of kind
/// [`POINTS_OPERATOR_ADJUSTMENT`]; returns the new balance.
pub fn points_adjust(tx: &Transaction<'_>, user_id: i64, delta: i64, reason: &str) -> Result<i64, ApiError> {
    if delta < 0 {
        return points_spend(tx, user_id, -delta, POINTS_OPERATOR_ADJUSTMENT, reason, None);
    }
    if delta == 0 {
        return Err(ApiError::internal("zero points change"));
    }
    let now = now_ts();
    let balance: i64 = tx.query_row(
        "UPDATE user_points SET balance = balance + ?2, total_earned = total_earned + ?2, updated_at = ?3
         WHERE user_id = ?1 RETURNING balance",
        params![user_id, delta, now],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO points_transactions
            (user_id, direction, kind, points, balance_after, reason, expires_at, remaining, created_at)
         VALUES (?1, 'credit', ?2, ?3, ?4, ?5, NULL, ?3, ?6)",
        params![user_id, POINTS_OPERATOR_ADJUSTMENT, delta, balance, reason, now],
    )?;
    Ok(balance)
}

/// Takes `points` from the oldest grants that still have some left.
fn consume_grants(tx: &Transaction<'_>, user_id: i64, mut points: i64) -> Result<(), ApiError> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, remaining FROM points_transactions
         WHERE user_id = ?1 AND remaining > 0 ORDER BY COALESCE(expires_at, 9223372036854775807), id",
    )?;
    let grants: Vec<(i64, i64)> =
        stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    for (id, remaining) in grants {
        if points == 0 {
            break;
        }
        let take = remaining.min(points);
        tx.execute("UPDATE points_transactions SET remaining = remaining - ?2 WHERE id = ?1", params![id, take])?;
        points -= take;
    }
    Ok(())
}

/// Removes what is left of grants that expired by `now`, one ledger row per
/// user. Returns how many points expired in total.
pub fn expire_points(tx: &Transaction<'_>, now: i64) -> Result<i64, ApiError> {
    let mut stmt = tx.prepare_cached(
        "SELECT user_id, SUM(remaining) FROM points_transactions
         WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?1 GROUP BY user_id",
    )?;
    let due: Vec<(i64, i64)> = stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    let mut total = 0;
    for (user_id, points) in due {
        tx.execute(
            "UPDATE points_transactions SET remaining = 0
             WHERE user_id = ?1 AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?2",
            params![user_id, now],
        )?;
        let balance: i64 = tx.query_row(
            "UPDATE user_points SET balance = MAX(balance - ?2, 0), updated_at = ?3 WHERE user_id = ?1 RETURNING balance",
            params![user_id, points, now],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO points_transactions (user_id, direction, kind, points, balance_after, reason, created_at)
             VALUES (?1, 'debit', 'expired', ?2, ?3, 'points expired', ?4)",
            params![user_id, points, balance, now],
        )?;
        total += points;
    }
    Ok(total)
}

/// Records a payment; `reference` is the public id shown to users.
pub struct NewTransaction<'a> {
    pub user_id: i64,
    pub kind: TransactionKind,
    pub status: TransactionStatus,
    pub amount_paisa: i64,
    pub wallet_paisa: i64,
    pub points_used: i64,
    pub points_value_paisa: i64,
    pub gateway: Option<&'a str>,
    pub payment_intent_id: Option<&'a str>,
    pub rental_id: Option<i64>,
    pub description: &'a str,
}

pub fn record_transaction(tx: &Transaction<'_>, t: NewTransaction<'_>) -> Result<(i64, String), ApiError> {
    let now = now_ts();
    let reference = format!("TXN-{}", uuid::Uuid::new_v4().simple().to_string()[..12].to_uppercase());
    tx.execute(
        "INSERT INTO transactions (reference, user_id, kind, status, amount_paisa, wallet_paisa, points_used,
            points_value_paisa, gateway, payment_intent_id, rental_id, description, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
        params![
            reference,
            t.user_id,
            t.kind,
            t.status,
            t.amount_paisa,
            t.wallet_paisa,
            t.points_used,
            t.points_value_paisa,
            t.gateway,
            t.payment_intent_id,
            t.rental_id,
            t.description,
            now
        ],
    )?;
    Ok((tx.last_insert_rowid(), reference))
}

/// Moves a payment to `status` (a refund processed, failed or given back).
pub fn set_transaction_status(tx: &Transaction<'_>, id: i64, status: TransactionStatus) -> Result<(), ApiError> {
    tx.execute("UPDATE transactions SET status = ?2, updated_at = ?3 WHERE id = ?1", params![id, status, now_ts()])?;
    Ok(())
}

/// Links a payment made before its rental existed (a gateway payment) to
/// the rental it paid for.
pub fn attach_rental(tx: &Transaction<'_>, id: i64, rental_id: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE transactions SET rental_id = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, rental_id, now_ts()],
    )?;
    Ok(())
}

/// The user's wallet balance in paisa; `None` when the user has no wallet.
pub fn wallet_balance(c: &Connection, user_id: i64) -> Result<Option<i64>, ApiError> {
    Ok(c.query_row("SELECT balance_paisa FROM wallets WHERE user_id = ?1", [user_id], |r| r.get(0)).optional()?)
}

/// The user's points balance.
pub fn points_balance(c: &Connection, user_id: i64) -> Result<i64, ApiError> {
    Ok(c.query_row("SELECT balance FROM user_points WHERE user_id = ?1", [user_id], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        core::{Db, Role},
        users::{auth::create_user, identifier::Identifier},
    };

    async fn db_with_user() -> (tempfile::TempDir, Db, i64) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::schema::open_db(&dir.path().join("ledger.db"), 2).unwrap();
        let user = db
            .write(|tx| {
                create_user(tx, &Identifier::Phone("+9779800000001".into()), Role::User, None, None, None, now_ts())
            })
            .await
            .unwrap();
        (dir, db, user)
    }

    #[tokio::test]
    async fn fifty_concurrent_spends_of_one_balance_succeed_once() {
        let (_dir, db, user) = db_with_user().await;
        db.write(move |tx| wallet_change(tx, user, 10_000, WalletKind::Topup, None, "top-up")).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.write(move |tx| {
                    wallet_change(tx, user, -10_000, WalletKind::RentalCharge, None, &format!("spend {i}"))
                })
                .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(balance) => {
                    ok += 1;
                    assert_eq!(balance, 0);
                }
                Err(e) => assert_eq!(e.code, "insufficient_balance"),
            }
        }
        assert_eq!(ok, 1);
        let (balance, rows): (i64, i64) = db
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT (SELECT balance_paisa FROM wallets WHERE user_id = ?1),
                            (SELECT COUNT(*) FROM wallet_transactions WHERE user_id = ?1)",
                    [user],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .unwrap();
        assert_eq!((balance, rows), (0, 2), "one top-up row and one spend row");
    }

    #[tokio::test]
    async fn points_are_spent_oldest_first_and_expire_with_a_ledger_row() {
        let (_dir, db, user) = db_with_user().await;
        let now = now_ts();
        db.write(move |tx| {
            points_earn(tx, user, 50, "signup", Some(now - 10), None)?; // already expired
            points_earn(tx, user, 100, "referral", Some(now + 1000), None)?;
            points_earn(tx, user, 5, "no expiry", None, None)?;
            // Spending takes the oldest-expiring grant first: 30 of the 50.
            points_spend(tx, user, 30, "spent", "rental", None)
        })
        .await
        .unwrap();
        let expired = db.write(move |tx| expire_points(tx, now)).await.unwrap();
        assert_eq!(expired, 20, "only the unspent part of the expired grant");
        let (balance, last_kind, last_points): (i64, String, i64) = db
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT (SELECT balance FROM user_points WHERE user_id = ?1), kind, points
                     FROM points_transactions WHERE user_id = ?1 ORDER BY id DESC LIMIT 1",
                    [user],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?)
            })
            .await
            .unwrap();
        assert_eq!((balance, last_kind.as_str(), last_points), (105, "expired", 20));
        // Running the expiry again removes nothing more.
        assert_eq!(db.write(move |tx| expire_points(tx, now)).await.unwrap(), 0);
    }
}
