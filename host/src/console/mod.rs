//! The operator console: a single-page app (`console/`, TypeScript) built by
//! `cargo xtask console`, embedded in the binary and served at `/console`, and
//! the live feed it listens to, `GET /api/admin/events`.
//!
//! The console talks to the admin API like any other client; nothing here
//! grants it more. See docs/console.md.

pub mod assets;
pub mod events;

use axum::{response::Redirect, routing::get};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events::stream))
        // The app's own URLs live under `/console/`; relative links need the slash.
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(assets::index))
        .route("/console/{*path}", get(assets::file))
}
