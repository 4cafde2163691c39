//! Stations (seed §3): listing and details, nearby search, favourites,
//! issue reports and their triage, the operators' catalogue and fleet
//! endpoints, and the station link (MQTT).

pub mod admin;
pub mod banks;
pub mod favorites;
pub mod fleet;
pub mod issues;
pub mod issues_admin;
pub mod link;
pub mod listing;
pub mod nearby;
pub mod page_cache;
pub mod slots;
pub mod status;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    // Fixed segments (`nearby`, `favorites`, `my-reports`) take precedence
    // over `{sn}` in axum's router whatever the order; the tests hold it.
    OpenApiRouter::new()
        .routes(routes!(listing::list_stations))
        .routes(routes!(nearby::nearby_stations))
        .routes(routes!(favorites::list_favorites))
        .routes(routes!(issues::my_reports))
        .routes(routes!(listing::station_detail))
        .routes(routes!(favorites::add_favorite, favorites::remove_favorite))
        .routes(routes!(issues::report_issue))
        .routes(routes!(issues::station_issues))
        .routes(routes!(admin::create_station))
        .routes(routes!(admin::update_station, admin::retire_station))
        .routes(routes!(admin::set_slots))
        .routes(routes!(admin::amenities::list_amenities, admin::create_amenity))
        .routes(routes!(admin::amenities::update_amenity, admin::amenities::delete_amenity))
        .routes(routes!(admin::set_station_amenities))
        .routes(routes!(admin::add_media))
        .routes(routes!(admin::register_power_bank, fleet::list_power_banks))
        .routes(routes!(fleet::power_bank_detail))
        .routes(routes!(fleet::set_power_bank_status))
        .routes(routes!(issues_admin::list_station_issues))
        .routes(routes!(issues_admin::update_station_issue))
}
