//! What a rental owes: the running overdue charge of an active rental, the
//! due recorded at return, and paying it (which unblocks new rentals).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use powerbank_plugin_runtime::types::{CallContext, OverdueRequest};
use rusqlite::params;
use serde::{Deserialize, Serialize};
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

#[derive(Debug, Serialize, ToSchema)]
pub struct DueOut {
    pub rental_id: i64,
    /// Overdue charge if the bank were returned now (active rentals).
    pub overdue_now_paisa: i64,
    /// Recorded and not yet paid (completed rentals).
    pub unpaid_due_paisa: i64,
    pub explanation: String,
}

/// What the rental owes: the running overdue charge, or the unpaid due.
#[utoipa::path(
    get, path = "/api/rentals/{id}/calculate-due", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    responses(
        (status = 200, description = "Amounts owed", body = DueOut),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
    )
)]
pub async fn calculate_due(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<DueOut>, ApiError> {
    let rental = model::own_core(&state, user.id, id).await?;
    let now = now_ts();
    let (overdue, explanation) = match (rental.status, rental.due_at) {
        (RentalStatus::Active, Some(due)) if now > due => {
            let c = state
                .plugins
                .pricing()
                .overdue_charge(OverdueRequest {
                    package: rental.package_info(),
                    due_unix_ms: due * 1000,
                    returned_unix_ms: now * 1000,
                    context: CallContext {
                        user_id: Some(user.id.to_string()),
                        station_sn: None,
                        now_unix_ms: now * 1000,
                    },
                })
                .await?;
            (c.amount_paisa, c.explanation)
        }
        (RentalStatus::Active, _) => (0, "not overdue".to_string()),
        _ if rental.unpaid_due_paisa > 0 => (0, "overdue charge recorded at return".to_string()),
        _ => (0, "nothing owed".to_string()),
    };
    Ok(Json(DueOut {
        rental_id: id,
        overdue_now_paisa: overdue,
        unpaid_due_paisa: rental.unpaid_due_paisa,
        explanation,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayDueRequest {
    /// `wallet`, `points` or `wallet_points` to pay now (answer 200); or a
    /// gateway from `GET /api/payment/methods` to pay there first (answer
    /// 202: pay `intent`, then `POST /api/rentals/{id}/verify-payment`).
    pub payment_method: String,
    /// Gateway payments: where the gateway sends the user back.
    pub return_url: Option<String>,
}

/// Pays a recorded overdue charge, which unblocks new rentals: from the
/// balance at once, or through a gateway (202; settled when the payment
/// arrives, or credited to the wallet if the due was paid another way
/// meanwhile).
#[utoipa::path(
    post, path = "/api/rentals/{id}/pay-due", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = PayDueRequest,
    responses(
        (status = 200, description = "Paid from the balance", body = RentalOut),
        (status = 202, description = "Paid through a gateway: pay `intent`, confirm with POST /api/rentals/{id}/verify-payment", body = RentalGatewayPaymentOut),
        (status = 400, description = "Unknown payment method", body = ErrorBody),
        (status = 402, description = "Not enough balance", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "Nothing to pay (`nothing_due`), or a due payment is waiting at a gateway (`payment_in_progress`)", body = ErrorBody),
        (status = 422, description = "The gateway refused", body = ErrorBody),
        (status = 502, description = "The gateway failed", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time", body = ErrorBody),
    )
)]
pub async fn pay_due(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<PayDueRequest>,
) -> Result<Response, ApiError> {
    let due = model::own_core(&state, user.id, id).await?.unpaid_due_paisa;
    let method = payment(&state, &req.payment_method)?;
    if due == 0 {
        return Err(ApiError::conflict("nothing_due", "this rental has nothing to pay"));
    }
    let method = match method {
        Payment::Gateway(gateway) => {
            let wanted =
                Wanted { rental_id: id, purpose: RentalPaymentPurpose::Due, amount_paisa: due, extra_minutes: None };
            return due_payments::open(&state, user.id, wanted, gateway, req.return_url).await;
        }
        Payment::Balance(m) => m,
    };
    let split = charge::plan_split(&state, user.id, due, method).await?;
    let out = state
        .db
        .write(move |tx| {
            // The due the split was planned for must still be the one owed.
            let settled = tx.execute(
                "UPDATE rentals SET unpaid_due_paisa = 0, updated_at = ?4
                 WHERE id = ?1 AND user_id = ?2 AND unpaid_due_paisa = ?3",
                params![id, user.id, due, now_ts()],
            )?;
            if settled == 0 {
                return Err(ApiError::conflict("nothing_due", "this due was already paid"));
            }
            charge::charge(
                tx,
                user.id,
                due,
                split,
                charge::ChargeFor {
                    kind: TransactionKind::Overdue,
                    wallet_kind: WalletKind::OverdueCharge,
                    rental_id: Some(id),
                    description: "Overdue charge",
                },
            )?;
            model::load_own(tx, user.id, id)
        })
        .await?;
    Ok((StatusCode::OK, Json(out)).into_response())
}
