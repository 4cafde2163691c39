//! The user's profile, and deleting the account.

use axum::{Json, extract::State};
use chrono::{Datelike, NaiveDate};
use powerbank_plugin_runtime::types::{PointsEvent, ProfileCompletedEvent};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{auth::MessageOut, sessions};
use crate::{
    app_core,
    core::{ApiError, ApiJson, ApiQuery, AuthUser, error::ErrorBody, now_ts, ts_to_rfc3339},
    kyc,
    ledger::{self, WalletKind},
    notifications,
    payments::refunds::RefundStatus,
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileOut {
    pub user_id: i64,
    pub username: Option<String>,
    pub full_name: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub address: Option<String>,
    pub avatar_url: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub is_complete: bool,
    pub updated_at: String,
}

/// Fields to change; omitted fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub username: Option<String>,
    pub full_name: Option<String>,
    /// `YYYY-MM-DD`; the user must be at least 13.
    pub date_of_birth: Option<String>,
    pub address: Option<String>,
    /// An `http(s)` URL, typically from `/api/upload`.
    pub avatar_url: Option<String>,
}

pub fn validate_username(username: &str) -> Result<(), ApiError> {
    let ok_len = (3..=30).contains(&username.len());
    let ok_chars = username.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok_len || !ok_chars {
        return Err(ApiError::invalid_field("username", "3 to 30 characters: a-z, 0-9 and _"));
    }
    Ok(())
}

fn load_profile(conn: &Connection, user_id: i64) -> Result<ProfileOut, ApiError> {
    Ok(conn.query_row(
        "SELECT u.username, p.full_name, p.date_of_birth, p.address, p.avatar_url, u.phone, u.email, p.updated_at
         FROM users u JOIN user_profiles p ON p.user_id = u.id WHERE u.id = ?1",
        [user_id],
        |r| {
            let full_name: Option<String> = r.get(1)?;
            let dob: Option<String> = r.get(2)?;
            let address: Option<String> = r.get(3)?;
            Ok(ProfileOut {
                user_id,
                username: r.get(0)?,
                is_complete: full_name.is_some() && dob.is_some() && address.is_some(),
                full_name,
                date_of_birth: dob,
                address,
                avatar_url: r.get(4)?,
                phone: r.get(5)?,
                email: r.get(6)?,
                updated_at: ts_to_rfc3339(r.get(7)?),
            })
        },
    )?)
}

/// The caller's profile.
#[utoipa::path(
    get, path = "/api/profile", tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Profile", body = ProfileOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn get_profile(State(state): State<AppState>, user: AuthUser) -> Result<Json<ProfileOut>, ApiError> {
    Ok(Json(state.db.read(move |c| load_profile(c, user.id)).await?))
}

fn clean_text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    let v = v.trim().to_string();
    if v.chars().count() < 2 || v.chars().count() > max {
        return Err(ApiError::invalid_field(field, format!("must be 2 to {max} characters")));
    }
    crate::core::text::check_user_text(field, &v, false)?;
    Ok(Some(v))
}

/// Updates the caller's profile.
#[utoipa::path(
    put, path = "/api/profile", tag = "profile",
    security(("bearer" = [])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "Updated profile", body = ProfileOut),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
    )
)]
pub async fn update_profile(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(update): ApiJson<ProfileUpdate>,
) -> Result<Json<ProfileOut>, ApiError> {
    let full_name = clean_text("full_name", update.full_name, 100)?;
    let address = clean_text("address", update.address, 255)?;
    let username = update.username.map(|u| u.trim().to_string());
    if let Some(u) = &username {
        validate_username(u)?;
    }
    let dob = match update.date_of_birth {
        None => None,
        Some(raw) => {
            let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
                .map_err(|_| ApiError::invalid_field("date_of_birth", "must be YYYY-MM-DD"))?;
            let today = chrono::Utc::now().date_naive();
            let age = today.year() - date.year() - i32::from((today.month(), today.day()) < (date.month(), date.day()));
            if !(13..=120).contains(&age) {
                return Err(ApiError::invalid_field("date_of_birth", "age must be between 13 and 120"));
            }
            Some(date.format("%Y-%m-%d").to_string())
        }
    };
    let avatar_url = match update.avatar_url {
        None => None,
        Some(url) => {
            let url = url.trim().to_string();
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() <= 500
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(ApiError::invalid_field("avatar_url", "must be an http(s) URL up to 500 characters"));
            }
            Some(url)
        }
    };
    let profile = state
        .db
        .write(move |tx| {
            let now = now_ts();
            if let Some(u) = &username {
                let taken: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1 AND id != ?2)",
                    params![u, user.id],
                    |r| r.get(0),
                )?;
                if taken {
                    return Err(ApiError::conflict("username_taken", "this username is taken"));
                }
                tx.execute("UPDATE users SET username = ?2, updated_at = ?3 WHERE id = ?1", params![user.id, u, now])?;
            }
            tx.execute(
                "UPDATE user_profiles SET
                    full_name = COALESCE(?2, full_name),
                    date_of_birth = COALESCE(?3, date_of_birth),
                    address = COALESCE(?4, address),
                    avatar_url = COALESCE(?5, avatar_url),
                    updated_at = ?6
                 WHERE user_id = ?1",
                params![user.id, full_name, dob, address, avatar_url, now],
            )?;
            let profile = load_profile(tx, user.id)?;
            if profile.is_complete {
                // Earns once (the points domain keeps the key); later edits do not.
                crate::points::events::enqueue_award(
                    tx,
                    PointsEvent::ProfileCompleted(ProfileCompletedEvent { user_id: user.id.to_string() }),
                )?;
            }
            Ok(profile)
        })
        .await?;
    state.jobs.wake();
    Ok(Json(profile))
}

