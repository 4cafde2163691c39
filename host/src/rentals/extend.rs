//! Extending an active rental: priced by the pricing plugin, paid at once
//! from points and the wallet, or through a gateway first
//! ([`super::due_payments`]).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use powerbank_plugin_runtime::types::{CallContext, ExtensionRequest};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    charge,
    due_payments::{self, RentalGatewayPaymentOut, RentalPaymentPurpose, Wanted},
    initiate::{Payment, payment},
    model::{self, RentalOut, RentalStatus},
};
use crate::{
    core::{ApiError, ApiJson, ApiPath, AuthUser, error::ErrorBody, now_ts},
    ledger::{TransactionKind, WalletKind},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// 15 to 1440 minutes.
    pub extra_minutes: u32,
    /// `wallet`, `points` or `wallet_points` to pay now (answer 200); or a
    /// gateway from `GET /api/payment/methods` to pay there first (answer
    /// 202: pay `intent`, then `POST /api/rentals/{id}/verify-payment`).
    pub payment_method: String,
    /// Gateway payments: where the gateway sends the user back.
    pub return_url: Option<String>,
}

/// Extends an active rental, priced by the pricing plugin: paid now from
/// the balance, or through a gateway (202; the extension is made when the
/// payment arrives, if the rental is still active, else the money goes to
/// the wallet).
#[utoipa::path(
    post, path = "/api/rentals/{id}/extend", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = ExtendRequest,
    responses(
        (status = 200, description = "Paid from the balance: the extended rental", body = RentalOut),
        (status = 202, description = "Paid through a gateway: pay `intent`, confirm with POST /api/rentals/{id}/verify-payment", body = RentalGatewayPaymentOut),
        (status = 400, description = "Bad duration or unknown payment method", body = ErrorBody),
        (status = 402, description = "Not enough balance", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "The rental is not active (`invalid_rental_state`), or an extension payment is waiting at a gateway (`payment_in_progress`)", body = ErrorBody),
        (status = 422, description = "The gateway refused", body = ErrorBody),
        (status = 502, description = "The gateway failed", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time", body = ErrorBody),
    )
)]
pub async fn extend(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ExtendRequest>,
) -> Result<Response, ApiError> {
    if !(15..=1440).contains(&req.extra_minutes) {
        return Err(ApiError::invalid_field("extra_minutes", "must be 15 to 1440"));
    }
    let rental = model::own_core(&state, user.id, id).await?;
    let method = payment(&state, &req.payment_method)?;
    if rental.status != RentalStatus::Active {
        return Err(model::illegal(rental.status, "extend"));
    }
    let due = rental.due_at.unwrap_or_else(now_ts);
    let price = state
        .plugins
        .pricing()
        .price_extension(ExtensionRequest {
            package: rental.package_info(),
            current_due_unix_ms: due * 1000,
            extra_minutes: req.extra_minutes,
            context: CallContext {
                user_id: Some(user.id.to_string()),
                station_sn: None,
                now_unix_ms: chrono::Utc::now().timestamp_millis(),
            },
        })
        .await?;
    let extra = i64::from(req.extra_minutes);
    let method = match method {
        // Nothing to pay at a gateway: extended at once.
        Payment::Gateway(_) if price == 0 => charge::PaymentMethod::Wallet,
        Payment::Gateway(gateway) => {
            let wanted = Wanted {
                rental_id: id,
                purpose: RentalPaymentPurpose::Extension,
                amount_paisa: price,
                extra_minutes: Some(extra),
            };
            return due_payments::open(&state, user.id, wanted, gateway, req.return_url).await;
        }
        Payment::Balance(m) => m,
    };
    let split = charge::plan_split(&state, user.id, price, method).await?;
    let out = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let paid = charge::charge(
                tx,
                user.id,
                price,
                split,
                charge::ChargeFor {
                    kind: TransactionKind::RentalExtension,
                    wallet_kind: WalletKind::ExtensionCharge,
                    rental_id: Some(id),
                    description: &format!("Extension of {extra} minutes"),
                },
            )?;
            // The charge rolls back with the refusal.
            if !apply(tx, id, extra, price, paid.transaction_id, now)? {
                return Err(model::illegal("no longer active", "extend"));
            }
            model::load_own(tx, user.id, id)
        })
        .await?;
    Ok((StatusCode::OK, Json(out)).into_response())
}

/// Moves an active rental's due time `extra` minutes on and records the
/// extension paid by `transaction_id`, in the caller's transaction. Returns
/// false, changing nothing, when the rental is no longer active.
pub(super) fn apply(
    tx: &Transaction<'_>,
    id: i64,
    extra: i64,
    price: i64,
    transaction_id: Option<i64>,
    now: i64,
) -> Result<bool, ApiError> {
    let new_due: Option<(i64, i64)> = tx
        .query_row(
            "UPDATE rentals SET due_at = due_at + ?2 * 60, due_minutes = due_minutes + ?2, reminded_at = NULL,
                overdue_reminders_sent = 0, updated_at = ?3
             WHERE id = ?1 AND status = ?4 RETURNING due_at - ?2 * 60, due_at",
            params![id, extra, now, RentalStatus::Active],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((previous, new)) = new_due else { return Ok(false) };
    tx.execute(
        "INSERT INTO rental_extensions (rental_id, extra_minutes, amount_paisa, transaction_id, previous_due_at,
            new_due_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![id, extra, price, transaction_id, previous, new, now],
    )?;
    Ok(true)
}
