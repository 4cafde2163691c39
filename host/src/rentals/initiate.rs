//! `POST /api/rentals/initiate`: price, pay, reserve a slot, eject, and wait
//! for the station's answer.
//!
//! Money and the slot reservation commit in one transaction before the eject
//! command goes out, so a crash never ejects an unpaid bank. If the station
//! refuses or stays silent, a second transaction refunds everything and
//! frees the slot.

use axum::{Json, extract::State, http::StatusCode};
use powerbank_plugin_runtime::types::{CallContext, QuoteRequest};
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    charge::{self, PaymentMethod},
    model::RentalOut,
};
use crate::{
    core::{ApiError, ApiJson, AppState, AuthUser, error::ErrorBody, now_ts},
    payments::ledger::WalletKind,
    stations::{link::EjectOutcome, listing::RENTABLE_BATTERY},
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitiateRequest {
    pub station_sn: String,
    pub package_id: i64,
    /// `wallet`, `points` or `wallet_points` (points first, then wallet).
    pub payment_method: PaymentMethod,
    pub coupon_code: Option<String>,
}

/// Checks that do not need a lock: the user may rent at all.
fn check_user(c: &rusqlite::Connection, user_id: i64) -> Result<(), ApiError> {
    if !crate::kyc::kyc_approved(c, user_id)? {
        return Err(ApiError::forbidden("KYC approval is needed before renting")
            .with_details(serde_json::json!({"reason": "kyc_not_approved"})));
    }
    let complete: bool = c.query_row(
        "SELECT full_name IS NOT NULL AND date_of_birth IS NOT NULL AND address IS NOT NULL
         FROM user_profiles WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    if !complete {
        return Err(ApiError::forbidden("complete your profile (name, date of birth, address) before renting")
            .with_details(serde_json::json!({"reason": "profile_incomplete"})));
    }
    Ok(())
}

fn check_can_start(tx: &rusqlite::Transaction<'_>, user_id: i64) -> Result<(), ApiError> {
    let open: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM rentals WHERE user_id = ?1 AND status IN ('pending_eject', 'active'))",
        [user_id],
        |r| r.get(0),
    )?;
    if open {
        return Err(ApiError::conflict("rental_in_progress", "you already have a rental in progress"));
    }
    let dues: i64 = tx.query_row(
        "SELECT COALESCE(SUM(unpaid_due_paisa), 0) FROM rentals WHERE user_id = ?1 AND unpaid_due_paisa > 0",
        [user_id],
        |r| r.get(0),
    )?;
    if dues > 0 {
        return Err(ApiError::new(StatusCode::PAYMENT_REQUIRED, "unpaid_dues", "pay your outstanding dues first")
            .with_details(serde_json::json!({"unpaid_due_paisa": dues})));
    }
    Ok(())
}

struct Reserved {
    rental_id: i64,
    station_sn: String,
    slot: u16,
    request_id: String,
}

