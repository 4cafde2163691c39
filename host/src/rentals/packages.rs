//! `GET /api/packages`: the rental packages on offer.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    core::{ApiError, money::format_npr},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct RentalPackage {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub description: String,
    pub duration_minutes: i64,
    /// Integer paisa (1 NPR = 100 paisa).
    pub price_paisa: i64,
    /// The same price for display, e.g. `"50.00"`.
    pub price_npr: String,
    /// `prepaid` or `postpaid`.
    pub payment_model: String,
}

/// Active rental packages, shortest first.
#[utoipa::path(
    get, path = "/api/packages", tag = "payments",
    responses((status = 200, description = "Packages", body = Vec<RentalPackage>))
)]
pub async fn list_packages(State(state): State<AppState>) -> Result<Json<Vec<RentalPackage>>, ApiError> {
    let list = state
        .db
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, code, name, description, duration_minutes, price_paisa, payment_model
                 FROM rental_packages WHERE is_active = 1 ORDER BY duration_minutes, id",
            )?;
            let rows = stmt.query_map([], |r| {
                let price: i64 = r.get(5)?;
                Ok(RentalPackage {
                    id: r.get(0)?,
                    code: r.get(1)?,
                    name: r.get(2)?,
                    description: r.get(3)?,
                    duration_minutes: r.get(4)?,
                    price_paisa: price,
                    price_npr: format_npr(price),
                    payment_model: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(list))
}
