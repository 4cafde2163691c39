//! KYC (seed §2): the user submits an identity document (uploaded images),
//! an operator approves or rejects it, and the user is notified. Rentals
//! require an approved KYC: see [`kyc_approved`].
//!
//! Every submission is its own row. One may be open (pending or approved) per
//! user at a time, enforced by a partial unique index; after a rejection the
//! user submits again and the rejected row stays as the record.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, AuthUser, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        jobs::{self, NewJob},
        now_ts, opt_ts,
        text_enum::text_enum,
        ts_to_rfc3339,
    },
    notifications,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_kyc))
        .routes(routes!(kyc_status))
        .routes(routes!(admin_list_kyc))
        .routes(routes!(admin_approve_kyc))
        .routes(routes!(admin_reject_kyc))
}

/// Job kind: a user's KYC was approved (enqueued with the approval). The
/// points domain, above this one, handles it (points for a verified identity).
pub const APPROVED_JOB: &str = "kyc.approved";

/// Whether `user_id` has an approved KYC; the rentals domain checks it before
/// a rental starts. Works on a transaction too (`&tx` derefs to a connection).
pub fn kyc_approved(conn: &Connection, user_id: i64) -> Result<bool, ApiError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM user_kyc WHERE user_id = ?1 AND status = ?2)",
        params![user_id, KycStatus::Approved],
        |r| r.get(0),
    )?)
}

/// Account deletion: the user's document numbers go; the rows stay as the
/// record that a check was made.
pub fn forget_user(tx: &rusqlite::Transaction<'_>, user_id: i64) -> Result<(), ApiError> {
    tx.execute("UPDATE user_kyc SET document_number = 'deleted' WHERE user_id = ?1", [user_id])?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Citizenship,
    Passport,
    DrivingLicense,
    NationalId,
}

impl DocumentType {
    fn as_str(self) -> &'static str {
        match self {
            DocumentType::Citizenship => "citizenship",
            DocumentType::Passport => "passport",
            DocumentType::DrivingLicense => "driving_license",
            DocumentType::NationalId => "national_id",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "citizenship" => DocumentType::Citizenship,
            "passport" => DocumentType::Passport,
            "driving_license" => DocumentType::DrivingLicense,
            "national_id" => DocumentType::NationalId,
            _ => return None,
        })
    }
}

