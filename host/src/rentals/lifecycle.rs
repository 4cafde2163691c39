//! The rental state machine: pending_eject → active → completed (or
//! cancelled, when returned within the grace window), and pending_eject →
//! failed. Every transition is one transaction guarded by the state it
//! leaves, so a duplicate event can never apply twice.

use powerbank_plugin_runtime::types::{
    CallContext, OnTimeReturnEvent, OverdueRequest, PointsEvent, RefereeFirstRentalEvent, RentalCompletedEvent,
};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    charge,
    model::{self, RentalOut, RentalStatus},
    settings::{EJECT_TIMEOUT_SECONDS, FREE_RETURN_MINUTES},
};
use crate::{
    core::{
        ApiError,
        jobs::{self, IfWaiting, NewJob},
        money::format_npr,
        now_ts,
    },
    ledger::{self, TransactionKind, WalletKind},
    state::AppState,
    stations::{
        self,
        link::hooks::{BankEjected, BankReturned},
    },
};

/// Job kind: a station reported a returned power bank.
pub const RETURNED_JOB: &str = "rentals.returned";
/// Job kind: the periodic sweep (stale ejects, overdue reminders, lost banks).
pub const SWEEP_JOB: &str = "rentals.sweep";
const SWEEP_EVERY_SECS: i64 = 60;
/// "Ending soon" goes out this long before the due time.
const ENDING_SOON_SECS: i64 = 15 * 60;

