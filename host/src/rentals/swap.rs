//! Swapping the power bank of a rental, at the station it came from, within
//! `rentals.swap_window_minutes` of the start (a bank that does not charge,
//! a cable that does not fit):
//!
//! 1. `POST /api/rentals/{id}/swap` records a swap `awaiting_return` (202);
//! 2. the user seats the bank in that station within [`SEAT_WITHIN_SECS`]:
//!    the station link's `returned` hook sees the open swap and, instead of
//!    closing the rental, marks it `ejecting` and enqueues [`SWAP_JOB`];
//! 3. the job ejects another charged bank: the rental goes on with it, same
//!    rental, no new charge (`completed`). If the station cannot eject one,
//!    the user holds no bank: the rental is closed as returned when the bank
//!    was seated, and refunded in full (`failed`).
//!
//! A bank seated at another station, or after the swap lapsed, is an
//! ordinary return. The swap request and a return of the same bank are
//! serialised by the database: whichever commits first decides, so a rental
//! ends up either swapped or returned, never both.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{
    charge,
    initiate::{StationRef, online_station},
    lifecycle::{self, RETURNED_JOB},
    model::{self, RentalStatus},
    settings::{EJECT_TIMEOUT_SECONDS, SWAP_WINDOW_MINUTES},
};
use crate::{
    core::{
        ApiError, ApiPath, AuthUser,
        error::ErrorBody,
        jobs::{self, NewJob},
        now_ts, opt_ts,
        text_enum::text_enum,
        ts_to_rfc3339,
    },
    state::AppState,
    stations::{
        link::{EjectOutcome, hooks::BankReturned},
        slots,
    },
};

/// Job kind: a bank was seated for a swap; eject another.
pub const SWAP_JOB: &str = "rentals.swap";
/// How long after the request the bank may be seated for the swap.
pub const SEAT_WITHIN_SECS: i64 = 5 * 60;

