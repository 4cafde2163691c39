//! `POST /api/upload`: stores an image or PDF for the caller, and
//! `GET /api/uploads/files/{key}`: hands a private upload to its owner or an
//! operator.
//!
//! The type is decided by the file's first bytes, never by its name or the
//! client's Content-Type: an executable renamed `photo.png` is refused.
//! Identity documents (purpose `kyc`) go to private storage: no static URL
//! reaches them, only the authenticated download.
//!
//! Each user has a quota (`Config::upload_quota`): files and bytes per hour
//! (429 `upload_rate_exceeded`, with Retry-After) and in all (413
//! `upload_quota_exceeded`). It is checked before the body is read and again
//! in the transaction that records the upload, so parallel uploads cannot
//! overshoot it.

use axum::{
    Json,
    extract::{Multipart, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::{
    core::{
        ApiError, ApiPath, AuthUser, OperatorRole, Role,
        access::{operator_role, require_role},
        error::ErrorBody,
        now_ts, ts_to_rfc3339,
    },
    state::AppState,
};

/// Checks that every URL in `images` is an image the user uploaded (not an
/// identity document): a report cannot point at someone else's photo or at
/// an arbitrary address. 422 `upload_not_yours` names the first that is not.
pub fn check_own_images(c: &rusqlite::Connection, user_id: i64, images: &[String]) -> Result<(), ApiError> {
    let mut stmt = c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM media_uploads
                        WHERE user_id = ?1 AND url = ?2 AND content_type LIKE 'image/%' AND purpose != 'kyc')",
    )?;
    for url in images {
        let owned: bool = stmt.query_row(params![user_id, url], |r| r.get(0))?;
        if !owned {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "upload_not_yours",
                format!("{url} is not an image you uploaded with POST /api/upload"),
            )
            .with_details(serde_json::json!({"field": "images", "url": url})));
        }
    }
    Ok(())
}

/// Types a user may upload, by detected MIME type, with the stored extension.
const ALLOWED: &[(&str, &str)] =
    &[("image/jpeg", "jpg"), ("image/png", "png"), ("image/webp", "webp"), ("application/pdf", "pdf")];

const PURPOSES: &[&str] = &["avatar", "kyc", "station_issue", "rental_issue", "other"];

/// Purposes whose files are private: fetched only by their owner and the
/// operators of [`KYC_READERS`].
const PRIVATE_PURPOSES: &[&str] = &["kyc"];

/// The operator roles (besides `owner`) that may read identity documents:
/// those who review KYC. Other operators read the other uploads only.
const KYC_READERS: &[OperatorRole] = &[OperatorRole::Admin, OperatorRole::Support];

fn storage_for(state: &AppState, purpose: &str) -> std::sync::Arc<dyn crate::core::storage::StorageBackend> {
    if PRIVATE_PURPOSES.contains(&purpose) { state.private_storage.clone() } else { state.storage.clone() }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadOut {
    pub id: i64,
    pub url: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub purpose: String,
    pub created_at: String,
}

/// The multipart form: a `file` part and an optional `purpose` part.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
    /// `avatar`, `kyc`, `station_issue`, `rental_issue` or `other` (default).
    purpose: Option<String>,
}

/// Uploads one file (JPEG, PNG, WebP or PDF).
#[utoipa::path(
    post, path = "/api/upload", tag = "app",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = UploadOut),
        (status = 400, description = "No file part or bad purpose", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 413, description = "File too large (`payload_too_large`), or the user's storage quota is used up (`upload_quota_exceeded`)", body = ErrorBody),
        (status = 415, description = "File type not allowed", body = ErrorBody),
        (status = 429, description = "Too many files or bytes uploaded this hour (`upload_rate_exceeded`, Retry-After)", body = ErrorBody),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    mut form: Multipart,
) -> Result<(StatusCode, Json<UploadOut>), ApiError> {
    let max = state.config.upload_max_bytes;
    let quota = state.config.upload_quota.clone();
    // Refuse a user over quota before reading (and storing) the body.
    {
        let quota = quota.clone();
        state.db.read(move |c| check_quota(c, user.id, 0, &quota, now_ts())).await?;
    }
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut purpose = "other".to_string();
    while let Some(mut field) =
        form.next_field().await.map_err(|e| ApiError::new(e.status(), "bad_request", e.body_text()))?
    {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or("upload").chars().take(255).collect::<String>();
                let mut bytes = Vec::new();
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| ApiError::new(e.status(), "bad_request", e.body_text()))?
                {
                    if bytes.len() + chunk.len() > max {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "payload_too_large",
                            format!("files are limited to {max} bytes"),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                file = Some((name, bytes));
            }
            Some("purpose") => {
                let text = field.text().await.map_err(|e| ApiError::new(e.status(), "bad_request", e.body_text()))?;
                purpose = text.trim().to_string();
            }
            _ => {}
        }
    }
    if !PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiError::invalid_field("purpose", format!("must be one of {}", PURPOSES.join(", "))));
    }
    let (original_name, bytes) = file.ok_or_else(|| ApiError::invalid_field("file", "a file part is required"))?;
    if bytes.is_empty() {
        return Err(ApiError::invalid_field("file", "file is empty"));
    }
    let detected = infer::get(&bytes).map(|t| t.mime_type());
    let Some(&(content_type, ext)) = detected.and_then(|m| ALLOWED.iter().find(|(allowed, _)| *allowed == m)) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
            format!("file content is {}; allowed: JPEG, PNG, WebP, PDF", detected.unwrap_or("not a recognised type")),
        ));
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let key = format!("{}.{ext}", uuid::Uuid::new_v4().simple());
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let storage = storage_for(&state, &purpose);
    let purpose_of_refused = purpose.clone();
    let stored_key = key.clone();
    tokio::task::spawn_blocking(move || storage.put(&stored_key, &bytes))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| {
            tracing::error!(error = %e, "storing upload");
            ApiError::internal("could not store the file")
        })?;
    let url = storage_for(&state, &purpose).url(&key);
    let stored_key = key.clone();
    let recorded = state
        .db
        .write(move |tx| {
            let now = now_ts();
            if let Err(over) = check_quota(tx, user.id, size, &quota, now) {
                return Ok(Err(over));
            }
            tx.execute(
                "INSERT INTO media_uploads (user_id, storage_key, url, original_name, content_type, size_bytes, sha256, purpose, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![user.id, key, url, original_name, content_type, size, sha256, purpose, now],
            )?;
            Ok(Ok(UploadOut {
                id: tx.last_insert_rowid(),
                url,
                content_type: content_type.to_string(),
                size_bytes: size,
                sha256,
                purpose: purpose.clone(),
                created_at: ts_to_rfc3339(now),
            }))
        })
        .await;
    let out = match recorded {
        Ok(Ok(out)) => out,
        Ok(Err(e)) | Err(e) => {
            // Not recorded: the stored file must not linger.
            let storage = storage_for(&state, &purpose_of_refused);
            let _ = tokio::task::spawn_blocking(move || storage.delete(&stored_key)).await;
            return Err(e);
        }
    };
    Ok((StatusCode::CREATED, Json(out)))
}

