//! Versioned schema migrations, applied in order when the database opens.
//!
//! This module is the mechanism only. The ordered list lives in the
//! composition root (`crate::schema`), because each feature domain keeps its
//! schema next to its code and core names no domain. A migration never
//! changes once released: add a new one instead.

use anyhow::Context;
use rusqlite::Connection;

/// One migration: (version, name, SQL). Versions are dense and increasing.
pub type Migration = (i64, &'static str, &'static str);

/// Applies the migrations of `list` newer than the database's version, each
/// in its own transaction. A database newer than `list` knows is refused.
pub fn apply(conn: &mut Connection, list: &[Migration]) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )?;
    let current: i64 = conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    let latest = list.last().map_or(0, |m| m.0);
    anyhow::ensure!(
        current <= latest,
        "database schema version {current} is newer than this build knows ({latest}); refusing to run an older binary on it"
    );
    for &(version, name, sql) in list.iter().filter(|m| m.0 > current) {
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

pub fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    const LIST: &[super::Migration] =
        &[(1, "one", "CREATE TABLE a (x INTEGER)"), (2, "two", "CREATE TABLE b (y INTEGER)")];

    #[test]
    fn applies_in_order_once_and_refuses_a_newer_database() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::apply(&mut conn, &LIST[..1]).unwrap();
        assert_eq!(super::current_version(&conn).unwrap(), 1);
        super::apply(&mut conn, LIST).unwrap();
        // Idempotent: a second run applies nothing.
        super::apply(&mut conn, LIST).unwrap();
        assert_eq!(super::current_version(&conn).unwrap(), 2);
        let older_build = super::apply(&mut conn, &LIST[..1]).unwrap_err();
        assert!(older_build.to_string().contains("newer than this build knows"), "{older_build}");
    }
}
