//! `GET /api/countries` and `GET /api/banners`.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    core::{ApiError, now_ts, ts_to_rfc3339},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct Country {
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub code: String,
    /// e.g. `+977`.
    pub dial_code: String,
    pub flag_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Banner {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub image_url: String,
    pub link_url: Option<String>,
    pub display_order: i64,
    pub valid_from: String,
    pub valid_until: String,
}

/// Countries with their dial codes, for phone number entry.
#[utoipa::path(
    get, path = "/api/countries", tag = "app",
    responses((status = 200, description = "Active countries", body = Vec<Country>))
)]
pub async fn countries(State(state): State<AppState>) -> Result<Json<Vec<Country>>, ApiError> {
    let list = state
        .db
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, code, dial_code, flag_url FROM countries WHERE is_active = 1 ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Country { name: r.get(0)?, code: r.get(1)?, dial_code: r.get(2)?, flag_url: r.get(3)? })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(list))
}

/// Promotional banners that are active now.
#[utoipa::path(
    get, path = "/api/banners", tag = "app",
    responses((status = 200, description = "Banners in display order", body = Vec<Banner>))
)]
pub async fn banners(State(state): State<AppState>) -> Result<Json<Vec<Banner>>, ApiError> {
    let now = now_ts();
    let list = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, title, description, image_url, link_url, display_order, valid_from, valid_until
                 FROM banners WHERE is_active = 1 AND valid_from <= ?1 AND valid_until > ?1
                 ORDER BY display_order, id",
            )?;
            let rows = stmt.query_map([now], |r| {
                Ok(Banner {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    description: r.get(2)?,
                    image_url: r.get(3)?,
                    link_url: r.get(4)?,
                    display_order: r.get(5)?,
                    valid_from: ts_to_rfc3339(r.get(6)?),
                    valid_until: ts_to_rfc3339(r.get(7)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(list))
}
