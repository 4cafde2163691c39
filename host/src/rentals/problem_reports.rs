//! Problems users report with a rental.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{self};
use crate::{
    core::{ApiError, ApiJson, ApiPath, AuthUser, error::ErrorBody, now_ts, rate_limit},
    state::AppState,
    stations::issues::IssueStatus,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RentalIssueRequest {
    /// `not_charging`, `damaged`, `lost`, `stuck_in_slot`, `billing` or `other`.
    pub issue_type: String,
    /// 10 to 1000 characters.
    pub description: String,
    /// Up to 5 URLs of images the caller uploaded with `POST /api/upload`.
    #[serde(default)]
    pub images: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RentalIssueOut {
    pub id: i64,
    pub rental_id: i64,
    pub issue_type: String,
    pub images: Vec<String>,
    pub status: IssueStatus,
}

/// At most this many images per report (the spec's limit).
pub const MAX_IMAGES: usize = 5;

/// Reports a problem with a rental.
#[utoipa::path(
    post, path = "/api/rentals/{id}/report-issue", tag = "rentals",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = RentalIssueRequest,
    responses(
        (status = 201, description = "Reported", body = RentalIssueOut),
        (status = 400, description = "Bad fields", body = ErrorBody),
        (status = 404, description = "No such rental of yours", body = ErrorBody),
        (status = 422, description = "An image that is not one of the caller's uploads (`upload_not_yours`)", body = ErrorBody),
        (status = 429, description = "Too many reports", body = ErrorBody),
    )
)]
pub async fn report_issue(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<RentalIssueRequest>,
) -> Result<(StatusCode, Json<RentalIssueOut>), ApiError> {
    const TYPES: &[&str] = &["not_charging", "damaged", "lost", "stuck_in_slot", "billing", "other"];
    if !TYPES.contains(&req.issue_type.as_str()) {
        return Err(ApiError::invalid_field("issue_type", format!("must be one of {}", TYPES.join(", "))));
    }
    let description = req.description.trim().to_string();
    if !(10..=1000).contains(&description.chars().count()) {
        return Err(ApiError::invalid_field("description", "must be 10 to 1000 characters"));
    }
    crate::core::text::check_user_text("description", &description, true)?;
    let images: Vec<String> = req.images.iter().map(|u| u.trim().to_string()).collect();
    if images.len() > MAX_IMAGES {
        return Err(ApiError::invalid_field("images", format!("at most {MAX_IMAGES} images")));
    }
    if images.iter().any(|u| u.is_empty() || u.len() > 500) {
        return Err(ApiError::invalid_field("images", "each image must be an upload URL"));
    }
    if images.iter().collect::<std::collections::BTreeSet<_>>().len() != images.len() {
        return Err(ApiError::invalid_field("images", "the same image is listed twice"));
    }
    let images_json = serde_json::to_string(&images).map_err(|e| ApiError::internal(e.to_string()))?;
    model::own_core(&state, user.id, id).await?;
    let out = state
        .db
        .write(move |tx| {
            let now = now_ts();
            rate_limit::hit(tx, &format!("rental-issue:{}", user.id), 10, 3600, now)?;
            crate::app_core::upload::check_own_images(tx, user.id, &images)?;
            tx.execute(
                "INSERT INTO rental_issues (rental_id, user_id, issue_type, description, images, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, user.id, req.issue_type, description, images_json, now],
            )?;
            Ok(RentalIssueOut {
                id: tx.last_insert_rowid(),
                rental_id: id,
                issue_type: req.issue_type,
                images,
                status: IssueStatus::Open,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}
