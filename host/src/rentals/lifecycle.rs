//! The rental state machine: pending_eject → active → completed (or
//! cancelled, when returned within the grace window), and pending_eject →
//! failed. Every transition is one transaction guarded by the state it
//! leaves, so a duplicate event can never apply twice.

use powerbank_plugin_runtime::types::{CallContext, OverdueRequest, PointsEvent, RentalCompletedEvent};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    charge,
    model::{self, RentalOut},
};
use crate::{
    core::{
        ApiError, AppState,
        jobs::{self, NewJob},
        money::format_npr,
        now_ts,
    },
    payments::ledger::WalletKind,
};

/// Job kind: a station reported a returned power bank.
pub const RETURNED_JOB: &str = "rentals.returned";
/// Job kind: the periodic sweep (stale ejects, overdue reminders).
pub const SWEEP_JOB: &str = "rentals.sweep";
const SWEEP_EVERY_SECS: i64 = 60;
/// "Ending soon" goes out this long before the due time.
const ENDING_SOON_SECS: i64 = 15 * 60;

/// pending_eject → active, when the station confirms the eject.
pub fn activate(tx: &Transaction<'_>, rental_id: i64, power_bank: &str) -> Result<RentalOut, ApiError> {
    let now = now_ts();
    let changed = tx.execute(
        "UPDATE rentals SET status = 'active', started_at = ?2, due_at = ?2 + due_minutes * 60, updated_at = ?2,
            power_bank_id = COALESCE((SELECT id FROM power_banks WHERE serial_number = ?3), power_bank_id)
         WHERE id = ?1 AND status = 'pending_eject'",
        params![rental_id, now, power_bank],
    )?;
    let core = model::load_core(tx, rental_id)?.ok_or_else(|| ApiError::not_found("rental"))?;
    if changed == 0 {
        return Err(model::illegal(&core.status, "activate"));
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

/// pending_eject → failed: refund in full and free the reserved slot.
pub fn fail(tx: &Transaction<'_>, rental_id: i64, reason: &str) -> Result<(), ApiError> {
    let now = now_ts();
    let row: Option<(i64, Option<i64>, i64, i64, i64, i64)> = tx
        .query_row(
            "UPDATE rentals SET status = 'failed', failure_reason = ?2, updated_at = ?3
             WHERE id = ?1 AND status = 'pending_eject'
             RETURNING user_id, transaction_id, wallet_paisa, points_used, station_id, slot_index",
            params![rental_id, reason, now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((user_id, transaction_id, wallet_paisa, points, station_id, slot)) = row else {
        return Ok(()); // already settled
    };
    charge::refund(tx, user_id, transaction_id, wallet_paisa, points, "Rental refund: eject failed")?;
    tx.execute(
        "UPDATE station_slots SET status = CASE WHEN power_bank_id IS NULL THEN 'empty' ELSE 'occupied' END,
            updated_at = ?3
         WHERE station_id = ?1 AND slot_index = ?2 AND status = 'reserved'",
        params![station_id, slot, now],
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
    let bank = ev.power_bank.clone();
    let rental = state
        .db
        .read(move |c| {
            let id: Option<i64> = c
                .query_row(
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
        .await
        .map_err(|e| e.message)?;
    let Some(rental) = rental else { return Ok(()) }; // nothing rented: a stock movement or a repeat
    let (started, due) = (rental.started_at.unwrap_or(ev.returned_at), rental.due_at.unwrap_or(ev.returned_at));
    let in_grace = ev.returned_at - started <= state.config.rentals.grace_minutes * 60;
    let context =
        CallContext { user_id: Some(rental.user_id.to_string()), station_sn: None, now_unix_ms: ev.returned_at * 1000 };
    let overdue = if ev.returned_at > due && !in_grace {
        let charge = state
            .plugins
            .pricing()
            .overdue_charge(OverdueRequest {
                package: rental.package_info(),
                due_unix_ms: due * 1000,
                returned_unix_ms: ev.returned_at * 1000,
                context: context.clone(),
            })
            .await
            .map_err(|e| e.to_string())?;
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
            duration_minutes: u32::try_from((ev.returned_at - started).max(0) / 60).unwrap_or(u32::MAX),
            returned_late: overdue > 0,
        });
        crate::points::plan_awards(&state, event).await.map_err(|e| e.message)?
    };
    let expiry_days = crate::points::expiry_days(&state).await.map_err(|e| e.message)?;

    state
        .db
        .write(move |tx| {
            let now = now_ts();
            let status = if in_grace { "cancelled" } else { "completed" };
            let closed = tx.execute(
                "UPDATE rentals SET status = ?2, returned_at = ?3, return_station_id = ?4, overdue_paisa = ?5,
                    updated_at = ?6
                 WHERE id = ?1 AND status = 'active'",
                params![rental.id, status, ev.returned_at, ev.station_id, overdue, now],
            )?;
            if closed == 0 {
                return Ok(()); // another delivery of this return got here first
            }
            let user = rental.user_id;
            if in_grace {
                let (tid, wallet, points): (Option<i64>, i64, i64) = tx.query_row(
                    "SELECT transaction_id, wallet_paisa, points_used FROM rentals WHERE id = ?1",
                    [rental.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                charge::refund(tx, user, tid, wallet, points, "Rental cancelled: returned within the grace window")?;
            }
            if overdue > 0 {
                let balance: i64 =
                    tx.query_row("SELECT balance_paisa FROM wallets WHERE user_id = ?1", [user], |r| r.get(0))?;
                if balance >= overdue {
                    charge::charge(
                        tx,
                        user,
                        overdue,
                        charge::Split::wallet(overdue),
                        charge::ChargeFor {
                            kind: "overdue",
                            wallet_kind: WalletKind::OverdueCharge,
                            rental_id: Some(rental.id),
                            description: "Overdue charge",
                        },
                    )?;
                } else {
                    tx.execute("UPDATE rentals SET unpaid_due_paisa = ?2 WHERE id = ?1", params![rental.id, overdue])?;
                }
            }
            crate::points::grant(tx, &awards, expiry_days, now)?;
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
                json!({"power_bank": bank, "station_name": station, "amount": format_npr(overdue)}),
            )?;
            Ok(())
        })
        .await
        .map_err(|e| e.message)?;
    state.jobs.wake();
    Ok(())
}

/// Schedules the next sweep unless one is already waiting. Called at start
/// and by each sweep, so exactly one chain of sweeps exists.
pub fn schedule_sweep(tx: &Transaction<'_>, at: i64) -> Result<(), ApiError> {
    let waiting: bool =
        tx.query_row("SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = ?1 AND status = 'pending')", [SWEEP_JOB], |r| {
            r.get(0)
        })?;
    if !waiting {
        jobs::enqueue(tx, NewJob::new(SWEEP_JOB, json!({})).at(at))?;
    }
    Ok(())
}

/// Fails ejects that never settled (a crash between paying and the
/// station's answer) and reminds users whose rentals end soon or are overdue.
pub async fn sweep(state: AppState, _payload: Value) -> Result<(), String> {
    let stale_after = i64::try_from(state.config.rentals.eject_timeout.as_secs()).unwrap_or(15) + 60;
    state
        .db
        .write(move |tx| {
            let now = now_ts();
            let mut stmt = tx.prepare("SELECT id FROM rentals WHERE status = 'pending_eject' AND created_at < ?1")?;
            let stale: Vec<i64> = stmt.query_map([now - stale_after], |r| r.get(0))?.collect::<Result<_, _>>()?;
            drop(stmt);
            for id in stale {
                fail(tx, id, "no answer from the station")?;
            }
            let mut stmt = tx.prepare(
                "SELECT r.id, r.user_id, pb.serial_number, (?1 - r.due_at) / 60 FROM rentals r
                 JOIN power_banks pb ON pb.id = r.power_bank_id
                 WHERE r.status = 'active' AND r.due_at < ?1 AND r.reminded_at IS NULL",
            )?;
            let overdue: Vec<(i64, i64, String, i64)> = stmt
                .query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            drop(stmt);
            let mut stmt = tx.prepare(
                "SELECT r.id, r.user_id, pb.serial_number, (r.due_at - ?1 + 59) / 60 FROM rentals r
                 JOIN power_banks pb ON pb.id = r.power_bank_id
                 WHERE r.status = 'active' AND r.due_at > ?1 AND r.due_at <= ?1 + ?2
                   AND (r.ending_soon_notified_at IS NULL OR r.ending_soon_notified_at < r.due_at - ?2)",
            )?;
            let ending: Vec<(i64, i64, String, i64)> = stmt
                .query_map(params![now, ENDING_SOON_SECS], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
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
            for (id, user, bank, minutes) in overdue {
                crate::notifications::notify(
                    tx,
                    user,
                    "rental_overdue",
                    json!({"power_bank": bank, "overdue_minutes": minutes}),
                )?;
                tx.execute("UPDATE rentals SET reminded_at = ?2 WHERE id = ?1", params![id, now])?;
            }
            schedule_sweep(tx, now + SWEEP_EVERY_SECS)
        })
        .await
        .map_err(|e| e.message)
}
