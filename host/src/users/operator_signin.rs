//! Operator sign-in under attack: password hashing with bounded memory, and
//! lockouts an attacker can neither outrun nor turn against an operator.
//!
//! - Each attempt is counted as a failure *before* its password is checked,
//!   in one write transaction, so N parallel guesses count N; a correct
//!   password clears the count.
//! - Failures are counted per client IP and account: after
//!   `free_failures`, that IP is locked out of that account for a time that
//!   doubles with every further failure. Someone guessing from elsewhere
//!   cannot lock the operator out, and one IP spraying many accounts is
//!   stopped by a per-IP ceiling.
//! - Unknown emails are checked against a dummy hash, so an answer takes as
//!   long whether or not the account exists.
//! - Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane) needs
//!   19 MiB per hash: at most one hash per core runs at once, each in a
//!   buffer allocated once and reused; an attempt that waits too long for a
//!   turn gets 503 with Retry-After.

use std::{
    sync::{LazyLock, Mutex},
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{PasswordHash, PasswordHasher, SaltString},
};
use rusqlite::{OptionalExtension, Transaction, params};
use tokio::sync::Semaphore;

use crate::{config::OperatorSigninConfig, core::ApiError};

/// OWASP's recommended Argon2id parameters (Password Storage Cheat Sheet):
/// m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes a new password (operator creation; not on a request path).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::internal(format!("salt: {e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("hashing password: {e}")))
}

/// Stored hashes asking for more memory than this are refused rather than
/// computed (they do not come from this server).
const MAX_BLOCKS: usize = 64 * 1024;

/// Runs password checks at most one per core, each in a reused buffer.
struct HashingPool {
    turns: Semaphore,
    buffers: Mutex<Vec<Vec<Block>>>,
}

static POOL: LazyLock<HashingPool> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    HashingPool { turns: Semaphore::new(cores), buffers: Mutex::new(Vec::new()) }
});

/// A hash of a random password, checked when the email is unknown so the
/// answer takes as long as for a real account.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
    hash_password(&hex::encode(secret)).unwrap_or_default()
});

/// Whether `password` matches the PHC string `hash` (the dummy hash when
/// `None`, which never matches). Waits up to `wait` for a turn to hash, then
/// answers 503 with Retry-After.
pub async fn verify_password(password: String, hash: Option<String>, wait: Duration) -> Result<bool, ApiError> {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
    let _turn = match tokio::time::timeout(wait, POOL.turns.acquire()).await {
        Ok(Ok(turn)) => turn,
        _ => {
            let mut busy = ApiError::unavailable("too many sign-ins at once; try again shortly");
            busy.retry_after = Some(1);
            return Err(busy);
        }
    };
    let matches = tokio::task::spawn_blocking(move || {
        let mut buffer = POOL.buffers.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
        let matches = check_with(&mut buffer, &password, &hash);
        POOL.buffers.lock().unwrap_or_else(|p| p.into_inner()).push(buffer);
        matches
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(known && matches)
}

/// Recomputes the hash of `password` with the stored parameters and salt in
/// `buffer` (grown once to the size the parameters need).
fn check_with(buffer: &mut Vec<Block>, password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed)) else {
        return false;
    };
    let version = parsed.version.and_then(|v| Version::try_from(v).ok()).unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    if buffer.len() < blocks {
        buffer.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut buffer[..blocks],
    );
    // `Output` compares in constant time.
    hashed.is_ok() && argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
}

/// Counts this attempt as a failure of `ip` on `email` before the password
/// is checked, or refuses it with 429 while that pair (or the IP) is locked.
pub fn count_attempt(
    tx: &Transaction<'_>,
    ip: &str,
    email: &str,
    now: i64,
    cfg: &OperatorSigninConfig,
) -> Result<(), ApiError> {
    // A day without failures forgets them.
    tx.execute("DELETE FROM operator_signin_failures WHERE last_failure_at < ?1", [now - 86_400])?;
    let ip_failures: i64 = tx.query_row(
        "SELECT COALESCE(SUM(failures), 0) FROM operator_signin_failures WHERE ip = ?1 AND last_failure_at > ?2",
        params![ip, now - 3600],
        |r| r.get(0),
    )?;
    if ip_failures >= i64::from(cfg.failures_per_ip_per_hour) {
        tracing::warn!(ip, "operator sign-in: too many failures from this address");
        return Err(ApiError::too_many_requests(900));
    }
    let locked_until: Option<i64> = tx
        .query_row(
            "SELECT locked_until FROM operator_signin_failures WHERE ip = ?1 AND email = ?2",
            params![ip, email],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if let Some(until) = locked_until.filter(|until| *until > now) {
        return Err(ApiError::too_many_requests(u64::try_from(until - now).unwrap_or(1)));
    }
    let failures: i64 = tx.query_row(
        "INSERT INTO operator_signin_failures (ip, email, failures, last_failure_at) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (ip, email) DO UPDATE SET failures = failures + 1, last_failure_at = excluded.last_failure_at
         RETURNING failures",
        params![ip, email, now],
        |r| r.get(0),
    )?;
    let over = failures - i64::from(cfg.free_failures);
    if over >= 0 {
        // 1x, 2x, 4x... the base lock, up to the ceiling.
        let lock = cfg.lock_secs.saturating_mul(1_i64 << over.min(30)).min(cfg.max_lock_secs);
        tx.execute(
            "UPDATE operator_signin_failures SET locked_until = ?3 WHERE ip = ?1 AND email = ?2",
            params![ip, email, now + lock],
        )?;
        tracing::warn!(ip, failures, lock_secs = lock, "operator sign-in locked for this address and account");
    }
    Ok(())
}

/// A correct password: the attempt was no failure, and earlier ones are forgiven.
pub fn signed_in(tx: &Transaction<'_>, ip: &str, email: &str) -> Result<(), ApiError> {
    tx.execute("DELETE FROM operator_signin_failures WHERE ip = ?1 AND email = ?2", params![ip, email])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_with_a_reused_buffer() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let mut buffer = Vec::new();
        assert!(check_with(&mut buffer, "correct horse", &hash));
        assert_eq!(buffer.len(), 19 * 1024);
        assert!(!check_with(&mut buffer, "correct horsE", &hash));
        assert!(!check_with(&mut buffer, "x", "not a hash"));
        // Hashes made by argon2's own defaults (older operators) still verify.
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let old = Argon2::default().hash_password(b"pw", &salt).unwrap().to_string();
        assert!(check_with(&mut buffer, "pw", &old));
    }
}
