//! The FAQ: categories and items in order, per language (falling back to
//! English), full-text search over questions and answers with SQLite FTS5,
//! and one `helpful` vote per rider and item.

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    lang::{Lang, PreferredLang},
    markdown::to_safe_html,
    pages::check_slug,
};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, AuthUser, Operator,
        audit::{self, Target},
        error::ErrorBody,
        now_ts,
        text::check_user_text,
    },
    state::AppState,
};

const MAX_SEARCH_TERMS: usize = 10;

#[derive(Debug, Serialize, ToSchema)]
pub struct FaqItemOut {
    pub id: i64,
    /// The category's slug.
    pub category: String,
    /// The language served (the one asked for, or `en`).
    pub lang: Lang,
    pub question: String,
    /// Sanitised HTML.
    pub answer_html: String,
    pub answer_markdown: String,
    pub helpful_count: i64,
    pub not_helpful_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FaqCategoryOut {
    pub slug: String,
    pub name: String,
    pub items: Vec<FaqItemOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FaqQuery {
    /// Only this category (slug).
    pub category: Option<String>,
    /// `en` or `ne`; otherwise `Accept-Language`, then `en`.
    pub lang: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to look for (all of them; the last one as a prefix), 1 to 200 characters.
    pub q: String,
    /// 1 to 50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<i64>,
    /// `en` or `ne`; otherwise `Accept-Language`, then `en`.
    pub lang: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteIn {
    pub helpful: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VoteOut {
    pub item_id: i64,
    pub helpful_count: i64,
    pub not_helpful_count: i64,
    /// The caller's vote as it now stands.
    pub your_vote_helpful: bool,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryName {
    pub lang: Lang,
    /// 1 to 100 characters.
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryIn {
    pub slug: String,
    #[serde(default)]
    pub position: i64,
    /// English required.
    pub names: Vec<CategoryName>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryOut {
    pub id: i64,
    pub slug: String,
    pub position: i64,
    pub names: Vec<CategoryName>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemTextIn {
    pub lang: Lang,
    /// 1 to 300 characters.
    pub question: String,
    /// Markdown, 1 to 20,000 characters; sanitised when rendered.
    pub answer: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    /// The category's slug.
    pub category: String,
    #[serde(default)]
    pub position: i64,
    /// Default true.
    pub is_published: Option<bool>,
    /// English required.
    pub texts: Vec<ItemTextIn>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemTextOut {
    pub lang: Lang,
    pub question: String,
    pub answer_markdown: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminItemOut {
    pub id: i64,
    pub category: String,
    pub position: i64,
    pub is_published: bool,
    pub helpful_count: i64,
    pub not_helpful_count: i64,
    pub texts: Vec<ItemTextOut>,
}

/// Item columns with the text in `?1` or else English; `{from}` supplies `i`.
fn item_query(from: &str, filter: &str, order: &str) -> String {
    format!(
        "SELECT i.id, c.slug, t.lang, t.question, t.answer_html, t.answer_markdown, i.helpful_count,
                i.not_helpful_count, COALESCE(cn.name, cne.name, c.slug)
         FROM {from}
         JOIN faq_categories c ON c.id = i.category_id
         JOIN faq_item_texts t ON t.id = (SELECT id FROM faq_item_texts WHERE item_id = i.id AND lang IN (?1, 'en')
                                          ORDER BY lang = ?1 DESC LIMIT 1)
         LEFT JOIN faq_category_names cn ON cn.category_id = c.id AND cn.lang = ?1
         LEFT JOIN faq_category_names cne ON cne.category_id = c.id AND cne.lang = 'en'
         WHERE i.is_published = 1 {filter}
         ORDER BY {order}"
    )
}

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(FaqItemOut, String)> {
    Ok((
        FaqItemOut {
            id: r.get(0)?,
            category: r.get(1)?,
            lang: r.get(2)?,
            question: r.get(3)?,
            answer_html: r.get(4)?,
            answer_markdown: r.get(5)?,
            helpful_count: r.get(6)?,
            not_helpful_count: r.get(7)?,
        },
        r.get(8)?,
    ))
}

/// The published FAQ by category, in order, in the caller's language.
#[utoipa::path(
    get, path = "/api/content/faq", tag = "content",
    params(FaqQuery, ("Accept-Language" = Option<String>, Header, description = "Used when `lang` is absent")),
    responses((status = 200, description = "Categories with their items", body = Vec<FaqCategoryOut>))
)]
pub async fn list_faq(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<FaqQuery>,
    lang: PreferredLang,
) -> Result<Json<Vec<FaqCategoryOut>>, ApiError> {
    let categories = state
        .db
        .read(move |c| {
            let sql =
                item_query("faq_items i", "AND (?2 IS NULL OR c.slug = ?2)", "c.position, c.id, i.position, i.id");
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![lang.0, q.category], item_from_row)?;
            let mut out: Vec<FaqCategoryOut> = Vec::new();
            for row in rows {
                let (item, name) = row?;
                match out.last_mut() {
                    Some(last) if last.slug == item.category => last.items.push(item),
                    _ => out.push(FaqCategoryOut { slug: item.category.clone(), name, items: vec![item] }),
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Json(categories))
}

/// Turns what a rider typed into an FTS5 query that cannot be a syntax error:
/// each word quoted (all must match), the last one as a prefix.
fn fts_query(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.chars().count() > 200 {
        return Err(ApiError::invalid_field("q", "must be 1 to 200 characters"));
    }
    let words: Vec<String> = raw
        .split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\'') || c == '\u{0964}')
        .filter(|w| !w.is_empty())
        .take(MAX_SEARCH_TERMS)
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    if words.is_empty() {
        return Err(ApiError::invalid_field("q", "needs at least one word"));
    }
    Ok(format!("{}*", words.join(" ")))
}

/// Full-text search over the published FAQ (questions weigh more than
/// answers), best match first, in the caller's language.
#[utoipa::path(
    get, path = "/api/content/faq/search", tag = "content",
    params(SearchQuery, ("Accept-Language" = Option<String>, Header, description = "Used when `lang` is absent")),
    responses(
        (status = 200, description = "Matching items, best first", body = Vec<FaqItemOut>),
        (status = 400, description = "Empty or too long query, bad limit", body = ErrorBody),
    )
)]
pub async fn search_faq(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
    lang: PreferredLang,
) -> Result<Json<Vec<FaqItemOut>>, ApiError> {
    let query = fts_query(&q.q)?;
    let limit = match q.limit {
        None => 20,
        Some(n) if (1..=50).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid_field("limit", "must be between 1 and 50")),
    };
    let items = state
        .db
        .read(move |c| {
            let sql = format!(
                // bm25() works only in the full-text scan itself, not under
                // an aggregate: rank first, in a materialised step.
                "WITH ranked AS MATERIALIZED (
                     SELECT rowid AS text_id, bm25(faq_search, 4.0, 1.0) AS score
                     FROM faq_search WHERE faq_search MATCH ?2),
                 hits AS (
                     SELECT t.item_id AS item_id, min(ranked.score) AS score
                     FROM ranked JOIN faq_item_texts t ON t.id = ranked.text_id GROUP BY t.item_id)
                 {} LIMIT ?3",
                item_query("hits JOIN faq_items i ON i.id = hits.item_id", "", "hits.score, i.id")
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![lang.0, query, limit], item_from_row)?;
            Ok(rows.map(|r| r.map(|(item, _)| item)).collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(items))
}

/// Votes an item helpful or not. One vote per rider: voting again replaces
/// the earlier vote.
#[utoipa::path(
    post, path = "/api/content/faq/{id}/vote", tag = "content",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = VoteIn,
    responses(
        (status = 200, description = "The item's counts", body = VoteOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such published item", body = ErrorBody),
    )
)]
pub async fn vote(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<VoteIn>,
) -> Result<Json<VoteOut>, ApiError> {
    let out = state
        .db
        .write(move |tx| {
            let published: Option<bool> =
                tx.query_row("SELECT is_published FROM faq_items WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            if published != Some(true) {
                return Err(ApiError::not_found("FAQ item"));
            }
            let previous: Option<bool> = tx
                .query_row("SELECT helpful FROM faq_votes WHERE item_id = ?1 AND user_id = ?2", [id, user.id], |r| {
                    r.get(0)
                })
                .optional()?;
            let (helpful, not_helpful) = match (previous, req.helpful) {
                (Some(p), h) if p == h => (0, 0),
                (Some(_), true) => (1, -1),
                (Some(_), false) => (-1, 1),
                (None, true) => (1, 0),
                (None, false) => (0, 1),
            };
            tx.execute(
                "INSERT INTO faq_votes (item_id, user_id, helpful, voted_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (item_id, user_id) DO UPDATE SET helpful = excluded.helpful, voted_at = excluded.voted_at",
                params![id, user.id, req.helpful, now_ts()],
            )?;
            let (helpful_count, not_helpful_count) = tx.query_row(
                "UPDATE faq_items SET helpful_count = helpful_count + ?2, not_helpful_count = not_helpful_count + ?3
                 WHERE id = ?1 RETURNING helpful_count, not_helpful_count",
                params![id, helpful, not_helpful],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(VoteOut { item_id: id, helpful_count, not_helpful_count, your_vote_helpful: req.helpful })
        })
        .await?;
    Ok(Json(out))
}

fn checked_names(names: &[CategoryName]) -> Result<(), ApiError> {
    if !names.iter().any(|n| n.lang == Lang::En) {
        return Err(ApiError::invalid_field("names", "an English (en) name is required"));
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].iter().any(|m| m.lang == n.lang) {
            return Err(ApiError::invalid_field("names", format!("{} given twice", n.lang)));
        }
        if !(1..=100).contains(&n.name.trim().chars().count()) {
            return Err(ApiError::invalid_field("name", "must be 1 to 100 characters"));
        }
        check_user_text("name", &n.name, false)?;
    }
    Ok(())
}

fn load_category(c: &Connection, id: i64) -> Result<CategoryOut, ApiError> {
    let (slug, position): (String, i64) = c
        .query_row("SELECT slug, position FROM faq_categories WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| ApiError::not_found("FAQ category"))?;
    let mut stmt =
        c.prepare_cached("SELECT lang, name FROM faq_category_names WHERE category_id = ?1 ORDER BY lang")?;
    let names = stmt
        .query_map([id], |r| Ok(CategoryName { lang: r.get(0)?, name: r.get(1)? }))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CategoryOut { id, slug, position, names })
}

fn write_names(tx: &Transaction<'_>, id: i64, names: &[CategoryName]) -> Result<(), ApiError> {
    tx.execute("DELETE FROM faq_category_names WHERE category_id = ?1", [id])?;
    for n in names {
        tx.execute(
            "INSERT INTO faq_category_names (category_id, lang, name) VALUES (?1, ?2, ?3)",
            params![id, n.lang, n.name.trim()],
        )?;
    }
    Ok(())
}

fn slug_taken(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Creates an FAQ category.
#[utoipa::path(
    post, path = "/api/admin/content/faq/categories", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = CategoryIn,
    responses(
        (status = 201, description = "Created", body = CategoryOut),
        (status = 400, description = "Bad slug or names", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 409, description = "Slug taken (`slug_taken`)", body = ErrorBody),
    )
)]
pub async fn create_category(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(req): ApiJson<CategoryIn>,
) -> Result<(StatusCode, Json<CategoryOut>), ApiError> {
    check_slug(&req.slug)?;
    checked_names(&req.names)?;
    let out = state
        .db
        .write(move |tx| {
            let inserted = tx.execute(
                "INSERT INTO faq_categories (slug, position, created_at) VALUES (?1, ?2, ?3)",
                params![req.slug, req.position, now_ts()],
            );
            match inserted {
                Err(e) if slug_taken(&e) => return Err(ApiError::conflict("slug_taken", "a category has this slug")),
                other => other?,
            };
            let id = tx.last_insert_rowid();
            write_names(tx, id, &req.names)?;
            let audited = load_category(tx, id)?;
            audit::record(
                tx,
                &operator,
                "content.faq_category.create",
                Target::new("faq_category", id),
                &serde_json::Value::Null,
                &audited,
                None,
            )?;
            Ok(audited)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Changes an FAQ category's slug, position and names.
#[utoipa::path(
    put, path = "/api/admin/content/faq/categories/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path)),
    request_body = CategoryIn,
    responses(
        (status = 200, description = "Changed", body = CategoryOut),
        (status = 400, description = "Bad slug or names", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such category", body = ErrorBody),
        (status = 409, description = "Slug taken (`slug_taken`)", body = ErrorBody),
    )
)]
pub async fn update_category(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<CategoryIn>,
) -> Result<Json<CategoryOut>, ApiError> {
    check_slug(&req.slug)?;
    checked_names(&req.names)?;
    let out = state
        .db
        .write(move |tx| {
            let updated = tx.execute(
                "UPDATE faq_categories SET slug = ?2, position = ?3 WHERE id = ?1",
                params![id, req.slug, req.position],
            );
            match updated {
                Err(e) if slug_taken(&e) => return Err(ApiError::conflict("slug_taken", "a category has this slug")),
                Ok(0) => return Err(ApiError::not_found("FAQ category")),
                other => other?,
            };
            write_names(tx, id, &req.names)?;
            let audited = load_category(tx, id)?;
            audit::record(
                tx,
                &operator,
                "content.faq_category.update",
                Target::new("faq_category", id),
                &serde_json::Value::Null,
                &audited,
                None,
            )?;
            Ok(audited)
        })
        .await?;
    Ok(Json(out))
}

struct CheckedItem {
    texts: Vec<(Lang, String, String, String)>,
}

fn checked_item(req: &ItemIn) -> Result<CheckedItem, ApiError> {
    if !req.texts.iter().any(|t| t.lang == Lang::En) {
        return Err(ApiError::invalid_field("texts", "an English (en) text is required"));
    }
    let mut texts = Vec::with_capacity(req.texts.len());
    for (i, t) in req.texts.iter().enumerate() {
        if req.texts[..i].iter().any(|u| u.lang == t.lang) {
            return Err(ApiError::invalid_field("texts", format!("{} given twice", t.lang)));
        }
        let question = t.question.trim();
        if !(1..=300).contains(&question.chars().count()) {
            return Err(ApiError::invalid_field("question", "must be 1 to 300 characters"));
        }
        check_user_text("question", question, false)?;
        if t.answer.trim().is_empty() || t.answer.chars().count() > 20_000 {
            return Err(ApiError::invalid_field("answer", "must be 1 to 20000 characters"));
        }
        check_user_text("answer", &t.answer, true)?;
        texts.push((t.lang, question.to_string(), t.answer.clone(), to_safe_html(&t.answer)));
    }
    Ok(CheckedItem { texts })
}

fn category_id(tx: &Transaction<'_>, slug: &str) -> Result<i64, ApiError> {
    tx.query_row("SELECT id FROM faq_categories WHERE slug = ?1", [slug], |r| r.get(0))
        .optional()?
        .ok_or_else(|| ApiError::invalid_field("category", "no such FAQ category"))
}

fn write_texts(tx: &Transaction<'_>, id: i64, texts: &[(Lang, String, String, String)]) -> Result<(), ApiError> {
    // Deleting fires the FTS5 delete trigger, so the index never keeps old text.
    tx.execute("DELETE FROM faq_item_texts WHERE item_id = ?1", [id])?;
    for (lang, question, markdown, html) in texts {
        tx.execute(
            "INSERT INTO faq_item_texts (item_id, lang, question, answer_markdown, answer_html)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, lang, question, markdown, html],
        )?;
    }
    Ok(())
}

const ADMIN_ITEM_COLUMNS: &str =
    "SELECT i.id, c.slug, i.position, i.is_published, i.helpful_count, i.not_helpful_count,
        (SELECT json_group_array(json_object('lang', lang, 'question', question, 'answer_markdown', answer_markdown))
         FROM faq_item_texts WHERE item_id = i.id)
    FROM faq_items i JOIN faq_categories c ON c.id = i.category_id";

fn admin_item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminItemOut> {
    let texts: String = r.get(6)?;
    let texts: Vec<BTreeMap<String, String>> = serde_json::from_str(&texts).unwrap_or_default();
    Ok(AdminItemOut {
        id: r.get(0)?,
        category: r.get(1)?,
        position: r.get(2)?,
        is_published: r.get(3)?,
        helpful_count: r.get(4)?,
        not_helpful_count: r.get(5)?,
        texts: texts
            .into_iter()
            .filter_map(|mut t| {
                Some(ItemTextOut {
                    lang: Lang::parse(t.get("lang")?)?,
                    question: t.remove("question")?,
                    answer_markdown: t.remove("answer_markdown")?,
                })
            })
            .collect(),
    })
}

fn load_admin_item(c: &Connection, id: i64) -> Result<AdminItemOut, ApiError> {
    c.query_row(&format!("{ADMIN_ITEM_COLUMNS} WHERE i.id = ?1"), [id], admin_item_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("FAQ item"))
}

/// Every FAQ item, published or not, in order.
#[utoipa::path(
    get, path = "/api/admin/content/faq/items", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    responses(
        (status = 200, description = "Items with all their texts", body = Vec<AdminItemOut>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    )
)]
pub async fn admin_list_items(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Vec<AdminItemOut>>, ApiError> {
    let items = state
        .db
        .read(|c| {
            let mut stmt =
                c.prepare_cached(&format!("{ADMIN_ITEM_COLUMNS} ORDER BY c.position, c.id, i.position, i.id"))?;
            let rows = stmt.query_map([], admin_item_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(items))
}

/// Adds an FAQ item.
#[utoipa::path(
    post, path = "/api/admin/content/faq/items", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    request_body = ItemIn,
    responses(
        (status = 201, description = "Created", body = AdminItemOut),
        (status = 400, description = "Bad texts or unknown category", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    )
)]
pub async fn create_item(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(req): ApiJson<ItemIn>,
) -> Result<(StatusCode, Json<AdminItemOut>), ApiError> {
    let checked = checked_item(&req)?;
    let out = state
        .db
        .write(move |tx| {
            let category = category_id(tx, &req.category)?;
            let now = now_ts();
            tx.execute(
                "INSERT INTO faq_items (category_id, position, is_published, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![category, req.position, req.is_published.unwrap_or(true), now],
            )?;
            let id = tx.last_insert_rowid();
            write_texts(tx, id, &checked.texts)?;
            let audited = load_admin_item(tx, id)?;
            audit::record(
                tx,
                &operator,
                "content.faq_item.create",
                Target::new("faq_item", id),
                &serde_json::Value::Null,
                &audited,
                None,
            )?;
            Ok(audited)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Replaces an FAQ item's category, position, visibility and texts (votes stay).
#[utoipa::path(
    put, path = "/api/admin/content/faq/items/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path)),
    request_body = ItemIn,
    responses(
        (status = 200, description = "Changed", body = AdminItemOut),
        (status = 400, description = "Bad texts or unknown category", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
    )
)]
pub async fn update_item(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ItemIn>,
) -> Result<Json<AdminItemOut>, ApiError> {
    let checked = checked_item(&req)?;
    let out = state
        .db
        .write(move |tx| {
            let category = category_id(tx, &req.category)?;
            let changed = tx.execute(
                "UPDATE faq_items SET category_id = ?2, position = ?3, is_published = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, category, req.position, req.is_published.unwrap_or(true), now_ts()],
            )?;
            if changed == 0 {
                return Err(ApiError::not_found("FAQ item"));
            }
            write_texts(tx, id, &checked.texts)?;
            let audited = load_admin_item(tx, id)?;
            audit::record(tx, &operator, "content.faq_item.update", Target::new("faq_item", id), &serde_json::Value::Null, &audited, None)?;
            Ok(audited)
        })
        .await?;
    Ok(Json(out))
}

/// Deletes an FAQ item with its texts and votes.
#[utoipa::path(
    delete, path = "/api/admin/content/faq/items/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
    )
)]
pub async fn delete_item(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .db
        .write(move |tx| {
            if tx.execute("DELETE FROM faq_items WHERE id = ?1", [id])? == 0 {
                return Err(ApiError::not_found("FAQ item"));
            }
            let audited = ();
            audit::record(
                tx,
                &operator,
                "content.faq_item.delete",
                Target::new("faq_item", id),
                &serde_json::Value::Null,
                &audited,
                None,
            )?;
            Ok(audited)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
