//! App core (seed §1): health, app version, countries, banners, uploads.

pub mod content;
pub mod health;
pub mod upload;
pub mod versions;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};
pub use versions::VersionCache;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(versions::app_version))
        .routes(routes!(content::countries))
        .routes(routes!(content::banners))
        // Uploads are bounded by the server-wide body limit and the handler's
        // own per-file cap, not by the small JSON limit.
        .merge(OpenApiRouter::new().routes(routes!(upload::upload)).layer(axum::extract::DefaultBodyLimit::disable()))
        .routes(routes!(upload::download))
}
