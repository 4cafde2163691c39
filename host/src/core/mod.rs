//! Shared pieces every feature domain uses: errors, database access, auth
//! extractors, the audit log of operator actions, pagination, money, rate
//! limits, storage, durable jobs, and the messenger that sends SMS and email.

pub mod access;
pub mod audit;
pub mod csv;
pub mod db;
pub mod error;
pub mod http_listener;
pub mod jobs;
pub mod live_sessions;
pub mod messenger;
pub mod metrics;
pub mod migrations;
pub mod money;
pub mod pagination;
pub mod rate_limit;
pub mod storage;
pub mod storage_s3;
pub mod text;
pub mod text_enum;
pub mod timeouts;

pub use access::{AuthUser, Operator, OperatorRole, Role};
pub use db::{Db, now_ts, opt_ts, ts_to_rfc3339};
pub use error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
pub use pagination::{Page, PageParams};
