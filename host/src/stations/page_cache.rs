//! Rendered public station answers (`GET /api/stations`, nearby), cached per
//! query string and valid for one station-state version.
//!
//! The version moves after every commit that changed a table these answers
//! read (`core::db::TableVersions`): the station link's applying
//! transaction, an operator's edit, a rental reserving a slot, the heartbeat
//! sweep. So an answer is never staler than the last applied station message:
//! the change that makes a page wrong is what invalidates it, not a timer.
//!
//! Ordering: a request reads the version *before* it reads the database, and
//! files what it rendered under that version. A commit that lands meanwhile
//! moves the version after it commits, so the page filed under the older
//! version is never served again. A page is only ever filed under a version
//! at most as new as the data it shows.
//!
//! The same version, with a per-process random epoch (versions restart at
//! zero with the process), is the `ETag` of these answers: `If-None-Match`
//! gets a 304 until a station changes.

use std::{collections::HashMap, sync::Mutex};

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::core::{ApiError, Db, db::WatchedTables};

/// The tables a public station answer reads.
pub const STATION_TABLES: &[&str] =
    &["stations", "station_slots", "power_banks", "station_amenities", "station_amenity_mappings", "station_geo"];

/// Distinct query strings kept at once; past that the cache starts afresh (a
/// client sending random coordinates must not grow memory).
const MAX_PAGES: usize = 2_048;

pub struct PageCache {
    version: WatchedTables,
    epoch: u32,
    pages: Mutex<Pages>,
}

#[derive(Default)]
struct Pages {
    version: u64,
    by_query: HashMap<String, Bytes>,
}

impl PageCache {
    pub fn new(db: &Db) -> Self {
        Self { version: db.watch(STATION_TABLES), epoch: rand::random(), pages: Mutex::default() }
    }

    /// The station-state version now (read it before reading the database),
    /// or `None` while a commit is moving it.
    pub fn version(&self) -> Option<u64> {
        self.version.current()
    }

    fn etag(&self, version: u64) -> String {
        format!("\"s{:08x}-{version}\"", self.epoch)
    }

    fn get(&self, version: u64, query: &str) -> Option<Bytes> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if pages.version != version {
            return None;
        }
        pages.by_query.get(query).cloned()
    }

    fn put(&self, version: u64, query: &str, body: Bytes) {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        // An older version's pages are all stale; a newer one's are not ours
        // to replace (this request read the database before that commit).
        if pages.version < version {
            pages.by_query.clear();
            pages.version = version;
        }
        if pages.version == version {
            if pages.by_query.len() >= MAX_PAGES {
                pages.by_query.clear();
            }
            pages.by_query.insert(query.to_owned(), body);
        }
    }

    /// Answers `key` from the cache, with a 304 when the client's
    /// `If-None-Match` names the current version, or renders it with
    /// `render` (which must read the database after this call started) and
    /// files it.
    pub async fn answer<T, F, Fut>(&self, headers: &HeaderMap, key: &str, render: F) -> Result<Response, ApiError>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let Some(version) = self.version() else {
            // A commit is moving the version: answer from the database, untagged.
            let rendered = render().await?;
            let body = serde_json::to_vec(&rendered).map_err(|e| ApiError::internal(e.to_string()))?;
            return Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response());
        };
        let etag = self.etag(version);
        let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::internal(e.to_string()))?;
        if headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag))
        {
            return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
        }
        let body = match self.get(version, key) {
            Some(body) => body,
            None => {
                let rendered = render().await?;
                let body = Bytes::from(serde_json::to_vec(&rendered).map_err(|e| ApiError::internal(e.to_string()))?);
                self.put(version, key, body.clone());
                body
            }
        };
        Ok((
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (header::ETAG, etag_value),
                // Shared caches must ask again: the answer changes with the stations.
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            body,
        )
            .into_response())
    }
}
