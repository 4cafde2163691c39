//! Register, log in, refresh, log out, and who am I.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::StatusCode,
};
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    identifier::Identifier,
    operator_signin,
    otp::{OtpPurpose, spend_verification},
    profile::validate_username,
    sessions::{self, Rotation, TokenPair},
};
use crate::{
    core::{ApiError, ApiJson, AuthUser, Role, error::ErrorBody, now_ts, text_enum::text_enum, ts_to_rfc3339},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub role: Role,
    pub status: String,
    pub referral_code: String,
    /// Full name, date of birth and address are filled in (rentals need it).
    pub profile_complete: bool,
    pub created_at: String,
    /// Terms or privacy versions the user still has to accept.
    pub legal: crate::content::legal::LegalStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthResponse {
    #[serde(flatten)]
    pub tokens: TokenPair,
    pub user: UserOut,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// From `/api/auth/verify-otp` with purpose `register`.
    pub verification_token: String,
    pub username: Option<String>,
    pub full_name: Option<String>,
    /// Another user's referral code; settled by the points domain.
    pub referral_code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// From `/api/auth/verify-otp` with purpose `login`.
    pub verification_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminLoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub message: String,
}

pub fn load_user(conn: &Connection, id: i64) -> Result<UserOut, ApiError> {
    conn.query_row(
        "SELECT u.id, u.phone, u.email, u.username, u.role, u.status, u.referral_code, u.created_at,
                p.full_name IS NOT NULL AND p.date_of_birth IS NOT NULL AND p.address IS NOT NULL
         FROM users u LEFT JOIN user_profiles p ON p.user_id = u.id WHERE u.id = ?1",
        [id],
        |r| {
            Ok(UserOut {
                id: r.get(0)?,
                phone: r.get(1)?,
                email: r.get(2)?,
                username: r.get(3)?,
                role: Role::parse(&r.get::<_, String>(4)?).unwrap_or(Role::User),
                status: r.get(5)?,
                referral_code: r.get(6)?,
                created_at: ts_to_rfc3339(r.get(7)?),
                profile_complete: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
                legal: crate::content::legal::LegalStatus::default(),
            })
        },
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found("user"))
    .and_then(|mut user| {
        user.legal = crate::content::legal::status_of(conn, id)?;
        Ok(user)
    })
}

text_enum! {
    /// Whether an account may be used (`users.status`).
    pub enum AccountStatus {
        Active = "active",
        /// Suspended or banned by an operator: no sign-in, tokens refused.
        Suspended = "suspended",
        Deleted = "deleted",
    }
}

/// Suspends (or reactivates) an account in the caller's transaction; a
/// suspension revokes every session at once. Only `active` and `suspended`
/// are set here (deletion is the user's own).
pub fn set_account_status(tx: &Transaction<'_>, id: i64, status: AccountStatus, now: i64) -> Result<(), ApiError> {
    if status == AccountStatus::Deleted {
        return Err(ApiError::internal("accounts are deleted by their owner"));
    }
    tx.execute("UPDATE users SET status = ?2, updated_at = ?3 WHERE id = ?1", params![id, status, now])?;
    if status == AccountStatus::Suspended {
        sessions::revoke_all_for_user(tx, id, "account suspended", now)?;
    }
    Ok(())
}

/// Referral codes are 8 characters without look-alikes (no 0/O, 1/I).
fn new_referral_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..8).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Creates a user with profile, wallet and points balance in the caller's
/// transaction. Shared by registration, the admin CLI and demo data.
pub fn create_user(
    tx: &Transaction<'_>,
    identifier: &Identifier,
    role: Role,
    username: Option<&str>,
    full_name: Option<&str>,
    password_hash: Option<&str>,
    now: i64,
) -> Result<i64, ApiError> {
    let (phone, email) = match identifier {
        Identifier::Phone(p) => (Some(p.as_str()), None),
        Identifier::Email(e) => (None, Some(e.as_str())),
    };
    let mut referral_code = new_referral_code();
    while tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE referral_code = ?1)", [&referral_code], |r| {
        r.get::<_, bool>(0)
    })? {
        referral_code = new_referral_code();
    }
    let inserted = tx.execute(
        "INSERT INTO users (phone, email, username, role, password_hash, referral_code, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![phone, email, username, role.as_str(), password_hash, referral_code, now],
    );
    if let Err(rusqlite::Error::SqliteFailure(e, Some(msg))) = &inserted
        && e.code == rusqlite::ErrorCode::ConstraintViolation
    {
        return Err(if msg.contains("username") {
            ApiError::conflict("username_taken", "this username is taken")
        } else {
            ApiError::conflict("already_registered", "an account with this identifier exists")
        });
    }
    inserted?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO user_profiles (user_id, full_name, updated_at) VALUES (?1, ?2, ?3)",
        params![id, full_name, now],
    )?;
    tx.execute("INSERT INTO wallets (user_id, updated_at) VALUES (?1, ?2)", params![id, now])?;
    tx.execute("INSERT INTO user_points (user_id, updated_at) VALUES (?1, ?2)", params![id, now])?;
    Ok(id)
}

