//! The operators' side of the app catalogue: banners (with their validity
//! window and order), app versions (what `GET /api/app/version` and
//! `GET /api/app/updates` answer) and countries (the dial codes of phone
//! entry). Every change is audited in its own transaction; the version cache
//! follows the `app_versions` table by itself (`versions::VersionCache`), and
//! is dropped explicitly too after each change here.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::versions::parse_version;
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        now_ts,
        text::check_user_text,
        ts_to_rfc3339,
    },
    state::AppState,
};

/// `null` in a PATCH clears a field; an absent field stays as it is.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn text(field: &str, raw: &str, min: usize, max: usize, multiline: bool) -> Result<String, ApiError> {
    let t = raw.trim();
    let n = t.chars().count();
    if n < min || n > max {
        return Err(ApiError::invalid_field(field, format!("must be {min} to {max} characters")));
    }
    check_user_text(field, t, multiline)?;
    Ok(t.to_string())
}

fn http_url(field: &str, raw: &str) -> Result<String, ApiError> {
    let url = raw.trim();
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && url.len() <= 500
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(ApiError::invalid_field(field, "must be an http(s) URL up to 500 characters"));
    }
    Ok(url.to_string())
}

fn timestamp(field: &str, raw: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp())
        .map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 date-time, e.g. 2025-01-31T18:00:00+05:45"))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

// ---------------------------------------------------------------- banners

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminBanner {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub image_url: String,
    pub link_url: Option<String>,
    /// Lower first.
    pub display_order: i64,
    pub is_active: bool,
    pub valid_from: String,
    pub valid_until: String,
    /// Whether the app shows it now: active and inside its window.
    pub live: bool,
    pub created_at: String,
}

const BANNER_SELECT: &str = "SELECT id, title, description, image_url, link_url, display_order, is_active,
        valid_from, valid_until, created_at FROM banners";

fn banner_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminBanner> {
    let (from, until, active): (i64, i64, bool) = (r.get("valid_from")?, r.get("valid_until")?, r.get("is_active")?);
    let now = now_ts();
    Ok(AdminBanner {
        id: r.get("id")?,
        title: r.get("title")?,
        description: r.get("description")?,
        image_url: r.get("image_url")?,
        link_url: r.get("link_url")?,
        display_order: r.get("display_order")?,
        is_active: active,
        valid_from: ts_to_rfc3339(from),
        valid_until: ts_to_rfc3339(until),
        live: active && from <= now && now < until,
        created_at: ts_to_rfc3339(r.get("created_at")?),
    })
}

fn load_banner(c: &Connection, id: i64) -> Result<AdminBanner, ApiError> {
    c.query_row(&format!("{BANNER_SELECT} WHERE id = ?1"), [id], banner_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("banner"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BannerIn {
    /// 2 to 100 characters.
    pub title: String,
    /// Up to 500 characters.
    pub description: Option<String>,
    pub image_url: String,
    pub link_url: Option<String>,
    /// Lower first (default 0), -1000 to 1000.
    pub display_order: Option<i64>,
    /// Default true.
    pub is_active: Option<bool>,
    /// RFC 3339; default now.
    pub valid_from: Option<String>,
    /// RFC 3339, after `valid_from`.
    pub valid_until: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BannerPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    /// `null` removes the link.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub link_url: Option<Option<String>>,
    pub display_order: Option<i64>,
    pub is_active: Option<bool>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
}

fn display_order(v: i64) -> Result<i64, ApiError> {
    if (-1000..=1000).contains(&v) { Ok(v) } else { Err(ApiError::invalid_field("display_order", "-1000 to 1000")) }
}

fn window(from: i64, until: i64) -> Result<(), ApiError> {
    if until <= from {
        return Err(ApiError::invalid_field("valid_until", "must be after valid_from"));
    }
    Ok(())
}

/// Every banner (live, scheduled, expired, inactive), newest first.
#[utoipa::path(
    get, path = "/api/admin/banners", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(PageParams),
    responses(
        (status = 200, description = "A page of banners", body = Page<AdminBanner>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    )
)]
pub async fn list_banners(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<AdminBanner>>, ApiError> {
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!("{BANNER_SELECT} WHERE id < ?1 ORDER BY id DESC LIMIT ?2"))?;
            let rows = stmt.query_map(params![before, limit + 1], banner_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |b| b.id)))
}

