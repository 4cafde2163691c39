//! One-time codes: `POST /api/auth/get-otp` and `POST /api/auth/verify-otp`.
//!
//! Codes are six digits, stored only as an HMAC under a server pepper, live
//! five minutes and allow five guesses. Asking for a new code supersedes the
//! old one. A correct code yields a short-lived verification token that
//! register or login accept once.

use std::net::SocketAddr;

use axum::{Json, extract::ConnectInfo, extract::State};
use hmac::{Hmac, Mac};
use rand::Rng;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use super::identifier::Identifier;
use crate::{
    core::{ApiError, ApiJson, error::ErrorBody, now_ts, rate_limit},
    state::AppState,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OtpPurpose {
    Register,
    Login,
}

impl OtpPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            OtpPurpose::Register => "register",
            OtpPurpose::Login => "login",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetOtpRequest {
    /// Phone number (Nepali numbers may omit +977) or email address. Also
    /// accepted under the spec's name, `email_or_phone`.
    #[schema(example = "+9779812345678")]
    #[serde(alias = "email_or_phone")]
    pub identifier: String,
    pub purpose: OtpPurpose,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtpSent {
    pub message: String,
    /// `sms` or `email`.
    pub channel: &'static str,
    pub expires_in: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyOtpRequest {
    /// As given to get-otp; also accepted as `email_or_phone`.
    #[serde(alias = "email_or_phone")]
    pub identifier: String,
    #[schema(example = "123456")]
    pub otp: String,
    pub purpose: OtpPurpose,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtpVerified {
    /// Give this to `/api/auth/register` or `/api/auth/login`.
    pub verification_token: String,
    pub expires_in: i64,
}

fn code_hash(pepper: &[u8], target: &str, purpose: OtpPurpose, code: &str) -> Result<Hmac<Sha256>, ApiError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).map_err(|_| ApiError::internal("bad OTP pepper"))?;
    mac.update(target.as_bytes());
    mac.update(b"|");
    mac.update(purpose.as_str().as_bytes());
    mac.update(b"|");
    mac.update(code.as_bytes());
    Ok(mac)
}

/// Sends a one-time code by SMS or email.
#[utoipa::path(
    post, path = "/api/auth/get-otp", tag = "auth",
    request_body = GetOtpRequest,
    responses(
        (status = 200, description = "Code sent", body = OtpSent),
        (status = 400, description = "Invalid identifier", body = ErrorBody),
        (status = 404, description = "Login for an unknown account (counted against the rate limits)", body = ErrorBody),
        (status = 409, description = "Register for an existing account (counted against the rate limits)", body = ErrorBody),
        (status = 429, description = "Too many requests from this address or for this identifier (Retry-After)", body = ErrorBody),
        (status = 502, description = "SMS or email gateway failed", body = ErrorBody),
    )
)]
pub async fn get_otp(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<GetOtpRequest>,
) -> Result<Json<OtpSent>, ApiError> {
    let identifier = Identifier::parse(&req.identifier)?;
    let purpose = req.purpose;
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let hash = hex::encode(code_hash(&state.otp_pepper, identifier.as_str(), purpose, &code)?.finalize().into_bytes());
    let cfg = state.config.otp.clone();
    let target = identifier.clone();
    let ip = peer.ip().to_string();

    // Every request counts against the per-IP and per-identifier limits
    // before anything else is looked at, so the register/login answers
    // (which tell whether an account exists, as the app's flow needs) come
    // no faster than codes do. Those answers must commit their counts, so
    // they travel as a value.
    let outcome: Result<(), ApiError> = state
        .db
        .write(move |tx| {
            let now = now_ts();
            // A refused request rolls back and counts nowhere.
            rate_limit::hit(tx, &format!("otp:ip:{ip}"), cfg.per_ip_per_hour, 3600, now)?;
            rate_limit::hit(tx, &format!("otp:target:{}", target.as_str()), cfg.per_target_per_hour, 3600, now)?;
            let registered: bool = tx.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM users WHERE {} = ?1 AND status != 'deleted')", target.column()),
                [target.as_str()],
                |r| r.get(0),
            )?;
            match purpose {
                OtpPurpose::Register if registered => {
                    return Ok(Err(ApiError::conflict(
                        "already_registered",
                        "an account with this identifier exists; log in instead",
                    )));
                }
                OtpPurpose::Login if !registered => {
                    return Ok(Err(ApiError::new(
                        axum::http::StatusCode::NOT_FOUND,
                        "not_registered",
                        "no account with this identifier; register first",
                    )));
                }
                _ => {}
            }
            // A new code supersedes any earlier one for the same purpose.
            tx.execute(
                "UPDATE otp_codes SET consumed_at = ?3 WHERE target = ?1 AND purpose = ?2 AND consumed_at IS NULL",
                params![target.as_str(), purpose.as_str(), now],
            )?;
            tx.execute(
                "INSERT INTO otp_codes (target, purpose, code_hash, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![target.as_str(), purpose.as_str(), hash, now + cfg.ttl_secs, now],
            )?;
            Ok(Ok(()))
        })
        .await?;
    outcome?;

    let text = format!("Your powerbank code is {code}. It expires in 5 minutes. Never share it.");
    let sent = match &identifier {
        Identifier::Phone(phone) => state.messenger.send_sms(phone, &text).await.map(|_| "sms"),
        Identifier::Email(email) => {
            state.messenger.send_email(email, "Your powerbank code", &text).await.map(|_| "email")
        }
    };
    let channel = sent.map_err(|e| {
        tracing::warn!(error = %e, "OTP delivery failed");
        ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "otp_delivery_failed",
            "could not deliver the code; try again",
        )
    })?;
    Ok(Json(OtpSent { message: format!("code sent by {channel}"), channel, expires_in: state.config.otp.ttl_secs }))
}

