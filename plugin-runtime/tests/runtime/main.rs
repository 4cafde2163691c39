//! The plugin runtime's tests in one binary: real components built by
//! `cargo xtask build-plugins`, loaded and called through the runtime.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod contract_v0_2;
mod contract_v0_3;
mod contract_versions;
mod gateways;
mod hot_reload;
mod misbehaving_plugins;
mod standard_plugins;
mod station_protocols;
