//! A user's favourite stations: add, remove, list.
//!
//! Both writes are idempotent, so a client that retries after a lost answer
//! ends where it meant to: adding twice keeps one favourite (201 the first
//! time, 200 after), removing one that is not there answers 200 too.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use utoipa::ToSchema;

use super::listing::{
    RENTABLE_BATTERY, SLOT_JOINS, StationSummary, attach_amenities, summary_columns, summary_from_row,
};
use super::status::StationStatus;
use crate::{
    core::{ApiError, ApiPath, ApiQuery, AuthUser, Page, PageParams, error::ErrorBody, now_ts, ts_to_rfc3339},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct FavoriteOut {
    pub serial_number: String,
    pub is_favorite: bool,
    /// When the station became a favourite; null once removed.
    pub favorited_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FavoriteStation {
    pub favorited_at: String,
    pub station: StationSummary,
    #[serde(skip)]
    favorite_id: i64,
}

/// The id of a station by serial; retired stations only when `include_retired`.
pub fn station_id(tx: &rusqlite::Connection, sn: &str, include_retired: bool) -> Result<i64, ApiError> {
    tx.query_row(
        "SELECT id FROM stations WHERE serial_number = ?1 AND (?2 OR status != ?3)",
        params![sn, include_retired, StationStatus::Retired],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found("station"))
}

fn add(tx: &Transaction<'_>, user_id: i64, sn: &str) -> Result<(bool, i64), ApiError> {
    let station = station_id(tx, sn, false)?;
    let added = tx.execute(
        "INSERT INTO user_station_favorites (user_id, station_id, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, station_id) DO NOTHING",
        params![user_id, station, now_ts()],
    )? == 1;
    let since: i64 = tx.query_row(
        "SELECT created_at FROM user_station_favorites WHERE user_id = ?1 AND station_id = ?2",
        params![user_id, station],
        |r| r.get(0),
    )?;
    Ok((added, since))
}

/// Adds a station to the caller's favourites (idempotent).
#[utoipa::path(
    post, path = "/api/stations/{sn}/favorite", tag = "stations",
    security(("bearer" = [])),
    params(("sn" = String, Path, description = "Station serial number")),
    responses(
        (status = 201, description = "Added to favourites", body = FavoriteOut),
        (status = 200, description = "Already a favourite; nothing changed", body = FavoriteOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
    )
)]
pub async fn add_favorite(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(sn): ApiPath<String>,
) -> Result<(StatusCode, Json<FavoriteOut>), ApiError> {
    let serial = sn.clone();
    let (added, since) = state.db.write(move |tx| add(tx, user.id, &serial)).await?;
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(FavoriteOut { serial_number: sn, is_favorite: true, favorited_at: Some(ts_to_rfc3339(since)) })))
}

/// Removes a station from the caller's favourites; 200 whether or not it was
/// one.
#[utoipa::path(
    delete, path = "/api/stations/{sn}/favorite", tag = "stations",
    security(("bearer" = [])),
    params(("sn" = String, Path, description = "Station serial number")),
    responses(
        (status = 200, description = "Not a favourite (any more)", body = FavoriteOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
    )
)]
pub async fn remove_favorite(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(sn): ApiPath<String>,
) -> Result<Json<FavoriteOut>, ApiError> {
    let serial = sn.clone();
    state
        .db
        .write(move |tx| {
            // A retired station can still be removed from a list.
            let station = station_id(tx, &serial, true)?;
            tx.execute(
                "DELETE FROM user_station_favorites WHERE user_id = ?1 AND station_id = ?2",
                params![user.id, station],
            )?;
            Ok(())
        })
        .await?;
    Ok(Json(FavoriteOut { serial_number: sn, is_favorite: false, favorited_at: None }))
}

/// The caller's favourite stations with live availability, most recently
/// added first. Retired stations drop out of the list.
#[utoipa::path(
    get, path = "/api/stations/favorites", tag = "stations",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of favourite stations", body = Page<FavoriteStation>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_favorites(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<FavoriteStation>>, ApiError> {
    let limit = paging.limit()?;
    let before = paging.before_id()?;
    let rows = state
        .db
        .read(move |c| {
            let sql = format!(
                "SELECT {}, f.id, f.created_at
                 FROM user_station_favorites f JOIN stations s ON s.id = f.station_id {SLOT_JOINS}
                 WHERE f.user_id = ?2 AND f.id < ?3 AND s.status != ?5
                 GROUP BY f.id ORDER BY f.id DESC LIMIT ?4",
                summary_columns()
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt
                .query_map(params![RENTABLE_BATTERY, user.id, before, limit + 1, StationStatus::Retired], |r| {
                    Ok(FavoriteStation {
                        station: summary_from_row(r)?,
                        favorite_id: r.get(12)?,
                        favorited_at: ts_to_rfc3339(r.get(13)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            attach_amenities(c, rows.iter_mut().map(|f| &mut f.station))?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |f| f.favorite_id)))
}
