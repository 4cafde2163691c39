//! Users, as operators see them: search, a detail page, suspend / ban /
//! reactivate, wallet and points corrections, internal notes.
//!
//! A suspension or ban sets `users.status` to `suspended` (through the users
//! domain, which revokes every session in the same transaction) and records
//! why in `user_restrictions`; the account's tokens stop at once and sign-in
//! answers 403 `account_suspended`. A rental already out still closes when
//! the bank comes back: returns come from the station, not the user.
//!
//! Balance corrections go through the ledger as their own kind
//! (`operator_adjustment`), in the transaction that records the adjustment
//! and its audit row; an idempotency key makes a retry answer the first
//! result.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::operators::ReasonIn;
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, OperatorRole, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        money::Paisa,
        now_ts, opt_ts,
        pagination::date_filter,
        text::check_user_text,
        text_enum::text_enum,
        ts_to_rfc3339,
    },
    ledger::{self, WalletKind},
    state::AppState,
    users::auth::{AccountStatus, set_account_status},
};

/// The largest correction one request may make: 1,00,000 NPR.
pub const MAX_ADJUSTMENT_PAISA: i64 = 10_000_000;
pub const MAX_ADJUSTMENT_POINTS: i64 = 1_000_000;
/// A credit (positive) or debit (negative), bounded when the request is read.
pub type AdjustmentAmount = Paisa<{ -MAX_ADJUSTMENT_PAISA }, { MAX_ADJUSTMENT_PAISA }>;

text_enum! {
    /// Why an account is not active (`user_restrictions.kind`).
    pub enum RestrictionKind {
        /// For a while; support may lift it.
        Suspended = "suspended",
        /// For good, unless an admin lifts it.
        Banned = "banned",
    }
}

