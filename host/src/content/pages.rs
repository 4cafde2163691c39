//! Pages (`terms`, `privacy`, `about`, `renting-policy`, `contact` and any
//! slug an operator defines): Markdown per language, published as numbered
//! versions that never change. Riders read the newest version (or an older
//! one by number) as sanitised HTML and as the Markdown source, in their
//! language or else English.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    lang::{Lang, PreferredLang},
    legal::LEGAL_SLUGS,
    markdown::to_safe_html,
};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator,
        audit::{self, Target},
        error::ErrorBody,
        now_ts,
        text::check_user_text,
    },
    state::AppState,
};

/// The page types the app links to; operators may add any other slug.
pub const STANDARD_SLUGS: &[&str] = &["terms", "privacy", "about", "renting-policy", "contact"];

const MAX_MARKDOWN_CHARS: usize = 200_000;

/// One published version of a page, in one language.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageOut {
    pub slug: String,
    pub version: i64,
    /// The language served: the one asked for, or `en` when the page has no
    /// text in it.
    pub lang: Lang,
    pub title: String,
    /// Sanitised HTML, safe to show in a web view.
    pub html: String,
    /// The Markdown source as the operator wrote it (render `html` when in doubt).
    pub markdown: String,
    pub requires_acceptance: bool,
    pub published_at: String,
    /// The newest version of the page (equal to `version` unless an older one was asked for).
    pub latest_version: i64,
}

/// A page in the list: its newest version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageSummary {
    pub slug: String,
    pub title: String,
    pub lang: Lang,
    pub version: i64,
    pub published_at: String,
}

/// One version in a page's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageVersionOut {
    pub slug: String,
    pub version: i64,
    pub requires_acceptance: bool,
    pub published_at: String,
    /// Languages the version has text in.
    pub languages: Vec<Lang>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// A version number; the newest when absent.
    pub version: Option<i64>,
    /// `en` or `ne`; otherwise `Accept-Language`, then `en`. Unknown values fall back.
    pub lang: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `en` or `ne`; otherwise `Accept-Language`, then `en`. Unknown values fall back.
    pub lang: Option<String>,
}

/// A page's text in one language.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageTextIn {
    pub lang: Lang,
    /// 1 to 200 characters.
    pub title: String,
    /// Markdown; raw HTML in it is sanitised when rendered.
    pub markdown: String,
}

/// A new version of a page. English is required: it is what every other
/// language falls back to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishPage {
    pub texts: Vec<PageTextIn>,
    /// Legal pages (`terms`, `privacy`) only: riders must accept this version.
    #[serde(default)]
    pub requires_acceptance: bool,
}

pub(super) fn check_slug(slug: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&slug.len())
        && slug
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field("slug", "1 to 64 lower-case letters, digits and single dashes"))
    }
}

fn content_language(lang: Lang, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.as_str()));
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    response
}

