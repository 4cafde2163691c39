//! The GPS trail of an active rental.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{
    RentalStatus, {self},
};
use crate::{
    core::{ApiError, ApiJson, ApiPath, AuthUser, error::ErrorBody, now_ts, rate_limit},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationUpdate {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: Option<f64>,
}

/// Records a point of the GPS trail of an active rental (at most 6 a minute).
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationRecorded {
    pub message: String,
}

#[utoipa::path(
    post, path = "/api/rentals/{id}/location", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = LocationUpdate,
    responses(
        (status = 201, description = "Recorded", body = LocationRecorded),
        (status = 400, description = "Bad coordinates", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 409, description = "The rental is not active", body = ErrorBody),
        (status = 429, description = "Too frequent", body = ErrorBody),
    )
)]
pub async fn location(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(p): ApiJson<LocationUpdate>,
) -> Result<(StatusCode, Json<LocationRecorded>), ApiError> {
    if !(p.latitude.is_finite() && (-90.0..=90.0).contains(&p.latitude)) {
        return Err(ApiError::invalid_field("latitude", "must be between -90 and 90"));
    }
    if !(p.longitude.is_finite() && (-180.0..=180.0).contains(&p.longitude)) {
        return Err(ApiError::invalid_field("longitude", "must be between -180 and 180"));
    }
    if p.accuracy_m.is_some_and(|a| !a.is_finite() || a < 0.0) {
        return Err(ApiError::invalid_field("accuracy_m", "must be a positive number"));
    }
    let rental = model::own_core(&state, user.id, id).await?;
    if rental.status != RentalStatus::Active {
        return Err(model::illegal(rental.status, "track"));
    }
    state
        .db
        .write(move |tx| {
            let now = now_ts();
            rate_limit::hit(tx, &format!("rental-location:{id}"), 6, 60, now)?;
            tx.execute(
                "INSERT INTO rental_locations (rental_id, latitude, longitude, accuracy_m, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, p.latitude, p.longitude, p.accuracy_m, now],
            )?;
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(LocationRecorded { message: "location recorded".into() })))
}