text_enum! {
    /// Where a submission stands (`user_kyc.status`). One submission per user
    /// may be open (pending or approved); a rejected one stays as the record.
    pub enum KycStatus {
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KycSubmission {
    pub document_type: DocumentType,
    /// 5 to 40 characters: letters, digits, spaces, `-` and `/`.
    pub document_number: String,
    /// Id of the caller's upload (`POST /api/upload`) showing the front.
    pub front_upload_id: i64,
    /// The back side; required for every document type but `passport`.
    pub back_upload_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KycImage {
    pub upload_id: i64,
    pub url: String,
}

/// One KYC submission as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct KycOut {
    pub id: i64,
    pub document_type: DocumentType,
    pub document_number: String,
    pub front: KycImage,
    pub back: Option<KycImage>,
    pub status: KycStatus,
    pub rejection_reason: Option<String>,
    pub submitted_at: String,
    pub reviewed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KycStatusOut {
    /// `not_submitted`, `pending`, `approved` or `rejected` (of the latest submission).
    pub status: String,
    /// The latest submission, if any.
    pub kyc: Option<KycOut>,
}

/// A submission as an operator sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminKycOut {
    #[serde(flatten)]
    pub kyc: KycOut,
    pub user_id: i64,
    pub user_phone: Option<String>,
    /// The admin who decided.
    pub reviewed_by: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KycRejection {
    /// Shown to the user: what to fix (3 to 500 characters).
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminKycQuery {
    /// `pending`, `approved` or `rejected`; all when omitted.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

const SELECT: &str = "
    SELECT k.id, k.document_type, k.document_number, k.front_upload_id, f.url, k.back_upload_id, b.url,
           k.status, k.rejection_reason, k.created_at, k.reviewed_at, k.user_id, u.phone, k.reviewed_by
    FROM user_kyc k
    JOIN users u ON u.id = k.user_id
    JOIN media_uploads f ON f.id = k.front_upload_id
    LEFT JOIN media_uploads b ON b.id = k.back_upload_id";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminKycOut> {
    let document_type: String = r.get(1)?;
    let back_id: Option<i64> = r.get(5)?;
    let back_url: Option<String> = r.get(6)?;
    Ok(AdminKycOut {
        kyc: KycOut {
            id: r.get(0)?,
            document_type: DocumentType::parse(&document_type).unwrap_or(DocumentType::Citizenship),
            document_number: r.get(2)?,
            front: KycImage { upload_id: r.get(3)?, url: r.get(4)? },
            back: back_id.zip(back_url).map(|(upload_id, url)| KycImage { upload_id, url }),
            status: r.get(7)?,
            rejection_reason: r.get(8)?,
            submitted_at: ts_to_rfc3339(r.get(9)?),
            reviewed_at: opt_ts(r.get(10)?),
        },
        user_id: r.get(11)?,
        user_phone: r.get(12)?,
        reviewed_by: r.get(13)?,
    })
}

fn load(c: &Connection, id: i64) -> Result<Option<AdminKycOut>, ApiError> {
    Ok(c.query_row(&format!("{SELECT} WHERE k.id = ?1"), [id], from_row).optional()?)
}

fn clean_document_number(raw: &str) -> Result<String, ApiError> {
    let v = raw.trim().to_uppercase();
    let n = v.chars().count();
    let ok = (5..=40).contains(&n) && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/' || c == ' ');
    if !ok {
        return Err(ApiError::invalid_field(
            "document_number",
            "must be 5 to 40 characters: letters, digits, spaces, - and /",
        ));
    }
    Ok(v)
}

/// The upload must exist and be the caller's; someone else's is reported
/// exactly like a missing one.
fn check_own_upload(c: &Connection, field: &str, upload_id: i64, user_id: i64) -> Result<(), ApiError> {
    let owner: Option<Option<i64>> =
        c.query_row("SELECT user_id FROM media_uploads WHERE id = ?1", [upload_id], |r| r.get(0)).optional()?;
    if owner.flatten() != Some(user_id) {
        return Err(ApiError::invalid_field(field, "not one of your uploads"));
    }
    Ok(())
}

/// Submits identity documents for review.
#[utoipa::path(
    post, path = "/api/auth/kyc", tag = "kyc",
    security(("bearer" = [])),
    request_body = KycSubmission,
    responses(
        (status = 201, description = "Submitted; pending review", body = KycOut),
        (status = 400, description = "Invalid fields, or an upload that is not the caller's", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "A submission is pending (`kyc_pending`) or approved (`kyc_already_approved`)", body = ErrorBody),
    )
)]
pub async fn submit_kyc(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<KycSubmission>,
) -> Result<(StatusCode, Json<KycOut>), ApiError> {
    let number = clean_document_number(&req.document_number)?;
    let (front, back) = (req.front_upload_id, req.back_upload_id);
    if back.is_none() && req.document_type != DocumentType::Passport {
        return Err(ApiError::invalid_field("back_upload_id", "required for this document type"));
    }
    if back == Some(front) {
        return Err(ApiError::invalid_field("back_upload_id", "must be another image than the front"));
    }
    let document_type = req.document_type;
    let out = state
        .db
        .write(move |tx| {
            let open: Option<KycStatus> = tx
                .query_row(
                    "SELECT status FROM user_kyc WHERE user_id = ?1 AND status IN (?2, ?3)",
                    params![user.id, KycStatus::Pending, KycStatus::Approved],
                    |r| r.get(0),
                )
                .optional()?;
            match open {
                Some(KycStatus::Approved) => {
                    return Err(ApiError::conflict("kyc_already_approved", "your KYC is already approved"));
                }
                Some(_) => return Err(ApiError::conflict("kyc_pending", "your KYC submission is awaiting review")),
                None => {}
            }
            check_own_upload(tx, "front_upload_id", front, user.id)?;
            if let Some(back) = back {
                check_own_upload(tx, "back_upload_id", back, user.id)?;
            }
            let now = now_ts();
            tx.execute(
                "INSERT INTO user_kyc (user_id, document_type, document_number, front_upload_id, back_upload_id,
                                       created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![user.id, document_type.as_str(), number, front, back, now],
            )?;
            let id = tx.last_insert_rowid();
            alert_reviewers(tx, document_type.as_str())?;
            load(tx, id)?.ok_or_else(|| ApiError::internal("KYC row vanished"))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out.kyc)))
}

/// Tells every active operator, in the same transaction as the submission,
/// that the review queue grew.
fn alert_reviewers(tx: &rusqlite::Transaction<'_>, document_type: &str) -> Result<(), ApiError> {
    let pending: i64 =
        tx.query_row("SELECT COUNT(*) FROM user_kyc WHERE status = ?1", [KycStatus::Pending], |r| r.get(0))?;
    let mut stmt = tx.prepare("SELECT id FROM users WHERE role = 'admin' AND status = 'active'")?;
    let admins = stmt.query_map([], |r| r.get::<_, i64>(0))?.collect::<Result<Vec<_>, _>>()?;
    for admin in admins {
        notifications::notify(
            tx,
            admin,
            "kyc_review_requested",
            json!({ "document_type": document_type.replace('_', " "), "pending": pending }),
        )?;
    }
    Ok(())
}

/// The caller's KYC status and latest submission.
#[utoipa::path(
    get, path = "/api/auth/kyc-status", tag = "kyc",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "KYC status", body = KycStatusOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn kyc_status(State(state): State<AppState>, user: AuthUser) -> Result<Json<KycStatusOut>, ApiError> {
    let latest = state
        .db
        .read(move |c| {
            Ok(c.query_row(&format!("{SELECT} WHERE k.user_id = ?1 ORDER BY k.id DESC LIMIT 1"), [user.id], from_row)
                .optional()?)
        })
        .await?;
    Ok(Json(match latest {
        Some(k) => KycStatusOut { status: k.kyc.status.to_string(), kyc: Some(k.kyc) },
        None => KycStatusOut { status: "not_submitted".into(), kyc: None },
    }))
}

/// KYC submissions, newest first; `?status=pending` is the review queue.
#[utoipa::path(
    get, path = "/api/admin/kyc", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(AdminKycQuery),
    responses(
        (status = 200, description = "A page of submissions", body = Page<AdminKycOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
    )
)]
pub async fn admin_list_kyc(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(q): ApiQuery<AdminKycQuery>,
) -> Result<Json<Page<AdminKycOut>>, ApiError> {
    let paging = PageParams { cursor: q.cursor, limit: q.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = q
        .status
        .as_deref()
        .map(str::parse::<KycStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{SELECT} WHERE k.id < ?1 AND (?2 IS NULL OR k.status = ?2) ORDER BY k.id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![before, status, limit + 1], from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |k| k.kyc.id)))
}

