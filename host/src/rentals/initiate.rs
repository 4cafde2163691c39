//! `POST /api/rentals/initiate`: price (pricing plugin, then any coupon
//! through the promotions plugin), pay, reserve a slot, eject, and wait for
//! the station's answer.
//!
//! Paid from the balance (wallet, points): money, the coupon redemption and
//! the slot reservation commit in one transaction before the eject command
//! goes out, so a crash never ejects an unpaid bank. If the station refuses
//! or stays silent, a second transaction refunds everything and frees the
//! slot. Paid through a gateway: nothing is charged or ejected here; the
//! answer is the gateway payment to make (see [`super::gateway`]).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{
    charge::{self, PaymentMethod},
    lifecycle,
    model::{self, RentalOut, RentalStatus},
    orders::{OrderStatus, RentalOrderOut},
    settings::{EJECT_TIMEOUT_SECONDS, KYC_REQUIRED, MAX_ACTIVE_PER_USER},
};
use crate::{
    core::{ApiError, ApiJson, AuthUser, error::ErrorBody, now_ts},
    ledger::{TransactionKind, WalletKind},
    packages,
    promotions::{
        campaigns::apply::{self as campaign_offers, AutoDiscount},
        coupons::{self, AppliedCoupon},
    },
    settings::Settings,
    state::AppState,
    stations::{link::EjectOutcome, slots, status::StationStatus},
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitiateRequest {
    pub station_sn: String,
    pub package_id: i64,
    /// `wallet`, `points` or `wallet_points` (points first, then wallet) to
    /// pay from the balance now; or a gateway from `GET /api/payment/methods`
    /// (`khalti`, `esewa`, `stripe`) to pay there first (answer 202).
    pub payment_method: String,
    /// A coupon to take off the package price (promotions plugin).
    pub coupon_code: Option<String>,
    /// Gateway payments: where the gateway sends the user back (the app's
    /// deep link); the plugin's configured URL when absent.
    pub return_url: Option<String>,
}

/// How a rental (or its due, or an extension) is paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Payment {
    Balance(PaymentMethod),
    Gateway(String),
}

/// `payment_method` as requests carry it: a balance method or a loaded gateway plugin's name.
pub(super) fn payment(state: &AppState, raw: &str) -> Result<Payment, ApiError> {
    let raw = raw.trim();
    match raw {
        "wallet" => return Ok(Payment::Balance(PaymentMethod::Wallet)),
        "points" => return Ok(Payment::Balance(PaymentMethod::Points)),
        "wallet_points" => return Ok(Payment::Balance(PaymentMethod::WalletPoints)),
        _ => {}
    }
    let gateways = state.plugins.gateway_names();
    if gateways.iter().any(|g| g == raw) {
        return Ok(Payment::Gateway(raw.to_string()));
    }
    Err(ApiError::invalid_field(
        "payment_method",
        format!(
            "`{raw}` is not a payment method (wallet, points, wallet_points, or a gateway: {})",
            gateways.join(", ")
        ),
    ))
}

