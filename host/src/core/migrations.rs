//! Versioned schema migrations, applied in order at start-up.
//!
//! Each feature domain keeps its schema next to its code; this list only fixes
//! the order. A migration never changes once released: add a new one instead.

use anyhow::Context;
use rusqlite::Connection;

/// (version, name, SQL). Versions are dense and increasing.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "users", include_str!("../users/schema.sql")),
    (2, "app_core", include_str!("../app_core/schema.sql")),
    (3, "stations", include_str!("../stations/schema.sql")),
    (4, "rental_packages", include_str!("../rentals/schema.sql")),
    (5, "jobs", include_str!("jobs.sql")),
    (6, "notifications", include_str!("../notifications/schema.sql")),
    (7, "kyc", include_str!("../kyc/schema.sql")),
    (8, "stations_geo_favorites_issues", include_str!("../stations/geo_favorites_issues.sql")),
    (9, "payments", include_str!("../payments/schema.sql")),
    (10, "points_referrals", include_str!("../points/schema.sql")),
    (11, "rentals", include_str!("../rentals/lifecycle.sql")),
    (12, "payment_gateways", include_str!("../payments/gateways.sql")),
    (13, "rental_reminders", include_str!("../rentals/reminders.sql")),
    (
        14,
        "promotions_rental_gateway",
        concat!(include_str!("../promotions/schema.sql"), include_str!("../rentals/gateway.sql")),
    ),
    (15, "station_protocols", include_str!("../stations/link/protocols.sql")),
    (16, "kyc_review_alerts", include_str!("../kyc/review_alerts.sql")),
];

pub fn apply(conn: &mut Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )?;
    let current: i64 = conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    anyhow::ensure!(
        current <= latest,
        "database schema version {current} is newer than this build knows ({latest}); refusing to run an older binary on it"
    );
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).with_context(|| format!("migration {version} ({name})"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![version, name, super::db::now_ts()],
        )?;
        tx.commit()?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

pub fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
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
        super::apply(&mut conn).unwrap();
        // Idempotent: a second run applies nothing.
        super::apply(&mut conn).unwrap();
        assert_eq!(super::current_version(&conn).unwrap(), super::MIGRATIONS.len() as i64);
    }
}