/// `DELETE /api/auth/account` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountParams {
    /// Confirms that the wallet balance is given up (it is not paid out).
    /// Without it, an account with money in its wallet and no refund pending
    /// is not deleted (409 `wallet_balance`).
    #[serde(default)]
    pub forfeit_wallet_balance: bool,
}

/// What stops an account from being deleted now, checked in the deleting
/// transaction so nothing changes on a refusal.
fn deletion_blocker(tx: &rusqlite::Transaction<'_>, user_id: i64, forfeit: bool) -> Result<Option<i64>, ApiError> {
    // Rentals are a domain above this one: read across, with the status
    // texts spelled out (as `usage.rs` does).
    let (open_rentals, unpaid): (i64, i64) = tx.query_row(
        "SELECT COALESCE(SUM(status IN ('pending_eject', 'active')), 0), COALESCE(SUM(unpaid_due_paisa), 0)
         FROM rentals WHERE user_id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let open_orders: i64 = tx.query_row(
        "SELECT COUNT(*) FROM rental_orders WHERE user_id = ?1 AND status IN ('awaiting_payment', 'paid')",
        [user_id],
        |r| r.get(0),
    )?;
    if open_rentals + open_orders > 0 {
        return Err(ApiError::conflict(
            "active_rental",
            "a rental is in progress: return the power bank (or cancel the rental) before deleting the account",
        ));
    }
    if unpaid > 0 {
        return Err(ApiError::conflict("unpaid_due", "pay your outstanding dues before deleting the account")
            .with_details(json!({"unpaid_due_paisa": unpaid})));
    }
    let balance = ledger::wallet_balance(tx, user_id)?.unwrap_or(0);
    if balance == 0 {
        return Ok(None);
    }
    let refund_pending: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM refunds WHERE user_id = ?1 AND status IN (?2, ?3))",
        params![user_id, RefundStatus::Pending, RefundStatus::Approved],
        |r| r.get(0),
    )?;
    if refund_pending {
        // The refund settles the money; the wallet row stays for it.
        return Ok(None);
    }
    if !forfeit {
        return Err(ApiError::conflict(
            "wallet_balance",
            "your wallet holds money: spend it, ask for a refund, or confirm giving it up with forfeit_wallet_balance=true",
        )
        .with_details(json!({"balance_paisa": balance})));
    }
    Ok(Some(balance))
}

/// Deletes the caller's account: personal data is anonymised, every session
/// revoked, money and points ledgers kept for the accounts. Refused while a
/// rental is in progress, a due is unpaid, or the wallet holds money (unless
/// the request gives it up, or a refund of it is pending); nothing changes
/// on a refusal.
#[utoipa::path(
    delete, path = "/api/auth/account", tag = "auth",
    security(("bearer" = [])),
    params(DeleteAccountParams),
    responses(
        (status = 200, description = "Account deleted", body = MessageOut),
        (status = 400, description = "Bad query parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "`active_rental`, `unpaid_due` (`details.unpaid_due_paisa`) or `wallet_balance` (`details.balance_paisa`): nothing was deleted", body = ErrorBody),
    )
)]
pub async fn delete_account(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<DeleteAccountParams>,
) -> Result<Json<MessageOut>, ApiError> {
    let files = state
        .db
        .write(move |tx| {
            let now = now_ts();
            if let Some(forfeited) = deletion_blocker(tx, user.id, params.forfeit_wallet_balance)? {
                ledger::wallet_change(
                    tx,
                    user.id,
                    -forfeited,
                    WalletKind::Adjustment,
                    None,
                    "Wallet balance given up on account deletion",
                )?;
            }
            // Uploads, identity documents, devices and messages are personal
            // data too; each domain forgets its own.
            let files = app_core::forget_uploads_of(tx, user.id)?;
            kyc::forget_user(tx, user.id)?;
            notifications::forget_user(tx, user.id)?;
            tx.execute(
                "DELETE FROM otp_codes WHERE target IN (SELECT phone FROM users WHERE id = ?1
                                                         UNION SELECT email FROM users WHERE id = ?1)",
                [user.id],
            )?;
            // Identifiers are freed so the person can register again later;
            // the row stays so ledgers keep a valid owner.
            tx.execute(
                "UPDATE users SET status = 'deleted', phone = NULL, email = NULL, username = NULL,
                    password_hash = NULL, signup_referral_code = NULL,
                    referral_code = 'DELETED-' || id, deleted_at = ?2, updated_at = ?2
                 WHERE id = ?1",
                params![user.id, now],
            )?;
            tx.execute(
                "UPDATE user_profiles SET full_name = NULL, date_of_birth = NULL, address = NULL,
                    avatar_url = NULL, updated_at = ?2 WHERE user_id = ?1",
                params![user.id, now],
            )?;
            sessions::revoke_all_for_user(tx, user.id, "account deleted", now)?;
            Ok(files)
        })
        .await?;
    // After the commit: a file that fails to go is logged, not a failed deletion.
    // A key lives in one of the two stores; deleting a missing file is a no-op.
    let stores = [state.storage.clone(), state.private_storage.clone()];
    let _ = tokio::task::spawn_blocking(move || {
        for key in files {
            for store in &stores {
                if let Err(e) = store.delete(&key) {
                    tracing::error!(key, error = %e, "could not delete a deleted user's file");
                }
            }
        }
    })
    .await;
    Ok(Json(MessageOut { message: "account deleted".into() }))
}
