//! `powerbank verify`: recomputes every wallet and points balance from its
//! ledger rows and reports each one that differs. The ledgers are the record;
//! a balance is a cache of their sum that every change updates in the same
//! transaction, so any difference means something went around the ledger.

use rusqlite::Connection;
use serde::Serialize;

/// A balance that is not the sum of its ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `wallet` (paisa) or `points`.
    pub ledger: &'static str,
    pub user_id: i64,
    /// What `wallets` / `user_points` hold (`None`: no balance row at all).
    pub stored: Option<i64>,
    /// Credits minus debits of the user's ledger rows.
    pub from_ledger: i64,
    /// `balance_after` of the user's newest ledger row, which must equal the balance.
    pub last_balance_after: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub wallets_checked: i64,
    pub points_accounts_checked: i64,
    pub wallet_ledger_rows: i64,
    pub points_ledger_rows: i64,
    pub differences: Vec<Difference>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// One query per ledger: every balance row beside its ledger's sum and its
/// newest row's `balance_after`, plus ledger rows of users without a
/// balance row. Runs in one read transaction, so a live server's writes
/// never show half-applied.
const WALLETS: &str = "
    WITH sums AS (
        SELECT user_id,
               SUM(CASE direction WHEN 'credit' THEN amount_paisa ELSE -amount_paisa END) AS total,
               MAX(id) AS last_id
          FROM wallet_transactions GROUP BY user_id)
    SELECT w.user_id, w.balance_paisa, COALESCE(s.total, 0),
           (SELECT balance_after_paisa FROM wallet_transactions WHERE id = s.last_id)
      FROM wallets w LEFT JOIN sums s ON s.user_id = w.user_id
    UNION ALL
    SELECT s.user_id, NULL, s.total, (SELECT balance_after_paisa FROM wallet_transactions WHERE id = s.last_id)
      FROM sums s WHERE NOT EXISTS (SELECT 1 FROM wallets w WHERE w.user_id = s.user_id)";

const POINTS: &str = "
    WITH sums AS (
        SELECT user_id,
               SUM(CASE direction WHEN 'credit' THEN points ELSE -points END) AS total,
               MAX(id) AS last_id
          FROM points_transactions GROUP BY user_id)
    SELECT p.user_id, p.balance, COALESCE(s.total, 0),
           (SELECT balance_after FROM points_transactions WHERE id = s.last_id)
      FROM user_points p LEFT JOIN sums s ON s.user_id = p.user_id
    UNION ALL
    SELECT s.user_id, NULL, s.total, (SELECT balance_after FROM points_transactions WHERE id = s.last_id)
      FROM sums s WHERE NOT EXISTS (SELECT 1 FROM user_points p WHERE p.user_id = s.user_id)";

fn check(conn: &Connection, ledger: &'static str, sql: &str, out: &mut Vec<Difference>) -> rusqlite::Result<i64> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let mut accounts = 0;
    while let Some(row) = rows.next()? {
        let (user_id, stored, from_ledger, last): (i64, Option<i64>, i64, Option<i64>) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        if stored.is_some() {
            accounts += 1;
        }
        let chained = last.is_none_or(|after| Some(after) == stored);
        if stored != Some(from_ledger) || !chained {
            out.push(Difference { ledger, user_id, stored, from_ledger, last_balance_after: last });
        }
    }
    Ok(accounts)
}

/// Checks every balance of the database `conn` is open on.
pub fn verify(conn: &mut Connection) -> anyhow::Result<VerifyReport> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
    let mut report = VerifyReport::default();
    report.wallets_checked = check(&tx, "wallet", WALLETS, &mut report.differences)?;
    report.points_accounts_checked = check(&tx, "points", POINTS, &mut report.differences)?;
    report.wallet_ledger_rows = tx.query_row("SELECT COUNT(*) FROM wallet_transactions", [], |r| r.get(0))?;
    report.points_ledger_rows = tx.query_row("SELECT COUNT(*) FROM points_transactions", [], |r| r.get(0))?;
    Ok(report)
}

/// Opens the database file read-only (safe beside a running server) and verifies it.
pub fn verify_file(path: &std::path::Path) -> anyhow::Result<VerifyReport> {
    anyhow::ensure!(path.is_file(), "no database at {}", path.display());
    let mut conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    verify(&mut conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        core::{Role, now_ts},
        ledger::{WalletKind, points_earn, points_spend, wallet_change},
        users::{auth::create_user, identifier::Identifier},
    };

    #[tokio::test]
    async fn balances_kept_by_the_ledger_verify_and_a_tampered_one_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let db = crate::schema::open_db(&path, 1).unwrap();
        let (a, b) = db
            .write(|tx| {
                let now = now_ts();
                let a =
                    create_user(tx, &Identifier::Phone("+9779800000011".into()), Role::User, None, None, None, now)?;
                let b =
                    create_user(tx, &Identifier::Phone("+9779800000012".into()), Role::User, None, None, None, now)?;
                wallet_change(tx, a, 50_000, WalletKind::Topup, None, "top-up")?;
                wallet_change(tx, a, -12_500, WalletKind::RentalCharge, None, "rental")?;
                points_earn(tx, a, 40, "signup", None, None)?;
                points_spend(tx, a, 15, "spent", "rental", None)?;
                wallet_change(tx, b, 1_000, WalletKind::Topup, None, "top-up")?;
                Ok((a, b))
            })
            .await
            .unwrap();
        let report = verify_file(&path).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!((report.wallets_checked, report.points_accounts_checked), (2, 2));
        assert_eq!((report.wallet_ledger_rows, report.points_ledger_rows), (3, 2));

        // A balance changed around the ledger, and a ledger row with no balance row.
        db.write(move |tx| {
            tx.execute("UPDATE wallets SET balance_paisa = balance_paisa + 1 WHERE user_id = ?1", [b])?;
            tx.execute("UPDATE user_points SET balance = 0 WHERE user_id = ?1", [a])?;
            Ok(())
        })
        .await
        .unwrap();
        let report = verify_file(&path).unwrap();
        assert_eq!(
            report.differences,
            vec![
                Difference {
                    ledger: "wallet",
                    user_id: b,
                    stored: Some(1_001),
                    from_ledger: 1_000,
                    last_balance_after: Some(1_000)
                },
                Difference {
                    ledger: "points",
                    user_id: a,
                    stored: Some(0),
                    from_ledger: 25,
                    last_balance_after: Some(25)
                },
            ]
        );
    }
}
