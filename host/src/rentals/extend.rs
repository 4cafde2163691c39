//! Extending an active rental: priced by the pricing plugin, paid at once
//! from points and the wallet.

use axum::{Json, extract::State};
use powerbank_plugin_runtime::types::{CallContext, ExtensionRequest};
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    charge::{self, PaymentMethod},
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
    pub payment_method: PaymentMethod,
}

/// Extends an active rental, priced by the pricing plugin and paid now.
#[utoipa::path(
    post, path = "/api/rentals/{id}/extend", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = ExtendRequest,
    responses(
        (status = 200, description = "The extended rental", body = RentalOut),
        (status = 400, description = "Bad duration", body = ErrorBody),
        (status = 402, description = "Not enough balance", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "The rental is not active", body = ErrorBody),
    )
)]
pub async fn extend(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ExtendRequest>,
) -> Result<Json<RentalOut>, ApiError> {
    if !(15..=1440).contains(&req.extra_minutes) {
        return Err(ApiError::invalid_field("extra_minutes", "must be 15 to 1440"));
    }
    let rental = model::own_core(&state, user.id, id).await?;
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
    let split = charge::plan_split(&state, user.id, price, req.payment_method).await?;
    let out = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let new_due: Option<(i64, i64)> = tx
                .query_row(
                    "UPDATE rentals SET due_at = due_at + ?2 * 60, due_minutes = due_minutes + ?2, reminded_at = NULL,
                        overdue_reminders_sent = 0, updated_at = ?3
                     WHERE id = ?1 AND status = ?4 RETURNING due_at - ?2 * 60, due_at",
                    params![id, extra, now, RentalStatus::Active],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (previous, new) = new_due.ok_or_else(|| model::illegal("no longer active", "extend"))?;
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
            tx.execute(
                "INSERT INTO rental_extensions (rental_id, extra_minutes, amount_paisa, transaction_id, previous_due_at,
                    new_due_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, extra, price, paid.transaction_id, previous, new, now],
            )?;
            model::load_own(tx, user.id, id)
        })
        .await?;
    Ok(Json(out))
}