/// Refuses an upload of `size` more bytes that would take `user_id` past its
/// quota: 429 for the hourly limits, 413 for the totals.
fn check_quota(
    conn: &rusqlite::Connection,
    user_id: i64,
    size: i64,
    quota: &crate::config::UploadQuota,
    now: i64,
) -> Result<(), ApiError> {
    let (files, bytes): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM media_uploads WHERE user_id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if files >= quota.total_files || bytes + size > quota.total_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_quota_exceeded",
            format!("your uploads are limited to {} files and {} bytes in all", quota.total_files, quota.total_bytes),
        )
        .with_details(serde_json::json!({ "files": files, "bytes": bytes })));
    }
    let (files, bytes, oldest): (i64, i64, Option<i64>) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0), MIN(created_at) FROM media_uploads
         WHERE user_id = ?1 AND created_at > ?2",
        params![user_id, now - 3600],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if files >= quota.files_per_hour || bytes + size > quota.bytes_per_hour {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "upload_rate_exceeded",
            format!("uploads are limited to {} files and {} bytes an hour", quota.files_per_hour, quota.bytes_per_hour),
        )
        .with_details(serde_json::json!({ "files_this_hour": files, "bytes_this_hour": bytes }));
        e.retry_after = Some(u64::try_from(oldest.map_or(60, |t| t + 3600 - now)).unwrap_or(1).max(1));
        return Err(e);
    }
    Ok(())
}

/// An uploaded file, for its owner or an operator. Private uploads (identity
/// documents) are reachable only here, and only for their owner and the
/// operator roles that review KYC (`owner`, `admin`, `support`; other roles
/// get 403 `role_not_allowed`); anyone else gets 404, as if the file did not
/// exist.
#[utoipa::path(
    get, path = "/api/uploads/files/{key}", tag = "app",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The file's storage key, the last part of its `url`")),
    responses(
        (status = 200, description = "The file, with its detected content type", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An identity document, and the operator's role does not review KYC (`role_not_allowed`)", body = ErrorBody),
        (status = 404, description = "No such file of yours", body = ErrorBody),
    )
)]
pub async fn download(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(key): ApiPath<String>,
) -> Result<Response, ApiError> {
    let lookup = key.clone();
    let row: Option<(i64, String, String)> = state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT user_id, content_type, purpose FROM media_uploads WHERE storage_key = ?1",
                [&lookup],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
        })
        .await?;
    let Some((owner, content_type, purpose)) = row else { return Err(ApiError::not_found("file")) };
    if owner != user.id {
        // Not the owner's: only operators, and identity documents only for
        // the roles that review KYC. Anyone else learns nothing of the file.
        let reader = user.id;
        let role = match user.role {
            Role::Admin => state.db.read(move |c| operator_role(c, reader)).await?,
            Role::User => None,
        };
        let role = role.ok_or_else(|| ApiError::not_found("file"))?;
        if PRIVATE_PURPOSES.contains(&purpose.as_str()) {
            require_role(role, KYC_READERS)?;
        }
    }
    let storage = storage_for(&state, &purpose);
    let bytes = tokio::task::spawn_blocking(move || storage.get(&key))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| {
            tracing::error!(error = %e, "reading upload");
            ApiError::internal("could not read the file")
        })?
        .ok_or_else(|| ApiError::not_found("file"))?;
    tracing::debug!(owner, reader = user.id, "upload fetched");
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            // Identity documents must not linger in shared caches.
            (header::CACHE_CONTROL, "private, no-store".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
        .into_response())
}
