//! Social (issue 16): the leaderboard and achievements.
//!
//! What they count is kept in rollups by SQLite triggers on the tables where
//! the events are written (`schema.sql`): a completed rental, an earned
//! points grant, a referral, a top-up update the rollups and achievement
//! progress inside the transaction that writes them, without a line in the
//! domains that write them. An unlock enqueues a durable job
//! ([`achievements::UNLOCKED_JOB`]) that notifies the rider; claiming credits
//! the reward through the points ledger.

pub mod achievements;
pub mod leaderboard;
pub mod periods;

use rusqlite::Transaction;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    core::{ApiError, jobs::JobsBuilder},
    state::AppState,
};

/// Recounts the leaderboard rollups from rentals, points and referrals (the
/// migration runs the same SQL).
pub const REBUILD_SQL: &str = include_str!("rebuild.sql");

/// Replaces the leaderboard rollups with a recount from their sources.
pub fn rebuild_rollups(tx: &Transaction<'_>) -> Result<(), ApiError> {
    tx.execute_batch(REBUILD_SQL)?;
    Ok(())
}

pub fn jobs(jobs: JobsBuilder<AppState>) -> JobsBuilder<AppState> {
    jobs.handle(achievements::UNLOCKED_JOB, achievements::notify_unlocked)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(leaderboard::leaderboard))
        .routes(routes!(leaderboard::get_profile, leaderboard::put_profile))
        .routes(routes!(achievements::mine))
        .routes(routes!(achievements::claim))
        .routes(routes!(achievements::create, achievements::admin_list))
        .routes(routes!(achievements::update))
}

#[cfg(test)]
mod tests {
    /// A later migration that rebuilds a source table (SQLite's way of
    /// changing a CHECK) drops its triggers with it: this fails until the
    /// trigger is created again.
    #[test]
    fn every_rollup_trigger_survives_all_migrations() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        crate::core::migrations::apply(&mut conn, crate::schema::MIGRATIONS).unwrap();
        for (trigger, table) in [
            ("social_rental_completed", "rentals"),
            ("social_points_earned", "points_transactions"),
            ("social_referral", "referrals"),
            ("social_topup", "wallet_transactions"),
            ("social_activity_apply", "social_activity"),
            ("achievement_unlocked", "achievement_progress"),
        ] {
            let on: Option<String> = conn
                .query_row("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = ?1", [trigger], |r| {
                    r.get(0)
                })
                .ok();
            assert_eq!(on.as_deref(), Some(table), "trigger {trigger} missing after the migrations");
        }
    }
}
