//! The amenity catalogue as operators see it: list with how many stations
//! have each, rename, delete (taken off every station in the same
//! transaction). Created with `POST /api/admin/amenities` (the parent
//! module). The public station answers follow by themselves: their cache
//! watches these tables (`stations::page_cache`).

use axum::{Json, extract::State};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::validate::text;
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, Operator,
        audit::{self, Target},
        error::ErrorBody,
    },
    state::AppState,
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminAmenity {
    pub code: String,
    pub name: String,
    /// Stations that have it.
    pub stations: i64,
}

const AMENITY_SELECT: &str = "SELECT a.id, a.code, a.name,
        (SELECT COUNT(*) FROM station_amenity_mappings m WHERE m.amenity_id = a.id) AS stations
    FROM station_amenities a";

fn amenity_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, AdminAmenity)> {
    Ok((r.get("id")?, AdminAmenity { code: r.get("code")?, name: r.get("name")?, stations: r.get("stations")? }))
}

fn load(c: &Connection, code: &str) -> Result<(i64, AdminAmenity), ApiError> {
    c.query_row(&format!("{AMENITY_SELECT} WHERE a.code = ?1"), [code.trim().to_ascii_lowercase()], amenity_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("amenity"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AmenitiesOut {
    /// Every amenity by code (the catalogue is small: no pages).
    pub results: Vec<AdminAmenity>,
}

/// Every amenity, with how many stations have it.
#[utoipa::path(
    get, path = "/api/admin/amenities", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "field_tech"]))),
    responses((status = 200, description = "Every amenity", body = AmenitiesOut))
)]
pub async fn list_amenities(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<AmenitiesOut>, ApiError> {
    let results = state
        .db
        .read(|c| {
            let mut stmt = c.prepare_cached(&format!("{AMENITY_SELECT} ORDER BY a.code"))?;
            let rows = stmt.query_map([], amenity_from_row)?;
            Ok(rows.map(|r| r.map(|(_, a)| a)).collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(AmenitiesOut { results }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmenityPatch {
    /// 2 to 100 characters.
    pub name: String,
}

/// Renames an amenity (its code stays: the app filters by it).
#[utoipa::path(
    patch, path = "/api/admin/amenities/{code}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("code" = String, Path, description = "Amenity code")),
    request_body = AmenityPatch,
    responses(
        (status = 200, description = "The renamed amenity", body = AdminAmenity),
        (status = 400, description = "Invalid name (`validation_failed`)", body = ErrorBody),
        (status = 404, description = "No such amenity", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn update_amenity(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<AmenityPatch>,
) -> Result<Json<AdminAmenity>, ApiError> {
    let name = text("name", &body.name, 100)?;
    let out = state
        .db
        .write(move |tx| {
            let (id, before) = load(tx, &code)?;
            tx.execute("UPDATE station_amenities SET name = ?2 WHERE id = ?1", params![id, name])?;
            let (_, after) = load(tx, &before.code)?;
            audit::record(tx, &operator, "amenity.update", Target::new("amenity", &after.code), &before, &after, None)?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AmenityDeleted {
    pub code: String,
    /// Stations it was taken off.
    pub removed_from_stations: i64,
}

/// Deletes an amenity and takes it off every station that had it.
#[utoipa::path(
    delete, path = "/api/admin/amenities/{code}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("code" = String, Path, description = "Amenity code")),
    responses(
        (status = 200, description = "Deleted", body = AmenityDeleted),
        (status = 404, description = "No such amenity", body = ErrorBody),
    )
)]
pub async fn delete_amenity(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<AmenityDeleted>, ApiError> {
    let out = state
        .db
        .write(move |tx| {
            let (id, before) = load(tx, &code)?;
            let removed = tx.execute("DELETE FROM station_amenity_mappings WHERE amenity_id = ?1", [id])?;
            tx.execute("DELETE FROM station_amenities WHERE id = ?1", [id])?;
            audit::record(tx, &operator, "amenity.delete", Target::new("amenity", &before.code), &before, &(), None)?;
            Ok(AmenityDeleted { code: before.code, removed_from_stations: i64::try_from(removed).unwrap_or(i64::MAX) })
        })
        .await?;
    Ok(Json(out))
}
