//! JWTs and the extractors that guard every non-public endpoint.
//!
//! Access tokens are HS256 JWTs with the algorithm pinned: a token that names
//! another algorithm (`none` included) fails validation. Each access token
//! carries its sign-in session (`sid`, the refresh-token family); the
//! extractor checks in one indexed query that the user is still active and the
//! session not revoked, so logout and account deletion take effect at once.

use std::sync::Arc;

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{
    db::{Db, now_ts},
    error::ApiError,
    live_sessions::LiveSessions,
};

const ISSUER: &str = "powerbank";
const ACCESS_AUDIENCE: &str = "powerbank-api";
const VERIFICATION_AUDIENCE: &str = "powerbank-otp-verification";

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

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

/// An authenticated caller with the admin role.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

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

impl<S> FromRequestParts<S> for AdminUser
where
    S: Send + Sync,
    Db: FromRef<S>,
    Arc<JwtKeys>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role != Role::Admin {
            return Err(ApiError::forbidden("admin role required"));
        }
        Ok(AdminUser(user))
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
    fn other_key_and_expired_tokens_are_refused() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let other = JwtKeys::new(b"ffffffffffffffffffffffffffffffff");
        let token = other.issue_access(7, Role::User, "fam", 60).unwrap();
        assert!(keys.verify_access(&token).is_err());
        let expired = keys.issue_access(7, Role::User, "fam", -10).unwrap();
        assert!(keys.verify_access(&expired).is_err());
    }
}
