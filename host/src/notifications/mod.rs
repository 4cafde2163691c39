//! Notifications (seed §6): in-app notifications, push through Firebase Cloud
//! Messaging with SMS fallback, and the devices push goes to.
//!
//! Other domains call [`notify`] inside the transaction of the change the
//! notification is about: the in-app row and the durable delivery job commit
//! (or roll back) together with it. The push itself runs later in the job
//! worker ([`delivery`]), so an FCM outage never fails or slows a rental.

pub mod delivery;
pub mod devices;
pub mod fcm;
pub mod inbox;
pub mod notify;

use crate::{
    core::{ApiError, jobs::JobsBuilder},
    state::AppState,
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use notify::notify;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbox::list_notifications))
        .routes(routes!(inbox::mark_read, inbox::delete_notification))
        .routes(routes!(inbox::mark_all_read))
        .routes(routes!(devices::register_device))
        .routes(routes!(devices::deregister_device))
        .routes(routes!(devices::list_devices))
        .routes(routes!(delivery::delivery_log))
}

/// The background jobs of the notifications domain (registered by
/// `server::job_handlers`).
pub fn jobs(jobs: JobsBuilder<AppState>) -> JobsBuilder<AppState> {
    jobs.handle(delivery::DELIVERY_JOB, delivery::delivery_job())
}

/// Account deletion: the user's devices and in-app notifications go, and the
/// delivery log keeps its rows (for the operators' counts) without the
/// phone number or token they went to.
pub fn forget_user(tx: &rusqlite::Transaction<'_>, user_id: i64) -> Result<(), ApiError> {
    tx.execute("DELETE FROM user_devices WHERE user_id = ?1", [user_id])?;
    tx.execute("DELETE FROM notifications WHERE user_id = ?1", [user_id])?;
    tx.execute("UPDATE sms_fcm_log SET recipient = NULL WHERE user_id = ?1", [user_id])?;
    Ok(())
}
