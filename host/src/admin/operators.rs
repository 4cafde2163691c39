//! Operator accounts: who may sign in to the admin API and with which role.
//!
//! An operator is a `users` row of role `admin` (it signs in with a password)
//! plus its `operators` row (its [`OperatorRole`]). Owners manage operators;
//! disabling one revokes its sessions in the same transaction, so its tokens
//! stop at once. The last active owner can be neither demoted nor disabled,
//! so a site is never left without someone who can manage operators.

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, OperatorRole, Page, PageParams, Role,
        audit::{self, Target},
        error::ErrorBody,
        now_ts, opt_ts, ts_to_rfc3339,
    },
    state::AppState,
    users::{auth::create_user, identifier::Identifier, operator_signin::hash_password, sessions},
};

pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OperatorOut {
    pub id: i64,
    pub email: Option<String>,
    pub role: OperatorRole,
    pub disabled: bool,
    pub disabled_at: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: String,
}

const OPERATOR_SELECT: &str = "SELECT u.id, u.email, o.role, o.disabled_at, o.created_by, o.created_at
                               FROM operators o JOIN users u ON u.id = o.user_id";

fn operator_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OperatorOut> {
    let disabled_at: Option<i64> = r.get(3)?;
    Ok(OperatorOut {
        id: r.get(0)?,
        email: r.get(1)?,
        role: r.get(2)?,
        disabled: disabled_at.is_some(),
        disabled_at: opt_ts(disabled_at),
        created_by: r.get(4)?,
        created_at: ts_to_rfc3339(r.get(5)?),
    })
}

fn load(conn: &Connection, id: i64) -> Result<OperatorOut, ApiError> {
    conn.query_row(&format!("{OPERATOR_SELECT} WHERE o.user_id = ?1"), [id], operator_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("operator"))
}

