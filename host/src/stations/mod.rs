//! Stations (seed §3): listing and details. The station link (MQTT),
//! favourites, issues and nearby search grow here.

pub mod listing;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::core::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(listing::list_stations)).routes(routes!(listing::station_detail))
}