/// Rents a power bank from a station.
#[utoipa::path(
    post, path = "/api/rentals/initiate", tag = "rentals",
    security(("bearer" = [])),
    request_body = InitiateRequest,
    responses(
        (status = 201, description = "The station ejected a power bank; the rental is active", body = RentalOut),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 402, description = "Not enough balance, or unpaid dues", body = ErrorBody),
        (status = 403, description = "KYC not approved or profile incomplete", body = ErrorBody),
        (status = 404, description = "Unknown station or package", body = ErrorBody),
        (status = 409, description = "A rental in progress, station offline or no charged power bank", body = ErrorBody),
        (status = 502, description = "The station could not eject (refunded) or a plugin failed", body = ErrorBody),
        (status = 504, description = "The station did not answer in time (refunded)", body = ErrorBody),
    )
)]
pub async fn initiate(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<InitiateRequest>,
) -> Result<(StatusCode, Json<RentalOut>), ApiError> {
    if let Some(code) = req.coupon_code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        // No coupon campaigns exist yet; an unknown code must not be ignored silently.
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "coupon_invalid",
            format!("unknown coupon {code}"),
        ));
    }
    let user_id = user.id;
    let (sn, package_id) = (req.station_sn.trim().to_string(), req.package_id);
    let package = state
        .db
        .read(move |c| {
            check_user(c, user_id)?;
            Ok(c.query_row(
                "SELECT id, code, price_paisa, duration_minutes FROM rental_packages WHERE id = ?1 AND is_active = 1",
                [package_id],
                |r| {
                    Ok(powerbank_plugin_runtime::types::PackageInfo {
                        id: r.get::<_, i64>(0)?.to_string(),
                        code: r.get(1)?,
                        price_paisa: r.get(2)?,
                        duration_minutes: r.get(3)?,
                    })
                },
            )
            .optional()?)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    let context = CallContext {
        user_id: Some(user_id.to_string()),
        station_sn: Some(sn.clone()),
        now_unix_ms: chrono::Utc::now().timestamp_millis(),
    };
    let quote = state.plugins.pricing().quote(QuoteRequest { package, requested_minutes: None, context }).await?;
    let method = req.payment_method;
    let split = charge::plan_split(&state, user_id, quote.amount_paisa, method).await?;

    let reserved = state
        .db
        .write(move |tx| {
            let now = now_ts();
            check_can_start(tx, user_id)?;
            let station: Option<(i64, String)> = tx
                .query_row(
                    "SELECT id, status FROM stations WHERE serial_number = ?1 AND status != 'retired'",
                    [&sn],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (station_id, status) = station.ok_or_else(|| ApiError::not_found("station"))?;
            if status != "online" {
                return Err(ApiError::conflict("station_offline", format!("the station is {status}")));
            }
            // The fullest charged bank; its slot is reserved until the eject settles.
            let slot: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT sl.slot_index, pb.id FROM station_slots sl JOIN power_banks pb ON pb.id = sl.power_bank_id
                     WHERE sl.station_id = ?1 AND sl.status = 'occupied' AND pb.status = 'in_slot'
                       AND pb.battery_level >= ?2
                     ORDER BY pb.battery_level DESC, sl.slot_index LIMIT 1",
                    params![station_id, RENTABLE_BATTERY],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (slot, bank_id) =
                slot.ok_or_else(|| ApiError::conflict("no_power_bank", "no charged power bank at this station"))?;
            tx.execute(
                "UPDATE station_slots SET status = 'reserved', updated_at = ?3 WHERE station_id = ?1 AND slot_index = ?2",
                params![station_id, slot, now],
            )?;
            let request_id = uuid::Uuid::new_v4().to_string();
            let code = format!("R-{}", &uuid::Uuid::new_v4().simple().to_string()[..10].to_uppercase());
            tx.execute(
                "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index,
                    power_bank_id, eject_request_id, amount_paisa, due_minutes, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'pending_eject', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                params![
                    code,
                    user_id,
                    package_id,
                    method.as_str(),
                    station_id,
                    slot,
                    bank_id,
                    request_id,
                    quote.amount_paisa,
                    quote.due_minutes,
                    now
                ],
            )?;
            let rental_id = tx.last_insert_rowid();
            let paid = charge::charge(
                tx,
                user_id,
                quote.amount_paisa,
                split,
                charge::ChargeFor { kind: "rental", wallet_kind: WalletKind::RentalCharge, rental_id: Some(rental_id), description: &format!("Rental {code}") },
            )?;
            tx.execute(
                "UPDATE rentals SET wallet_paisa = ?2, points_used = ?3, transaction_id = ?4 WHERE id = ?1",
                params![rental_id, paid.split.wallet_paisa, paid.split.points, paid.transaction_id],
            )?;
            Ok(Reserved { rental_id, station_sn: sn, slot: u16::try_from(slot).unwrap_or(0), request_id })
        })
        .await?;

    let outcome = state
        .station_link
        .eject_with_id(&reserved.station_sn, reserved.slot, &reserved.request_id, state.config.rentals.eject_timeout)
        .await;
    let rental_id = reserved.rental_id;
    let (status, code, reason) = match outcome {
        Ok(Some(EjectOutcome::Ejected { power_bank })) => {
            let rental = state.db.write(move |tx| super::lifecycle::activate(tx, rental_id, &power_bank)).await?;
            state.jobs.wake();
            return Ok((StatusCode::CREATED, Json(rental)));
        }
        Ok(Some(EjectOutcome::Failed { reason })) => {
            (StatusCode::BAD_GATEWAY, "eject_failed", format!("the station could not eject: {reason}"))
        }
        Ok(None) => (StatusCode::GATEWAY_TIMEOUT, "eject_timeout", "the station did not answer in time".to_string()),
        Err(e) => (StatusCode::BAD_GATEWAY, "eject_failed", format!("the command could not be sent: {}", e.message)),
    };
    let why = reason.clone();
    state.db.write(move |tx| super::lifecycle::fail(tx, rental_id, &why)).await?;
    Err(ApiError::new(status, code, format!("{reason}; your payment was refunded"))
        .with_details(serde_json::json!({"rental_id": rental_id})))
}
