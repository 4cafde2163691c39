//! Fixed-window rate limits kept in SQLite, so they hold across restarts and
//! for every worker of a single-box deployment.

use rusqlite::{Transaction, params};

use super::error::ApiError;

/// Counts one hit on `key` inside the caller's write transaction; refuses with
/// 429 and a Retry-After when the window already holds `limit` hits.
pub fn hit(tx: &Transaction<'_>, key: &str, limit: u32, window_secs: i64, now: i64) -> Result<(), ApiError> {
    let window_start = now - now.rem_euclid(window_secs.max(1));
    let hits: i64 = tx.query_row(
        "INSERT INTO rate_limit_windows (key, window_start, hits) VALUES (?1, ?2, 1)
         ON CONFLICT (key) DO UPDATE SET
            hits = CASE WHEN window_start = excluded.window_start THEN hits + 1 ELSE 1 END,
            window_start = excluded.window_start
         RETURNING hits",
        params![key, window_start],
        |r| r.get(0),
    )?;
    if hits > i64::from(limit) {
        let retry_after = (window_start + window_secs - now).max(1);
        return Err(ApiError::too_many_requests(u64::try_from(retry_after).unwrap_or(1)));
    }
    Ok(())
}

/// Refuses with 429 when `key` already used up its window, without counting a
/// hit (for limits that count only failures, such as password guesses).
pub fn check(conn: &rusqlite::Connection, key: &str, limit: u32, window_secs: i64, now: i64) -> Result<(), ApiError> {
    let window_start = now - now.rem_euclid(window_secs.max(1));
    let hits: i64 = conn.query_row(
        "SELECT COALESCE((SELECT hits FROM rate_limit_windows WHERE key = ?1 AND window_start = ?2), 0)",
        params![key, window_start],
        |r| r.get(0),
    )?;
    if hits >= i64::from(limit) {
        let retry_after = (window_start + window_secs - now).max(1);
        return Err(ApiError::too_many_requests(u64::try_from(retry_after).unwrap_or(1)));
    }
    Ok(())
}
