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
    core::{ApiError, ApiQuery, error::ErrorBody, ts_to_rfc3339},
    state::AppState,
};

/// The seed caches the latest version for an hour; so do we, per platform.
const CACHE_TTL: Duration = Duration::from_secs(3600);

#[derive(Clone, Default)]
pub struct VersionCache(Arc<Mutex<HashMap<String, CachedVersion>>>);

/// When it was read, and the latest version then (`None`: none published).
type CachedVersion = (Instant, Option<LatestVersion>);

impl VersionCache {
    fn get(&self, platform: &str) -> Option<Option<LatestVersion>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(platform).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, v)| v.clone())
    }

    fn put(&self, platform: &str, latest: Option<LatestVersion>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(platform.to_string(), (Instant::now(), latest));
    }

    /// Drops cached answers after an operator publishes a version.
    pub fn invalidate(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
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
    let latest = match state.app_versions.get(&platform) {
        Some(cached) => cached,
        None => {
            let p = platform.clone();
            let fresh = state
                .db
                .read(move |c| {
                    Ok(c.query_row(
                        "SELECT version, min_supported_version, download_url, is_mandatory, release_notes, released_at
                         FROM app_versions WHERE platform = ?1 ORDER BY released_at DESC, id DESC LIMIT 1",
                        [p],
                        |r| {
                            Ok(LatestVersion {
                                version: r.get(0)?,
                                min_supported_version: r.get(1)?,
                                download_url: r.get(2)?,
                                is_mandatory: r.get(3)?,
                                release_notes: r.get(4)?,
                                released_at: r.get(5)?,
                            })
                        },
                    )
                    .optional()?)
                })
                .await?;
            state.app_versions.put(&platform, fresh.clone());
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
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
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
