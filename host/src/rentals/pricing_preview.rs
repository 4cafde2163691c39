//! `POST /api/admin/pricing/preview`: the serving pricing plugin run on a
//! package and a due/return time, so an operator can check a config (late-fee
//! mode, grace, caps, lost penalty) before and after a reload. Nothing is
//! written.

use axum::{Json, extract::State};
use powerbank_plugin_runtime::{
    PluginKind,
    types::{CallContext, LostRequest, OverdueRequest},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    core::{ApiError, ApiJson, Operator, error::ErrorBody},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// An active rental package.
    pub package_id: i64,
    /// When the rental is due back (RFC 3339).
    pub due_at: String,
    /// When the bank is returned (RFC 3339); before `due_at` means on time.
    pub returned_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewLine {
    pub label: String,
    pub amount_paisa: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewQuote {
    pub amount_paisa: i64,
    pub breakdown: Vec<PreviewLine>,
    pub due_minutes: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewOverdue {
    pub amount_paisa: i64,
    pub explanation: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewLost {
    /// Minutes after the due time at which the user is reminded.
    pub reminder_minutes: Vec<u32>,
    /// Minutes after the due time at which the bank is declared lost.
    pub lost_after_minutes: u32,
    pub penalty_paisa: i64,
    pub explanation: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewOut {
    /// The serving pricing plugin, `name@version`.
    pub plugin: Option<String>,
    pub package_code: String,
    /// What a rental of the package costs now.
    pub quote: PreviewQuote,
    /// The overdue charge for a return at `returned_at`.
    pub overdue: PreviewOverdue,
    /// What happens if the bank is never returned.
    pub lost: PreviewLost,
}

fn timestamp_ms(field: &str, raw: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 date-time, e.g. 2025-01-31T18:00:00+05:45"))
}

/// Runs the serving pricing plugin on a package and a due/return time.
#[utoipa::path(
    post, path = "/api/admin/pricing/preview", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "Quote, overdue charge and lost policy by the serving plugin", body = PreviewOut),
        (status = 400, description = "A time that is not RFC 3339", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such active package", body = ErrorBody),
        (status = 422, description = "The plugin refused the input", body = ErrorBody),
        (status = 502, description = "The pricing plugin failed or is not loaded", body = ErrorBody),
    )
)]
pub async fn preview(
    State(state): State<AppState>,
    admin: Operator,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> Result<Json<PreviewOut>, ApiError> {
    let due_ms = timestamp_ms("due_at", &req.due_at)?;
    let returned_ms = timestamp_ms("returned_at", &req.returned_at)?;
    let (package, quote) = crate::packages::quote(&state, admin.id, req.package_id, None).await?;
    let context = CallContext { user_id: None, station_sn: None, now_unix_ms: chrono::Utc::now().timestamp_millis() };
    let pricing = state.plugins.pricing();
    let overdue = pricing
        .overdue_charge(OverdueRequest {
            package: package.clone(),
            due_unix_ms: due_ms,
            returned_unix_ms: returned_ms,
            context: context.clone(),
        })
        .await?;
    let lost = pricing.lost_penalty(LostRequest { package: package.clone(), due_unix_ms: due_ms, context }).await?;
    Ok(Json(PreviewOut {
        plugin: state.plugins.active(PluginKind::Pricing).map(|(name, version)| format!("{name}@{version}")),
        package_code: package.code,
        quote: PreviewQuote {
            amount_paisa: quote.amount_paisa,
            breakdown: quote
                .breakdown
                .into_iter()
                .map(|l| PreviewLine { label: l.label, amount_paisa: l.amount_paisa })
                .collect(),
            due_minutes: quote.due_minutes,
        },
        overdue: PreviewOverdue { amount_paisa: overdue.amount_paisa, explanation: overdue.explanation },
        lost: PreviewLost {
            reminder_minutes: lost.reminder_minutes,
            lost_after_minutes: lost.lost_after_minutes,
            penalty_paisa: lost.penalty_paisa,
            explanation: lost.explanation,
        },
    }))
}
