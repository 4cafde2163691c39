//! Operator endpoints for coupons: `/api/admin/coupons` (list, create),
//! `/api/admin/coupons/{code}` (read, change, delete) and
//! `/api/admin/coupons/{code}/usages`.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::coupons::{COUPON_COLUMNS, CouponOut, CouponRow, coupon_from_row, find_by_code};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        money::{NonNegativePaisa, Paisa, PositivePaisa},
        now_ts, ts_to_rfc3339,
    },
    state::AppState,
};

/// A new coupon. Exactly one of `percentage_bp` and `fixed_paisa`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponIn {
    /// 3 to 32 letters, digits, `-` or `_`; stored upper case, unique whatever the case.
    pub code: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Percentage discount in basis points, 1 to 10000 (1000 = 10 %).
    pub percentage_bp: Option<i64>,
    /// Fixed discount in paisa.
    pub fixed_paisa: Option<PositivePaisa>,
    /// Cap on a percentage discount, paisa.
    pub max_discount_paisa: Option<PositivePaisa>,
    /// Smallest amount the coupon applies to, paisa (default 0).
    pub min_amount_paisa: Option<NonNegativePaisa>,
    /// RFC 3339; now when absent.
    pub valid_from: Option<String>,
    /// RFC 3339.
    pub valid_until: String,
    /// Absent: unlimited.
    pub max_uses_total: Option<i64>,
    /// Absent: unlimited.
    pub max_uses_per_user: Option<i64>,
    /// Listed in `GET /api/promotions/coupons/active` (default true).
    pub is_public: Option<bool>,
    /// Default true.
    pub is_active: Option<bool>,
}

/// `null` in a PATCH clears a field; an absent field stays as it is.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Changes to a coupon; absent fields stay. Giving `percentage_bp` or
/// `fixed_paisa` switches the discount to that kind.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub percentage_bp: Option<i64>,
    pub fixed_paisa: Option<PositivePaisa>,
    /// `null` removes the cap.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<PositivePaisa>)]
    pub max_discount_paisa: Option<Option<PositivePaisa>>,
    pub min_amount_paisa: Option<NonNegativePaisa>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    /// `null`: unlimited.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub max_uses_total: Option<Option<i64>>,
    /// `null`: unlimited.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub max_uses_per_user: Option<Option<i64>>,
    pub is_public: Option<bool>,
    pub is_active: Option<bool>,
}

fn timestamp(field: &str, raw: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp())
        .map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 date-time, e.g. 2025-01-31T18:00:00+05:45"))
}

fn text(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let t = raw.trim();
    crate::core::text::check_user_text(field, t, true)?;
    if t.chars().count() > max {
        return Err(ApiError::invalid_field(field, format!("must be at most {max} characters")));
    }
    Ok(t.to_string())
}

fn coupon_code(raw: &str) -> Result<String, ApiError> {
    let code = raw.trim().to_uppercase();
    let ok =
        (3..=32).contains(&code.len()) && code.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if !ok {
        return Err(ApiError::invalid_field("code", "must be 3 to 32 letters, digits, '-' or '_'"));
    }
    Ok(code)
}

/// Checks a whole coupon (new, or an existing one with changes applied).
fn validate(c: &CouponRow) -> Result<(), ApiError> {
    match c.discount_type.as_str() {
        "percentage" if !(1..=10_000).contains(&c.discount_value) => {
            return Err(ApiError::invalid_field("percentage_bp", "must be 1 to 10000 basis points"));
        }
        "fixed" if c.discount_value <= 0 => {
            return Err(ApiError::invalid_field("fixed_paisa", "must be a positive number of paisa"));
        }
        _ => {}
    }
    if c.max_discount_paisa.is_some_and(|m| m <= 0) {
        return Err(ApiError::invalid_field("max_discount_paisa", "must be positive"));
    }
    if c.min_amount_paisa < 0 {
        return Err(ApiError::invalid_field("min_amount_paisa", "must not be negative"));
    }
    if c.valid_until <= c.valid_from {
        return Err(ApiError::invalid_field("valid_until", "must be after valid_from"));
    }
    if c.max_uses_total.is_some_and(|m| m <= 0) {
        return Err(ApiError::invalid_field("max_uses_total", "must be positive (omit for unlimited)"));
    }
    if c.max_uses_per_user.is_some_and(|m| m <= 0) {
        return Err(ApiError::invalid_field("max_uses_per_user", "must be positive (omit for unlimited)"));
    }
    Ok(())
}