text_enum! {
    /// Which balance an adjustment moved (`balance_adjustments.ledger`).
    pub enum AdjustedLedger {
        Wallet = "wallet",
        Points = "points",
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserRowOut {
    pub id: i64,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub full_name: Option<String>,
    /// `active`, `suspended` or `deleted`.
    pub status: AccountStatus,
    /// Set while suspended or banned.
    pub restriction: Option<RestrictionKind>,
    /// The newest KYC submission's status, `none` without one.
    pub kyc_status: String,
    pub referral_code: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

const USER_SELECT: &str = "SELECT u.id, u.phone, u.email, u.username, p.full_name, u.status, r.kind,
        COALESCE((SELECT k.status FROM user_kyc k WHERE k.user_id = u.id ORDER BY k.id DESC LIMIT 1), 'none'),
        u.referral_code, u.created_at, u.last_login_at
    FROM users u
    LEFT JOIN user_profiles p ON p.user_id = u.id
    LEFT JOIN user_restrictions r ON r.user_id = u.id";

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRowOut> {
    Ok(UserRowOut {
        id: r.get(0)?,
        phone: r.get(1)?,
        email: r.get(2)?,
        username: r.get(3)?,
        full_name: r.get(4)?,
        status: r.get(5)?,
        restriction: r.get(6)?,
        kyc_status: r.get(7)?,
        referral_code: r.get(8)?,
        created_at: ts_to_rfc3339(r.get(9)?),
        last_login_at: opt_ts(r.get(10)?),
    })
}

/// An app user (operators are not managed here): 404 otherwise.
fn load_user(c: &Connection, id: i64) -> Result<UserRowOut, ApiError> {
    c.query_row(&format!("{USER_SELECT} WHERE u.id = ?1 AND u.role = 'user'"), [id], user_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("user"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearch {
    /// Phone or email prefix (`98410`, `+97798410`, `asha@`), referral code,
    /// user id, or part of the name or username.
    pub q: Option<String>,
    /// `active`, `suspended` or `deleted`.
    pub status: Option<String>,
    /// The newest KYC's status: `pending`, `approved`, `rejected`, or `none`.
    pub kyc: Option<String>,
    /// Registered from this day (`YYYY-MM-DD`, UTC).
    pub created_from: Option<String>,
    /// Registered up to this day, inclusive.
    pub created_to: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// App users, newest first, searched and filtered.
#[utoipa::path(
    get, path = "/api/admin/users", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance"]))),
    params(UserSearch),
    responses(
        (status = 200, description = "A page of users", body = Page<UserRowOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn search_users(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<UserSearch>,
) -> Result<Json<Page<UserRowOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = f
        .status
        .as_deref()
        .map(str::parse::<AccountStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let kyc = match f.kyc.as_deref() {
        None => None,
        Some(k @ ("pending" | "approved" | "rejected" | "none")) => Some(k.to_string()),
        Some(_) => return Err(ApiError::invalid_field("kyc", "must be one of pending, approved, rejected, none")),
    };
    let from = date_filter("created_from", &f.created_from, false)?;
    let to = date_filter("created_to", &f.created_to, true)?;
    let q = match f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        None => None,
        Some(q) if q.chars().count() > 100 || q.contains(['*', '?', '[', ']', '\\']) => {
            return Err(ApiError::invalid_field("q", "up to 100 characters, without * ? [ ] \\"));
        }
        Some(q) => Some(q.to_string()),
    };
    // A 10-digit local number is stored with the country code.
    let phone = q.as_ref().map(|q| {
        let digits = q.trim_start_matches('+');
        if digits.starts_with("977") { format!("+{digits}*") } else { format!("+977{digits}*") }
    });
    let email = q.as_ref().map(|q| format!("{}*", q.to_lowercase()));
    let like = q.as_ref().map(|q| format!("%{}%", q.replace('%', "\\%").replace('_', "\\_")));
    let id: Option<i64> = q.as_ref().and_then(|q| q.parse().ok());
    let code = q.as_ref().map(|q| q.to_uppercase());
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{USER_SELECT}
                 WHERE u.role = 'user' AND u.id < ?1
                   AND (?2 IS NULL OR u.phone GLOB ?2 OR u.email GLOB ?3 OR u.referral_code = ?4 OR u.id = ?5
                        OR p.full_name LIKE ?6 ESCAPE '\\' OR u.username LIKE ?6 ESCAPE '\\')
                   AND (?7 IS NULL OR u.status = ?7)
                   AND (?8 IS NULL OR COALESCE((SELECT k.status FROM user_kyc k WHERE k.user_id = u.id
                                                ORDER BY k.id DESC LIMIT 1), 'none') = ?8)
                   AND (?9 IS NULL OR u.created_at >= ?9)
                   AND (?10 IS NULL OR u.created_at <= ?10)
                 ORDER BY u.id DESC LIMIT ?11"
            ))?;
            let rows = stmt.query_map(
                params![before, phone, email, code, id, like, status, kyc, from, to, limit + 1],
                user_from_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |u| u.id)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RestrictionOut {
    pub kind: RestrictionKind,
    pub reason: String,
    pub operator_id: i64,
    pub since: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RentalBriefOut {
    pub id: i64,
    pub code: String,
    pub status: String,
    pub station_sn: Option<String>,
    pub started_at: Option<String>,
    pub due_at: Option<String>,
    pub returned_at: Option<String>,
    pub amount_paisa: i64,
    pub unpaid_due_paisa: i64,
    /// The pricing build that priced it (`<slot>@<version>#<sha8>`, `+r<release>`
    /// for a release), so a disputed charge is traced to it.
    pub plugin_release: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDeviceOut {
    pub device_id: String,
    pub platform: String,
    pub app_version: Option<String>,
    pub is_active: bool,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoteOut {
    pub id: i64,
    pub operator_id: i64,
    pub operator_email: Option<String>,
    pub body: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetailOut {
    #[serde(flatten)]
    pub user: UserRowOut,
    pub date_of_birth: Option<String>,
    pub address: Option<String>,
    pub restriction_detail: Option<RestrictionOut>,
    pub wallet_balance_paisa: i64,
    pub points_balance: i64,
    /// The rental in progress, if any.
    pub open_rental: Option<RentalBriefOut>,
    /// Overdue charges recorded and not yet paid.
    pub unpaid_dues_paisa: i64,
    /// The ten newest rentals.
    pub last_rentals: Vec<RentalBriefOut>,
    pub devices: Vec<UserDeviceOut>,
    /// Users who signed up with this user's referral code.
    pub referrals: i64,
    /// The twenty newest internal notes.
    pub notes: Vec<NoteOut>,
}

const RENTAL_SELECT: &str = "SELECT r.id, r.code, r.status, s.serial_number, r.started_at, r.due_at, r.returned_at,
        r.amount_paisa, r.unpaid_due_paisa, r.plugin_release
    FROM rentals r LEFT JOIN stations s ON s.id = r.station_id";

fn rental_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RentalBriefOut> {
    Ok(RentalBriefOut {
        id: r.get(0)?,
        code: r.get(1)?,
        status: r.get(2)?,
        station_sn: r.get(3)?,
        started_at: opt_ts(r.get(4)?),
        due_at: opt_ts(r.get(5)?),
        returned_at: opt_ts(r.get(6)?),
        amount_paisa: r.get(7)?,
        unpaid_due_paisa: r.get(8)?,
        plugin_release: r.get("plugin_release")?,
    })
}

const NOTE_SELECT: &str = "SELECT n.id, n.operator_id, u.email, n.body, n.created_at
    FROM user_notes n LEFT JOIN users u ON u.id = n.operator_id";

fn note_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NoteOut> {
    Ok(NoteOut {
        id: r.get(0)?,
        operator_id: r.get(1)?,
        operator_email: r.get(2)?,
        body: r.get(3)?,
        created_at: ts_to_rfc3339(r.get(4)?),
    })
}

fn detail(c: &Connection, id: i64) -> Result<UserDetailOut, ApiError> {
    let user = load_user(c, id)?;
    let (date_of_birth, address): (Option<String>, Option<String>) = c
        .query_row("SELECT date_of_birth, address FROM user_profiles WHERE user_id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?
        .unwrap_or_default();
    let restriction_detail = c
        .query_row(
            "SELECT kind, reason, operator_id, created_at FROM user_restrictions WHERE user_id = ?1",
            [id],
            |r| {
                Ok(RestrictionOut {
                    kind: r.get(0)?,
                    reason: r.get(1)?,
                    operator_id: r.get(2)?,
                    since: ts_to_rfc3339(r.get(3)?),
                })
            },
        )
        .optional()?;
    let open_rental = c
        .query_row(
            &format!("{RENTAL_SELECT} WHERE r.user_id = ?1 AND r.status IN ('pending_eject', 'active')"),
            [id],
            rental_from_row,
        )
        .optional()?;
    let mut stmt = c.prepare_cached(&format!("{RENTAL_SELECT} WHERE r.user_id = ?1 ORDER BY r.id DESC LIMIT 10"))?;
    let last_rentals = stmt.query_map([id], rental_from_row)?.collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare_cached(
        "SELECT device_id, platform, app_version, is_active, updated_at FROM user_devices
         WHERE user_id = ?1 ORDER BY updated_at DESC",
    )?;
    let devices = stmt
        .query_map([id], |r| {
            Ok(UserDeviceOut {
                device_id: r.get(0)?,
                platform: r.get(1)?,
                app_version: r.get(2)?,
                is_active: r.get(3)?,
                updated_at: ts_to_rfc3339(r.get(4)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare_cached(&format!("{NOTE_SELECT} WHERE n.user_id = ?1 ORDER BY n.id DESC LIMIT 20"))?;
    let notes = stmt.query_map([id], note_from_row)?.collect::<Result<Vec<_>, _>>()?;
    let unpaid_dues_paisa: i64 =
        c.query_row("SELECT COALESCE(SUM(unpaid_due_paisa), 0) FROM rentals WHERE user_id = ?1", [id], |r| r.get(0))?;
    let referrals: i64 =
        c.query_row("SELECT COUNT(*) FROM users WHERE signup_referral_code = ?1", [&user.referral_code], |r| r.get(0))?;
    Ok(UserDetailOut {
        date_of_birth,
        address,
        restriction_detail,
        wallet_balance_paisa: ledger::wallet_balance(c, id)?.unwrap_or(0),
        points_balance: ledger::points_balance(c, id)?,
        open_rental,
        unpaid_dues_paisa,
        last_rentals,
        devices,
        referrals,
        notes,
        user,
    })
}

/// One user: profile, KYC, balances, open rental, dues, rentals, devices,
/// referrals and notes.
#[utoipa::path(
    get, path = "/api/admin/users/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance"]))),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserDetailOut),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn user_detail(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<UserDetailOut>, ApiError> {
    Ok(Json(state.db.read(move |c| detail(c, id)).await?))
}

/// What a status change does: from which states, to which.
fn restrict(
    tx: &Transaction<'_>,
    operator: &Operator,
    id: i64,
    kind: RestrictionKind,
    reason: &str,
) -> Result<UserRowOut, ApiError> {
    let before = load_user(tx, id)?;
    match (before.status, before.restriction, kind) {
        (AccountStatus::Deleted, ..) => return Err(ApiError::conflict("user_deleted", "the account is deleted")),
        (_, Some(RestrictionKind::Banned), _) => {
            return Err(ApiError::conflict("user_banned", "the account is already banned"));
        }
        (AccountStatus::Suspended, _, RestrictionKind::Suspended) => {
            return Err(ApiError::conflict("user_suspended", "the account is already suspended"));
        }
        _ => {}
    }
    let now = now_ts();
    set_account_status(tx, id, AccountStatus::Suspended, now)?;
    tx.execute(
        "INSERT INTO user_restrictions (user_id, kind, reason, operator_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id) DO UPDATE SET kind = ?2, reason = ?3, operator_id = ?4, created_at = ?5",
        params![id, kind, reason, operator.id, now],
    )?;
    let after = load_user(tx, id)?;
    let action = if kind == RestrictionKind::Banned { "user.ban" } else { "user.suspend" };
    audit::record(tx, operator, action, Target::new("user", id), &before, &after, Some(reason))?;
    Ok(after)
}

/// Suspends an account: its tokens stop at once and it cannot sign in
/// (403 `account_suspended`) until reactivated.
#[utoipa::path(
    post, path = "/api/admin/users/{id}/suspend", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path, description = "User id")),
    request_body = ReasonIn,
    responses(
        (status = 200, description = "The suspended user", body = UserRowOut),
        (status = 400, description = "No reason (`reason_required`)", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Already suspended or banned, or deleted (`user_suspended`, `user_banned`, `user_deleted`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn suspend_user(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReasonIn>,
) -> Result<Json<UserRowOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    Ok(Json(state.db.write(move |tx| restrict(tx, &operator, id, RestrictionKind::Suspended, &reason)).await?))
}

/// Bans an account (a suspension only an admin lifts).
#[utoipa::path(
    post, path = "/api/admin/users/{id}/ban", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "User id")),
    request_body = ReasonIn,
    responses(
        (status = 200, description = "The banned user", body = UserRowOut),
        (status = 400, description = "No reason (`reason_required`)", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Already banned, or deleted (`user_banned`, `user_deleted`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn ban_user(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReasonIn>,
) -> Result<Json<UserRowOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    Ok(Json(state.db.write(move |tx| restrict(tx, &operator, id, RestrictionKind::Banned, &reason)).await?))
}

/// Lifts a suspension (support and admins) or a ban (admins only).
#[utoipa::path(
    post, path = "/api/admin/users/{id}/reactivate", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path, description = "User id")),
    request_body = ReasonIn,
    responses(
        (status = 200, description = "The active user", body = UserRowOut),
        (status = 400, description = "No reason (`reason_required`)", body = ErrorBody),
        (status = 403, description = "A ban, and the caller is not an admin (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Active or deleted (`user_active`, `user_deleted`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn reactivate_user(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReasonIn>,
) -> Result<Json<UserRowOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    let out = state
        .db
        .write(move |tx| {
            let before = load_user(tx, id)?;
            match before.status {
                AccountStatus::Active => return Err(ApiError::conflict("user_active", "the account is active")),
                AccountStatus::Deleted => return Err(ApiError::conflict("user_deleted", "the account is deleted")),
                AccountStatus::Suspended => {}
            }
            if before.restriction == Some(RestrictionKind::Banned) {
                operator.require(&[OperatorRole::Admin])?;
            }
            set_account_status(tx, id, AccountStatus::Active, now_ts())?;
            tx.execute("DELETE FROM user_restrictions WHERE user_id = ?1", [id])?;
            let after = load_user(tx, id)?;
            audit::record(tx, &operator, "user.reactivate", Target::new("user", id), &before, &after, Some(&reason))?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentIn {
    /// Positive credits, negative debits: paisa for the wallet, points for
    /// points; never 0, at most 10,000,000 paisa or 1,000,000 points either way.
    pub amount: AdjustmentAmount,
    /// Required: why (kept with the ledger row and in the audit log).
    pub reason: Option<String>,
    /// 8 to 100 characters, unique per adjustment: a retry with the same key
    /// answers the first result and moves nothing.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdjustmentOut {
    pub id: i64,
    pub user_id: i64,
    pub ledger: AdjustedLedger,
    pub amount: i64,
    pub balance_after: i64,
    pub reason: String,
    pub operator_id: i64,
    pub created_at: String,
    /// True when this answers a retry of an earlier request.
    pub replayed: bool,
}

fn adjustment_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdjustmentOut> {
    Ok(AdjustmentOut {
        id: r.get(0)?,
        user_id: r.get(1)?,
        ledger: r.get(2)?,
        amount: r.get(3)?,
        balance_after: r.get(4)?,
        reason: r.get(5)?,
        operator_id: r.get(6)?,
        created_at: ts_to_rfc3339(r.get(7)?),
        replayed: false,
    })
}

async fn adjust(
    state: &AppState,
    operator: Operator,
    id: i64,
    ledger_kind: AdjustedLedger,
    body: AdjustmentIn,
) -> Result<(StatusCode, Json<AdjustmentOut>), ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    let max = match ledger_kind {
        AdjustedLedger::Wallet => MAX_ADJUSTMENT_PAISA,
        AdjustedLedger::Points => MAX_ADJUSTMENT_POINTS,
    };
    let amount = body.amount.get();
    if amount == 0 || amount.abs() > max {
        return Err(ApiError::invalid_field("amount", format!("must be non-zero and at most {max} either way")));
    }
    let key = body.idempotency_key.trim().to_string();
    if !(8..=100).contains(&key.chars().count()) || key.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("idempotency_key", "8 to 100 characters"));
    }
    let out = state
        .db
        .write(move |tx| {
            let earlier = tx
                .query_row(
                    "SELECT id, user_id, ledger, amount, balance_after, reason, operator_id, created_at
                     FROM balance_adjustments WHERE idempotency_key = ?1",
                    [&key],
                    adjustment_from_row,
                )
                .optional()?;
            if let Some(earlier) = earlier {
                if earlier.user_id != id || earlier.ledger != ledger_kind || earlier.amount != amount {
                    return Err(ApiError::conflict(
                        "idempotency_key_reused",
                        "this idempotency key was used for another adjustment",
                    ));
                }
                return Ok(AdjustmentOut { replayed: true, ..earlier });
            }
            let before = detail(tx, id)?;
            let description = format!("Operator adjustment: {reason}");
            let moved = match ledger_kind {
                AdjustedLedger::Wallet => {
                    ledger::wallet_change(tx, id, amount, WalletKind::OperatorAdjustment, None, &description)
                }
                AdjustedLedger::Points => ledger::points_adjust(tx, id, amount, &description),
            };
            let balance_after = moved.map_err(|e| {
                if e.code == "insufficient_balance" {
                    ApiError::conflict("insufficient_balance", e.message).with_details(e.details.unwrap_or_default())
                } else {
                    e
                }
            })?;
            tx.execute(
                "INSERT INTO balance_adjustments (idempotency_key, user_id, ledger, amount, balance_after, reason,
                                                  operator_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![key, id, ledger_kind, amount, balance_after, reason, operator.id, now_ts()],
            )?;
            let out = tx.query_row(
                "SELECT id, user_id, ledger, amount, balance_after, reason, operator_id, created_at
                 FROM balance_adjustments WHERE id = ?1",
                [tx.last_insert_rowid()],
                adjustment_from_row,
            )?;
            let balances = |d: &UserDetailOut| {
                serde_json::json!({ "wallet_balance_paisa": d.wallet_balance_paisa, "points_balance": d.points_balance })
            };
            let action = match ledger_kind {
                AdjustedLedger::Wallet => "user.wallet_adjust",
                AdjustedLedger::Points => "user.points_adjust",
            };
            let after = detail(tx, id)?;
            audit::record(tx, &operator, action, Target::new("user", id), &balances(&before), &balances(&after), Some(&reason))?;
            Ok(out)
        })
        .await?;
    let status = if out.replayed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(out)))
}

/// Credits or debits a wallet by hand, through the ledger (kind
/// `operator_adjustment`). A debit below zero is refused.
#[utoipa::path(
    post, path = "/api/admin/users/{id}/wallet-adjustments", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    params(("id" = i64, Path, description = "User id")),
    request_body = AdjustmentIn,
    responses(
        (status = 201, description = "Adjusted", body = AdjustmentOut),
        (status = 200, description = "A retry with the same key: the first result, nothing moved", body = AdjustmentOut),
        (status = 400, description = "No reason (`reason_required`), or amount or key out of range", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Debit below zero (`insufficient_balance`), or the key was used for another adjustment (`idempotency_key_reused`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn adjust_wallet(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AdjustmentIn>,
) -> Result<(StatusCode, Json<AdjustmentOut>), ApiError> {
    adjust(&state, operator, id, AdjustedLedger::Wallet, body).await
}

/// Credits (a grant that does not expire) or debits points by hand.
#[utoipa::path(
    post, path = "/api/admin/users/{id}/points-adjustments", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    params(("id" = i64, Path, description = "User id")),
    request_body = AdjustmentIn,
    responses(
        (status = 201, description = "Adjusted", body = AdjustmentOut),
        (status = 200, description = "A retry with the same key: the first result, nothing moved", body = AdjustmentOut),
        (status = 400, description = "No reason (`reason_required`), or amount or key out of range", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Debit below zero (`insufficient_balance`), or the key was used for another adjustment (`idempotency_key_reused`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn adjust_points(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AdjustmentIn>,
) -> Result<(StatusCode, Json<AdjustmentOut>), ApiError> {
    adjust(&state, operator, id, AdjustedLedger::Points, body).await
}

/// A user's internal notes, newest first.
#[utoipa::path(
    get, path = "/api/admin/users/{id}/notes", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance"]))),
    params(("id" = i64, Path, description = "User id"), PageParams),
    responses(
        (status = 200, description = "A page of notes", body = Page<NoteOut>),
        (status = 400, description = "Bad cursor", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn list_notes(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<NoteOut>>, ApiError> {
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            load_user(c, id)?;
            let mut stmt = c.prepare_cached(&format!(
                "{NOTE_SELECT} WHERE n.user_id = ?1 AND n.id < ?2 ORDER BY n.id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![id, before, limit + 1], note_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |n| n.id)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteIn {
    /// 1 to 2000 characters.
    pub body: String,
}

/// Adds an internal note on a user (operators only ever see it).
#[utoipa::path(
    post, path = "/api/admin/users/{id}/notes", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance"]))),
    params(("id" = i64, Path, description = "User id")),
    request_body = NoteIn,
    responses(
        (status = 201, description = "The note", body = NoteOut),
        (status = 400, description = "Empty or too long", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn add_note(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NoteIn>,
) -> Result<(StatusCode, Json<NoteOut>), ApiError> {
    let text = body.body.trim().to_string();
    if text.is_empty() || text.chars().count() > 2000 {
        return Err(ApiError::invalid_field("body", "1 to 2000 characters"));
    }
    check_user_text("body", &text, true)?;
    let out = state
        .db
        .write(move |tx| {
            load_user(tx, id)?;
            tx.execute(
                "INSERT INTO user_notes (user_id, operator_id, body, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, operator.id, text, now_ts()],
            )?;
            let note =
                tx.query_row(&format!("{NOTE_SELECT} WHERE n.id = ?1"), [tx.last_insert_rowid()], note_from_row)?;
            audit::record(tx, &operator, "user.note", Target::new("user", id), &(), &note, None)?;
            Ok(note)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}