/// pending_eject → active, when the station confirms the eject. Whoever
/// learns of the eject first (the waiting request, or the station link
/// applying the event) activates; for the other one the rental is already
/// active and this returns it unchanged.
pub fn activate(tx: &Transaction<'_>, rental_id: i64, power_bank: &str) -> Result<RentalOut, ApiError> {
    let now = now_ts();
    let changed = tx.execute(
        "UPDATE rentals SET status = ?4, started_at = ?2, due_at = ?2 + due_minutes * 60, updated_at = ?2,
            power_bank_id = COALESCE((SELECT id FROM power_banks WHERE serial_number = ?3), power_bank_id)
         WHERE id = ?1 AND status = ?5",
        params![rental_id, now, power_bank, RentalStatus::Active, RentalStatus::PendingEject],
    )?;
    let core = model::load_core(tx, rental_id)?.ok_or_else(|| ApiError::not_found("rental"))?;
    if changed == 0 {
        if core.status == RentalStatus::Active {
            return model::load_own(tx, core.user_id, rental_id);
        }
        return Err(model::illegal(core.status, "activate"));
    }
    let (bank, station): (String, String) = tx.query_row(
        "SELECT pb.serial_number, s.name FROM rentals r JOIN power_banks pb ON pb.id = r.power_bank_id
         JOIN stations s ON s.id = r.station_id WHERE r.id = ?1",
        [rental_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    crate::notifications::notify(
        tx,
        core.user_id,
        "rental_started",
        json!({"power_bank": bank, "station_name": station}),
    )?;
    model::load_own(tx, core.user_id, rental_id)
}

/// pending_eject → failed: refund in full (wallet and points back; a
/// gateway payment to the wallet), release the coupon redemption and free
/// the reserved slot. `code` is `eject_timeout` when the station never
/// answered (a late `ejected` can still revive the rental, see
/// [`on_ejected`]) or `eject_failed`. Returns whether this call failed it
/// (false: it was settled already, e.g. activated by a late answer).
pub fn fail(tx: &Transaction<'_>, rental_id: i64, code: &str, reason: &str) -> Result<bool, ApiError> {
    let now = now_ts();
    /// What a failed rental gives back, and the slot it frees.
    struct Failed {
        user_id: i64,
        transaction_id: Option<i64>,
        to_wallet: i64,
        points: i64,
        via_gateway: i64,
        station_id: i64,
        slot: i64,
    }
    let row = tx
        .query_row(
            "UPDATE rentals SET status = ?5, failure_code = ?2, failure_reason = ?3, updated_at = ?4
             WHERE id = ?1 AND status = ?6
             RETURNING user_id, transaction_id, wallet_paisa + gateway_paisa, points_used, gateway_paisa,
                station_id, slot_index",
            params![rental_id, code, reason, now, RentalStatus::Failed, RentalStatus::PendingEject],
            |r| {
                Ok(Failed {
                    user_id: r.get(0)?,
                    transaction_id: r.get(1)?,
                    to_wallet: r.get(2)?,
                    points: r.get(3)?,
                    via_gateway: r.get(4)?,
                    station_id: r.get(5)?,
                    slot: r.get(6)?,
                })
            },
        )
        .optional()?;
    let Some(Failed { user_id, transaction_id, to_wallet, points, via_gateway, station_id, slot }) = row else {
        return Ok(false); // already settled
    };
    let description = if via_gateway > 0 {
        "Rental refund: eject failed; the gateway payment was credited to the wallet"
    } else {
        "Rental refund: eject failed"
    };
    charge::refund(tx, user_id, transaction_id, to_wallet, points, description)?;
    crate::promotions::coupons::release_for_rental(tx, rental_id)?;
    stations::slots::release_reservation(tx, station_id, slot, now)?;
    Ok(true)
}

/// How long after an eject timed out a station's `ejected` without a request
/// id is still matched to that rental (by station and bank or slot).
const LATE_EJECT_WINDOW_SECS: i64 = 60 * 60;

/// Reconciles a station's `ejected` with the rentals, inside the transaction
/// that applies the event (registered as the station link's `ejected` hook):
///
/// - the eject of a rental still `pending_eject`: it becomes active (the
///   request waiting for it finds it so, even if its wait just ended);
/// - the eject of a rental that failed because the station did not answer in
///   time (matched by the rental's eject request id, or without one by
///   station and bank or slot within the last hour): the user holds the bank
///   after all, so the rental is active again and charged again from the
///   wallet, or, when the wallet cannot cover it, the price is recorded as a
///   due (as an unpaid overdue charge is); the user is told;
/// - anything else (an operator's eject, a repeat): nothing.
pub fn on_ejected(tx: &Transaction<'_>, ejected: &BankEjected<'_>) -> Result<(), ApiError> {
    let BankEjected { station_id, request_id, slot, power_bank, at: now } = *ejected;
    let request_id = request_id.map(str::trim).filter(|r| !r.is_empty());
    let found: Option<(i64, RentalStatus, Option<String>)> = match request_id {
        Some(id) => tx
            .query_row(
                "SELECT id, status, failure_code FROM rentals WHERE eject_request_id = ?1 AND station_id = ?2",
                params![id, station_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?,
        None => tx
            .query_row(
                "SELECT id, status, failure_code FROM rentals
                 WHERE station_id = ?1 AND failure_code = 'eject_timeout' AND status = ?5 AND updated_at >= ?2
                   AND (power_bank_id = (SELECT id FROM power_banks WHERE serial_number = ?3) OR slot_index = ?4)
                 ORDER BY id DESC LIMIT 1",
                params![station_id, now - LATE_EJECT_WINDOW_SECS, power_bank, slot, RentalStatus::Failed],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?,
    };
    match found {
        Some((id, RentalStatus::PendingEject, _)) => {
            activate(tx, id, power_bank)?;
        }
        Some((id, RentalStatus::Failed, code)) if code.as_deref() == Some("eject_timeout") => {
            resume(tx, id, power_bank, now)?;
        }
        _ => {}
    }
    Ok(())
}

/// failed (eject timeout) → active: the bank came out after all.
fn resume(tx: &Transaction<'_>, rental_id: i64, power_bank: &str, now: i64) -> Result<(), ApiError> {
    let user_id: i64 = tx.query_row("SELECT user_id FROM rentals WHERE id = ?1", [rental_id], |r| r.get(0))?;
    let open: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM rentals WHERE user_id = ?1 AND status IN (?2, ?3))",
        params![user_id, RentalStatus::PendingEject, RentalStatus::Active],
        |r| r.get(0),
    )?;
    if open {
        // One rental at a time: the user started another one since. The bank
        // shows as rented; an operator sorts it out.
        tracing::warn!(rental_id, user_id, power_bank, "late eject of a timed-out rental while another is open");
        return Ok(());
    }
    let resumed: Option<(i64, String, Option<i64>)> = tx
        .query_row(
            "UPDATE rentals SET status = ?4, started_at = ?2, due_at = ?2 + due_minutes * 60, updated_at = ?2,
                failure_code = NULL, failure_reason = NULL, reminded_at = NULL, overdue_reminders_sent = 0,
                ending_soon_notified_at = NULL,
                wallet_paisa = 0, points_used = 0, gateway_paisa = 0, transaction_id = NULL,
                power_bank_id = COALESCE((SELECT id FROM power_banks WHERE serial_number = ?3), power_bank_id)
             WHERE id = ?1 AND status = ?5 AND failure_code = 'eject_timeout'
             RETURNING amount_paisa, code, coupon_id",
            params![rental_id, now, power_bank, RentalStatus::Active, RentalStatus::Failed],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((amount, code, coupon)) = resumed else { return Ok(()) };
    let balance = ledger::wallet_balance(tx, user_id)?.unwrap_or(0);
    let payment = if amount == 0 {
        "Nothing to pay.".to_string()
    } else if balance >= amount {
        let paid = charge::charge(
            tx,
            user_id,
            amount,
            charge::Split::wallet(amount),
            charge::ChargeFor {
                kind: TransactionKind::Rental,
                wallet_kind: WalletKind::RentalCharge,
                rental_id: Some(rental_id),
                description: &format!("Rental {code} (the power bank came out after the eject timed out)"),
            },
        )?;
        tx.execute(
            "UPDATE rentals SET wallet_paisa = ?2, transaction_id = ?3 WHERE id = ?1",
            params![rental_id, amount, paid.transaction_id],
        )?;
        format!("NPR {} was charged to your wallet.", format_npr(amount))
    } else {
        tx.execute(
            "UPDATE rentals SET unpaid_due_paisa = unpaid_due_paisa + ?2 WHERE id = ?1",
            params![rental_id, amount],
        )?;
        format!("NPR {} is due: pay it in the app.", format_npr(amount))
    };
    if coupon.is_some() {
        crate::promotions::coupons::restore_for_rental(tx, rental_id)?;
    }
    let station: String = tx.query_row(
        "SELECT s.name FROM rentals r JOIN stations s ON s.id = r.station_id WHERE r.id = ?1",
        [rental_id],
        |r| r.get(0),
    )?;
    crate::notifications::notify(
        tx,
        user_id,
        "rental_resumed",
        json!({"power_bank": power_bank, "station_name": station, "payment": payment}),
    )?;
    tracing::info!(rental_id, user_id, amount, power_bank, "timed-out rental resumed by a late eject");
    Ok(())
}

/// A bank went back into a station (the station link's `returned` hook):
/// closing its rental (pricing, charging, points) runs as a durable job
/// enqueued with the station's change, so a crash cannot lose a return.
pub fn enqueue_return(tx: &Transaction<'_>, returned: &BankReturned<'_>) -> Result<(), ApiError> {
    jobs::enqueue(
        tx,
        NewJob::new(
            RETURNED_JOB,
            json!({ "station_id": returned.station_id, "power_bank": returned.power_bank, "returned_at": returned.at }),
        ),
    )?;
    Ok(())
}

#[derive(Debug, Deserialize)]
struct Returned {
    station_id: i64,
    power_bank: String,
    returned_at: i64,
}

/// Closes the rental that had `power_bank`: prices any overdue time, charges
/// it (or records it as a due), awards points, notifies. Idempotent.
pub async fn on_returned(state: AppState, payload: Value) -> Result<(), String> {
    let ev: Returned = serde_json::from_value(payload).map_err(|e| format!("bad payload: {e}"))?;
    close_returned(&state, ev.station_id, &ev.power_bank, ev.returned_at, None).await.map(|_| ()).map_err(|e| e.message)
}

/// More work for the transaction that closes a returned rental (an
/// operator's force-complete: the bank's state and the audit row), run
/// after the rental is closed; its error fails the whole return.
pub type InReturn = Box<dyn FnOnce(&Transaction<'_>, i64) -> Result<(), ApiError> + Send>;

/// Closes the active rental of `power_bank`, returned to `station_id` at
/// `returned_at`: the one path of every return, whether the station said so
/// or an operator did. `also` runs in the closing transaction. Returns
/// whether this call closed a rental (false: none was active, e.g. a repeat
/// delivery; without `also`, a lost bank coming back is reconciled then).
pub async fn close_returned(
    state: &AppState,
    station_id: i64,
    power_bank: &str,
    returned_at: i64,
    also: Option<InReturn>,
) -> Result<bool, ApiError> {
    let bank = power_bank.to_string();
    let rental = state
        .db
        .read(move |c| {
            let id: Option<i64> = c
                .query_row(
                    // The literal matches the partial index `rentals_active_bank`.
                    "SELECT r.id FROM rentals r JOIN power_banks pb ON pb.id = r.power_bank_id
                     WHERE pb.serial_number = ?1 AND r.status = 'active'",
                    [&bank],
                    |r| r.get(0),
                )
                .optional()?;
            match id {
                Some(id) => model::load_core(c, id),
                None => Ok(None),
            }
        })
        .await?;
    let Some(rental) = rental else {
        if also.is_some() {
            return Ok(false);
        }
        // Nothing rented: a bank declared lost coming back, a stock movement or a repeat.
        super::lost::on_found(state, station_id, power_bank, returned_at).await?;
        return Ok(false);
    };
    if rental.started_at.is_some_and(|started| returned_at < started) {
        // A return job that ran late: the bank was seated before this rental
        // took it out, so the return belonged to an earlier, closed rental.
        tracing::info!(rental = rental.id, power_bank, returned_at, "return older than the rental's start; ignored");
        return Ok(false);
    }
    let (started, due) = (rental.started_at.unwrap_or(returned_at), rental.due_at.unwrap_or(returned_at));
    let settings = state.settings.clone();
    let free_minutes = state.db.read(move |c| settings.int(c, FREE_RETURN_MINUTES)).await?;
    let in_grace = returned_at - started <= free_minutes * 60;
    let context =
        CallContext { user_id: Some(rental.user_id.to_string()), station_sn: None, now_unix_ms: returned_at * 1000 };
    let overdue = if returned_at > due && !in_grace {
        let charge = state
            .plugins
            .pricing()
            .overdue_charge(OverdueRequest {
                package: rental.package_info(),
                due_unix_ms: due * 1000,
                returned_unix_ms: returned_at * 1000,
                context: context.clone(),
            })
            .await?;
        charge.amount_paisa
    } else {
        0
    };
    let awards = if in_grace {
        Vec::new()
    } else {
        let event = PointsEvent::RentalCompleted(RentalCompletedEvent {
            user_id: rental.user_id.to_string(),
            rental_id: rental.id.to_string(),
            package_code: rental.package_code.clone(),
            amount_paisa: rental.package_price,
            duration_minutes: u32::try_from((returned_at - started).max(0) / 60).unwrap_or(u32::MAX),
            returned_late: overdue > 0,
        });
        crate::points::plan_awards(state, event).await?
    };
    let expiry_days = crate::points::expiry_days(state).await?;
    let postpaid_price = super::postpaid::price_at_return(state, &rental, returned_at, in_grace).await?;

    let closed = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let status = if in_grace { RentalStatus::Cancelled } else { RentalStatus::Completed };
            let closed = tx.execute(
                "UPDATE rentals SET status = ?2, returned_at = ?3, return_station_id = ?4, overdue_paisa = ?5,
                    updated_at = ?6
                 WHERE id = ?1 AND status = ?7",
                params![rental.id, status, returned_at, station_id, overdue, now, RentalStatus::Active],
            )?;
            if closed == 0 {
                return Ok(false); // another delivery of this return got here first
            }
            let user = rental.user_id;
            super::postpaid::charge_at_return(tx, rental.id, user, postpaid_price)?;
            if in_grace {
                // Everything paid comes back (a gateway payment to the
                // wallet), the price still owed is forgiven, and the coupon
                // counts as unused.
                let (tid, to_wallet, points): (Option<i64>, i64, i64) = tx.query_row(
                    "SELECT transaction_id, wallet_paisa + gateway_paisa, points_used FROM rentals WHERE id = ?1",
                    [rental.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                charge::refund(tx, user, tid, to_wallet, points, "Rental cancelled: returned within the grace window")?;
                tx.execute("UPDATE rentals SET unpaid_due_paisa = 0 WHERE id = ?1", [rental.id])?;
                crate::promotions::coupons::release_for_rental(tx, rental.id)?;
            }
            if overdue > 0 {
                let balance = ledger::wallet_balance(tx, user)?.ok_or_else(|| ApiError::not_found("wallet"))?;
                if balance >= overdue {
                    charge::charge(
                        tx,
                        user,
                        overdue,
                        charge::Split::wallet(overdue),
                        charge::ChargeFor {
                            kind: TransactionKind::Overdue,
                            wallet_kind: WalletKind::OverdueCharge,
                            rental_id: Some(rental.id),
                            description: "Overdue charge",
                        },
                    )?;
                } else {
                    tx.execute(
                        "UPDATE rentals SET unpaid_due_paisa = unpaid_due_paisa + ?2 WHERE id = ?1",
                        params![rental.id, overdue],
                    )?;
                }
            }
            crate::points::grant(tx, &awards, expiry_days, now)?;
            if !in_grace {
                completion_awards(tx, &rental, returned_at <= due)?;
            }
            let (bank, station): (String, String) = tx.query_row(
                "SELECT pb.serial_number, s.name FROM rentals r JOIN power_banks pb ON pb.id = r.power_bank_id
                 JOIN stations s ON s.id = r.return_station_id WHERE r.id = ?1",
                [rental.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            crate::notifications::notify(
                tx,
                user,
                "rental_returned",
                json!({"power_bank": bank, "station_name": station, "amount": format_npr(overdue + postpaid_price)}),
            )?;
            if let Some(also) = also {
                also(tx, rental.id)?;
            }
            Ok(true)
        })
        .await?;
    state.jobs.wake();
    Ok(closed)
}

/// The points a completed rental earns once, as durable jobs of the points
/// domain: an on-time return, and a referred user's first completed rental
/// (the referral payout, when the points plugin pays referrals then).
fn completion_awards(tx: &Transaction<'_>, rental: &model::RentalCore, on_time: bool) -> Result<(), ApiError> {
    let user_id = rental.user_id.to_string();
    if on_time {
        crate::points::events::enqueue_award(
            tx,
            PointsEvent::OnTimeReturn(OnTimeReturnEvent {
                user_id: user_id.clone(),
                rental_id: rental.id.to_string(),
                package_code: rental.package_code.clone(),
            }),
        )?;
    }
    let referrer: Option<i64> = tx
        .query_row("SELECT referrer_id FROM referrals WHERE referee_id = ?1", [rental.user_id], |r| r.get(0))
        .optional()?;
    let Some(referrer) = referrer else { return Ok(()) };
    let completed: i64 = tx.query_row(
        "SELECT COUNT(*) FROM rentals WHERE user_id = ?1 AND status = ?2",
        params![rental.user_id, RentalStatus::Completed],
        |r| r.get(0),
    )?;
    if completed == 1 {
        crate::points::events::enqueue_award(
            tx,
            PointsEvent::RefereeFirstRental(RefereeFirstRentalEvent {
                referrer_id: referrer.to_string(),
                referee_id: user_id,
                rental_id: rental.id.to_string(),
            }),
        )?;
    }
    Ok(())
}

/// Schedules the next sweep unless one is already waiting. Called at start
/// and by each sweep, so exactly one chain of sweeps exists.
pub fn schedule_sweep(tx: &Transaction<'_>, at: i64) -> Result<(), ApiError> {
    jobs::ensure_scheduled(tx, NewJob::new(SWEEP_JOB, json!({})).at(at), IfWaiting::Keep)
}

/// Fails ejects that never settled (a crash between paying and the
/// station's answer), gives back gateway payments of rentals never started,
/// reminds users whose rentals end soon or are overdue, and declares lost
/// the banks that never came back (`super::lost`).
pub async fn sweep(state: AppState, _payload: Value) -> Result<(), String> {
    let settings = state.settings.clone();
    let eject_timeout = state.db.read(move |c| settings.int(c, EJECT_TIMEOUT_SECONDS)).await.map_err(|e| e.message)?;
    let stale_after = eject_timeout + 60;
    state
        .db
        .write(move |tx| {
            let now = now_ts();
            let mut stmt = tx.prepare("SELECT id FROM rentals WHERE status = ?2 AND created_at < ?1")?;
            let stale: Vec<i64> = stmt
                .query_map(params![now - stale_after, RentalStatus::PendingEject], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            drop(stmt);
            for id in stale {
                fail(tx, id, "eject_timeout", "no answer from the station")?;
            }
            super::orders::refund_stale_paid_orders(tx, now)?;
            let mut stmt = tx.prepare(
                "SELECT r.id, r.user_id, pb.serial_number, (r.due_at - ?1 + 59) / 60 FROM rentals r
                 JOIN power_banks pb ON pb.id = r.power_bank_id
                 WHERE r.status = ?3 AND r.due_at > ?1 AND r.due_at <= ?1 + ?2
                   AND (r.ending_soon_notified_at IS NULL OR r.ending_soon_notified_at < r.due_at - ?2)",
            )?;
            let ending: Vec<(i64, i64, String, i64)> = stmt
                .query_map(params![now, ENDING_SOON_SECS, RentalStatus::Active], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            drop(stmt);
            for (id, user, bank, minutes) in ending {
                crate::notifications::notify(
                    tx,
                    user,
                    "rental_ending_soon",
                    json!({"power_bank": bank, "minutes_left": minutes}),
                )?;
                tx.execute("UPDATE rentals SET ending_soon_notified_at = ?2 WHERE id = ?1", params![id, now])?;
            }
            schedule_sweep(tx, now + SWEEP_EVERY_SECS)
        })
        .await
        .map_err(|e| e.message)?;
    // Overdue reminders and lost banks, after the next sweep is scheduled:
    // each rental in its own transaction, with plugin calls in between.
    super::lost::overdue_pass(&state, now_ts()).await.map_err(|e| e.message)
}