/// (discount_type, discount_value) from the two exclusive fields.
fn discount(percentage_bp: Option<i64>, fixed_paisa: Option<i64>) -> Result<Option<(String, i64)>, ApiError> {
    match (percentage_bp, fixed_paisa) {
        (Some(_), Some(_)) => Err(ApiError::bad_request("give either percentage_bp or fixed_paisa, not both")),
        (Some(bp), None) => Ok(Some(("percentage".into(), bp))),
        (None, Some(paisa)) => Ok(Some(("fixed".into(), paisa))),
        (None, None) => Ok(None),
    }
}

fn times_used(c: &Connection, id: i64) -> Result<i64, ApiError> {
    Ok(c.query_row("SELECT COUNT(*) FROM coupon_usages WHERE coupon_id = ?1 AND released_at IS NULL", [id], |r| {
        r.get(0)
    })?)
}

fn load(c: &Connection, code: &str) -> Result<CouponRow, ApiError> {
    find_by_code(c, code)?.ok_or_else(|| ApiError::not_found("coupon"))
}

fn out(c: &Connection, row: CouponRow) -> Result<CouponOut, ApiError> {
    let used = times_used(c, row.id)?;
    Ok(CouponOut::new(row, used))
}

fn save(tx: &Transaction<'_>, c: &CouponRow) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE coupons SET name = ?2, description = ?3, discount_type = ?4, discount_value = ?5,
            max_discount_paisa = ?6, min_amount_paisa = ?7, valid_from = ?8, valid_until = ?9, max_uses_total = ?10,
            max_uses_per_user = ?11, is_public = ?12, is_active = ?13, updated_at = ?14
         WHERE id = ?1",
        params![
            c.id,
            c.name,
            c.description,
            c.discount_type,
            c.discount_value,
            c.max_discount_paisa,
            c.min_amount_paisa,
            c.valid_from,
            c.valid_until,
            c.max_uses_total,
            c.max_uses_per_user,
            c.is_public,
            c.is_active,
            c.updated_at
        ],
    )?;
    Ok(())
}

