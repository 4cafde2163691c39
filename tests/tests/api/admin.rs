//! The operator side (issue 13): roles declared per route and enforced, the
//! append-only audit log, operator accounts, the authorization matrix over
//! every operation of the OpenAPI document, users, rentals, station issues
//! and the fleet.

mod analytics;
mod audit;
mod broadcast;
mod catalogue;
mod fleet;
mod matrix;
mod operators;
mod rentals;
mod roles;
mod station_issues;
mod users;
