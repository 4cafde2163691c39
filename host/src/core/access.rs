//! JWTs and the extractors that guard every non-public endpoint.
//!
//! Operators ([`Operator`]) carry one of the [`OperatorRole`]s. Each admin
//! route declares the roles it accepts in one place, its OpenAPI operation
//! (`extensions(("x-roles" = json!(["finance"])))`): the extractor reads that
//! declaration back from the document, so what the document shows is what the
//! server enforces. `owner` may do everything; a route that declares nothing
//! is for owners only.
//!
//! Access tokens are HS256 JWTs with the algorithm pinned: a token that names
//! another algorithm (`none` included) fails validation. Each access token
//! carries its sign-in session (`sid`, the refresh-token family); the
//! extractor checks in one indexed query that the user is still active and the
//! session not revoked, so logout and account deletion take effect at once.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts, MatchedPath},
    http::{Method, StatusCode, request::Parts},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{
    db::{Db, now_ts},
    error::ApiError,
    live_sessions::LiveSessions,
    text_enum::text_enum,
};

const ISSUER: &str = "powerbank";
const ACCESS_AUDIENCE: &str = "powerbank-api";
const VERIFICATION_AUDIENCE: &str = "powerbank-otp-verification";

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The kind of account: an app user, or an operator (`admin`: signs in with a
/// password at `POST /api/admin/login`; what an operator may do is its
/// [`OperatorRole`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub role: Role,
    /// Sign-in session: the refresh-token family this token was issued in.
    pub sid: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Proof that the bearer received an OTP at `sub` (a phone number or email).
#[derive(Debug, Serialize, Deserialize)]
pub struct VerificationClaims {
    pub sub: String,
    pub purpose: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Single use: the id of the OTP row it was minted from.
    pub otp_id: i64,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    fn validation(audience: &str) -> Validation {
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = vec![Algorithm::HS256];
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[audience]);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v
    }

    fn encode<T: Serialize>(&self, claims: &T) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("signing token: {e}")))
    }

    fn decode<T: DeserializeOwned>(&self, token: &str, audience: &str) -> Result<T, ApiError> {
        jsonwebtoken::decode::<T>(token, &self.decoding, &Self::validation(audience)).map(|d| d.claims).map_err(|e| {
            let reason = match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
                _ => "invalid token",
            };
            ApiError::unauthorized(reason)
        })
    }

    pub fn issue_access(&self, user_id: i64, role: Role, session_id: &str, ttl_secs: i64) -> Result<String, ApiError> {
        let now = now_ts();
        self.encode(&AccessClaims {
            sub: user_id.to_string(),
            role,
            sid: session_id.to_string(),
            iss: ISSUER.into(),
            aud: ACCESS_AUDIENCE.into(),
            iat: now,
            exp: now + ttl_secs,
        })
    }

    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, ApiError> {
        self.decode(token, ACCESS_AUDIENCE)
    }

    pub fn issue_verification(
        &self,
        target: &str,
        purpose: &str,
        otp_id: i64,
        ttl_secs: i64,
    ) -> Result<String, ApiError> {
        let now = now_ts();
        self.encode(&VerificationClaims {
            sub: target.to_string(),
            purpose: purpose.to_string(),
            iss: ISSUER.into(),
            aud: VERIFICATION_AUDIENCE.into(),
            iat: now,
            exp: now + ttl_secs,
            otp_id,
        })
    }

    pub fn verify_verification(&self, token: &str) -> Result<VerificationClaims, ApiError> {
        self.decode(token, VERIFICATION_AUDIENCE)
    }
}

