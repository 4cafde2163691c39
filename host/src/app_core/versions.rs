//! `GET /api/app/version`: tells the app whether it must update.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    core::{ApiError, ApiQuery, Db, db::WatchedTables, error::ErrorBody, now_ts, ts_to_rfc3339},
    state::AppState,
};

/// A cached answer is also dropped after this long, so a version published
/// with a future `released_at` shows once that time comes.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// The latest version per platform, valid for one version of the
/// `app_versions` table (`core::db::TableVersions`): any commit that changes
/// the table (an operator's create, edit or delete) makes every cached answer
/// unreachable at once, with no call to remember. Ordering as in
/// `stations::page_cache`: read the table version before the database, file
/// the answer under it.
#[derive(Clone)]
pub struct VersionCache {
    table: WatchedTables,
    entries: Arc<Mutex<HashMap<String, CachedVersion>>>,
}

/// The table version and time it was read at, and the latest version then
/// (`None`: none published).
type CachedVersion = (u64, Instant, Option<LatestVersion>);

impl VersionCache {
    pub fn new(db: &Db) -> Self {
        Self { table: db.watch(&["app_versions"]), entries: Arc::default() }
    }

    /// The table version now; `None` while a commit is moving it (then
    /// nothing may be served from or filed in the cache).
    fn version(&self) -> Option<u64> {
        self.table.current()
    }

    fn get(&self, platform: &str, version: u64) -> Option<Option<LatestVersion>> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(platform).filter(|(v, at, _)| *v == version && at.elapsed() < CACHE_TTL).map(|(_, _, l)| l.clone())
    }

    fn put(&self, platform: &str, version: u64, latest: Option<LatestVersion>) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(platform.to_string(), (version, Instant::now(), latest));
    }

    /// Drops every cached answer (the table version already does this for
    /// changes through this process; this is for anything else).
    pub fn invalidate(&self) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[derive(Debug, Clone)]
struct LatestVersion {
    version: String,
    min_supported_version: String,
    download_url: String,
    is_mandatory: bool,
    release_notes: String,
    released_at: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// `android` or `ios`.
    pub platform: String,
    /// The app's own version, e.g. `1.4.2`.
    pub version: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionCheck {
    pub platform: String,
    pub current_version: String,
    pub latest_version: String,
    pub min_supported_version: String,
    pub update_available: bool,
    /// The app must update before it can be used.
    pub update_required: bool,
    pub download_url: String,
    pub release_notes: String,
    pub released_at: String,
}

/// `1.4.2` → `[1, 4, 2]`; missing parts count as zero when compared.
pub fn parse_version(raw: &str) -> Option<Vec<u64>> {
    let raw = raw.trim().trim_start_matches('v');
    if raw.is_empty() || raw.len() > 32 {
        return None;
    }
    raw.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

fn older(a: &[u64], b: &[u64]) -> bool {
    let n = a.len().max(b.len());
    let pad = |v: &[u64]| (0..n).map(|i| v.get(i).copied().unwrap_or(0)).collect::<Vec<_>>();
    pad(a) < pad(b)
}

/// Compares the app's version with the latest published one.
#[utoipa::path(
    get, path = "/api/app/version", tag = "app",
    params(VersionQuery),
    responses(
        (status = 200, description = "Version verdict", body = VersionCheck),
        (status = 400, description = "Unknown platform or malformed version", body = ErrorBody),
        (status = 404, description = "No version published for the platform", body = ErrorBody),
    )
)]
pub async fn app_version(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<Response, ApiError> {
    let platform = q.platform.trim().to_ascii_lowercase();
    if platform != "android" && platform != "ios" {
        return Err(ApiError::invalid_field("platform", "must be android or ios"));
    }
    let current =
        parse_version(&q.version).ok_or_else(|| ApiError::invalid_field("version", "must look like 1.2.3"))?;
    let table_version = state.app_versions.version();
    let cached = table_version.and_then(|v| state.app_versions.get(&platform, v));
    let latest = match cached {
        Some(cached) => cached,
        None => {
            let p = platform.clone();
            let fresh = state
                .db
                .read(move |c| {
                    // A version dated in the future is not published yet
                    // (as in `GET /api/app/updates`).
                    Ok(c.query_row(
                        "SELECT version, min_supported_version, download_url, is_mandatory, release_notes, released_at
                         FROM app_versions WHERE platform = ?1 AND released_at <= ?2
                         ORDER BY released_at DESC, id DESC LIMIT 1",
                        rusqlite::params![p, now_ts()],
                        |r| {
                            Ok(LatestVersion {
                                version: r.get("version")?,
                                min_supported_version: r.get("min_supported_version")?,
                                download_url: r.get("download_url")?,
                                is_mandatory: r.get("is_mandatory")?,
                                release_notes: r.get("release_notes")?,
                                released_at: r.get("released_at")?,
                            })
                        },
                    )
                    .optional()?)
                })
                .await?;
            if let Some(v) = table_version {
                state.app_versions.put(&platform, v, fresh.clone());
            }
            fresh
        }
    };
    let latest = latest.ok_or_else(|| ApiError::not_found("published version for this platform"))?;
    let latest_v = parse_version(&latest.version).unwrap_or_default();
    let min_v = parse_version(&latest.min_supported_version).unwrap_or_default();
    let update_available = older(&current, &latest_v);
    let body = VersionCheck {
        platform,
        current_version: q.version.trim().to_string(),
        update_required: older(&current, &min_v) || (latest.is_mandatory && update_available),
        update_available,
        latest_version: latest.version,
        min_supported_version: latest.min_supported_version,
        download_url: latest.download_url,
        release_notes: latest.release_notes,
        released_at: ts_to_rfc3339(latest.released_at),
    };
    let mut response = Json(body).into_response();
    // Short: a version operators publish or withdraw reaches apps at once
    // (the server's own cache follows the table, see `VersionCache`).
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let v = |s| parse_version(s).unwrap();
        assert!(older(&v("1.9"), &v("1.10")));
        assert!(!older(&v("1.2.0"), &v("1.2")));
        assert!(older(&v("1.2"), &v("1.2.1")));
        assert!(parse_version("1.x").is_none());
        assert!(parse_version("").is_none());
    }
}
