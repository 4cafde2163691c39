//! `Idempotency-Key` for money-moving POSTs: the first answer to a key is
//! stored with the action, in the same transaction, and a retry with the same
//! key gets that answer back instead of acting again.

use axum::http::{HeaderMap, StatusCode};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::{
    core::{ApiError, now_ts},
    state::AppState,
};

/// The key of a request, if it sent one (1-128 visible ASCII characters).
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be ASCII"))?.trim();
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request("Idempotency-Key must be 1-128 visible ASCII characters"));
    }
    Ok(Some(key.to_string()))
}

pub fn request_hash(body: &impl Serialize) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(body).unwrap_or_default()))
}

/// The stored answer for `key`, if this user used it before. Reusing a key
/// for a different request is a client bug: 422.
pub fn replay<T: DeserializeOwned>(
    tx: &Transaction<'_>,
    user_id: i64,
    key: &str,
    endpoint: &str,
    hash: &str,
) -> Result<Option<(StatusCode, T)>, ApiError> {
    let row: Option<(String, String, u16, String)> = tx
        .query_row(
            "SELECT endpoint, request_hash, status_code, response FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
            params![user_id, key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((stored_endpoint, stored_hash, status, response)) = row else { return Ok(None) };
    if stored_endpoint != endpoint || stored_hash != hash {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let body = serde_json::from_str(&response).map_err(|e| ApiError::internal(format!("stored response: {e}")))?;
    Ok(Some((status, body)))
}

pub fn remember<T: Serialize>(
    tx: &Transaction<'_>,
    user_id: i64,
    key: &str,
    endpoint: &str,
    hash: &str,
    status: StatusCode,
    body: &T,
) -> Result<(), ApiError> {
    let response = serde_json::to_string(body).map_err(|e| ApiError::internal(e.to_string()))?;
    tx.execute(
        "INSERT INTO idempotency_keys (user_id, key, endpoint, request_hash, status_code, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![user_id, key, endpoint, hash, status.as_u16(), response, now_ts()],
    )?;
    Ok(())
}

/// Stores `body` as the answer to an Idempotency-Key in the caller's
/// transaction, unless a concurrent twin of the request stored one first:
/// then the twin's answer is the answer.
pub(crate) fn remember_once<T: Serialize + DeserializeOwned>(
    tx: &Transaction<'_>,
    user_id: i64,
    key: Option<&str>,
    endpoint: &str,
    hash: &str,
    status: StatusCode,
    body: T,
) -> Result<(StatusCode, T), ApiError> {
    let Some(key) = key else { return Ok((status, body)) };
    if let Some(stored) = replay(tx, user_id, key, endpoint, hash)? {
        return Ok(stored);
    }
    remember(tx, user_id, key, endpoint, hash, status, &body)?;
    Ok((status, body))
}

/// The stored answer for this key, if the request was made before.
pub(crate) async fn replayed<T: DeserializeOwned + Send + 'static>(
    state: &AppState,
    user_id: i64,
    key: &Option<String>,
    endpoint: &'static str,
    hash: &str,
) -> Result<Option<(StatusCode, T)>, ApiError> {
    let Some(key) = key.clone() else { return Ok(None) };
    let hash = hash.to_string();
    state.db.write(move |tx| replay(tx, user_id, &key, endpoint, &hash)).await
}
