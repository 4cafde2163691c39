//! Shared pieces every feature domain uses: errors, database access, auth
//! extractors, pagination, money, rate limits, storage, OpenAPI.

pub mod auth;
pub mod db;
pub mod error;
pub mod jobs;
pub mod migrations;
pub mod money;
pub mod pagination;
pub mod rate_limit;
pub mod state;
pub mod storage;
pub mod storage_s3;

pub use auth::{AdminUser, AuthUser, Role};
pub use db::{Db, now_ts, opt_ts, ts_to_rfc3339};
pub use error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
pub use pagination::{Page, PageParams};
pub use state::AppState;