/// Decides a pending submission and notifies its owner, in one transaction.
async fn decide(
    state: &AppState,
    admin: Operator,
    id: i64,
    rejection: Option<String>,
) -> Result<AdminKycOut, ApiError> {
    let admin_id = admin.id;
    let out = state
        .db
        .write(move |tx| {
            let current = load(tx, id)?.ok_or_else(|| ApiError::not_found("KYC submission"))?;
            if current.kyc.status != KycStatus::Pending {
                return Err(ApiError::conflict(
                    "kyc_not_pending",
                    format!("this submission is already {}", current.kyc.status),
                ));
            }
            let status = if rejection.is_some() { KycStatus::Rejected } else { KycStatus::Approved };
            let now = now_ts();
            tx.execute(
                "UPDATE user_kyc SET status = ?2, rejection_reason = ?3, reviewed_by = ?4, reviewed_at = ?5,
                                     updated_at = ?5
                 WHERE id = ?1",
                params![id, status, rejection, admin_id, now],
            )?;
            match &rejection {
                None => {
                    notifications::notify(tx, current.user_id, "kyc_approved", json!({"kyc_id": id}))?;
                    jobs::enqueue(tx, NewJob::new(APPROVED_JOB, json!({"user_id": current.user_id})))?;
                }
                Some(reason) => {
                    notifications::notify(tx, current.user_id, "kyc_rejected", json!({"kyc_id": id, "reason": reason}))?
                }
            }
            let after = load(tx, id)?.ok_or_else(|| ApiError::internal("KYC row vanished"))?;
            let action = if rejection.is_some() { "kyc.reject" } else { "kyc.approve" };
            audit::record(tx, &admin, action, Target::new("kyc", id), &current, &after, rejection.as_deref())?;
            Ok(after)
        })
        .await?;
    state.jobs.wake();
    tracing::info!(kyc_id = id, admin_id, status = %out.kyc.status, "KYC decided");
    Ok(out)
}

/// Approves a pending submission; the user is notified.
#[utoipa::path(
    post, path = "/api/admin/kyc/{id}/approve", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path, description = "KYC submission id")),
    responses(
        (status = 200, description = "Approved", body = AdminKycOut),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such submission", body = ErrorBody),
        (status = 409, description = "Not pending (`kyc_not_pending`)", body = ErrorBody),
    )
)]
pub async fn admin_approve_kyc(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AdminKycOut>, ApiError> {
    Ok(Json(decide(&state, admin, id, None).await?))
}

/// Rejects a pending submission with a reason the user sees; they may submit again.
#[utoipa::path(
    post, path = "/api/admin/kyc/{id}/reject", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(("id" = i64, Path, description = "KYC submission id")),
    request_body = KycRejection,
    responses(
        (status = 200, description = "Rejected", body = AdminKycOut),
        (status = 400, description = "Reason missing or invalid", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such submission", body = ErrorBody),
        (status = 409, description = "Not pending (`kyc_not_pending`)", body = ErrorBody),
    )
)]
pub async fn admin_reject_kyc(
    State(state): State<AppState>,
    admin: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<KycRejection>,
) -> Result<Json<AdminKycOut>, ApiError> {
    let reason = req.reason.trim().to_string();
    crate::core::text::check_user_text("reason", &reason, true)?;
    let n = reason.chars().count();
    if !(3..=500).contains(&n) || reason.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("reason", "must be 3 to 500 characters without control characters"));
    }
    Ok(Json(decide(&state, admin, id, Some(reason)).await?))
}