/// Checks a new operator's email and password and hashes the password (slow:
/// call it off the async threads).
pub fn prepare_credentials(email: &str, password: &str) -> Result<(Identifier, String), ApiError> {
    let identifier = Identifier::parse(email)?;
    if !matches!(identifier, Identifier::Email(_)) {
        return Err(ApiError::invalid_field("email", "operators sign in with an email address"));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS || password.chars().count() > 256 {
        return Err(ApiError::invalid_field("password", format!("must be {MIN_PASSWORD_CHARS} to 256 characters")));
    }
    Ok((identifier, hash_password(password)?))
}

/// Creates an operator account in the caller's transaction (the CLI, the
/// demo data and `POST /api/admin/operators`). 409 `already_registered` when
/// the email has an account.
pub fn create(
    tx: &Transaction<'_>,
    email: &Identifier,
    password_hash: &str,
    role: OperatorRole,
    created_by: Option<i64>,
) -> Result<i64, ApiError> {
    let now = now_ts();
    let id = create_user(tx, email, Role::Admin, None, Some("Operator"), Some(password_hash), now)?;
    tx.execute(
        "INSERT INTO operators (user_id, role, created_by, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![id, role, created_by, now],
    )?;
    Ok(id)
}

/// 409 `last_owner` when `id` is the only active owner (it may not stop being one).
fn keep_an_owner(tx: &Transaction<'_>, id: i64) -> Result<(), ApiError> {
    let other_owners: i64 = tx.query_row(
        "SELECT COUNT(*) FROM operators WHERE role = ?1 AND disabled_at IS NULL AND user_id != ?2",
        params![OperatorRole::Owner, id],
        |r| r.get(0),
    )?;
    let is_owner: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM operators WHERE user_id = ?1 AND role = ?2 AND disabled_at IS NULL)",
        params![id, OperatorRole::Owner],
        |r| r.get(0),
    )?;
    if is_owner && other_owners == 0 {
        return Err(ApiError::conflict("last_owner", "this is the only active owner; make another owner first"));
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteOut {
    pub method: String,
    pub path: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    pub id: i64,
    pub email: Option<String>,
    pub role: OperatorRole,
    /// Every operator route this role may call (the API's own `x-roles`).
    pub allowed: Vec<RouteOut>,
}

/// The signed-in operator, its role and what it may call.
#[utoipa::path(
    get, path = "/api/admin/me", tag = "admin", operation_id = "admin_me",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance", "field_tech"]))),
    responses(
        (status = 200, description = "The operator", body = MeOut),
    )
)]
pub async fn me(State(state): State<AppState>, operator: Operator) -> Result<Json<MeOut>, ApiError> {
    let id = operator.id;
    let email: Option<String> =
        state.db.read(move |c| Ok(c.query_row("SELECT email FROM users WHERE id = ?1", [id], |r| r.get(0))?)).await?;
    let allowed = state
        .route_roles
        .routes_for(operator.role)
        .into_iter()
        .map(|(method, path)| RouteOut { method, path })
        .collect();
    Ok(Json(MeOut { id, email, role: operator.role, allowed }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OperatorFilter {
    /// Only operators of this role.
    pub role: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Every operator, newest first.
#[utoipa::path(
    get, path = "/api/admin/operators", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["owner"]))),
    params(OperatorFilter),
    responses(
        (status = 200, description = "A page of operators", body = Page<OperatorOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn list_operators(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<OperatorFilter>,
) -> Result<Json<Page<OperatorOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor, limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let role = f
        .role
        .as_deref()
        .map(str::parse::<OperatorRole>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("role", e))?;
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{OPERATOR_SELECT} WHERE o.user_id < ?1 AND (?2 IS NULL OR o.role = ?2) ORDER BY o.user_id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![before, role, limit + 1], operator_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |o| o.id)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorIn {
    pub email: String,
    /// 12 to 256 characters.
    pub password: String,
    pub role: OperatorRole,
    /// Why (kept in the audit log).
    pub reason: Option<String>,
}

/// Creates an operator who signs in at `POST /api/admin/login`.
#[utoipa::path(
    post, path = "/api/admin/operators", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["owner"]))),
    request_body = OperatorIn,
    responses(
        (status = 201, description = "Operator created", body = OperatorOut),
        (status = 400, description = "Invalid email, password or role", body = ErrorBody),
        (status = 409, description = "The email has an account (`already_registered`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn create_operator(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<OperatorIn>,
) -> Result<(StatusCode, Json<OperatorOut>), ApiError> {
    let reason = audit::optional_reason(body.reason.as_deref())?;
    let (email, password) = (body.email, body.password);
    let (identifier, hash) = tokio::task::spawn_blocking(move || prepare_credentials(&email, &password))
        .await
        .map_err(|e| ApiError::internal(format!("hashing task: {e}")))??;
    let role = body.role;
    let out = state
        .db
        .write(move |tx| {
            let id = create(tx, &identifier, &hash, role, Some(operator.id))?;
            let out = load(tx, id)?;
            audit::record(tx, &operator, "operator.create", Target::new("operator", id), &(), &out, reason.as_deref())?;
            Ok(out)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChangeIn {
    pub role: OperatorRole,
    /// Required: why (kept in the audit log).
    pub reason: Option<String>,
}

/// Gives an operator another role; its next request already has it.
#[utoipa::path(
    post, path = "/api/admin/operators/{id}/role", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["owner"]))),
    params(("id" = i64, Path, description = "Operator (user) id")),
    request_body = RoleChangeIn,
    responses(
        (status = 200, description = "The operator with its new role", body = OperatorOut),
        (status = 400, description = "Invalid role, or no reason (`reason_required`)", body = ErrorBody),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 409, description = "Already that role (`role_unchanged`), or the only active owner (`last_owner`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn change_role(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RoleChangeIn>,
) -> Result<Json<OperatorOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    let out = state
        .db
        .write(move |tx| {
            let before = load(tx, id)?;
            if before.role == body.role {
                return Err(ApiError::conflict("role_unchanged", format!("the operator is already {}", body.role)));
            }
            if body.role != OperatorRole::Owner {
                keep_an_owner(tx, id)?;
            }
            tx.execute(
                "UPDATE operators SET role = ?2, updated_at = ?3 WHERE user_id = ?1",
                params![id, body.role, now_ts()],
            )?;
            let after = load(tx, id)?;
            audit::record(tx, &operator, "operator.role", Target::new("operator", id), &before, &after, Some(&reason))?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonIn {
    /// Required: why (kept in the audit log).
    pub reason: Option<String>,
}

/// Disables an operator: its sessions are revoked at once and it can no
/// longer sign in.
#[utoipa::path(
    post, path = "/api/admin/operators/{id}/disable", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["owner"]))),
    params(("id" = i64, Path, description = "Operator (user) id")),
    request_body = ReasonIn,
    responses(
        (status = 200, description = "The disabled operator", body = OperatorOut),
        (status = 400, description = "No reason (`reason_required`)", body = ErrorBody),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 409, description = "Already disabled (`operator_disabled`), or the only active owner (`last_owner`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn disable_operator(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReasonIn>,
) -> Result<Json<OperatorOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    let out = state
        .db
        .write(move |tx| {
            let before = load(tx, id)?;
            if before.disabled {
                return Err(ApiError::conflict("operator_disabled", "the operator is already disabled"));
            }
            keep_an_owner(tx, id)?;
            let now = now_ts();
            tx.execute("UPDATE operators SET disabled_at = ?2, updated_at = ?2 WHERE user_id = ?1", params![id, now])?;
            sessions::revoke_all_for_user(tx, id, "operator disabled", now)?;
            let after = load(tx, id)?;
            audit::record(
                tx,
                &operator,
                "operator.disable",
                Target::new("operator", id),
                &before,
                &after,
                Some(&reason),
            )?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}

/// Enables a disabled operator again (it signs in anew).
#[utoipa::path(
    post, path = "/api/admin/operators/{id}/enable", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["owner"]))),
    params(("id" = i64, Path, description = "Operator (user) id")),
    request_body = ReasonIn,
    responses(
        (status = 200, description = "The enabled operator", body = OperatorOut),
        (status = 400, description = "No reason (`reason_required`)", body = ErrorBody),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 409, description = "Not disabled (`operator_enabled`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn enable_operator(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReasonIn>,
) -> Result<Json<OperatorOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    let out = state
        .db
        .write(move |tx| {
            let before = load(tx, id)?;
            if !before.disabled {
                return Err(ApiError::conflict("operator_enabled", "the operator is not disabled"));
            }
            tx.execute(
                "UPDATE operators SET disabled_at = NULL, updated_at = ?2 WHERE user_id = ?1",
                params![id, now_ts()],
            )?;
            let after = load(tx, id)?;
            audit::record(
                tx,
                &operator,
                "operator.enable",
                Target::new("operator", id),
                &before,
                &after,
                Some(&reason),
            )?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}