/// One banner.
#[utoipa::path(
    get, path = "/api/admin/banners/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path, description = "Banner id")),
    responses(
        (status = 200, description = "The banner", body = AdminBanner),
        (status = 404, description = "No such banner", body = ErrorBody),
    )
)]
pub async fn get_banner(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AdminBanner>, ApiError> {
    Ok(Json(state.db.read(move |c| load_banner(c, id)).await?))
}

/// Adds a banner; the app shows it while it is active and inside its window.
#[utoipa::path(
    post, path = "/api/admin/banners", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = BannerIn,
    responses(
        (status = 201, description = "The banner", body = AdminBanner),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn create_banner(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(b): ApiJson<BannerIn>,
) -> Result<(StatusCode, Json<AdminBanner>), ApiError> {
    let title = text("title", &b.title, 2, 100, false)?;
    let description = text("description", b.description.as_deref().unwrap_or(""), 0, 500, true)?;
    let image_url = http_url("image_url", &b.image_url)?;
    let link_url = b.link_url.as_deref().map(|u| http_url("link_url", u)).transpose()?;
    let order = display_order(b.display_order.unwrap_or(0))?;
    let now = now_ts();
    let from = b.valid_from.as_deref().map(|v| timestamp("valid_from", v)).transpose()?.unwrap_or(now);
    let until = timestamp("valid_until", &b.valid_until)?;
    window(from, until)?;
    let active = b.is_active.unwrap_or(true);
    let out = state
        .db
        .write(move |tx| {
            tx.execute(
                "INSERT INTO banners (title, description, image_url, link_url, display_order, is_active,
                                      valid_from, valid_until, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![title, description, image_url, link_url, order, active, from, until, now],
            )?;
            let out = load_banner(tx, tx.last_insert_rowid())?;
            audit::record(tx, &operator, "banner.create", Target::new("banner", out.id), &(), &out, None)?;
            Ok(out)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Changes a banner; absent fields stay.
#[utoipa::path(
    patch, path = "/api/admin/banners/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Banner id")),
    request_body = BannerPatch,
    responses(
        (status = 200, description = "The changed banner", body = AdminBanner),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = ErrorBody),
        (status = 404, description = "No such banner", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn update_banner(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(p): ApiJson<BannerPatch>,
) -> Result<Json<AdminBanner>, ApiError> {
    let title = p.title.as_deref().map(|t| text("title", t, 2, 100, false)).transpose()?;
    let description = p.description.as_deref().map(|d| text("description", d, 0, 500, true)).transpose()?;
    let image_url = p.image_url.as_deref().map(|u| http_url("image_url", u)).transpose()?;
    let link_url = p.link_url.map(|l| l.as_deref().map(|u| http_url("link_url", u)).transpose()).transpose()?;
    let order = p.display_order.map(display_order).transpose()?;
    let from = p.valid_from.as_deref().map(|v| timestamp("valid_from", v)).transpose()?;
    let until = p.valid_until.as_deref().map(|v| timestamp("valid_until", v)).transpose()?;
    let out = state
        .db
        .write(move |tx| {
            let before = load_banner(tx, id)?;
            let (old_from, old_until): (i64, i64) =
                tx.query_row("SELECT valid_from, valid_until FROM banners WHERE id = ?1", [id], |r| {
                    Ok((r.get("valid_from")?, r.get("valid_until")?))
                })?;
            let (from, until) = (from.unwrap_or(old_from), until.unwrap_or(old_until));
            window(from, until)?;
            tx.execute(
                "UPDATE banners SET title = COALESCE(?2, title), description = COALESCE(?3, description),
                    image_url = COALESCE(?4, image_url), link_url = CASE WHEN ?5 THEN ?6 ELSE link_url END,
                    display_order = COALESCE(?7, display_order), is_active = COALESCE(?8, is_active),
                    valid_from = ?9, valid_until = ?10
                 WHERE id = ?1",
                params![
                    id,
                    title,
                    description,
                    image_url,
                    link_url.is_some(),
                    link_url.flatten(),
                    order,
                    p.is_active,
                    from,
                    until
                ],
            )?;
            let after = load_banner(tx, id)?;
            audit::record(tx, &operator, "banner.update", Target::new("banner", id), &before, &after, None)?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

/// Deletes a banner (nothing refers to banners).
#[utoipa::path(
    delete, path = "/api/admin/banners/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Banner id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such banner", body = ErrorBody),
    )
)]
pub async fn delete_banner(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .db
        .write(move |tx| {
            let before = load_banner(tx, id)?;
            tx.execute("DELETE FROM banners WHERE id = ?1", [id])?;
            audit::record(tx, &operator, "banner.delete", Target::new("banner", id), &before, &(), None)?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----------------------------------------------------------- app versions

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminAppVersion {
    pub id: i64,
    /// `android` or `ios`.
    pub platform: String,
    pub version: String,
    pub min_supported_version: String,
    pub download_url: String,
    pub is_mandatory: bool,
    pub release_notes: String,
    /// A version dated in the future is published at that time.
    pub released_at: String,
}

const VERSION_SELECT: &str = "SELECT id, platform, version, min_supported_version, download_url, is_mandatory,
        release_notes, released_at FROM app_versions";

fn version_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminAppVersion> {
    Ok(AdminAppVersion {
        id: r.get("id")?,
        platform: r.get("platform")?,
        version: r.get("version")?,
        min_supported_version: r.get("min_supported_version")?,
        download_url: r.get("download_url")?,
        is_mandatory: r.get("is_mandatory")?,
        release_notes: r.get("release_notes")?,
        released_at: ts_to_rfc3339(r.get("released_at")?),
    })
}

fn load_version(c: &Connection, id: i64) -> Result<AdminAppVersion, ApiError> {
    c.query_row(&format!("{VERSION_SELECT} WHERE id = ?1"), [id], version_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("app version"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppVersionIn {
    /// `android` or `ios`.
    pub platform: String,
    /// e.g. `1.5.0`.
    pub version: String,
    /// Older apps must update; at most `version`.
    pub min_supported_version: String,
    pub download_url: String,
    /// Every older app must update (default false).
    pub is_mandatory: Option<bool>,
    /// Up to 5000 characters.
    pub release_notes: Option<String>,
    /// RFC 3339; default now. A future time publishes it then.
    pub released_at: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppVersionPatch {
    pub min_supported_version: Option<String>,
    pub download_url: Option<String>,
    pub is_mandatory: Option<bool>,
    pub release_notes: Option<String>,
    pub released_at: Option<String>,
}

fn platform(raw: &str) -> Result<String, ApiError> {
    let p = raw.trim().to_ascii_lowercase();
    if p == "android" || p == "ios" {
        Ok(p)
    } else {
        Err(ApiError::invalid_field("platform", "must be android or ios"))
    }
}

fn version_text(field: &str, raw: &str) -> Result<(String, Vec<u64>), ApiError> {
    let v = raw.trim().trim_start_matches('v').to_string();
    let parsed = parse_version(&v).ok_or_else(|| ApiError::invalid_field(field, "must look like 1.2.3"))?;
    Ok((v, parsed))
}

fn not_newer(min: &[u64], version: &[u64]) -> Result<(), ApiError> {
    let n = min.len().max(version.len());
    let pad = |v: &[u64]| (0..n).map(|i| v.get(i).copied().unwrap_or(0)).collect::<Vec<_>>();
    if pad(min) > pad(version) {
        return Err(ApiError::invalid_field("min_supported_version", "may not be newer than version"));
    }
    Ok(())
}

/// Every published and scheduled app version, newest first.
#[utoipa::path(
    get, path = "/api/admin/app-versions", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(PageParams),
    responses(
        (status = 200, description = "A page of app versions", body = Page<AdminAppVersion>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    )
)]
pub async fn list_versions(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<AdminAppVersion>>, ApiError> {
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!("{VERSION_SELECT} WHERE id < ?1 ORDER BY id DESC LIMIT ?2"))?;
            let rows = stmt.query_map(params![before, limit + 1], version_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |v| v.id)))
}

/// Publishes an app version: `GET /api/app/version` and `/api/app/updates`
/// answer with it at once (or at `released_at`).
#[utoipa::path(
    post, path = "/api/admin/app-versions", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = AppVersionIn,
    responses(
        (status = 201, description = "The version", body = AdminAppVersion),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = ErrorBody),
        (status = 409, description = "This platform already has this version (`duplicate_version`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn create_version(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(b): ApiJson<AppVersionIn>,
) -> Result<(StatusCode, Json<AdminAppVersion>), ApiError> {
    let platform = platform(&b.platform)?;
    let (version, parsed) = version_text("version", &b.version)?;
    let (min, min_parsed) = version_text("min_supported_version", &b.min_supported_version)?;
    not_newer(&min_parsed, &parsed)?;
    let url = http_url("download_url", &b.download_url)?;
    let notes = text("release_notes", b.release_notes.as_deref().unwrap_or(""), 0, 5000, true)?;
    let released = b.released_at.as_deref().map(|v| timestamp("released_at", v)).transpose()?.unwrap_or_else(now_ts);
    let mandatory = b.is_mandatory.unwrap_or(false);
    let out = state
        .db
        .write(move |tx| {
            tx.execute(
                "INSERT INTO app_versions (platform, version, min_supported_version, download_url, is_mandatory,
                                           release_notes, released_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![platform, version, min, url, mandatory, notes, released],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    ApiError::conflict("duplicate_version", "this platform already has this version")
                } else {
                    e.into()
                }
            })?;
            let out = load_version(tx, tx.last_insert_rowid())?;
            audit::record(tx, &operator, "app_version.create", Target::new("app_version", out.id), &(), &out, None)?;
            Ok(out)
        })
        .await?;
    state.app_versions.invalidate();
    Ok((StatusCode::CREATED, Json(out)))
}

/// Changes an app version (its platform and number stay: publish another).
#[utoipa::path(
    patch, path = "/api/admin/app-versions/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "App version id")),
    request_body = AppVersionPatch,
    responses(
        (status = 200, description = "The changed version", body = AdminAppVersion),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn update_version(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(p): ApiJson<AppVersionPatch>,
) -> Result<Json<AdminAppVersion>, ApiError> {
    let min = p.min_supported_version.as_deref().map(|m| version_text("min_supported_version", m)).transpose()?;
    let url = p.download_url.as_deref().map(|u| http_url("download_url", u)).transpose()?;
    let notes = p.release_notes.as_deref().map(|n| text("release_notes", n, 0, 5000, true)).transpose()?;
    let released = p.released_at.as_deref().map(|v| timestamp("released_at", v)).transpose()?;
    let out = state
        .db
        .write(move |tx| {
            let before = load_version(tx, id)?;
            if let Some((_, min_parsed)) = &min {
                not_newer(min_parsed, &parse_version(&before.version).unwrap_or_default())?;
            }
            tx.execute(
                "UPDATE app_versions SET min_supported_version = COALESCE(?2, min_supported_version),
                    download_url = COALESCE(?3, download_url), is_mandatory = COALESCE(?4, is_mandatory),
                    release_notes = COALESCE(?5, release_notes), released_at = COALESCE(?6, released_at)
                 WHERE id = ?1",
                params![id, min.map(|m| m.0), url, p.is_mandatory, notes, released],
            )?;
            let after = load_version(tx, id)?;
            audit::record(tx, &operator, "app_version.update", Target::new("app_version", id), &before, &after, None)?;
            Ok(after)
        })
        .await?;
    state.app_versions.invalidate();
    Ok(Json(out))
}

/// Withdraws an app version: the apps see the one before it at once.
#[utoipa::path(
    delete, path = "/api/admin/app-versions/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "App version id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such version", body = ErrorBody),
    )
)]
pub async fn delete_version(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .db
        .write(move |tx| {
            let before = load_version(tx, id)?;
            tx.execute("DELETE FROM app_versions WHERE id = ?1", [id])?;
            audit::record(tx, &operator, "app_version.delete", Target::new("app_version", id), &before, &(), None)?;
            Ok(())
        })
        .await?;
    state.app_versions.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

// -------------------------------------------------------------- countries

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminCountry {
    pub id: i64,
    pub name: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub code: String,
    /// e.g. `+977`.
    pub dial_code: String,
    pub flag_url: Option<String>,
    pub is_active: bool,
}

const COUNTRY_SELECT: &str = "SELECT id, name, code, dial_code, flag_url, is_active FROM countries";

fn country_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminCountry> {
    Ok(AdminCountry {
        id: r.get("id")?,
        name: r.get("name")?,
        code: r.get("code")?,
        dial_code: r.get("dial_code")?,
        flag_url: r.get("flag_url")?,
        is_active: r.get("is_active")?,
    })
}

fn load_country(c: &Connection, code: &str) -> Result<AdminCountry, ApiError> {
    c.query_row(&format!("{COUNTRY_SELECT} WHERE code = ?1"), [code.trim().to_ascii_uppercase()], country_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("country"))
}

fn country_code(raw: &str) -> Result<String, ApiError> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(ApiError::invalid_field("code", "must be an ISO 3166-1 alpha-2 code, e.g. NP"))
    }
}

fn dial_code(raw: &str) -> Result<String, ApiError> {
    let d = raw.trim();
    let digits = d.strip_prefix('+').unwrap_or("");
    if (1..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(d.to_string())
    } else {
        Err(ApiError::invalid_field("dial_code", "must be + and 1 to 4 digits, e.g. +977"))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountryIn {
    pub name: String,
    /// ISO 3166-1 alpha-2 (`NP`).
    pub code: String,
    /// `+977`.
    pub dial_code: String,
    pub flag_url: Option<String>,
    /// Default true.
    pub is_active: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountryPatch {
    pub name: Option<String>,
    pub dial_code: Option<String>,
    /// `null` removes the flag.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub flag_url: Option<Option<String>>,
}

/// Every country, active or not, newest first.
#[utoipa::path(
    get, path = "/api/admin/countries", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(PageParams),
    responses(
        (status = 200, description = "A page of countries (newest first)", body = Page<AdminCountry>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    )
)]
pub async fn list_countries(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<AdminCountry>>, ApiError> {
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!("{COUNTRY_SELECT} WHERE id < ?1 ORDER BY id DESC LIMIT ?2"))?;
            let rows = stmt.query_map(params![before, limit + 1], country_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |c| c.id)))
}

/// Adds a country to phone entry.
#[utoipa::path(
    post, path = "/api/admin/countries", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = CountryIn,
    responses(
        (status = 201, description = "The country", body = AdminCountry),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = ErrorBody),
        (status = 409, description = "The code exists (`duplicate_code`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn create_country(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(b): ApiJson<CountryIn>,
) -> Result<(StatusCode, Json<AdminCountry>), ApiError> {
    let name = text("name", &b.name, 2, 100, false)?;
    let code = country_code(&b.code)?;
    let dial = dial_code(&b.dial_code)?;
    let flag = b.flag_url.as_deref().map(|u| http_url("flag_url", u)).transpose()?;
    let active = b.is_active.unwrap_or(true);
    let out = state
        .db
        .write(move |tx| {
            tx.execute(
                "INSERT INTO countries (name, code, dial_code, flag_url, is_active) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, code, dial, flag, active],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    ApiError::conflict("duplicate_code", "a country with this code exists")
                } else {
                    e.into()
                }
            })?;
            let out = load_country(tx, &code)?;
            audit::record(tx, &operator, "country.create", Target::new("country", &out.code), &(), &out, None)?;
            Ok(out)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Changes a country's name, dial code or flag.
#[utoipa::path(
    patch, path = "/api/admin/countries/{code}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("code" = String, Path, description = "ISO 3166-1 alpha-2 code (any case)")),
    request_body = CountryPatch,
    responses(
        (status = 200, description = "The changed country", body = AdminCountry),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = ErrorBody),
        (status = 404, description = "No such country", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn update_country(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(code): ApiPath<String>,
    ApiJson(p): ApiJson<CountryPatch>,
) -> Result<Json<AdminCountry>, ApiError> {
    let name = p.name.as_deref().map(|n| text("name", n, 2, 100, false)).transpose()?;
    let dial = p.dial_code.as_deref().map(dial_code).transpose()?;
    let flag = p.flag_url.map(|f| f.as_deref().map(|u| http_url("flag_url", u)).transpose()).transpose()?;
    let out = state
        .db
        .write(move |tx| {
            let before = load_country(tx, &code)?;
            tx.execute(
                "UPDATE countries SET name = COALESCE(?2, name), dial_code = COALESCE(?3, dial_code),
                    flag_url = CASE WHEN ?4 THEN ?5 ELSE flag_url END
                 WHERE id = ?1",
                params![before.id, name, dial, flag.is_some(), flag.flatten()],
            )?;
            let after = load_country(tx, &before.code)?;
            audit::record(tx, &operator, "country.update", Target::new("country", &after.code), &before, &after, None)?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

async fn set_country_active(
    state: &AppState,
    operator: Operator,
    code: String,
    active: bool,
) -> Result<Json<AdminCountry>, ApiError> {
    let out = state
        .db
        .write(move |tx| {
            let before = load_country(tx, &code)?;
            match (before.is_active, active) {
                (true, true) => return Err(ApiError::conflict("country_active", "the country is already active")),
                (false, false) => {
                    return Err(ApiError::conflict("country_inactive", "the country is already inactive"));
                }
                _ => {}
            }
            tx.execute("UPDATE countries SET is_active = ?2 WHERE id = ?1", params![before.id, active])?;
            let after = load_country(tx, &before.code)?;
            let action = if active { "country.activate" } else { "country.deactivate" };
            audit::record(tx, &operator, action, Target::new("country", &after.code), &before, &after, None)?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

/// Offers a country in phone entry again.
#[utoipa::path(
    post, path = "/api/admin/countries/{code}/activate", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("code" = String, Path, description = "ISO 3166-1 alpha-2 code (any case)")),
    responses(
        (status = 200, description = "The country, active", body = AdminCountry),
        (status = 404, description = "No such country", body = ErrorBody),
        (status = 409, description = "Already active (`country_active`)", body = ErrorBody),
    )
)]
pub async fn activate_country(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<AdminCountry>, ApiError> {
    set_country_active(&state, operator, code, true).await
}

/// Stops offering a country in phone entry (accounts with its numbers stay).
#[utoipa::path(
    post, path = "/api/admin/countries/{code}/deactivate", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("code" = String, Path, description = "ISO 3166-1 alpha-2 code (any case)")),
    responses(
        (status = 200, description = "The country, inactive", body = AdminCountry),
        (status = 404, description = "No such country", body = ErrorBody),
        (status = 409, description = "Already inactive (`country_inactive`)", body = ErrorBody),
    )
)]
pub async fn deactivate_country(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<AdminCountry>, ApiError> {
    set_country_active(&state, operator, code, false).await
}