/// An authenticated caller. Taking it as a handler argument makes the
/// endpoint require a valid access token. It works on any router state that
/// hands out the [`Db`] and the [`JwtKeys`] through [`FromRef`].
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub role: Role,
    pub session_id: String,
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let value = header.to_str().map_err(|_| ApiError::unauthorized("malformed authorization header"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::unauthorized("authorization must be a Bearer token"))?;
    Ok(token.trim())
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Db: FromRef<S>,
    Arc<JwtKeys>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let claims = Arc::<JwtKeys>::from_ref(state).verify_access(bearer(parts)?)?;
        let id: i64 = claims.sub.parse().map_err(|_| ApiError::unauthorized("invalid token"))?;
        let sid = claims.sid.clone();
        let db = Db::from_ref(state);
        // Cached until `users` or `token_families` change (logout, reuse of
        // a refresh token, suspension, deletion, a role change).
        let live = LiveSessions::of(&db)
            .role(&db, id, &claims.sid, move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT u.role FROM users u
                         JOIN token_families f ON f.id = ?2 AND f.user_id = u.id
                         WHERE u.id = ?1 AND u.status = 'active' AND f.revoked_at IS NULL",
                    )?
                    .query_row(rusqlite::params![id, sid], |r| r.get::<_, String>(0))
                    .optional()?)
            })
            .await?;
        // The role is read from the database, not trusted from the token, so a
        // demoted admin loses access without waiting for token expiry.
        let role = live
            .as_deref()
            .and_then(Role::parse)
            .ok_or_else(|| ApiError::unauthorized("session revoked or account inactive"))?;
        Ok(AuthUser { id, role, session_id: claims.sid })
    }
}

text_enum! {
    /// What an operator may do (docs/admin.md has the table). Stored in
    /// `operators.role`.
    pub enum OperatorRole {
        /// Everything, and manages operators.
        Owner = "owner",
        /// Everything but operators.
        Admin = "admin",
        /// Reads users, rentals and payments, reviews KYC, triages issues; no money moves.
        Support = "support",
        /// Refunds, balance adjustments, coupons, payment views.
        Finance = "finance",
        /// Stations, slots, power banks, ejects, the station link.
        FieldTech = "field_tech",
    }
}

/// The OpenAPI operation extension that lists the roles a route accepts.
pub const ROLES_EXTENSION: &str = "x-roles";

/// Where the request came from, kept with each audit row.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The `x-request-id` the server set (or the client sent).
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    fn of(parts: &Parts) -> Self {
        let header = |name: &str, max: usize| {
            parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(max).collect::<String>())
        };
        RequestMeta {
            request_id: header("x-request-id", 100),
            ip: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()),
            user_agent: header("user-agent", 300),
        }
    }
}

/// A signed-in operator allowed to call the route it is extracted for.
///
/// Taking it as a handler argument makes the route require an operator
/// whose role the route declares in its `x-roles` (see the module docs):
/// 401 without a live session, 403 `forbidden` for app users, 403
/// `role_not_allowed` for other roles.
#[derive(Debug, Clone)]
pub struct Operator {
    pub id: i64,
    pub role: OperatorRole,
    pub session_id: String,
    pub request: RequestMeta,
}

impl Operator {
    /// The operator behind the bearer token of `parts`, whatever the route:
    /// for checks outside a route (a long-lived stream re-checking its
    /// session). Handlers take [`Operator`] as an argument instead.
    pub async fn authenticate<S>(parts: &Parts, state: &S) -> Result<Self, ApiError>
    where
        S: Send + Sync,
        Db: FromRef<S>,
        Arc<JwtKeys>: FromRef<S>,
    {
        let claims = Arc::<JwtKeys>::from_ref(state).verify_access(bearer(parts)?)?;
        let id: i64 = claims.sub.parse().map_err(|_| ApiError::unauthorized("invalid token"))?;
        let sid = claims.sid.clone();
        let found = Db::from_ref(state)
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT o.role FROM users u
                         JOIN token_families f ON f.id = ?2 AND f.user_id = u.id
                         LEFT JOIN operators o ON o.user_id = u.id AND o.disabled_at IS NULL
                         WHERE u.id = ?1 AND u.status = 'active' AND f.revoked_at IS NULL",
                        rusqlite::params![id, sid],
                        |r| r.get::<_, Option<OperatorRole>>(0),
                    )
                    .optional()?)
            })
            .await?;
        let role = match found {
            None => return Err(ApiError::unauthorized("session revoked or account inactive")),
            Some(None) => {
                return Err(ApiError::forbidden("this needs an operator account"));
            }
            Some(Some(role)) => role,
        };
        Ok(Operator { id, role, session_id: claims.sid, request: RequestMeta::of(parts) })
    }

    /// Whether this operator may act where `allowed` roles may (owners always may).
    pub fn may(&self, allowed: &[OperatorRole]) -> bool {
        self.role == OperatorRole::Owner || allowed.contains(&self.role)
    }

    /// 403 `role_not_allowed` unless [`Operator::may`].
    pub fn require(&self, allowed: &[OperatorRole]) -> Result<(), ApiError> {
        require_role(self.role, allowed)
    }
}

