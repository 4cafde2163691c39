//! App core (seed §1): health, app version, countries, banners, uploads;
//! operators manage banners, app versions and countries (`admin`).

pub mod admin;
pub mod content;
pub mod health;
pub mod upload;
pub mod versions;

use crate::{core::ApiError, state::AppState};
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
        .routes(routes!(admin::list_banners, admin::create_banner))
        .routes(routes!(admin::get_banner, admin::update_banner, admin::delete_banner))
        .routes(routes!(admin::list_versions, admin::create_version))
        .routes(routes!(admin::update_version, admin::delete_version))
        .routes(routes!(admin::list_countries, admin::create_country))
        .routes(routes!(admin::update_country))
        .routes(routes!(admin::activate_country))
        .routes(routes!(admin::deactivate_country))
}

/// Account deletion: the user's upload rows lose their URL and name, and the
/// storage keys of their files are returned so the caller deletes the files
/// after its transaction commits.
pub fn forget_uploads_of(tx: &rusqlite::Transaction<'_>, user_id: i64) -> Result<Vec<String>, ApiError> {
    let mut stmt = tx.prepare("SELECT storage_key FROM media_uploads WHERE user_id = ?1")?;
    let files = stmt.query_map([user_id], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    tx.execute("UPDATE media_uploads SET url = '', original_name = 'deleted' WHERE user_id = ?1", [user_id])?;
    Ok(files)
}