/// Creates a coupon.
#[utoipa::path(
    post, path = "/api/admin/coupons", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    request_body = CouponIn,
    responses(
        (status = 201, description = "Created", body = CouponOut),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 422, description = "`invalid_amount`: a money field outside its range", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 409, description = "The code exists (in any case)", body = ErrorBody),
    )
)]
pub async fn create_coupon(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<CouponIn>,
) -> Result<(StatusCode, Json<CouponOut>), ApiError> {
    let now = now_ts();
    let (discount_type, discount_value) = discount(body.percentage_bp, body.fixed_paisa.map(Paisa::get))?
        .ok_or_else(|| ApiError::invalid_field("percentage_bp", "give percentage_bp or fixed_paisa"))?;
    let row = CouponRow {
        id: 0,
        code: coupon_code(&body.code)?,
        name: text("name", body.name.as_deref().unwrap_or_default(), 100)?,
        description: text("description", body.description.as_deref().unwrap_or_default(), 500)?,
        discount_type,
        discount_value,
        max_discount_paisa: body.max_discount_paisa.map(Paisa::get),
        min_amount_paisa: body.min_amount_paisa.map_or(0, Paisa::get),
        valid_from: body.valid_from.as_deref().map(|v| timestamp("valid_from", v)).transpose()?.unwrap_or(now),
        valid_until: timestamp("valid_until", &body.valid_until)?,
        max_uses_total: body.max_uses_total,
        max_uses_per_user: body.max_uses_per_user,
        is_public: body.is_public.unwrap_or(true),
        is_active: body.is_active.unwrap_or(true),
        owner_user_id: None,
        created_at: now,
        updated_at: now,
    };
    validate(&row)?;
    let created = state
        .db
        .write(move |tx| {
            if find_by_code(tx, &row.code)?.is_some() {
                return Err(ApiError::conflict("duplicate_coupon", format!("coupon {} exists", row.code)));
            }
            tx.execute(
                "INSERT INTO coupons (code, name, description, discount_type, discount_value, max_discount_paisa,
                    min_amount_paisa, valid_from, valid_until, max_uses_total, max_uses_per_user, is_public,
                    is_active, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
                params![
                    row.code,
                    row.name,
                    row.description,
                    row.discount_type,
                    row.discount_value,
                    row.max_discount_paisa,
                    row.min_amount_paisa,
                    row.valid_from,
                    row.valid_until,
                    row.max_uses_total,
                    row.max_uses_per_user,
                    row.is_public,
                    row.is_active,
                    now
                ],
            )?;
            let created = out(tx, load(tx, &row.code)?)?;
            audit::record(tx, &operator, "coupon.create", Target::new("coupon", &row.code), &(), &created, None)?;
            Ok(created)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CouponFilter {
    /// Only active (`true`) or inactive (`false`) coupons.
    pub active: Option<bool>,
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Every coupon, newest first.
#[utoipa::path(
    get, path = "/api/admin/coupons", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance", "support"]))),
    params(CouponFilter),
    responses(
        (status = 200, description = "A page of coupons", body = Page<CouponOut>),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
    )
)]
pub async fn list_coupons(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<CouponFilter>,
) -> Result<Json<Page<CouponOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COUPON_COLUMNS},
                    (SELECT COUNT(*) FROM coupon_usages u WHERE u.coupon_id = coupons.id AND u.released_at IS NULL)
                 FROM coupons WHERE id < ?1 AND (?2 IS NULL OR is_active = ?2) ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(params![before, f.active, limit + 1], |r| {
                    Ok(CouponOut::new(coupon_from_row(r)?, r.get(16)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |c| c.id)))
}

/// One coupon.
#[utoipa::path(
    get, path = "/api/admin/coupons/{code}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance", "support"]))),
    params(("code" = String, Path, description = "Coupon code (any case)")),
    responses(
        (status = 200, description = "The coupon", body = CouponOut),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such coupon", body = ErrorBody),
    )
)]
pub async fn get_coupon(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<CouponOut>, ApiError> {
    Ok(Json(state.db.read(move |c| out(c, load(c, &code)?)).await?))
}

/// Changes a coupon. Redemptions already made stay.
#[utoipa::path(
    patch, path = "/api/admin/coupons/{code}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    params(("code" = String, Path, description = "Coupon code (any case)")),
    request_body = CouponPatch,
    responses(
        (status = 200, description = "The changed coupon", body = CouponOut),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 422, description = "`invalid_amount`: a money field outside its range", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such coupon", body = ErrorBody),
    )
)]
pub async fn update_coupon(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(code): ApiPath<String>,
    ApiJson(p): ApiJson<CouponPatch>,
) -> Result<Json<CouponOut>, ApiError> {
    let name = p.name.as_deref().map(|n| text("name", n, 100)).transpose()?;
    let description = p.description.as_deref().map(|d| text("description", d, 500)).transpose()?;
    let new_discount = discount(p.percentage_bp, p.fixed_paisa.map(Paisa::get))?;
    let valid_from = p.valid_from.as_deref().map(|v| timestamp("valid_from", v)).transpose()?;
    let valid_until = p.valid_until.as_deref().map(|v| timestamp("valid_until", v)).transpose()?;
    let changed = state
        .db
        .write(move |tx| {
            let mut c = load(tx, &code)?;
            let before = out(tx, load(tx, &code)?)?;
            if let Some(n) = name {
                c.name = n;
            }
            if let Some(d) = description {
                c.description = d;
            }
            if let Some((kind, value)) = new_discount {
                c.discount_type = kind;
                c.discount_value = value;
            }
            if let Some(m) = p.max_discount_paisa {
                c.max_discount_paisa = m.map(Paisa::get);
            }
            if let Some(m) = p.min_amount_paisa {
                c.min_amount_paisa = m.get();
            }
            c.valid_from = valid_from.unwrap_or(c.valid_from);
            c.valid_until = valid_until.unwrap_or(c.valid_until);
            if let Some(m) = p.max_uses_total {
                c.max_uses_total = m;
            }
            if let Some(m) = p.max_uses_per_user {
                c.max_uses_per_user = m;
            }
            c.is_public = p.is_public.unwrap_or(c.is_public);
            c.is_active = p.is_active.unwrap_or(c.is_active);
            c.updated_at = now_ts();
            validate(&c)?;
            save(tx, &c)?;
            let target = Target::new("coupon", &c.code);
            let after = out(tx, c)?;
            audit::record(tx, &operator, "coupon.update", target, &before, &after, None)?;
            Ok(after)
        })
        .await?;
    Ok(Json(changed))
}

