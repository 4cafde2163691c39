//! Legal acceptance: which versions of the terms and the privacy policy each
//! rider accepted. Registering accepts the versions current at that moment;
//! publishing a version marked "requires acceptance" makes every rider who
//! has not accepted it (or a newer one) pending, which `GET /api/auth/me`
//! shows, until `POST /api/content/legal/accept`.

use axum::{Json, extract::State};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    core::{ApiError, ApiJson, AuthUser, Operator, error::ErrorBody, now_ts, ts_to_rfc3339},
    state::AppState,
};

/// The pages a rider accepts.
pub const LEGAL_SLUGS: &[&str] = &["terms", "privacy"];

/// A legal page version the rider still has to accept.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingLegal {
    /// `terms` or `privacy`.
    pub slug: String,
    /// The version to accept (the newest).
    pub version: i64,
}

/// Whether the rider must accept new legal texts before going on.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct LegalStatus {
    pub acceptance_required: bool,
    pub pending: Vec<PendingLegal>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptLegal {
    /// `terms` or `privacy`.
    pub slug: String,
    /// The newest version of the page (an older one is refused).
    pub version: i64,
}

/// Acceptance counts of one legal page version.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptanceCount {
    pub slug: String,
    pub version: i64,
    pub requires_acceptance: bool,
    pub published_at: String,
    /// Accepted when registering.
    pub accepted_at_signup: i64,
    /// Accepted when asked in the app.
    pub accepted_when_prompted: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptanceReport {
    /// Active rider accounts, to compare the counts with.
    pub active_riders: i64,
    pub versions: Vec<AcceptanceCount>,
}

/// Registration: records that `user_id` accepted the current terms and
/// privacy policy, in the registering transaction.
pub fn accept_current_at_signup(tx: &Transaction<'_>, user_id: i64, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "INSERT OR IGNORE INTO legal_acceptances (user_id, version_id, source, accepted_at)
         SELECT ?1, v.id, 'signup', ?2
         FROM content_pages p JOIN content_page_versions v ON v.page_id = p.id
         WHERE p.slug IN ('terms', 'privacy')
           AND v.version = (SELECT max(version) FROM content_page_versions WHERE page_id = p.id)",
        params![user_id, now],
    )?;
    Ok(())
}

/// The legal pages `user_id` must (re)accept: those with a version requiring
/// acceptance that is newer than every version the user accepted.
pub fn status_of(c: &Connection, user_id: i64) -> Result<LegalStatus, ApiError> {
    let mut stmt = c.prepare_cached(
        "SELECT p.slug, (SELECT max(version) FROM content_page_versions WHERE page_id = p.id)
         FROM content_pages p
         WHERE p.slug IN ('terms', 'privacy')
           AND (SELECT max(version) FROM content_page_versions WHERE page_id = p.id AND requires_acceptance = 1)
               > COALESCE((SELECT max(v.version) FROM legal_acceptances a
                           JOIN content_page_versions v ON v.id = a.version_id
                           WHERE a.user_id = ?1 AND v.page_id = p.id), 0)
         ORDER BY p.slug",
    )?;
    let pending = stmt
        .query_map([user_id], |r| Ok(PendingLegal { slug: r.get(0)?, version: r.get(1)? }))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LegalStatus { acceptance_required: !pending.is_empty(), pending })
}

/// The caller's legal acceptance status (also part of `GET /api/auth/me`).
#[utoipa::path(
    get, path = "/api/content/legal/status", tag = "content",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending acceptances", body = LegalStatus),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn legal_status(State(state): State<AppState>, user: AuthUser) -> Result<Json<LegalStatus>, ApiError> {
    Ok(Json(state.db.read(move |c| status_of(c, user.id)).await?))
}

/// Records that the caller accepted the newest version of a legal page.
/// Accepting the same version again changes nothing.
#[utoipa::path(
    post, path = "/api/content/legal/accept", tag = "content",
    security(("bearer" = [])),
    request_body = AcceptLegal,
    responses(
        (status = 200, description = "Accepted; what is still pending", body = LegalStatus),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Not a legal page, or no such version", body = ErrorBody),
        (status = 409, description = "A newer version exists (`version_superseded`)", body = ErrorBody),
    )
)]
pub async fn accept(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<AcceptLegal>,
) -> Result<Json<LegalStatus>, ApiError> {
    if !LEGAL_SLUGS.contains(&req.slug.as_str()) {
        return Err(ApiError::not_found("legal page"));
    }
    let status = state
        .db
        .write(move |tx| {
            let found: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT v.id, (SELECT max(version) FROM content_page_versions WHERE page_id = p.id)
                     FROM content_pages p JOIN content_page_versions v ON v.page_id = p.id
                     WHERE p.slug = ?1 AND v.version = ?2",
                    params![req.slug, req.version],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((version_id, latest)) = found else {
                return Err(ApiError::not_found("page version"));
            };
            if latest != req.version {
                return Err(ApiError::conflict(
                    "version_superseded",
                    format!("version {} of {} is newer; accept that one", latest, req.slug),
                )
                .with_details(serde_json::json!({ "latest_version": latest })));
            }
            tx.execute(
                "INSERT OR IGNORE INTO legal_acceptances (user_id, version_id, source, accepted_at)
                 VALUES (?1, ?2, 'prompt', ?3)",
                params![user.id, version_id, now_ts()],
            )?;
            status_of(tx, user.id)
        })
        .await?;
    Ok(Json(status))
}

/// How many riders accepted each version of the terms and privacy policy.
#[utoipa::path(
    get, path = "/api/admin/content/legal/acceptances", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance"]))),
    responses(
        (status = 200, description = "Counts per version, newest first", body = AcceptanceReport),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    )
)]
pub async fn acceptance_counts(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<AcceptanceReport>, ApiError> {
    let report = state
        .db
        .read(|c| {
            let active_riders: i64 =
                c.query_row("SELECT count(*) FROM users WHERE role = 'user' AND status = 'active'", [], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(
                "SELECT p.slug, v.version, v.requires_acceptance, v.published_at,
                        (SELECT count(*) FROM legal_acceptances WHERE version_id = v.id AND source = 'signup'),
                        (SELECT count(*) FROM legal_acceptances WHERE version_id = v.id AND source = 'prompt')
                 FROM content_pages p JOIN content_page_versions v ON v.page_id = p.id
                 WHERE p.slug IN ('terms', 'privacy')
                 ORDER BY p.slug, v.version DESC",
            )?;
            let versions = stmt
                .query_map([], |r| {
                    Ok(AcceptanceCount {
                        slug: r.get(0)?,
                        version: r.get(1)?,
                        requires_acceptance: r.get(2)?,
                        published_at: ts_to_rfc3339(r.get(3)?),
                        accepted_at_signup: r.get(4)?,
                        accepted_when_prompted: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(AcceptanceReport { active_riders, versions })
        })
        .await?;
    Ok(Json(report))
}
