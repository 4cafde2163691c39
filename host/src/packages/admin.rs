//! The operators' package catalogue: list (inactive ones too), create,
//! change, delete. A package any rental or rental order refers to is never
//! deleted (the rental's record needs it): deleting it deactivates it, and
//! the answer says which happened. Prices and durations changed here apply
//! to rentals started afterwards; a rental keeps what it was sold at.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::PaymentModel;
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        money::{NonNegativePaisa, format_npr},
        now_ts,
        text::check_user_text,
        text_enum::text_enum,
        ts_to_rfc3339,
    },
    state::AppState,
};

/// The longest package: a week.
const MAX_DURATION_MINUTES: i64 = 7 * 24 * 60;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminPackage {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub description: String,
    pub duration_minutes: i64,
    pub price_paisa: i64,
    pub price_npr: String,
    pub payment_model: PaymentModel,
    /// Offered to riders (`GET /api/packages`).
    pub is_active: bool,
    /// Rentals and rental orders that refer to it: it can only be deactivated.
    pub rentals: i64,
    pub created_at: String,
}

const PACKAGE_SELECT: &str = "SELECT p.id, p.code, p.name, p.description, p.duration_minutes, p.price_paisa,
        p.payment_model, p.is_active, p.created_at,
        (SELECT COUNT(*) FROM rentals r WHERE r.package_id = p.id)
          + (SELECT COUNT(*) FROM rental_orders o WHERE o.package_id = p.id) AS rentals
    FROM rental_packages p";

fn package_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminPackage> {
    let price: i64 = r.get("price_paisa")?;
    Ok(AdminPackage {
        id: r.get("id")?,
        code: r.get("code")?,
        name: r.get("name")?,
        description: r.get("description")?,
        duration_minutes: r.get("duration_minutes")?,
        price_paisa: price,
        price_npr: format_npr(price),
        payment_model: r.get("payment_model")?,
        is_active: r.get("is_active")?,
        rentals: r.get("rentals")?,
        created_at: ts_to_rfc3339(r.get("created_at")?),
    })
}

fn load(c: &Connection, id: i64) -> Result<AdminPackage, ApiError> {
    c.query_row(&format!("{PACKAGE_SELECT} WHERE p.id = ?1"), [id], package_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("package"))
}

fn text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let t = raw.trim();
    let n = t.chars().count();
    if n < min || n > max {
        return Err(ApiError::invalid_field(field, format!("must be {min} to {max} characters")));
    }
    check_user_text(field, t, true)?;
    Ok(t.to_string())
}

fn duration(minutes: i64) -> Result<i64, ApiError> {
    if (1..=MAX_DURATION_MINUTES).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(ApiError::invalid_field("duration_minutes", format!("must be 1 to {MAX_DURATION_MINUTES}")))
    }
}

fn package_code(raw: &str) -> Result<String, ApiError> {
    let code = raw.trim().to_ascii_uppercase();
    let ok =
        (2..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(code) } else { Err(ApiError::invalid_field("code", "2 to 32 characters: A-Z, 0-9, _ and -")) }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageIn {
    /// 2 to 32 characters (A-Z, 0-9, `_`, `-`), unique; stored upper case.
    pub code: String,
    /// 2 to 100 characters.
    pub name: String,
    /// Up to 500 characters.
    pub description: Option<String>,
    /// 1 to 10080 (a week).
    pub duration_minutes: i64,
    pub price_paisa: NonNegativePaisa,
    /// `prepaid` (default) or `postpaid`.
    pub payment_model: Option<PaymentModel>,
    /// Default true.
    pub is_active: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackagePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub duration_minutes: Option<i64>,
    pub price_paisa: Option<NonNegativePaisa>,
    pub payment_model: Option<PaymentModel>,
    pub is_active: Option<bool>,
}

/// Every package, inactive ones too, newest first.
#[utoipa::path(
    get, path = "/api/admin/packages", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(PageParams),
    responses(
        (status = 200, description = "A page of packages", body = Page<AdminPackage>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    )
)]
pub async fn list_packages(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<AdminPackage>>, ApiError> {
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("{PACKAGE_SELECT} WHERE p.id < ?1 ORDER BY p.id DESC LIMIT ?2"))?;
            let rows = stmt.query_map(params![before, limit + 1], package_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |p| p.id)))
}

