//! Answers every operation can give whatever its handler does, added to the
//! OpenAPI document in one place.
//!
//! A handler documents the answers its own rules give (404 for an unknown
//! id, 409 for a wrong state). The answers that come from the plumbing in
//! front of it (the bearer extractor, the JSON and multipart extractors, the
//! query and path extractors, the operator guard) follow from the shape of
//! the operation, so they are derived here from that shape rather than
//! repeated in each `#[utoipa::path]`: a generated client then handles every
//! status the server can send. `tests/tests/api/openapi_conformance.rs`
//! probes every operation and checks each answer is documented.

use utoipa::openapi::{
    OpenApi, RefOr,
    path::{Operation, ParameterIn},
    response::{Response, ResponseBuilder},
};

use crate::core::error::ErrorBody;

/// An answer in the one error shape.
fn error_answer(description: &str) -> RefOr<Response> {
    let body = utoipa::openapi::ContentBuilder::new()
        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(<ErrorBody as utoipa::ToSchema>::name()))))
        .build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", body).build())
}

fn ensure(op: &mut Operation, status: &str, description: &str) {
    op.responses.responses.entry(status.to_string()).or_insert_with(|| error_answer(description));
}

/// The statuses an operation's plumbing can answer, by its shape.
fn complete_operation(path: &str, op: &mut Operation) {
    let signed_in = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if signed_in {
        ensure(op, "401", "Missing, invalid or expired access token, or a revoked session");
    }
    if signed_in && path.starts_with("/api/admin/") {
        ensure(op, "403", "Not an operator (`forbidden`), or a role this route does not allow (`role_not_allowed`)");
    }
    if let Some(RefOr::T(body)) = &op.request_body {
        let multipart = body.content.keys().any(|k| k.starts_with("multipart/"));
        ensure(op, "400", "Malformed body or a field that fails validation");
        ensure(op, "413", "Body larger than this operation accepts");
        ensure(op, "415", if multipart { "Body is not multipart/form-data" } else { "Body is not application/json" });
    }
    let parameters = op.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| parameters.iter().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place));
    let (query, path_params) = (has(ParameterIn::Query), has(ParameterIn::Path));
    if query || path_params {
        ensure(op, "400", "A query or path parameter that fails validation");
    }
    if path_params {
        ensure(op, "404", "No such object (or not the caller's)");
    }
}

/// Adds the plumbing's answers to every operation of the document.
pub fn complete_answers(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
        ]
        .into_iter()
        .flatten()
        {
            complete_operation(path, op);
        }
    }
}