/// Checks that do not need a lock: the user may rent at all (KYC only
/// while the operators' `rentals.kyc_required` says so).
fn check_user(c: &Connection, settings: &Settings, user_id: i64) -> Result<(), ApiError> {
    if settings.flag(c, KYC_REQUIRED)? && !crate::kyc::kyc_approved(c, user_id)? {
        return Err(ApiError::forbidden("KYC approval is needed before renting")
            .with_details(json!({"reason": "kyc_not_approved"})));
    }
    let complete: bool = c.query_row(
        "SELECT full_name IS NOT NULL AND date_of_birth IS NOT NULL AND address IS NOT NULL
         FROM user_profiles WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    if !complete {
        return Err(ApiError::forbidden("complete your profile (name, date of birth, address) before renting")
            .with_details(json!({"reason": "profile_incomplete"})));
    }
    Ok(())
}

/// Fewer rentals in progress than the operators' `rentals.max_active_per_user`,
/// and no unpaid dues. Called in the writing transaction that starts the
/// rental, so two starts cannot both pass the count.
pub(super) fn check_can_start(c: &Connection, settings: &Settings, user_id: i64) -> Result<(), ApiError> {
    let open: i64 = c.query_row(
        "SELECT COUNT(*) FROM rentals WHERE user_id = ?1 AND status IN (?2, ?3)",
        params![user_id, RentalStatus::PendingEject, RentalStatus::Active],
        |r| r.get(0),
    )?;
    let max = settings.int(c, MAX_ACTIVE_PER_USER)?;
    if open >= max {
        return Err(ApiError::conflict("rental_in_progress", "you already have a rental in progress")
            .with_details(json!({"active_rentals": open, "max_active_rentals": max})));
    }
    let dues: i64 = c.query_row(
        "SELECT COALESCE(SUM(unpaid_due_paisa), 0) FROM rentals WHERE user_id = ?1 AND unpaid_due_paisa > 0",
        [user_id],
        |r| r.get(0),
    )?;
    if dues > 0 {
        return Err(ApiError::new(StatusCode::PAYMENT_REQUIRED, "unpaid_dues", "pay your outstanding dues first")
            .with_details(json!({"unpaid_due_paisa": dues})));
    }
    Ok(())
}

/// No gateway payment for a rental waiting to be paid or started.
pub(super) fn check_no_open_order(c: &Connection, user_id: i64) -> Result<(), ApiError> {
    let open: Option<(i64, OrderStatus, String)> = c
        .query_row(
            "SELECT id, status, payment_intent_id FROM rental_orders
             WHERE user_id = ?1 AND status IN (?2, ?3)",
            params![user_id, OrderStatus::AwaitingPayment, OrderStatus::Paid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match open {
        None => Ok(()),
        Some((id, status, intent)) => {
            let message = if status == OrderStatus::Paid {
                "you have paid for a rental that has not started: start it with POST /api/rentals/start"
            } else {
                "a rental payment is in progress: finish it, or cancel it with POST /api/payment/cancel/{intent_id}"
            };
            Err(ApiError::conflict("rental_payment_in_progress", message)
                .with_details(json!({"order_id": id, "status": status, "intent_id": intent})))
        }
    }
}

/// A registered station that takes rentals now: (id, serial number).
pub(super) fn online_station(c: &Connection, by: StationRef<'_>) -> Result<(i64, String), ApiError> {
    let row = |r: &rusqlite::Row<'_>| Ok((r.get("id")?, r.get("serial_number")?, r.get("status")?));
    let station: Option<(i64, String, StationStatus)> = match by {
        StationRef::Serial(sn) => c.query_row(
            "SELECT id, serial_number, status FROM stations WHERE serial_number = ?1 AND status != ?2",
            params![sn, StationStatus::Retired],
            row,
        ),
        StationRef::Id(id) => c.query_row(
            "SELECT id, serial_number, status FROM stations WHERE id = ?1 AND status != ?2",
            params![id, StationStatus::Retired],
            row,
        ),
    }
    .optional()?;
    let (id, sn, status) = station.ok_or_else(|| ApiError::not_found("station"))?;
    if status != StationStatus::Online {
        return Err(ApiError::conflict("station_offline", format!("the station is {status}")));
    }
    Ok((id, sn))
}

#[derive(Debug, Clone, Copy)]
pub(super) enum StationRef<'a> {
    Serial(&'a str),
    Id(i64),
}

/// A rental about to be ejected, before it is paid for.
pub(super) struct NewRental<'a> {
    pub user_id: i64,
    pub package_id: i64,
    pub payment_method: &'a str,
    pub station_id: i64,
    pub amount_paisa: i64,
    pub due_minutes: i64,
    pub discount_paisa: i64,
    pub coupon_id: Option<i64>,
}

/// A `pending_eject` rental with its slot reserved, ready for the command.
pub(super) struct Reserved {
    pub rental_id: i64,
    /// The rental's public code, `R-...`.
    pub code: String,
    pub user_id: i64,
    pub station_sn: String,
    pub slot: u16,
    pub request_id: String,
}

/// Reserves the fullest charged bank's slot and inserts the `pending_eject`
/// rental, in the caller's transaction.
pub(super) fn reserve(tx: &Transaction<'_>, station_sn: String, r: NewRental<'_>) -> Result<Reserved, ApiError> {
    let now = now_ts();
    let (slot, bank_id) = slots::reserve_rentable_bank(tx, r.station_id, now)?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let code = format!("R-{}", &uuid::Uuid::new_v4().simple().to_string()[..10].to_uppercase());
    tx.execute(
        "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index,
            power_bank_id, eject_request_id, amount_paisa, due_minutes, discount_paisa, coupon_id, created_at,
            updated_at)
         VALUES (?1, ?2, ?3, ?14, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
        params![
            code,
            r.user_id,
            r.package_id,
            r.payment_method,
            r.station_id,
            slot,
            bank_id,
            request_id,
            r.amount_paisa,
            r.due_minutes,
            r.discount_paisa,
            r.coupon_id,
            now,
            RentalStatus::PendingEject
        ],
    )?;
    Ok(Reserved {
        rental_id: tx.last_insert_rowid(),
        code,
        user_id: r.user_id,
        station_sn,
        slot: u16::try_from(slot).unwrap_or(0),
        request_id,
    })
}

/// What a failed eject gives back, for the error the client gets.
pub(super) struct RefundNote {
    pub message: String,
    pub details: Value,
}

/// Sends the eject and waits (bounded) for the station: the rental becomes
/// active, or fails with everything paid given back (see
/// [`lifecycle::fail`]).
pub(super) async fn eject_and_settle(
    state: &AppState,
    reserved: Reserved,
    refund: RefundNote,
) -> Result<RentalOut, ApiError> {
    let settings = state.settings.clone();
    let timeout = state.db.read(move |c| settings.int(c, EJECT_TIMEOUT_SECONDS)).await?;
    let timeout = std::time::Duration::from_secs(u64::try_from(timeout).unwrap_or(15));
    let outcome =
        state.station_link.eject_with_id(&reserved.station_sn, reserved.slot, &reserved.request_id, timeout).await;
    let (rental_id, user_id) = (reserved.rental_id, reserved.user_id);
    let (status, code, reason) = match outcome {
        Ok(Some(EjectOutcome::Ejected { power_bank })) => {
            let rental = state.db.write(move |tx| lifecycle::activate(tx, rental_id, &power_bank)).await?;
            state.jobs.wake();
            return Ok(rental);
        }
        Ok(Some(EjectOutcome::Failed { reason })) => {
            (StatusCode::BAD_GATEWAY, "eject_failed", format!("the station could not eject: {reason}"))
        }
        Ok(None) => (StatusCode::GATEWAY_TIMEOUT, "eject_timeout", "the station did not answer in time".to_string()),
        Err(e) => (StatusCode::BAD_GATEWAY, "eject_failed", format!("the command could not be sent: {}", e.message)),
    };
    let why = reason.clone();
    let failed = state.db.write(move |tx| lifecycle::fail(tx, rental_id, code, &why)).await?;
    if !failed {
        // The station's answer arrived just after the wait ended and the
        // link applied it first: the bank is out and the rental is active.
        let rental = state.db.read(move |c| model::load_own(c, user_id, rental_id)).await?;
        if rental.status == RentalStatus::Active {
            return Ok(rental);
        }
    }
    let mut details = json!({ "rental_id": rental_id });
    if let (Some(d), Value::Object(extra)) = (details.as_object_mut(), refund.details) {
        d.extend(extra);
    }
    Err(ApiError::new(status, code, format!("{reason}; {}", refund.message)).with_details(details))
}

/// A rental's price: the package's quote, less a coupon or a campaign's
/// automatic discount (never both: docs/campaigns.md).
pub(super) struct Priced {
    pub package_code: String,
    pub list_amount_paisa: i64,
    pub amount_paisa: i64,
    pub due_minutes: i64,
    pub coupon: Option<AppliedCoupon>,
    /// The pricing build that decided the price (stored on the rental).
    pub plugin_release: String,
    pub campaign: Option<AutoDiscount>,
}

impl Priced {
    pub fn discount_paisa(&self) -> i64 {
        self.coupon.as_ref().map(|c| c.discount_paisa).or(self.campaign.as_ref().map(|c| c.discount_paisa)).unwrap_or(0)
    }

    pub fn coupon_id(&self) -> Option<i64> {
        self.coupon.as_ref().map(|c| c.coupon_id)
    }

    /// Records the campaign redemption, if any, in the paying transaction
    /// (which checks the campaign's limits again).
    pub fn redeem_campaign(
        &self,
        tx: &Transaction<'_>,
        user_id: i64,
        rental_id: Option<i64>,
        rental_order_id: Option<i64>,
    ) -> Result<(), ApiError> {
        let Some(c) = &self.campaign else { return Ok(()) };
        campaign_offers::redeem(
            tx,
            c.campaign_id,
            user_id,
            campaign_offers::Redemption {
                rental_id,
                rental_order_id,
                transaction_id: None,
                discount_paisa: c.discount_paisa,
                points: 0,
            },
        )
    }
}

async fn price(
    state: &AppState,
    user_id: i64,
    package_id: i64,
    station_sn: &str,
    coupon_code: Option<&str>,
) -> Result<Priced, ApiError> {
    let (package, decided) = packages::quote_traced(state, user_id, package_id, Some(station_sn.to_string())).await?;
    let (quote, plugin_release) = (decided.value, decided.release);
    let coupon = match coupon_code {
        Some(code) => Some(
            coupons::apply(
                state,
                user_id,
                code,
                quote.amount_paisa,
                Some(package.code.clone()),
                Some(station_sn.to_string()),
            )
            .await?,
        ),
        None => None,
    };
    let campaign =
        campaign_offers::best_rental_discount(state, user_id, quote.amount_paisa, &package.code, Some(station_sn))
            .await?;
    // A coupon and an automatic discount never both apply: the better one
    // does (the coupon on a tie, since the rider asked for it).
    let (coupon, campaign) = match (coupon, campaign) {
        (Some(coupon), Some(auto)) if auto.discount_paisa > coupon.discount_paisa => (None, Some(auto)),
        (Some(coupon), _) => (Some(coupon), None),
        (None, auto) => (None, auto),
    };
    let amount_paisa = match (&coupon, &campaign) {
        (Some(c), _) => c.final_amount_paisa,
        (None, Some(a)) => a.final_amount_paisa,
        (None, None) => quote.amount_paisa,
    };
    Ok(Priced {
        package_code: package.code,
        list_amount_paisa: quote.amount_paisa,
        amount_paisa,
        due_minutes: i64::from(quote.due_minutes),
        coupon,
        plugin_release,
        campaign,
    })
}

/// Rents a power bank from a station.
#[utoipa::path(
    post, path = "/api/rentals/initiate", tag = "rentals",
    security(("bearer" = [])),
    request_body = InitiateRequest,
    responses(
        (status = 201, description = "Paid from the balance: the station ejected a power bank and the rental is active", body = RentalOut),
        (status = 202, description = "Paid through a gateway: pay `intent`, confirm with POST /api/rentals/verify-payment, then POST /api/rentals/start", body = RentalOrderOut),
        (status = 400, description = "Invalid request or unknown payment method", body = ErrorBody),
        (status = 402, description = "Not enough balance, unpaid dues, or below the postpaid minimum balance (`postpaid_min_balance`)", body = ErrorBody),
        (status = 403, description = "KYC not approved or profile incomplete", body = ErrorBody),
        (status = 404, description = "Unknown station or package", body = ErrorBody),
        (status = 409, description = "A rental or rental payment in progress, station offline or no charged power bank", body = ErrorBody),
        (status = 422, description = "The coupon does not apply (`coupon_invalid`, `coupon_expired`, `coupon_not_yet_valid`, `coupon_below_minimum`, `coupon_usage_limit_reached`, `coupon_user_limit_reached`), or the gateway refused", body = ErrorBody),
        (status = 502, description = "The station could not eject (refunded), or a plugin or gateway failed", body = ErrorBody),
        (status = 504, description = "The station did not answer in time (refunded), or the gateway did not", body = ErrorBody),
    )
)]
pub async fn initiate(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<InitiateRequest>,
) -> Result<Response, ApiError> {
    let user_id = user.id;
    let sn = req.station_sn.trim().to_string();
    let method = payment(&state, &req.payment_method)?;
    crate::payments::intents::check_return_url(req.return_url.as_deref())?;
    let settings = state.settings.clone();
    state.db.read(move |c| check_user(c, &settings, user_id)).await?;
    if super::postpaid::is_postpaid(&state, req.package_id).await? {
        let rental = super::postpaid::initiate(
            &state,
            user_id,
            sn,
            req.package_id,
            &req.payment_method,
            req.coupon_code.as_deref(),
        )
        .await?;
        return Ok((StatusCode::CREATED, Json(rental)).into_response());
    }
    let coupon = req.coupon_code.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let priced = price(&state, user_id, req.package_id, &sn, coupon).await?;
    let method = match method {
        // Nothing left to pay at a gateway: a free rental needs no payment step.
        Payment::Gateway(_) if priced.amount_paisa == 0 => PaymentMethod::Wallet,
        Payment::Gateway(gateway) => {
            let order =
                super::orders::open_order(&state, user_id, sn, req.package_id, gateway, priced, req.return_url).await?;
            return Ok((StatusCode::ACCEPTED, Json(order)).into_response());
        }
        Payment::Balance(m) => m,
    };
    let split = charge::plan_split(&state, user_id, priced.amount_paisa, method).await?;
    let package_id = req.package_id;
    let settings = state.settings.clone();
    let reserved = state
        .db
        .write(move |tx| {
            check_can_start(tx, &settings, user_id)?;
            check_no_open_order(tx, user_id)?;
            let (station_id, sn) = online_station(tx, StationRef::Serial(&sn))?;
            let reserved = reserve(
                tx,
                sn,
                NewRental {
                    user_id,
                    package_id,
                    payment_method: method.as_str(),
                    station_id,
                    amount_paisa: priced.amount_paisa,
                    due_minutes: priced.due_minutes,
                    discount_paisa: priced.discount_paisa(),
                    coupon_id: priced.coupon_id(),
                },
            )?;
            let rental_id = reserved.rental_id;
            tx.execute(
                "UPDATE rentals SET plugin_release = ?2 WHERE id = ?1",
                params![rental_id, priced.plugin_release],
            )?;
            let paid = charge::charge(
                tx,
                user_id,
                priced.amount_paisa,
                split,
                charge::ChargeFor {
                    kind: TransactionKind::Rental,
                    wallet_kind: WalletKind::RentalCharge,
                    rental_id: Some(rental_id),
                    description: &format!("Rental {}", reserved.code),
                },
            )?;
            tx.execute(
                "UPDATE rentals SET wallet_paisa = ?2, points_used = ?3, transaction_id = ?4 WHERE id = ?1",
                params![rental_id, paid.split.wallet_paisa, paid.split.points, paid.transaction_id],
            )?;
            if let Some(c) = &priced.coupon {
                coupons::redeem(tx, user_id, c, Some(rental_id), None)?;
            }
            priced.redeem_campaign(tx, user_id, Some(rental_id), None)?;
            Ok(reserved)
        })
        .await?;
    let refund = RefundNote { message: "your payment was refunded".into(), details: json!({}) };
    let rental = eject_and_settle(&state, reserved, refund).await?;
    Ok((StatusCode::CREATED, Json(rental)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[tokio::test]
    async fn payment_methods_are_the_balance_or_a_loaded_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::server::build_state(Config::for_tests(dir.path())).await.unwrap();
        assert_eq!(payment(&state, "wallet").unwrap(), Payment::Balance(PaymentMethod::Wallet));
        assert_eq!(payment(&state, " wallet_points ").unwrap(), Payment::Balance(PaymentMethod::WalletPoints));
        let e = payment(&state, "cash").unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "validation_failed"));
        for gateway in state.plugins.gateway_names() {
            assert_eq!(payment(&state, &gateway).unwrap(), Payment::Gateway(gateway.clone()));
        }
    }
}
