//! The one error type of the HTTP API.
//!
//! Handlers return `Result<_, ApiError>` and use `?`. Every 4xx/5xx the server
//! sends, including the ones axum and tower-http produce on their own (unknown
//! route, wrong method, body too large, timeout), leaves in one JSON shape:
//! `{"error": {"code", "message", "details", "request_id"}}`. The request id is
//! filled in by [`error_shape_layer`], which sees both the request and the
//! response.

use axum::{
    extract::{Request, rejection::JsonRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds, for 429 and 503 answers.
    pub retry_after: Option<u64>,
}

/// The error body every failing endpoint returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra structured information (field errors, limits) when there is any.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    /// The `x-request-id` of the request, for support and logs.
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A request whose fields failed validation; `field` names the culprit.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", format!("{field}: {message}"))
            .with_details(serde_json::json!({ "fields": { field: [message] } }))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {retry_after} s"),
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        // Busy after the busy timeout means the box is overloaded, not that the
        // request is wrong: tell the client to come back.
        if let rusqlite::Error::SqliteFailure(e, _) = &err
            && e.code == rusqlite::ErrorCode::DatabaseBusy
        {
            let mut api = Self::unavailable("database busy, retry shortly");
            api.retry_after = Some(1);
            return api;
        }
        tracing::error!(error = %err, "database error");
        Self::internal("database error")
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<ApiError>() {
            Ok(api) => api,
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "internal error");
                Self::internal("internal error")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match &rejection {
            JsonRejection::MissingJsonContentType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            JsonRejection::BytesRejection(_) => (rejection.status(), "bad_request"),
            // An amount outside its range (`core::money::Paisa`).
            JsonRejection::JsonDataError(e)
                if e.body_text().contains(&format!("{}: ", crate::core::money::INVALID_AMOUNT)) =>
            {
                (StatusCode::UNPROCESSABLE_ENTITY, crate::core::money::INVALID_AMOUNT)
            }
            // Wrong field types and missing fields: the body parsed as JSON but not as the type.
            JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            _ => (StatusCode::BAD_REQUEST, "malformed_json"),
        };
        Self::new(status, code, rejection.body_text())
    }
}

/// Carried in the response extensions so the outer layer can add the request id.
#[derive(Clone)]
struct PendingError(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response.extensions_mut().insert(PendingError(self));
        response
    }
}

fn render(error: ApiError, request_id: Option<String>, headers: HeaderMap) -> Response {
    let body = ErrorBody {
        error: ErrorDetail { code: error.code.to_string(), message: error.message, details: error.details, request_id },
    };
    let mut response = (error.status, axum::Json(body)).into_response();
    for (name, value) in headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// Outer middleware: renders every error response in the one shape, whether it
/// came from a handler (`ApiError`) or from the framework (plain status codes).
pub async fn error_shape_layer(request: Request, next: Next) -> Response {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    if let Some(PendingError(error)) = parts.extensions.get::<PendingError>().cloned() {
        return render(error, request_id, parts.headers);
    }
    let already_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if already_json {
        return Response::from_parts(parts, body);
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed on this route"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "request took too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "unsupported content type"),
        s if s.is_server_error() => ("internal_error", "internal error"),
        _ => ("bad_request", "bad request"),
    };
    render(ApiError::new(status, code, message), request_id, parts.headers)
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", rejection.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", rejection.body_text())
    }
}

impl From<axum::extract::multipart::MultipartRejection> for ApiError {
    fn from(rejection: axum::extract::multipart::MultipartRejection) -> Self {
        Self::new(rejection.status(), "bad_request", rejection.body_text())
    }
}

/// `axum::Json` whose rejections are rendered as [`ApiError`].
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` whose rejections are rendered as [`ApiError`].
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` whose rejections are rendered as [`ApiError`].
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;
