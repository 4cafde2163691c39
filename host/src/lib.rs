//! powerbank: the backend of a power-bank rental network.
//!
//! One module per feature domain, each with its routes, storage queries and
//! tests side by side; shared pieces live in [`core`].

pub mod api_docs;
pub mod app_core;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod core;
pub mod demo;
pub mod demo_stations;
pub mod kyc;
pub mod notifications;
pub mod ops;
pub mod payments;
pub mod plugins;
pub mod points;
pub mod promotions;
pub mod rentals;
pub mod server;
pub mod stations;
pub mod users;
