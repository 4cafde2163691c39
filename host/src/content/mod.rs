//! Content (issue 16): pages per type and language with published versions,
//! legal acceptance, the FAQ with full-text search and votes, rider support
//! threads, and the app changelog.
//!
//! Markdown written by operators is rendered and sanitised once, when it is
//! published (`markdown.rs`); riders read the stored HTML. The language is
//! negotiated per request (`lang.rs`) and falls back to English.
//! Registration calls [`legal::accept_current_at_signup`] and the user's
//! profile answer [`legal::status_of`]; support replies notify the rider
//! through the notifications domain.

pub mod app_updates;
pub mod faq;
pub mod lang;
pub mod legal;
pub mod markdown;
pub mod pages;
pub mod support;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pages::list_pages))
        .routes(routes!(pages::get_page))
        .routes(routes!(pages::page_versions))
        .routes(routes!(pages::publish_page))
        .routes(routes!(legal::legal_status))
        .routes(routes!(legal::accept))
        .routes(routes!(legal::acceptance_counts))
        .routes(routes!(faq::list_faq))
        .routes(routes!(faq::search_faq))
        .routes(routes!(faq::vote))
        .routes(routes!(faq::create_category))
        .routes(routes!(faq::update_category))
        .routes(routes!(faq::create_item))
        .routes(routes!(faq::update_item, faq::delete_item))
        .routes(routes!(faq::admin_list_items))
        .routes(routes!(support::open_thread, support::my_threads))
        .routes(routes!(support::my_thread))
        .routes(routes!(support::rider_message))
        .routes(routes!(support::admin_threads))
        .routes(routes!(support::admin_thread))
        .routes(routes!(support::reply))
        .routes(routes!(support::close))
        .routes(routes!(app_updates::app_updates))
}