text_enum! {
    /// Where a swap stands (`rental_swaps.status`).
    pub enum SwapStatus {
        /// Asked for; waiting for the user to seat the bank.
        AwaitingReturn = "awaiting_return",
        /// The bank is seated; another one is being ejected.
        Ejecting = "ejecting",
        /// The user holds the new bank; the rental goes on.
        Completed = "completed",
        /// No bank came out: the rental was closed as returned and refunded.
        Failed = "failed",
        /// Not seated in time, or seated at another station (an ordinary return).
        Expired = "expired",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SwapOut {
    pub id: i64,
    pub rental_id: i64,
    pub status: SwapStatus,
    /// Where to seat the bank: the station it was taken from.
    pub station_sn: String,
    /// The bank to seat.
    pub old_power_bank: String,
    /// The bank the user got, once ejected.
    pub new_power_bank: Option<String>,
    /// Seat the bank before this time.
    pub seat_by: String,
    pub failure_reason: Option<String>,
    pub requested_at: String,
    pub finished_at: Option<String>,
}

const SWAP_SELECT: &str = "
    SELECT sw.id, sw.rental_id, sw.status, s.serial_number AS station_sn, ob.serial_number AS old_bank,
           nb.serial_number AS new_bank, sw.requested_at, sw.failure_reason, sw.finished_at
    FROM rental_swaps sw
    JOIN stations s ON s.id = sw.station_id
    JOIN power_banks ob ON ob.id = sw.old_power_bank_id
    LEFT JOIN power_banks nb ON nb.id = sw.new_power_bank_id";

fn swap_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SwapOut> {
    let requested_at: i64 = r.get("requested_at")?;
    Ok(SwapOut {
        id: r.get("id")?,
        rental_id: r.get("rental_id")?,
        status: r.get("status")?,
        station_sn: r.get("station_sn")?,
        old_power_bank: r.get("old_bank")?,
        new_power_bank: r.get("new_bank")?,
        seat_by: ts_to_rfc3339(requested_at + SEAT_WITHIN_SECS),
        failure_reason: r.get("failure_reason")?,
        requested_at: ts_to_rfc3339(requested_at),
        finished_at: opt_ts(r.get("finished_at")?),
    })
}

fn load_swap(c: &Connection, id: i64) -> Result<SwapOut, ApiError> {
    Ok(c.query_row(&format!("{SWAP_SELECT} WHERE sw.id = ?1"), [id], swap_from_row)?)
}

/// Swaps lapse when their bank was not seated in time (checked lazily, by
/// whoever looks at them next).
fn expire_lapsed(tx: &Transaction<'_>, rental_id: i64, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE rental_swaps SET status = ?3, failure_reason = 'not seated in time', finished_at = ?2, updated_at = ?2
         WHERE rental_id = ?1 AND status = ?4 AND requested_at < ?2 - ?5",
        params![rental_id, now, SwapStatus::Expired, SwapStatus::AwaitingReturn, SEAT_WITHIN_SECS],
    )?;
    Ok(())
}

/// Asks to swap the rental's power bank for another charged one at the
/// station it came from: seat the bank there, and the station ejects another.
#[utoipa::path(
    post, path = "/api/rentals/{id}/swap", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    responses(
        (status = 202, description = "Seat the bank at `station_sn` by `seat_by`; follow with GET /api/rentals/{id}/swap", body = SwapOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "`invalid_rental_state` (not active), `swap_window_passed`, `swap_in_progress`, `return_in_progress` (the bank was just returned), `station_offline` or `no_power_bank` (none to swap for)", body = ErrorBody),
    )
)]
pub async fn request_swap(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<SwapOut>), ApiError> {
    model::own_core(&state, user.id, id).await?;
    let settings = state.settings.clone();
    let swap = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let rental = model::load_core(tx, id)?.ok_or_else(|| ApiError::not_found("rental"))?;
            if rental.status != RentalStatus::Active {
                return Err(model::illegal(rental.status, "swap"));
            }
            let window = settings.int(tx, SWAP_WINDOW_MINUTES)?;
            let started = rental.started_at.unwrap_or_default();
            if now > started + window * 60 {
                return Err(ApiError::conflict(
                    "swap_window_passed",
                    format!("a power bank can be swapped within {window} minutes of the start"),
                )
                .with_details(json!({"swap_window_minutes": window})));
            }
            expire_lapsed(tx, id, now)?;
            let (station_id, bank_id, bank): (i64, i64, String) = tx.query_row(
                "SELECT r.station_id, r.power_bank_id, pb.serial_number FROM rentals r
                 JOIN power_banks pb ON pb.id = r.power_bank_id WHERE r.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let open: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM rental_swaps WHERE rental_id = ?1 AND status IN (?2, ?3))",
                params![id, SwapStatus::AwaitingReturn, SwapStatus::Ejecting],
                |r| r.get(0),
            )?;
            if open {
                return Err(ApiError::conflict("swap_in_progress", "a swap of this rental is in progress"));
            }
            // A return of this bank already recorded by the station link (its
            // job not yet run) ends the rental: no swap after it. The job
            // statuses are core's texts.
            let returning: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = ?1 AND status IN ('pending', 'running')
                                AND json_extract(payload, '$.power_bank') = ?2)",
                params![RETURNED_JOB, bank],
                |r| r.get(0),
            )?;
            if returning {
                return Err(ApiError::conflict(
                    "return_in_progress",
                    "the power bank was returned; the rental is ending",
                ));
            }
            online_station(tx, StationRef::Id(station_id))?;
            // Something to swap for, other than the bank coming back.
            slots::rentable_bank(tx, station_id)?;
            tx.execute(
                "INSERT INTO rental_swaps (rental_id, station_id, old_power_bank_id, status, requested_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![id, station_id, bank_id, SwapStatus::AwaitingReturn, now],
            )?;
            load_swap(tx, tx.last_insert_rowid())
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(swap)))
}