/// 403 `role_not_allowed` unless `role` is an owner or in `allowed`: the one
/// refusal of [`Operator::require`], also for routes that serve users and
/// operators alike and check the role themselves.
pub fn require_role(role: OperatorRole, allowed: &[OperatorRole]) -> Result<(), ApiError> {
    if role == OperatorRole::Owner || allowed.contains(&role) {
        return Ok(());
    }
    let mut roles = vec![OperatorRole::Owner.as_str()];
    roles.extend(allowed.iter().filter(|r| **r != OperatorRole::Owner).map(|r| r.as_str()));
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "role_not_allowed",
        format!("the {role} role may not do this; it needs one of: {}", roles.join(", ")),
    )
    .with_details(serde_json::json!({ "role": role, "allowed_roles": roles })))
}

/// The operator role of a live operator account, `None` for anyone else.
pub fn operator_role(c: &rusqlite::Connection, user_id: i64) -> Result<Option<OperatorRole>, ApiError> {
    Ok(c.query_row(
        "SELECT o.role FROM operators o JOIN users u ON u.id = o.user_id
         WHERE o.user_id = ?1 AND o.disabled_at IS NULL AND u.status = 'active'",
        [user_id],
        |r| r.get(0),
    )
    .optional()?)
}

impl<S> FromRequestParts<S> for Operator
where
    S: Send + Sync,
    Db: FromRef<S>,
    Arc<JwtKeys>: FromRef<S>,
    Arc<RouteRoles>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let operator = Operator::authenticate(parts, state).await?;
        let routes = Arc::<RouteRoles>::from_ref(state);
        let path = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str);
        operator.require(routes.allowed(&parts.method, path))?;
        Ok(operator)
    }
}

/// The roles each operator route accepts, read from the `x-roles` of its
/// OpenAPI operation: the one declaration the document shows and the
/// [`Operator`] extractor enforces.
#[derive(Debug, Default)]
pub struct RouteRoles {
    by_route: HashMap<(Method, String), Vec<OperatorRole>>,
}