/// Deletes a coupon nobody has redeemed. A redeemed coupon stays for the
/// record: deactivate it instead (`PATCH` with `is_active: false`).
#[utoipa::path(
    delete, path = "/api/admin/coupons/{code}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    params(("code" = String, Path, description = "Coupon code (any case)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such coupon", body = ErrorBody),
        (status = 409, description = "The coupon has been redeemed; deactivate it instead", body = ErrorBody),
    )
)]
pub async fn delete_coupon(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(code): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .db
        .write(move |tx| {
            let c = load(tx, &code)?;
            let ever_used: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM coupon_usages WHERE coupon_id = ?1)", [c.id], |r| r.get(0))?;
            let referenced: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM rentals WHERE coupon_id = ?1)
                     OR EXISTS (SELECT 1 FROM rental_orders WHERE coupon_id = ?1)",
                [c.id],
                |r| r.get(0),
            )?;
            if ever_used || referenced {
                return Err(ApiError::conflict(
                    "coupon_in_use",
                    "this coupon has been redeemed; deactivate it instead (is_active: false)",
                ));
            }
            let target = Target::new("coupon", &c.code);
            let before = out(tx, c)?;
            tx.execute("DELETE FROM coupons WHERE id = ?1", [before.id])?;
            audit::record(tx, &operator, "coupon.delete", target, &before, &(), None)?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One redemption of a coupon.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponUsageOut {
    pub id: i64,
    pub coupon_code: String,
    pub user_id: i64,
    pub rental_id: Option<i64>,
    /// The gateway rental order, when the rental was paid through a gateway.
    pub rental_order_id: Option<i64>,
    /// Price before the discount, paisa.
    pub amount_paisa: i64,
    pub discount_paisa: i64,
    /// `redeemed`, or `released` (the payment was given back; it does not count).
    pub status: String,
    pub created_at: String,
    pub released_at: Option<String>,
}

pub const USAGE_SELECT: &str = "SELECT u.id, c.code, u.user_id, u.rental_id, u.rental_order_id, u.amount_paisa,
        u.discount_paisa, u.created_at, u.released_at
    FROM coupon_usages u JOIN coupons c ON c.id = u.coupon_id";

pub fn usage_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CouponUsageOut> {
    let released: Option<i64> = r.get(8)?;
    Ok(CouponUsageOut {
        id: r.get(0)?,
        coupon_code: r.get(1)?,
        user_id: r.get(2)?,
        rental_id: r.get(3)?,
        rental_order_id: r.get(4)?,
        amount_paisa: r.get(5)?,
        discount_paisa: r.get(6)?,
        status: if released.is_some() { "released" } else { "redeemed" }.to_string(),
        created_at: ts_to_rfc3339(r.get(7)?),
        released_at: released.map(ts_to_rfc3339),
    })
}

/// A coupon's redemptions, newest first.
#[utoipa::path(
    get, path = "/api/admin/coupons/{code}/usages", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance", "support"]))),
    params(("code" = String, Path, description = "Coupon code (any case)"), PageParams),
    responses(
        (status = 200, description = "A page of redemptions", body = Page<CouponUsageOut>),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such coupon", body = ErrorBody),
    )
)]
pub async fn coupon_usages(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(code): ApiPath<String>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<CouponUsageOut>>, ApiError> {
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let id: i64 = c
                .query_row("SELECT id FROM coupons WHERE code = ?1", [code.trim()], |r| r.get(0))
                .optional()?
                .ok_or_else(|| ApiError::not_found("coupon"))?;
            let mut stmt = c.prepare_cached(&format!(
                "{USAGE_SELECT} WHERE u.coupon_id = ?1 AND u.id < ?2 ORDER BY u.id DESC LIMIT ?3"
            ))?;
            let rows =
                stmt.query_map(params![id, before, limit + 1], usage_from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |u| u.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_upper_cased_and_checked() {
        assert_eq!(coupon_code(" save-10 ").unwrap(), "SAVE-10");
        assert!(coupon_code("ab").is_err());
        assert!(coupon_code("has space").is_err());
        assert!(coupon_code("ÜBER10").is_err());
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let p: CouponPatch = serde_json::from_str(r#"{"max_uses_total": null}"#).unwrap();
        assert_eq!(p.max_uses_total, Some(None));
        assert_eq!(p.max_uses_per_user, None);
        let p: CouponPatch = serde_json::from_str(r#"{"max_uses_total": 5}"#).unwrap();
        assert_eq!(p.max_uses_total, Some(Some(5)));
    }

    #[test]
    fn exactly_one_kind_of_discount() {
        assert!(discount(Some(1), Some(1)).is_err());
        assert_eq!(discount(None, Some(500)).unwrap(), Some(("fixed".into(), 500)));
        assert_eq!(discount(None, None).unwrap(), None);
    }
}
