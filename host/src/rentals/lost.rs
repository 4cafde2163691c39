//! Power banks that never come back. The pricing plugin's `lost-penalty`
//! says when to remind the user of an overdue rental, when to give up on the
//! bank and what that costs; the periodic sweep ([`overdue_pass`]) acts on
//! it, and a lost bank seated again in any station is reconciled
//! ([`on_found`]). Every step is one transaction guarded by the state it
//! leaves, so running the sweep twice charges once.

use std::collections::HashMap;

use powerbank_plugin_runtime::types::{CallContext, LostPolicy, LostRequest, OverdueRequest};
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use super::{
    charge,
    model::{self, RentalCore, RentalStatus},
};
use crate::{
    core::{ApiError, money::format_npr},
    ledger::{self, TransactionKind, WalletKind},
    state::AppState,
    stations::{self, banks::ChangedBy},
};

/// An active rental past its due time, as the sweep sees it.
struct Overdue {
    rental: RentalCore,
    reminders_sent: i64,
    power_bank: String,
}

fn context(rental: &RentalCore, now: i64) -> CallContext {
    CallContext { user_id: Some(rental.user_id.to_string()), station_sn: None, now_unix_ms: now * 1000 }
}

/// Reminds users of overdue rentals at the plugin's reminder points and
/// declares lost the banks still out `lost-after-minutes` after their due
/// time. A plugin failure skips that rental until the next sweep.
pub async fn overdue_pass(state: &AppState, now: i64) -> Result<(), ApiError> {
    let overdue: Vec<Overdue> = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare(
                "SELECT r.id, r.overdue_reminders_sent, pb.serial_number FROM rentals r
                 JOIN power_banks pb ON pb.id = r.power_bank_id
                 WHERE r.status = ?1 AND r.due_at < ?2",
            )?;
            let rows: Vec<(i64, i64, String)> = stmt
                .query_map(params![RentalStatus::Active, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, reminders_sent, power_bank) in rows {
                if let Some(rental) = model::load_core(c, id)? {
                    out.push(Overdue { rental, reminders_sent, power_bank });
                }
            }
            Ok(out)
        })
        .await?;
    // One policy per package and sweep: the plugin decides by package.
    let mut policies: HashMap<i64, LostPolicy> = HashMap::new();
    for Overdue { rental, reminders_sent, power_bank } in overdue {
        let Some(due) = rental.due_at else { continue };
        let policy = match policies.get(&rental.package_id) {
            Some(p) => p.clone(),
            None => {
                let request = LostRequest {
                    package: rental.package_info(),
                    due_unix_ms: due * 1000,
                    context: context(&rental, now),
                };
                match state.plugins.pricing().lost_penalty(request).await {
                    Ok(p) => {
                        policies.insert(rental.package_id, p.clone());
                        p
                    }
                    Err(e) => {
                        tracing::warn!(rental_id = rental.id, error = %e, "no lost policy from the pricing plugin");
                        continue;
                    }
                }
            }
        };
        let minutes_overdue = (now - due) / 60;
        if minutes_overdue >= i64::from(policy.lost_after_minutes) {
            let request = OverdueRequest {
                package: rental.package_info(),
                due_unix_ms: due * 1000,
                returned_unix_ms: now * 1000,
                context: context(&rental, now),
            };
            let overdue = match state.plugins.pricing().overdue_charge(request).await {
                Ok(c) => c.amount_paisa,
                Err(e) => {
                    tracing::warn!(rental_id = rental.id, error = %e, "no overdue charge for a lost bank");
                    continue;
                }
            };
            let declared =
                Declared { penalty: policy.penalty_paisa, overdue, after_minutes: policy.lost_after_minutes };
            let bank = power_bank.clone();
            let by = ChangedBy { operator_id: None, reason: "not returned after the lost-after time", rental_id: None };
            state.db.write(move |tx| declare_lost(tx, &rental, &bank, declared, by, now)).await?;
            continue;
        }
        let points_passed = policy.reminder_minutes.iter().filter(|m| i64::from(**m) <= minutes_overdue).count();
        let points_passed = i64::try_from(points_passed).unwrap_or(i64::MAX);
        if points_passed > reminders_sent {
            let (id, user) = (rental.id, rental.user_id);
            state
                .db
                .write(move |tx| {
                    // Several points passed since the last sweep: one reminder.
                    let changed = tx.execute(
                        "UPDATE rentals SET overdue_reminders_sent = ?2, reminded_at = ?3
                         WHERE id = ?1 AND status = ?4 AND overdue_reminders_sent < ?2",
                        params![id, points_passed, now, RentalStatus::Active],
                    )?;
                    if changed > 0 {
                        crate::notifications::notify(
                            tx,
                            user,
                            "rental_overdue",
                            json!({"power_bank": power_bank, "overdue_minutes": minutes_overdue}),
                        )?;
                    }
                    Ok(())
                })
                .await?;
        }
    }
    Ok(())
}