/// One package.
#[utoipa::path(
    get, path = "/api/admin/packages/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path, description = "Package id")),
    responses(
        (status = 200, description = "The package", body = AdminPackage),
        (status = 404, description = "No such package", body = ErrorBody),
    )
)]
pub async fn get_package(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AdminPackage>, ApiError> {
    Ok(Json(state.db.read(move |c| load(c, id)).await?))
}

/// Adds a package to the catalogue.
#[utoipa::path(
    post, path = "/api/admin/packages", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = PackageIn,
    responses(
        (status = 201, description = "The package", body = AdminPackage),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = ErrorBody),
        (status = 409, description = "The code exists (`duplicate_code`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "`invalid_amount`: the price outside its range", body = ErrorBody),
    )
)]
pub async fn create_package(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(b): ApiJson<PackageIn>,
) -> Result<(StatusCode, Json<AdminPackage>), ApiError> {
    let code = package_code(&b.code)?;
    let name = text("name", &b.name, 2, 100)?;
    let description = text("description", b.description.as_deref().unwrap_or(""), 0, 500)?;
    let minutes = duration(b.duration_minutes)?;
    let model = b.payment_model.unwrap_or(PaymentModel::Prepaid);
    let active = b.is_active.unwrap_or(true);
    let price = b.price_paisa.get();
    let out = state
        .db
        .write(move |tx| {
            let taken: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM rental_packages WHERE code = ?1)", [&code], |r| r.get(0))?;
            if taken {
                return Err(ApiError::conflict("duplicate_code", "a package with this code exists"));
            }
            tx.execute(
                "INSERT INTO rental_packages (code, name, description, duration_minutes, price_paisa, payment_model,
                                              is_active, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![code, name, description, minutes, price, model, active, now_ts()],
            )?;
            let out = load(tx, tx.last_insert_rowid())?;
            audit::record(tx, &operator, "package.create", Target::new("package", out.id), &(), &out, None)?;
            Ok(out)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Changes a package; absent fields stay. Rentals already sold keep their
/// price and duration.
#[utoipa::path(
    patch, path = "/api/admin/packages/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Package id")),
    request_body = PackagePatch,
    responses(
        (status = 200, description = "The changed package", body = AdminPackage),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = ErrorBody),
        (status = 404, description = "No such package", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "`invalid_amount`: the price outside its range", body = ErrorBody),
    )
)]
pub async fn update_package(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(p): ApiJson<PackagePatch>,
) -> Result<Json<AdminPackage>, ApiError> {
    let name = p.name.as_deref().map(|n| text("name", n, 2, 100)).transpose()?;
    let description = p.description.as_deref().map(|d| text("description", d, 0, 500)).transpose()?;
    let minutes = p.duration_minutes.map(duration).transpose()?;
    let price = p.price_paisa.map(NonNegativePaisa::get);
    let out = state
        .db
        .write(move |tx| {
            let before = load(tx, id)?;
            tx.execute(
                "UPDATE rental_packages SET name = COALESCE(?2, name), description = COALESCE(?3, description),
                    duration_minutes = COALESCE(?4, duration_minutes), price_paisa = COALESCE(?5, price_paisa),
                    payment_model = COALESCE(?6, payment_model), is_active = COALESCE(?7, is_active)
                 WHERE id = ?1",
                params![id, name, description, minutes, price, p.payment_model, p.is_active],
            )?;
            let after = load(tx, id)?;
            audit::record(tx, &operator, "package.update", Target::new("package", id), &before, &after, None)?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

text_enum! {
    /// What deleting a package did.
    pub enum DeleteOutcome {
        /// Nothing referred to it: it is gone.
        Deleted = "deleted",
        /// Rentals refer to it: it stays for their record, no longer offered.
        Deactivated = "deactivated",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PackageDeleted {
    pub outcome: DeleteOutcome,
    /// The package as it is now (`null` once deleted).
    pub package: Option<AdminPackage>,
}

/// Deletes a package nothing refers to; a package rentals refer to is
/// deactivated instead (`outcome: deactivated`).
#[utoipa::path(
    delete, path = "/api/admin/packages/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Package id")),
    responses(
        (status = 200, description = "Deleted, or deactivated because rentals refer to it", body = PackageDeleted),
        (status = 404, description = "No such package", body = ErrorBody),
        (status = 409, description = "In use and already inactive (`package_inactive`)", body = ErrorBody),
    )
)]
pub async fn delete_package(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<PackageDeleted>, ApiError> {
    let out = state
        .db
        .write(move |tx| {
            let before = load(tx, id)?;
            if before.rentals == 0 {
                tx.execute("DELETE FROM rental_packages WHERE id = ?1", [id])?;
                audit::record(tx, &operator, "package.delete", Target::new("package", id), &before, &(), None)?;
                return Ok(PackageDeleted { outcome: DeleteOutcome::Deleted, package: None });
            }
            if !before.is_active {
                return Err(ApiError::conflict(
                    "package_inactive",
                    "rentals refer to this package and it is already inactive",
                )
                .with_details(serde_json::json!({ "rentals": before.rentals })));
            }
            tx.execute("UPDATE rental_packages SET is_active = 0 WHERE id = ?1", [id])?;
            let after = load(tx, id)?;
            audit::record(tx, &operator, "package.deactivate", Target::new("package", id), &before, &after, None)?;
            Ok(PackageDeleted { outcome: DeleteOutcome::Deactivated, package: Some(after) })
        })
        .await?;
    Ok(Json(out))
}