/// The text of `version_id` in the first of `langs` it has.
fn text_in(
    c: &Connection,
    version_id: i64,
    langs: [Lang; 2],
) -> Result<Option<(Lang, String, String, String)>, ApiError> {
    Ok(c.query_row(
        "SELECT lang, title, markdown, html FROM content_page_texts
         WHERE version_id = ?1 AND lang IN (?2, ?3) ORDER BY lang = ?2 DESC LIMIT 1",
        params![version_id, langs[0], langs[1]],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .optional()?)
}

pub(super) fn load_page(
    c: &Connection,
    slug: &str,
    version: Option<i64>,
    lang: PreferredLang,
) -> Result<PageOut, ApiError> {
    let row: Option<(i64, i64, bool, i64, i64)> = c
        .query_row(
            "SELECT v.id, v.version, v.requires_acceptance, v.published_at,
                    (SELECT max(version) FROM content_page_versions WHERE page_id = p.id)
             FROM content_pages p JOIN content_page_versions v ON v.page_id = p.id
             WHERE p.slug = ?1 AND (?2 IS NULL OR v.version = ?2)
             ORDER BY v.version DESC LIMIT 1",
            params![slug, version],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((version_id, version, requires_acceptance, published_at, latest_version)) = row else {
        return Err(ApiError::not_found("page version"));
    };
    let (lang, title, markdown, html) =
        text_in(c, version_id, lang.chain())?.ok_or_else(|| ApiError::not_found("page text"))?;
    Ok(PageOut {
        slug: slug.to_string(),
        version,
        lang,
        title,
        html,
        markdown,
        requires_acceptance,
        published_at: crate::core::ts_to_rfc3339(published_at),
        latest_version,
    })
}

/// Published pages, newest version of each, titles in the caller's language.
#[utoipa::path(
    get, path = "/api/content/pages", tag = "content",
    params(LangQuery, ("Accept-Language" = Option<String>, Header, description = "Used when `lang` is absent")),
    responses((status = 200, description = "Pages by slug", body = Vec<PageSummary>))
)]
pub async fn list_pages(State(state): State<AppState>, lang: PreferredLang) -> Result<Response, ApiError> {
    let list = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT p.slug, v.version, v.published_at, t.lang, t.title
                 FROM content_pages p
                 JOIN content_page_versions v
                   ON v.page_id = p.id AND v.version = (SELECT max(version) FROM content_page_versions WHERE page_id = p.id)
                 JOIN content_page_texts t ON t.version_id = v.id
                   AND t.lang = (SELECT lang FROM content_page_texts WHERE version_id = v.id AND lang IN (?1, 'en')
                                 ORDER BY lang = ?1 DESC LIMIT 1)
                 ORDER BY p.slug",
            )?;
            let rows = stmt.query_map([lang.0], |r| {
                Ok(PageSummary {
                    slug: r.get(0)?,
                    version: r.get(1)?,
                    published_at: crate::core::ts_to_rfc3339(r.get(2)?),
                    lang: r.get(3)?,
                    title: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(content_language(lang.0, Json(list)))
}

/// A page: the newest version, or `?version=N`; in the caller's language or English.
#[utoipa::path(
    get, path = "/api/content/pages/{slug}", tag = "content",
    params(("slug" = String, Path, description = "e.g. terms, privacy, about, renting-policy, contact"), PageQuery,
           ("Accept-Language" = Option<String>, Header, description = "Used when `lang` is absent")),
    responses(
        (status = 200, description = "The page (header Content-Language says which language)", body = PageOut),
        (status = 400, description = "Malformed version", body = ErrorBody),
        (status = 404, description = "No such page or version", body = ErrorBody),
    )
)]
pub async fn get_page(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
    lang: PreferredLang,
) -> Result<Response, ApiError> {
    let page = state.db.read(move |c| load_page(c, &slug, q.version, lang)).await?;
    let served = page.lang;
    Ok(content_language(served, Json(page)))
}

fn versions_of(c: &Connection, slug: &str) -> Result<Vec<PageVersionOut>, ApiError> {
    let mut stmt = c.prepare_cached(
        "SELECT v.version, v.requires_acceptance, v.published_at,
                (SELECT group_concat(lang) FROM content_page_texts WHERE version_id = v.id)
         FROM content_pages p JOIN content_page_versions v ON v.page_id = p.id
         WHERE p.slug = ?1 ORDER BY v.version DESC",
    )?;
    let rows = stmt.query_map([slug], |r| {
        let languages: Option<String> = r.get(3)?;
        Ok(PageVersionOut {
            slug: slug.to_string(),
            version: r.get(0)?,
            requires_acceptance: r.get(1)?,
            published_at: crate::core::ts_to_rfc3339(r.get(2)?),
            languages: languages.unwrap_or_default().split(',').filter_map(Lang::parse).collect(),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Every published version of a page, newest first.
#[utoipa::path(
    get, path = "/api/content/pages/{slug}/versions", tag = "content",
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "Versions, newest first", body = Vec<PageVersionOut>),
        (status = 404, description = "No such page", body = ErrorBody),
    )
)]
pub async fn page_versions(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<Vec<PageVersionOut>>, ApiError> {
    let list = state.db.read(move |c| versions_of(c, &slug)).await?;
    if list.is_empty() {
        return Err(ApiError::not_found("page"));
    }
    Ok(Json(list))
}

/// Validates and renders the texts of a new version: one per language,
/// English among them.
fn checked_texts(texts: &[PageTextIn]) -> Result<Vec<(Lang, String, String, String)>, ApiError> {
    if !texts.iter().any(|t| t.lang == Lang::En) {
        return Err(ApiError::invalid_field("texts", "an English (en) text is required"));
    }
    let mut out = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        if texts[..i].iter().any(|t| t.lang == text.lang) {
            return Err(ApiError::invalid_field("texts", format!("{} given twice", text.lang)));
        }
        let title = text.title.trim();
        if !(1..=200).contains(&title.chars().count()) {
            return Err(ApiError::invalid_field("title", "must be 1 to 200 characters"));
        }
        check_user_text("title", title, false)?;
        if text.markdown.trim().is_empty() || text.markdown.chars().count() > MAX_MARKDOWN_CHARS {
            return Err(ApiError::invalid_field("markdown", format!("must be 1 to {MAX_MARKDOWN_CHARS} characters")));
        }
        check_user_text("markdown", &text.markdown, true)?;
        out.push((text.lang, title.to_string(), text.markdown.clone(), to_safe_html(&text.markdown)));
    }
    Ok(out)
}

/// Inserts the next version of `slug` (creating the page on its first
/// version); returns the version number.
fn insert_version(
    tx: &Transaction<'_>,
    slug: &str,
    requires_acceptance: bool,
    texts: &[(Lang, String, String, String)],
    operator: i64,
    now: i64,
) -> Result<i64, ApiError> {
    tx.execute(
        "INSERT INTO content_pages (slug, created_at) VALUES (?1, ?2) ON CONFLICT (slug) DO NOTHING",
        params![slug, now],
    )?;
    let page_id: i64 = tx.query_row("SELECT id FROM content_pages WHERE slug = ?1", [slug], |r| r.get(0))?;
    let version: i64 = tx.query_row(
        "INSERT INTO content_page_versions (page_id, version, requires_acceptance, published_by, published_at)
         VALUES (?1, (SELECT COALESCE(max(version), 0) + 1 FROM content_page_versions WHERE page_id = ?1), ?2, ?3, ?4)
         RETURNING version",
        params![page_id, requires_acceptance, operator, now],
        |r| r.get(0),
    )?;
    let version_id = tx.last_insert_rowid();
    for (lang, title, markdown, html) in texts {
        tx.execute(
            "INSERT INTO content_page_texts (version_id, lang, title, markdown, html) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![version_id, lang, title, markdown, html],
        )?;
    }
    Ok(version)
}

/// Publishes a new version of a page (the page is created by its first
/// version). Older versions stay readable.
#[utoipa::path(
    post, path = "/api/admin/content/pages/{slug}/versions", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("slug" = String, Path, description = "A standard type or an operator-defined slug")),
    request_body = PublishPage,
    responses(
        (status = 201, description = "Published", body = PageVersionOut),
        (status = 400, description = "Bad slug, missing English text, bad title or Markdown", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 422, description = "`requires_acceptance` on a page that is not legal (`not_a_legal_page`)", body = ErrorBody),
    )
)]
pub async fn publish_page(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(slug): ApiPath<String>,
    ApiJson(req): ApiJson<PublishPage>,
) -> Result<(StatusCode, Json<PageVersionOut>), ApiError> {
    check_slug(&slug)?;
    if req.requires_acceptance && !LEGAL_SLUGS.contains(&slug.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_legal_page",
            format!("only {} can require acceptance", LEGAL_SLUGS.join(" and ")),
        ));
    }
    let texts = checked_texts(&req.texts)?;
    let out = state
        .db
        .write(move |tx| {
            let version = insert_version(tx, &slug, req.requires_acceptance, &texts, operator.id, now_ts())?;
            let audited = versions_of(tx, &slug)?
                .into_iter()
                .find(|v| v.version == version)
                .ok_or_else(|| ApiError::internal("published version not found"))?;
            audit::record(
                tx,
                &operator,
                "content.page.publish",
                Target::new("content_page", &slug),
                &serde_json::Value::Null,
                &audited,
                None,
            )?;
            Ok(audited)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}