/// The methods an OpenAPI path item can hold, with the operation of each.
fn operations(item: &mut utoipa::openapi::PathItem) -> [(Method, Option<&mut utoipa::openapi::path::Operation>); 5] {
    [
        (Method::GET, item.get.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
    ]
}

/// Whether an operation is an operator route: under `/api/admin` and signed in.
fn is_operator_route(path: &str, op: &utoipa::openapi::path::Operation) -> bool {
    path.starts_with("/api/admin/") && op.security.as_ref().is_some_and(|s| !s.is_empty())
}

impl RouteRoles {
    /// Completes every operator route's declaration in `doc`: `owner` is
    /// listed on each, a route that declares nothing gets `["owner"]`, and the
    /// description says who may call it. Returns the table the extractor
    /// checks; an unknown role text is an error (a typo must not start).
    pub fn declare(doc: &mut utoipa::openapi::OpenApi) -> Result<Self, String> {
        let mut by_route = HashMap::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                let Some(op) = op else { continue };
                let declared = op.extensions.as_ref().and_then(|e| e.get(ROLES_EXTENSION)).cloned();
                if declared.is_none() && !is_operator_route(path, op) {
                    continue;
                }
                let mut roles = vec![OperatorRole::Owner];
                for text in declared.as_ref().and_then(|v| v.as_array()).into_iter().flatten() {
                    let role = text
                        .as_str()
                        .and_then(OperatorRole::parse)
                        .ok_or_else(|| format!("{method} {path}: {text} in x-roles is not a role"))?;
                    if !roles.contains(&role) {
                        roles.push(role);
                    }
                }
                let texts: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                op.extensions.get_or_insert_with(Default::default).insert(ROLES_EXTENSION.into(), texts.clone().into());
                let line = format!("Roles: {}.", texts.join(", "));
                let description = op.description.get_or_insert_with(String::new);
                if !description.contains(&line) {
                    if !description.is_empty() {
                        description.push_str("\n\n");
                    }
                    description.push_str(&line);
                }
                by_route.insert((method, path.clone()), roles);
            }
        }
        Ok(RouteRoles { by_route })
    }

    /// The roles that may call `method path` (a route pattern, `/api/x/{id}`);
    /// owners only for a route that declares none.
    pub fn allowed(&self, method: &Method, path: Option<&str>) -> &[OperatorRole] {
        const OWNER_ONLY: &[OperatorRole] = &[OperatorRole::Owner];
        path.and_then(|p| self.by_route.get(&(method.clone(), p.to_string()))).map_or(OWNER_ONLY, Vec::as_slice)
    }

    /// Every operator route `role` may call, as `(method, path)`, sorted.
    pub fn routes_for(&self, role: OperatorRole) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .by_route
            .iter()
            .filter(|(_, roles)| role == OperatorRole::Owner || roles.contains(&role))
            .map(|((m, p), _)| (m.to_string(), p.clone()))
            .collect();
        out.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_token_round_trip_and_audience_separation() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let token = keys.issue_access(7, Role::User, "fam", 60).unwrap();
        let claims = keys.verify_access(&token).unwrap();
        assert_eq!(claims.sub, "7");
        // An access token is not a verification token and vice versa.
        assert!(keys.verify_verification(&token).is_err());
        let v = keys.issue_verification("+9779800000000", "login", 1, 60).unwrap();
        assert!(keys.verify_access(&v).is_err());
    }

    #[test]
    fn declared_roles_get_the_owner_and_undeclared_operator_routes_are_owner_only() {
        use utoipa::openapi::{
            PathItem, PathsBuilder, SecurityRequirement,
            path::{HttpMethod, OperationBuilder},
        };
        let op = |roles: Option<serde_json::Value>| {
            let mut b = OperationBuilder::new().security(SecurityRequirement::new("bearer", Vec::<String>::new()));
            if let Some(r) = roles {
                b = b.extensions(Some([(ROLES_EXTENSION, r)].into_iter().collect()));
            }
            b.build()
        };
        let paths = PathsBuilder::new()
            .path("/api/admin/a", PathItem::new(HttpMethod::Get, op(Some(serde_json::json!(["finance"])))))
            .path("/api/admin/b/{id}", PathItem::new(HttpMethod::Post, op(None)))
            .path("/api/public", PathItem::new(HttpMethod::Get, OperationBuilder::new().build()))
            .build();
        let mut doc = utoipa::openapi::OpenApiBuilder::new().paths(paths).build();
        let table = RouteRoles::declare(&mut doc).unwrap();
        assert_eq!(table.allowed(&Method::GET, Some("/api/admin/a")), [OperatorRole::Owner, OperatorRole::Finance]);
        assert_eq!(table.allowed(&Method::POST, Some("/api/admin/b/{id}")), [OperatorRole::Owner]);
        assert_eq!(table.allowed(&Method::GET, None), [OperatorRole::Owner]);
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["paths"]["/api/admin/a"]["get"]["x-roles"], serde_json::json!(["owner", "finance"]));
        assert_eq!(json["paths"]["/api/admin/b/{id}"]["post"]["x-roles"], serde_json::json!(["owner"]));
        assert!(json["paths"]["/api/public"]["get"].get("x-roles").is_none());
        // Declaring again changes nothing; an unknown role is refused.
        let again = serde_json::to_value({
            RouteRoles::declare(&mut doc).unwrap();
            &doc
        })
        .unwrap();
        assert_eq!(again, json);
        let mut bad = utoipa::openapi::OpenApiBuilder::new()
            .paths(
                PathsBuilder::new()
                    .path("/api/admin/c", PathItem::new(HttpMethod::Get, op(Some(serde_json::json!(["boss"])))))
                    .build(),
            )
            .build();
        assert!(RouteRoles::declare(&mut bad).unwrap_err().contains("boss"));
    }

    #[test]
    fn other_key_and_expired_tokens_are_refused() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let other = JwtKeys::new(b"ffffffffffffffffffffffffffffffff");
        let token = other.issue_access(7, Role::User, "fam", 60).unwrap();
        assert!(keys.verify_access(&token).is_err());
        let expired = keys.issue_access(7, Role::User, "fam", -10).unwrap();
        assert!(keys.verify_access(&expired).is_err());
    }
}