/// Creates an account from a verified phone number or email.
#[utoipa::path(
    post, path = "/api/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created and signed in", body = AuthResponse),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Verification token invalid, expired or used", body = ErrorBody),
        (status = 404, description = "Unknown referral code (`referral_code_not_found`)", body = ErrorBody),
        (status = 409, description = "Account or username exists", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<AuthResponse>), ApiError> {
    if let Some(u) = &req.username {
        validate_username(u)?;
    }
    let full_name = req.full_name.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(name) = &full_name
        && !(2..=100).contains(&name.chars().count())
    {
        return Err(ApiError::invalid_field("full_name", "must be 2 to 100 characters"));
    }
    crate::core::text::check_user_text("full_name", full_name.as_deref().unwrap_or_default(), false)?;
    let referral = req.referral_code.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_uppercase);
    if let Some(code) = &referral
        && (code.len() > 32 || !code.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(ApiError::invalid_field("referral_code", "letters and digits only"));
    }
    // The points plugin is asked before the transaction; an unknown referral
    // code is refused here, before the verification token is spent.
    let points_plan = crate::points::plan_signup(&state, referral.as_deref()).await?;
    let st = state.clone();
    let response = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let identifier = spend_verification(tx, &st, &req.verification_token, OtpPurpose::Register)?;
            let id =
                create_user(tx, &identifier, Role::User, req.username.as_deref(), full_name.as_deref(), None, now)?;
            if let Some(code) = referral {
                tx.execute("UPDATE users SET signup_referral_code = ?2 WHERE id = ?1", params![id, code])?;
            }
            crate::points::settle_signup(tx, &points_plan, id, now)?;
            crate::content::legal::accept_current_at_signup(tx, id, now)?;
            let tokens = sessions::start(tx, &st, id, Role::User, now)?;
            Ok(AuthResponse { tokens, user: load_user(tx, id)? })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(response)))
}

/// Signs in with a verified phone number or email.
#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = AuthResponse),
        (status = 401, description = "Verification token invalid, expired or used", body = ErrorBody),
        (status = 403, description = "Account suspended (`account_suspended`)", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    let st = state.clone();
    let response = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let identifier = spend_verification(tx, &st, &req.verification_token, OtpPurpose::Login)?;
            let row = tx
                .query_row(
                    &format!("SELECT id, role, status FROM users WHERE {} = ?1", identifier.column()),
                    [identifier.as_str()],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
                )
                .optional()?;
            let Some((id, role, status)) = row else {
                return Err(ApiError::not_found("account"));
            };
            match AccountStatus::parse(&status) {
                Some(AccountStatus::Active) => {}
                Some(AccountStatus::Suspended) => {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "account_suspended",
                        "this account is suspended; contact support",
                    ));
                }
                _ => return Err(ApiError::forbidden("account is not active")),
            }
            let role = Role::parse(&role).unwrap_or(Role::User);
            let tokens = sessions::start(tx, &st, id, role, now)?;
            Ok(AuthResponse { tokens, user: load_user(tx, id)? })
        })
        .await?;
    Ok(Json(response))
}

/// Exchanges a refresh token for a new pair; the old refresh token is spent.
#[utoipa::path(
    post, path = "/api/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair", body = TokenPair),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let st = state.clone();
    let rotation = state.db.write(move |tx| sessions::rotate(tx, &st, req.refresh_token.trim(), now_ts())).await?;
    match rotation {
        Rotation::Rotated(pair) => Ok(Json(pair)),
        Rotation::Refused(reason) => Err(ApiError::unauthorized(reason)),
    }
}

/// Ends the caller's session: its refresh token and access tokens stop
/// working, and the devices registered in it get no more pushes.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed out", body = MessageOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<Json<MessageOut>, ApiError> {
    state
        .db
        .write(move |tx| {
            sessions::revoke_family(tx, &user.session_id, "logout", now_ts())?;
            crate::notifications::devices::sign_out_session(tx, user.id, &user.session_id)?;
            Ok(())
        })
        .await?;
    Ok(Json(MessageOut { message: "signed out".into() }))
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/api/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<UserOut>, ApiError> {
    Ok(Json(state.db.read(move |c| load_user(c, user.id)).await?))
}

/// Operators sign in with email and password (created by `powerbank admin create`
/// or `POST /api/admin/operators`); a disabled operator cannot.
#[utoipa::path(
    post, path = "/api/admin/login", tag = "admin",
    request_body = AdminLoginRequest,
    responses(
        (status = 200, description = "Signed in", body = AuthResponse),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts from this address (Retry-After)", body = ErrorBody),
        (status = 503, description = "Too many sign-ins at once (Retry-After)", body = ErrorBody),
    )
)]
pub async fn admin_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<AdminLoginRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    let email = req.email.trim().to_ascii_lowercase().chars().take(254).collect::<String>();
    let ip = peer.ip().to_string();
    let cfg = state.config.operator_signin.clone();
    // The attempt counts as a failure before the password is checked, in the
    // same transaction that reads the lock: parallel guesses count one each.
    let found = {
        let (email, ip) = (email.clone(), ip.clone());
        state
            .db
            .write(move |tx| {
                operator_signin::count_attempt(tx, &ip, &email, now_ts(), &cfg)?;
                Ok(tx
                    .query_row(
                        "SELECT u.id, u.password_hash FROM users u
                         JOIN operators o ON o.user_id = u.id AND o.disabled_at IS NULL
                         WHERE u.email = ?1 AND u.role = 'admin' AND u.status = 'active'",
                        [&email],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
                    )
                    .optional()?)
            })
            .await?
    };
    let (id, hash) = match found {
        Some((id, Some(hash))) => (Some(id), Some(hash)),
        // Unknown email or no password: a dummy hash takes the same time.
        _ => (None, None),
    };
    let wait = state.config.operator_signin.hash_queue_wait;
    let matches = operator_signin::verify_password(req.password, hash, wait).await?;
    let Some(id) = id.filter(|_| matches) else {
        return Err(ApiError::unauthorized("wrong email or password"));
    };
    let st = state.clone();
    let response = state
        .db
        .write(move |tx| {
            let now = now_ts();
            operator_signin::signed_in(tx, &ip, &email)?;
            let tokens = sessions::start(tx, &st, id, Role::Admin, now)?;
            Ok(AuthResponse { tokens, user: load_user(tx, id)? })
        })
        .await?;
    Ok(Json(response))
}