/// Checks a one-time code and returns a verification token.
#[utoipa::path(
    post, path = "/api/auth/verify-otp", tag = "auth",
    request_body = VerifyOtpRequest,
    responses(
        (status = 200, description = "Code accepted", body = OtpVerified),
        (status = 400, description = "Wrong, expired or exhausted code", body = ErrorBody),
        (status = 429, description = "Too many wrong guesses; request a new code", body = ErrorBody),
    )
)]
pub async fn verify_otp(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<VerifyOtpRequest>,
) -> Result<Json<OtpVerified>, ApiError> {
    let identifier = Identifier::parse(&req.identifier)?;
    let purpose = req.purpose;
    let code = req.otp.trim().to_string();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_field("otp", "must be 6 digits"));
    }
    let mac = code_hash(&state.otp_pepper, identifier.as_str(), purpose, &code)?;
    let max_attempts = state.config.otp.max_attempts;
    let target = identifier.as_str().to_string();

    // The attempt counter must persist even when the guess is wrong, so the
    // outcome is returned as a value and the transaction always commits.
    let outcome: Result<i64, ApiError> = state
        .db
        .write(move |tx| {
            let now = now_ts();
            let row = tx
                .query_row(
                    "SELECT id, code_hash, attempts, expires_at, consumed_at FROM otp_codes
                     WHERE target = ?1 AND purpose = ?2
                     ORDER BY id DESC LIMIT 1",
                    params![target, purpose.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                        ))
                    },
                )
                .optional()?;
            let no_code = || {
                ApiError::new(axum::http::StatusCode::BAD_REQUEST, "otp_invalid", "no active code; request a new one")
            };
            let Some((id, stored, attempts, expires_at, consumed_at)) = row else {
                return Ok(Err(no_code()));
            };
            // A code that used up its guesses stays locked, even for the right
            // code, until a new one is requested.
            if attempts >= max_attempts {
                return Ok(Err(locked()));
            }
            if consumed_at.is_some() {
                return Ok(Err(no_code()));
            }
            if expires_at <= now {
                return Ok(Err(ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "otp_expired",
                    "code expired; request a new one",
                )));
            }
            let matches = hex::decode(&stored).is_ok_and(|bytes| mac.verify_slice(&bytes).is_ok());
            if !matches {
                let attempts = attempts + 1;
                tx.execute("UPDATE otp_codes SET attempts = ?2 WHERE id = ?1", params![id, attempts])?;
                return Ok(Err(ApiError::new(axum::http::StatusCode::BAD_REQUEST, "otp_invalid", "wrong code")
                    .with_details(serde_json::json!({ "attempts_left": (max_attempts - attempts).max(0) }))));
            }
            tx.execute("UPDATE otp_codes SET consumed_at = ?2 WHERE id = ?1", params![id, now])?;
            Ok(Ok(id))
        })
        .await?;
    let otp_id = outcome?;
    let ttl = state.config.otp.verification_ttl_secs;
    Ok(Json(OtpVerified {
        verification_token: state.jwt.issue_verification(identifier.as_str(), purpose.as_str(), otp_id, ttl)?,
        expires_in: ttl,
    }))
}

fn locked() -> ApiError {
    let mut e = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "otp_locked",
        "too many wrong codes; request a new code",
    );
    e.retry_after = Some(60);
    e
}

/// Checks a verification token for `purpose` and marks it spent, inside the
/// caller's transaction. Returns the verified identifier.
pub fn spend_verification(
    tx: &rusqlite::Transaction<'_>,
    state: &AppState,
    token: &str,
    purpose: OtpPurpose,
) -> Result<Identifier, ApiError> {
    let claims = state.jwt.verify_verification(token)?;
    if claims.purpose != purpose.as_str() {
        return Err(ApiError::unauthorized(format!("verification token is not for {}", purpose.as_str())));
    }
    let spent = tx.execute(
        "UPDATE otp_codes SET verification_spent_at = ?3
         WHERE id = ?1 AND target = ?2 AND purpose = ?4 AND verification_spent_at IS NULL",
        params![claims.otp_id, claims.sub, crate::core::now_ts(), purpose.as_str()],
    )?;
    if spent != 1 {
        return Err(ApiError::unauthorized("verification token already used"));
    }
    Identifier::parse(&claims.sub)
}
