//! The end-to-end suite in one test binary: the real server over real HTTP
//! (and MQTT), one module per feature domain. One binary links once, where a
//! binary per file linked wasmtime fourteen times.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod accounts;
mod admin;
mod app_core;
mod auth;
mod campaigns;
mod cancel_swap;
mod console;
mod content;
mod gateway_plugins;
mod kyc;
mod metrics;
mod money_bounds;
mod notifications;
mod openapi_conformance;
mod ops;
mod payments;
mod plugin_canary;
mod plugin_releases;
mod plugins_admin;
mod points;
mod points_events;
mod postpaid;
mod pricing_preview;
mod promotions;
mod read_paths;
mod rental_journey;
mod rentals;
mod rentals_gateway;
mod rentals_lost;
mod security;
mod settings;
mod social;
mod spec_requests;
mod station_link;
mod station_protocols;
mod stations;
mod storage;
