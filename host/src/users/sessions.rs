//! Sign-in sessions: a short-lived access JWT plus an opaque refresh token
//! that rotates on every use.
//!
//! Each sign-in starts a token family. Refreshing spends the presented token
//! and issues the next one in the same family. Presenting a token that was
//! already spent means it was copied: the whole family is revoked, which also
//! cuts off every access token issued in it (the auth extractor checks the
//! family).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::{
    core::{ApiError, Role},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn insert_refresh(tx: &Transaction<'_>, family_id: &str, ttl_secs: i64, now: i64) -> Result<String, ApiError> {
    let token = new_refresh_token();
    tx.execute(
        "INSERT INTO refresh_tokens (family_id, token_hash, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![family_id, hash_token(&token), now + ttl_secs, now],
    )?;
    Ok(token)
}

fn pair(state: &AppState, user_id: i64, role: Role, family_id: &str, refresh: String) -> Result<TokenPair, ApiError> {
    let ttl = state.config.access_ttl_secs;
    Ok(TokenPair {
        access_token: state.jwt.issue_access(user_id, role, family_id, ttl)?,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: ttl,
    })
}

/// Starts a new session for `user_id` inside the caller's transaction.
pub fn start(
    tx: &Transaction<'_>,
    state: &AppState,
    user_id: i64,
    role: Role,
    now: i64,
) -> Result<TokenPair, ApiError> {
    let family_id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO token_families (id, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![family_id, user_id, now],
    )?;
    tx.execute("UPDATE users SET last_login_at = ?2 WHERE id = ?1", params![user_id, now])?;
    let refresh = insert_refresh(tx, &family_id, state.config.refresh_ttl_secs, now)?;
    pair(state, user_id, role, &family_id, refresh)
}

pub fn revoke_family(tx: &Transaction<'_>, family_id: &str, reason: &str, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE token_families SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        params![family_id, now, reason],
    )?;
    Ok(())
}

pub fn revoke_all_for_user(tx: &Transaction<'_>, user_id: i64, reason: &str, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE token_families SET revoked_at = ?2, revoked_reason = ?3 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now, reason],
    )?;
    Ok(())
}

/// The outcome of presenting a refresh token. A reuse must commit the family
/// revocation, so it is an `Ok` value that the handler turns into a 401.
pub enum Rotation {
    Rotated(TokenPair),
    Refused(&'static str),
}

pub fn rotate(tx: &Transaction<'_>, state: &AppState, presented: &str, now: i64) -> Result<Rotation, ApiError> {
    let row = tx
        .query_row(
            "SELECT t.id, t.family_id, t.expires_at, t.used_at, f.revoked_at, u.id, u.role, u.status
             FROM refresh_tokens t
             JOIN token_families f ON f.id = t.family_id
             JOIN users u ON u.id = f.user_id
             WHERE t.token_hash = ?1",
            [hash_token(presented)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((token_id, family_id, expires_at, used_at, revoked_at, user_id, role, status)) = row else {
        return Ok(Rotation::Refused("unknown refresh token"));
    };
    if revoked_at.is_some() {
        return Ok(Rotation::Refused("session revoked"));
    }
    if used_at.is_some() {
        tracing::warn!(user_id, family_id, "refresh token reused; revoking its family");
        revoke_family(tx, &family_id, "refresh token reuse", now)?;
        return Ok(Rotation::Refused("refresh token already used; session revoked"));
    }
    if expires_at <= now {
        return Ok(Rotation::Refused("refresh token expired"));
    }
    if status != "active" {
        return Ok(Rotation::Refused("account inactive"));
    }
    let role = Role::parse(&role).ok_or_else(|| ApiError::internal("unknown role in database"))?;
    tx.execute("UPDATE refresh_tokens SET used_at = ?2 WHERE id = ?1", params![token_id, now])?;
    let refresh = insert_refresh(tx, &family_id, state.config.refresh_ttl_secs, now)?;
    Ok(Rotation::Rotated(pair(state, user_id, role, &family_id, refresh)?))
}
