//! Rental packages (seed §5): the catalogue (`GET /api/packages`) and what a
//! package costs now, by the pricing plugin ([`quote`]). Rentals and the
//! coupon previews of promotions both price through here. Operators manage
//! the catalogue under `/api/admin/packages` ([`admin`]).

pub mod admin;

use axum::{Json, extract::State};
use powerbank_plugin_runtime::types::{CallContext, PackageInfo, Quote, QuoteRequest};
use rusqlite::OptionalExtension;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    core::{ApiError, money::format_npr, text_enum::text_enum},
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

text_enum! {
    /// When a package is paid (`rental_packages.payment_model`).
    pub enum PaymentModel {
        /// At the start, before the eject.
        Prepaid = "prepaid",
        /// At the return: the pricing plugin's price, from the wallet.
        Postpaid = "postpaid",
    }
}

/// How an active package is paid; 404 for an unknown or inactive one.
pub fn payment_model(c: &rusqlite::Connection, package_id: i64) -> Result<PaymentModel, ApiError> {
    c.query_row("SELECT payment_model FROM rental_packages WHERE id = ?1 AND is_active = 1", [package_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| ApiError::not_found("package"))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_packages))
        .routes(routes!(admin::list_packages, admin::create_package))
        .routes(routes!(admin::get_package, admin::update_package, admin::delete_package))
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

/// An active package and its price by the pricing plugin.
pub async fn quote(
    state: &AppState,
    user_id: i64,
    package_id: i64,
    station_sn: Option<String>,
) -> Result<(PackageInfo, Quote), ApiError> {
    let (package, quote) = quote_traced(state, user_id, package_id, station_sn).await?;
    Ok((package, quote.value))
}

/// [`quote`], with the pricing build that decided it (a canary's for the
/// riders in its share), to store beside the price.
pub async fn quote_traced(
    state: &AppState,
    user_id: i64,
    package_id: i64,
    station_sn: Option<String>,
) -> Result<(PackageInfo, powerbank_plugin_runtime::Decided<Quote>), ApiError> {
    let package = state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT id, code, price_paisa, duration_minutes FROM rental_packages WHERE id = ?1 AND is_active = 1",
                [package_id],
                |r| {
                    Ok(PackageInfo {
                        id: r.get::<_, i64>(0)?.to_string(),
                        code: r.get(1)?,
                        price_paisa: r.get(2)?,
                        duration_minutes: r.get(3)?,
                    })
                },
            )
            .optional()?)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("package"))?;
    let context = CallContext {
        user_id: Some(user_id.to_string()),
        station_sn,
        now_unix_ms: chrono::Utc::now().timestamp_millis(),
    };
    let request = QuoteRequest { package: package.clone(), requested_minutes: None, context };
    let quote = state.plugins.pricing().quote_traced(request).await?;
    Ok((package, quote))
}
