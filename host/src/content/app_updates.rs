//! The app changelog: what each published app version brought, from the
//! versions operators publish (`app_versions`, the table behind
//! `GET /api/app/version`). A version dated in the future is not published yet.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    app_core::versions::parse_version,
    core::{ApiError, ApiQuery, error::ErrorBody, now_ts, ts_to_rfc3339},
    state::AppState,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdatesQuery {
    /// `android` or `ios`.
    pub platform: String,
    /// Only versions newer than this one (e.g. the installed `1.2.0`).
    pub since: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppUpdate {
    pub version: String,
    pub release_notes: String,
    pub is_mandatory: bool,
    pub min_supported_version: String,
    pub download_url: String,
    pub released_at: String,
}

/// Published app versions of a platform, newest first, with their release notes.
#[utoipa::path(
    get, path = "/api/app/updates", tag = "app",
    params(UpdatesQuery),
    responses(
        (status = 200, description = "Versions newest first", body = Vec<AppUpdate>),
        (status = 400, description = "Unknown platform or malformed `since`", body = ErrorBody),
    )
)]
pub async fn app_updates(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<UpdatesQuery>,
) -> Result<Json<Vec<AppUpdate>>, ApiError> {
    let platform = q.platform.trim().to_ascii_lowercase();
    if platform != "android" && platform != "ios" {
        return Err(ApiError::invalid_field("platform", "must be android or ios"));
    }
    let since = match q.since.as_deref() {
        None => None,
        Some(raw) => Some(parse_version(raw).ok_or_else(|| ApiError::invalid_field("since", "must look like 1.2.3"))?),
    };
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT version, release_notes, is_mandatory, min_supported_version, download_url, released_at
                 FROM app_versions WHERE platform = ?1 AND released_at <= ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![platform, now_ts()], |r| {
                Ok(AppUpdate {
                    version: r.get(0)?,
                    release_notes: r.get(1)?,
                    is_mandatory: r.get(2)?,
                    min_supported_version: r.get(3)?,
                    download_url: r.get(4)?,
                    released_at: ts_to_rfc3339(r.get(5)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    // Numeric order (1.10 after 1.9), which text order in SQL would get wrong.
    let key = |v: &AppUpdate| parse_version(&v.version).unwrap_or_default();
    let mut updates: Vec<AppUpdate> =
        rows.into_iter().filter(|v| since.as_ref().is_none_or(|s| padded_newer(&key(v), s))).collect();
    updates.sort_by_key(|v| std::cmp::Reverse(pad(&key(v))));
    Ok(Json(updates))
}

fn pad(v: &[u64]) -> [u64; 4] {
    let mut out = [0; 4];
    for (slot, part) in out.iter_mut().zip(v) {
        *slot = *part;
    }
    out
}

fn padded_newer(a: &[u64], b: &[u64]) -> bool {
    pad(a) > pad(b)
}
