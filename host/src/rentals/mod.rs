//! Rentals (seed §4). For now the package catalogue the app shows first.

pub mod packages;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::core::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(packages::list_packages))
}