/// The rental's latest swap.
#[utoipa::path(
    get, path = "/api/rentals/{id}/swap", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    responses(
        (status = 200, description = "The latest swap of the rental", body = SwapOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such rental of yours, or it was never swapped", body = ErrorBody),
    )
)]
pub async fn swap_status(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<SwapOut>, ApiError> {
    model::own_core(&state, user.id, id).await?;
    let swap = state
        .db
        .read(move |c| {
            Ok(c.query_row(
                &format!("{SWAP_SELECT} WHERE sw.rental_id = ?1 ORDER BY sw.id DESC LIMIT 1"),
                [id],
                swap_from_row,
            )
            .optional()?)
        })
        .await?;
    swap.map(Json).ok_or_else(|| ApiError::not_found("swap"))
}

/// The station link's `returned` hook (in the transaction that applies the
/// station's message): a bank seated for an open swap at its own station
/// starts the swap; anything else is a return (see
/// [`lifecycle::enqueue_return`]).
pub fn on_bank_returned(tx: &Transaction<'_>, returned: &BankReturned<'_>) -> Result<(), ApiError> {
    let now = now_ts();
    let open: Option<(i64, i64)> = tx
        .query_row(
            // The literal matches the partial index `rentals_active_bank`.
            "SELECT sw.id, sw.station_id FROM rental_swaps sw
             JOIN rentals r ON r.id = sw.rental_id AND r.status = 'active' AND r.power_bank_id = sw.old_power_bank_id
             JOIN power_banks pb ON pb.id = sw.old_power_bank_id
             WHERE pb.serial_number = ?1 AND sw.status = ?2 AND sw.requested_at >= ?3 - ?4",
            params![returned.power_bank, SwapStatus::AwaitingReturn, now, SEAT_WITHIN_SECS],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match open {
        Some((swap_id, station_id)) if station_id == returned.station_id => {
            tx.execute(
                "UPDATE rental_swaps SET status = ?2, returned_at = ?3, return_slot = ?4, updated_at = ?5
                 WHERE id = ?1",
                params![swap_id, SwapStatus::Ejecting, returned.at, returned.slot, now],
            )?;
            jobs::enqueue(tx, NewJob::new(SWAP_JOB, json!({ "swap_id": swap_id })))?;
            Ok(())
        }
        Some((swap_id, _)) => {
            tx.execute(
                "UPDATE rental_swaps SET status = ?2, failure_reason = 'returned at another station',
                    finished_at = ?3, updated_at = ?3 WHERE id = ?1",
                params![swap_id, SwapStatus::Expired, now],
            )?;
            lifecycle::enqueue_return(tx, returned)
        }
        None => lifecycle::enqueue_return(tx, returned),
    }
}

#[derive(Debug, Deserialize)]
struct SwapJob {
    swap_id: i64,
}

/// What the swap job needs, reserved in one transaction.
struct Reserved {
    rental_id: i64,
    user_id: i64,
    station_id: i64,
    station_sn: String,
    slot: i64,
    request_id: String,
}

/// Ejects another bank for a seated swap (the [`SWAP_JOB`] handler).
pub async fn run_swap(state: AppState, payload: Value) -> Result<(), String> {
    let job: SwapJob = serde_json::from_value(payload).map_err(|e| format!("bad payload: {e}"))?;
    let swap_id = job.swap_id;
    let reserved = state
        .db
        .write(move |tx| {
            let row: Option<(i64, i64, i64, String, Option<String>)> = tx
                .query_row(
                    "SELECT sw.rental_id, r.user_id, sw.station_id, s.serial_number, sw.eject_request_id
                     FROM rental_swaps sw JOIN rentals r ON r.id = sw.rental_id JOIN stations s ON s.id = sw.station_id
                     WHERE sw.id = ?1 AND sw.status = ?2",
                    params![swap_id, SwapStatus::Ejecting],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((rental_id, user_id, station_id, station_sn, earlier_eject)) = row else {
                return Ok(Err(None)); // settled already
            };
            if earlier_eject.is_some() {
                // A run that crashed after sending its eject: the answer is
                // lost, so the user is treated as holding no bank.
                return Ok(Err(Some("the swap was interrupted".to_string())));
            }
            let now = now_ts();
            let old_bank: i64 =
                tx.query_row("SELECT old_power_bank_id FROM rental_swaps WHERE id = ?1", [swap_id], |r| r.get(0))?;
            let Some((slot, bank_id)) = slots::reserve_rentable_bank_other_than(tx, station_id, old_bank, now)? else {
                return Ok(Err(Some("no other charged power bank at the station".to_string())));
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            tx.execute(
                "UPDATE rental_swaps SET eject_request_id = ?2, eject_slot = ?3, new_power_bank_id = ?4, updated_at = ?5
                 WHERE id = ?1",
                params![swap_id, request_id, slot, bank_id, now],
            )?;
            Ok(Ok(Reserved { rental_id, user_id, station_id, station_sn, slot, request_id }))
        })
        .await
        .map_err(|e| e.message)?;
    let reserved = match reserved {
        Ok(r) => r,
        Err(None) => return Ok(()),
        Err(Some(reason)) => {
            state.db.write(move |tx| fail_swap(tx, swap_id, &reason)).await.map_err(|e| e.message)?;
            state.jobs.wake();
            return Ok(());
        }
    };
    let settings = state.settings.clone();
    let timeout = state.db.read(move |c| settings.int(c, EJECT_TIMEOUT_SECONDS)).await.map_err(|e| e.message)?;
    let timeout = std::time::Duration::from_secs(u64::try_from(timeout).unwrap_or(15));
    let slot = u16::try_from(reserved.slot).unwrap_or(0);
    let outcome = state.station_link.eject_with_id(&reserved.station_sn, slot, &reserved.request_id, timeout).await;
    let failure = match outcome {
        Ok(Some(EjectOutcome::Ejected { power_bank })) => {
            let (rental_id, user_id, slot) = (reserved.rental_id, reserved.user_id, reserved.slot);
            state
                .db
                .write(move |tx| complete_swap(tx, swap_id, rental_id, user_id, slot, &power_bank))
                .await
                .map_err(|e| e.message)?;
            None
        }
        Ok(Some(EjectOutcome::Failed { reason })) => Some(format!("the station could not eject: {reason}")),
        Ok(None) => Some("the station did not answer in time".to_string()),
        Err(e) => Some(format!("the command could not be sent: {}", e.message)),
    };
    if let Some(reason) = failure {
        let (station_id, slot) = (reserved.station_id, reserved.slot);
        state
            .db
            .write(move |tx| {
                slots::release_reservation(tx, station_id, slot, now_ts())?;
                fail_swap(tx, swap_id, &reason)
            })
            .await
            .map_err(|e| e.message)?;
    }
    state.jobs.wake();
    Ok(())
}

/// ejecting → completed: the rental goes on with the new bank.
fn complete_swap(
    tx: &Transaction<'_>,
    swap_id: i64,
    rental_id: i64,
    user_id: i64,
    slot: i64,
    power_bank: &str,
) -> Result<(), ApiError> {
    let now = now_ts();
    let done = tx.execute(
        "UPDATE rental_swaps SET status = ?2, finished_at = ?3, updated_at = ?3,
            new_power_bank_id = COALESCE((SELECT id FROM power_banks WHERE serial_number = ?4), new_power_bank_id)
         WHERE id = ?1 AND status = ?5",
        params![swap_id, SwapStatus::Completed, now, power_bank, SwapStatus::Ejecting],
    )?;
    if done == 0 {
        return Ok(());
    }
    tx.execute(
        "UPDATE rentals SET power_bank_id = (SELECT new_power_bank_id FROM rental_swaps WHERE id = ?2),
            slot_index = ?3, updated_at = ?4
         WHERE id = ?1 AND status = ?5",
        params![rental_id, swap_id, slot, now, RentalStatus::Active],
    )?;
    let station: String = tx.query_row(
        "SELECT s.name FROM rental_swaps sw JOIN stations s ON s.id = sw.station_id WHERE sw.id = ?1",
        [swap_id],
        |r| r.get(0),
    )?;
    crate::notifications::notify(
        tx,
        user_id,
        "rental_swapped",
        json!({"power_bank": power_bank, "station_name": station}),
    )?;
    tracing::info!(swap_id, rental_id, power_bank, "power bank swapped");
    Ok(())
}

/// ejecting → failed: no bank came out, so the user holds none. The rental
/// is closed as returned when the old bank was seated, refunded in full (a
/// gateway payment to the wallet), the coupon counts as unused.
fn fail_swap(tx: &Transaction<'_>, swap_id: i64, reason: &str) -> Result<(), ApiError> {
    let now = now_ts();
    let row: Option<(i64, i64, i64, String)> = tx
        .query_row(
            "UPDATE rental_swaps SET status = ?2, failure_reason = ?3, finished_at = ?4, updated_at = ?4
             WHERE id = ?1 AND status = ?5
             RETURNING rental_id, station_id, COALESCE(returned_at, ?4),
                (SELECT serial_number FROM power_banks WHERE id = old_power_bank_id)",
            params![swap_id, SwapStatus::Failed, reason, now, SwapStatus::Ejecting],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((rental_id, station_id, returned_at, old_bank)) = row else { return Ok(()) };
    let closed: Option<(i64, Option<i64>, i64, i64)> = tx
        .query_row(
            "UPDATE rentals SET status = ?2, returned_at = ?3, return_station_id = ?4, unpaid_due_paisa = 0,
                failure_reason = ?5, updated_at = ?6
             WHERE id = ?1 AND status = ?7
             RETURNING user_id, transaction_id, wallet_paisa + gateway_paisa, points_used",
            params![rental_id, RentalStatus::Cancelled, returned_at, station_id, reason, now, RentalStatus::Active],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((user_id, transaction_id, to_wallet, points)) = closed else { return Ok(()) };
    charge::refund(
        tx,
        user_id,
        transaction_id,
        to_wallet,
        points,
        "Rental refunded: the swap could not eject a power bank",
    )?;
    crate::promotions::coupons::release_for_rental(tx, rental_id)?;
    let station: String = tx.query_row("SELECT name FROM stations WHERE id = ?1", [station_id], |r| r.get(0))?;
    crate::notifications::notify(
        tx,
        user_id,
        "rental_swap_failed",
        json!({"power_bank": old_bank, "station_name": station}),
    )?;
    tracing::warn!(swap_id, rental_id, reason, "swap failed; rental closed as returned and refunded");
    Ok(())
}
