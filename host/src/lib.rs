//! powerbank: the backend of a power-bank rental network.
//!
//! One module per feature domain, each with its routes, storage queries and
//! tests side by side; shared pieces live in [`core`]. The composition root
//! ([`server`], [`state`]) wires the domains together at start-up.

pub mod admin;
pub mod analytics;
pub mod api_contract;
pub mod api_docs;
pub mod app_core;
pub mod audiences;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod console;
pub mod content;
pub mod core;
pub mod demo;
pub mod demo_checkout;
pub mod demo_stations;
pub mod kyc;
#[cfg(test)]
mod layers;
pub mod ledger;
pub mod notifications;
pub mod ops;
pub mod packages;
pub mod payments;
pub mod plugins;
pub mod points;
pub mod promotions;
pub mod rentals;
pub mod schema;
pub mod server;
pub mod settings;
pub mod social;
pub mod state;
pub mod stations;
pub mod users;
