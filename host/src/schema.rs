//! The database schema: every domain's migrations in the order they apply.
//!
//! Each feature domain keeps its SQL next to its code; this list only fixes
//! the order. A migration never changes once released: add a new one.

use std::path::Path;

use crate::core::{Db, jobs, migrations::Migration};

pub const MIGRATIONS: &[Migration] = &[
    (1, "users", include_str!("users/schema.sql")),
    (2, "app_core", include_str!("app_core/schema.sql")),
    (3, "stations", include_str!("stations/schema.sql")),
    (4, "rental_packages", include_str!("packages/schema.sql")),
    (5, "jobs", jobs::SCHEMA),
    (6, "notifications", include_str!("notifications/schema.sql")),
    (7, "kyc", include_str!("kyc/schema.sql")),
    (8, "stations_geo_favorites_issues", include_str!("stations/geo_favorites_issues.sql")),
    (9, "payments", include_str!("payments/schema.sql")),
    (10, "points_referrals", include_str!("points/schema.sql")),
    (11, "rentals", include_str!("rentals/lifecycle.sql")),
    (12, "payment_gateways", include_str!("payments/gateways.sql")),
    (13, "rental_reminders", include_str!("rentals/reminders.sql")),
    (
        14,
        "promotions_rental_gateway",
        concat!(include_str!("promotions/schema.sql"), include_str!("rentals/gateway.sql")),
    ),
    (15, "station_protocols", include_str!("stations/link/protocols.sql")),
    (16, "kyc_review_alerts", include_str!("kyc/review_alerts.sql")),
    (17, "operator_signin_failures", include_str!("users/operator_signin.sql")),
    (18, "operator_roles_audit_log", concat!(include_str!("admin/schema.sql"), include_str!("core/audit.sql"))),
    (
        19,
        "spec_issue_types_images_device_sessions",
        concat!(
            include_str!("stations/issue_types.sql"),
            include_str!("rentals/issue_images.sql"),
            include_str!("notifications/device_sessions.sql")
        ),
    ),
    (20, "rental_swaps_postpaid", include_str!("rentals/swaps_postpaid.sql")),
    (21, "content_pages_faq_support", include_str!("content/schema.sql")),
    (22, "social_rollups_achievements", concat!(include_str!("social/schema.sql"), include_str!("social/rebuild.sql"))),
    (23, "admin_users", include_str!("admin/users.sql")),
    (18, "plugin_releases", include_str!("plugins/releases/schema.sql")),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Opens the application's database, applying the migrations it lacks.
pub fn open_db(path: &Path, readers: usize) -> anyhow::Result<Db> {
    Db::open_migrated(path, readers, MIGRATIONS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_are_dense_and_increasing() {
        for (i, m) in super::MIGRATIONS.iter().enumerate() {
            assert_eq!(m.0, i as i64 + 1, "migration {} out of order", m.1);
        }
    }

    #[test]
    fn all_migrations_apply_to_an_empty_database() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        crate::core::migrations::apply(&mut conn, super::MIGRATIONS).unwrap();
        // Idempotent: a second run applies nothing.
        crate::core::migrations::apply(&mut conn, super::MIGRATIONS).unwrap();
        assert_eq!(crate::core::migrations::current_version(&conn).unwrap(), super::MIGRATIONS.len() as i64);
    }
}
