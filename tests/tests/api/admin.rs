//! The operator side (issue 13, part 1): roles declared per route and
//! enforced, the append-only audit log, operator accounts, and the
//! authorization matrix over every operation of the OpenAPI document.

mod analytics;
mod audit;
mod matrix;
mod operators;
mod roles;
mod users;