/// What declaring a bank lost costs, as the plugin priced it.
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    penalty: i64,
    overdue: i64,
    after_minutes: u32,
}

/// Prices declaring `rental`'s bank lost now, as the sweep does when the
/// time comes: the pricing plugin's penalty, and the overdue charge so far
/// (none before the due time). For an operator declaring it early.
pub async fn price_loss(state: &AppState, rental: &RentalCore, now: i64) -> Result<Declared, ApiError> {
    let due = rental.due_at.unwrap_or(now);
    let policy = state
        .plugins
        .pricing()
        .lost_penalty(LostRequest {
            package: rental.package_info(),
            due_unix_ms: due * 1000,
            context: context(rental, now),
        })
        .await?;
    let overdue = if now > due {
        let request = OverdueRequest {
            package: rental.package_info(),
            due_unix_ms: due * 1000,
            returned_unix_ms: now * 1000,
            context: context(rental, now),
        };
        state.plugins.pricing().overdue_charge(request).await?.amount_paisa
    } else {
        0
    };
    // The notification says how long after the due time it was declared.
    let after_minutes = u32::try_from((now - due).max(0) / 60).unwrap_or(u32::MAX);
    Ok(Declared { penalty: policy.penalty_paisa, overdue, after_minutes })
}

/// active → lost: the penalty and the overdue charge so far are taken from
/// the wallet, what it cannot cover becomes a due (which blocks the next
/// rental), the bank is marked lost and the user told. Returns whether this
/// call declared it (false: returned or declared meanwhile).
pub fn declare_lost(
    tx: &Transaction<'_>,
    rental: &RentalCore,
    power_bank: &str,
    d: Declared,
    by: ChangedBy<'_>,
    now: i64,
) -> Result<bool, ApiError> {
    let bank_id: Option<i64> = tx
        .query_row(
            "UPDATE rentals SET status = ?2, lost_at = ?3, overdue_paisa = ?4, lost_penalty_paisa = ?5, updated_at = ?3
             WHERE id = ?1 AND status = ?6
             RETURNING power_bank_id",
            params![rental.id, RentalStatus::Lost, now, d.overdue, d.penalty, RentalStatus::Active],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let Some(bank_id) = bank_id else { return Ok(false) };
    let user = rental.user_id;
    let total = d.penalty + d.overdue;
    let balance = ledger::wallet_balance(tx, user)?.unwrap_or(0).max(0);
    let paid = balance.min(total);
    if paid > 0 {
        charge::charge(
            tx,
            user,
            paid,
            charge::Split::wallet(paid),
            charge::ChargeFor {
                kind: TransactionKind::Overdue,
                wallet_kind: WalletKind::OverdueCharge,
                rental_id: Some(rental.id),
                description: "Power bank lost: penalty and overdue charge",
            },
        )?;
    }
    let unpaid = total - paid;
    if unpaid > 0 {
        tx.execute(
            "UPDATE rentals SET unpaid_due_paisa = unpaid_due_paisa + ?2 WHERE id = ?1",
            params![rental.id, unpaid],
        )?;
    }
    stations::banks::mark_lost(tx, bank_id, ChangedBy { rental_id: Some(rental.id), ..by }, now)?;
    let payment = if unpaid == 0 {
        format!("NPR {} was charged to your wallet.", format_npr(paid))
    } else {
        format!("NPR {} was charged to your wallet and NPR {} is due.", format_npr(paid), format_npr(unpaid))
    };
    crate::notifications::notify(
        tx,
        user,
        "rental_lost",
        json!({
            "power_bank": power_bank,
            "hours": d.after_minutes / 60,
            "penalty": format_npr(d.penalty),
            "overdue": format_npr(d.overdue),
            "payment": payment,
        }),
    )?;
    tracing::info!(rental_id = rental.id, user, total, paid, unpaid, power_bank, "power bank declared lost");
    Ok(true)
}

/// A bank seated in a station with no active rental: if it was declared
/// lost, its rental is reconciled. The penalty is replaced by the overdue
/// charge up to the return, never more than what was levied at the loss;
/// the difference first clears the rental's unpaid due, the rest goes back
/// to the wallet. The bank is already `in_slot` (the station link seated it).
/// Idempotent: the rental leaves `lost` once.
pub async fn on_found(state: &AppState, station_id: i64, power_bank: &str, returned_at: i64) -> Result<(), ApiError> {
    let bank = power_bank.to_string();
    let found: Option<(RentalCore, i64, i64)> = state
        .db
        .read(move |c| {
            let row: Option<(i64, i64, i64)> = c
                .query_row(
                    // The literal matches the partial index `rentals_lost_bank`.
                    "SELECT r.id, r.overdue_paisa, r.lost_penalty_paisa FROM rentals r
                     JOIN power_banks pb ON pb.id = r.power_bank_id
                     WHERE pb.serial_number = ?1 AND r.status = 'lost' ORDER BY r.id DESC LIMIT 1",
                    [&bank],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((id, overdue, penalty)) = row else { return Ok(None) };
            Ok(model::load_core(c, id)?.map(|core| (core, overdue, penalty)))
        })
        .await?;
    let Some((rental, overdue_at_loss, penalty)) = found else { return Ok(()) };
    let due = rental.due_at.unwrap_or(returned_at);
    let charge = state
        .plugins
        .pricing()
        .overdue_charge(OverdueRequest {
            package: rental.package_info(),
            due_unix_ms: due * 1000,
            returned_unix_ms: returned_at * 1000,
            context: context(&rental, returned_at),
        })
        .await?;
    let levied = overdue_at_loss + penalty;
    let owed = charge.amount_paisa.min(levied);
    let given_back = levied - owed;
    let power_bank = power_bank.to_string();
    state
        .db
        .write(move |tx| {
            let unpaid: Option<i64> = tx
                .query_row(
                    "UPDATE rentals SET status = ?2, returned_at = ?3, return_station_id = ?4, overdue_paisa = ?5,
                        updated_at = ?3
                     WHERE id = ?1 AND status = ?6
                     RETURNING unpaid_due_paisa",
                    params![rental.id, RentalStatus::Completed, returned_at, station_id, owed, RentalStatus::Lost],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(unpaid) = unpaid else { return Ok(()) }; // reconciled already
            let from_due = unpaid.min(given_back);
            let to_wallet = given_back - from_due;
            if from_due > 0 {
                tx.execute(
                    "UPDATE rentals SET unpaid_due_paisa = unpaid_due_paisa - ?2 WHERE id = ?1",
                    params![rental.id, from_due],
                )?;
            }
            if to_wallet > 0 {
                ledger::wallet_change(
                    tx,
                    rental.user_id,
                    to_wallet,
                    WalletKind::Refund,
                    None,
                    "Lost power bank returned: penalty given back",
                )?;
            }
            let station: String =
                tx.query_row("SELECT name FROM stations WHERE id = ?1", [station_id], |r| r.get(0))?;
            crate::notifications::notify(
                tx,
                rental.user_id,
                "rental_found",
                json!({
                    "power_bank": power_bank,
                    "station_name": station,
                    "overdue": format_npr(owed),
                    "given_back": format_npr(given_back),
                }),
            )?;
            tracing::info!(rental_id = rental.id, owed, given_back, to_wallet, "lost power bank reconciled");
            Ok(())
        })
        .await?;
    state.jobs.wake();
    Ok(())
}
