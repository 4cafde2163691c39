//! SQLite access: one writer connection, a few reader connections, WAL mode.
//!
//! SQLite allows one writer at a time. Rather than letting concurrent writers
//! race into `SQLITE_BUSY`, every mutation goes through the single writer
//! connection, one `BEGIN IMMEDIATE` transaction per call: two requests that
//! both try to spend the same balance are serialised here, and each sees the
//! other's committed result. Readers use their own connections; in WAL mode
//! they read the last committed state and never wait behind the writer.
//!
//! All calls run on tokio's blocking pool so the async executor never blocks
//! on disk.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, LazyLock, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::Semaphore;

use super::{error::ApiError, migrations::Migration};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    reader_permits: Semaphore,
    /// Tables the writer's open transaction changed (SQLite's update hook).
    touched: Arc<Mutex<Vec<String>>>,
    versions: Arc<TableVersions>,
}

/// A change counter per table of one database file. Each moves after every
/// commit, by any [`Db`] of this process on that file, that inserted,
/// updated or deleted rows of its table: caches of read results use them to
/// know, without a query, that what they hold is still what the database
/// says. Writes by other processes are not seen (the server is the only
/// writer of its database while it runs).
#[derive(Default)]
pub struct TableVersions {
    by_table: RwLock<HashMap<String, Arc<AtomicU64>>>,
    /// Commits that changed rows and have not moved their versions yet.
    /// While one is in flight its rows may already be visible with the old
    /// versions, so a cache must not answer ([`WatchedTables::current`]).
    in_flight: AtomicU64,
}

impl TableVersions {
    fn counter(&self, table: &str) -> Arc<AtomicU64> {
        if let Some(c) = self.by_table.read().unwrap_or_else(|p| p.into_inner()).get(table) {
            return c.clone();
        }
        self.by_table.write().unwrap_or_else(|p| p.into_inner()).entry(table.to_owned()).or_default().clone()
    }

    fn bump(&self, tables: &[String]) {
        for table in tables {
            self.counter(table).fetch_add(1, Ordering::SeqCst);
        }
    }
}

static TABLE_VERSIONS: LazyLock<Mutex<HashMap<PathBuf, Arc<TableVersions>>>> = LazyLock::new(Default::default);

fn table_versions(path: &Path) -> Arc<TableVersions> {
    TABLE_VERSIONS.lock().unwrap_or_else(|p| p.into_inner()).entry(path.to_path_buf()).or_default().clone()
}

/// The combined version of a few tables ([`Db::watch`]): it grows whenever a
/// commit changed one of them. Reading it is a few atomic loads.
#[derive(Clone)]
pub struct WatchedTables {
    versions: Arc<TableVersions>,
    counters: Arc<[Arc<AtomicU64>]>,
}

impl WatchedTables {
    /// The version now, or `None` while a commit is between making its rows
    /// visible and moving the versions: then nothing cached may be served
    /// (or filed). Read it before reading the database, and file what was
    /// read under it: a page is never filed under a version newer than its
    /// data, and a version that moved makes every older page unreachable.
    pub fn current(&self) -> Option<u64> {
        // In-flight first: a commit that finished moving the versions before
        // this load had moved them before the loads below.
        if self.versions.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(self.counters.iter().map(|c| c.load(Ordering::SeqCst)).fold(0, u64::wrapping_add))
    }
}

/// Statements started on every connection this process opened.
static STATEMENTS_EXECUTED: AtomicU64 = AtomicU64::new(0);

/// The same, per database file (as its path was given to [`Db::open`]).
static STATEMENTS_PER_DATABASE: LazyLock<Mutex<HashMap<PathBuf, Arc<AtomicU64>>>> = LazyLock::new(Default::default);

fn database_counter(path: &Path) -> Arc<AtomicU64> {
    STATEMENTS_PER_DATABASE.lock().unwrap_or_else(|p| p.into_inner()).entry(path.to_path_buf()).or_default().clone()
}

/// How many SQL statements this process has run so far, over all databases.
///
/// Why it exists: the number of statements a request runs must not grow with
/// the data (an N+1 query per station, say, is invisible on six demo
/// stations and ruinous on a thousand). Tests read this before and after a
/// request and assert the difference stays the same as the data grows. It
/// counts statement starts, not rows; trigger bodies are not counted apart
/// from the statement that fired them. Counting costs one relaxed atomic add
/// per statement, so it stays on in production builds. The count is
/// process-wide: a test comparing counts must keep other database work in the
/// same process (parallel tests, background workers) out of its window, or
/// count one database with [`statements_executed_on`].
pub fn statements_executed() -> u64 {
    STATEMENTS_EXECUTED.load(Ordering::Relaxed)
}

/// [`statements_executed`] on the connections opened on the database file at
/// `path` only: a test that counts one server's statements is not disturbed
/// by the other servers its test binary runs at the same time.
pub fn statements_executed_on(path: &Path) -> u64 {
    database_counter(path).load(Ordering::Relaxed)
}

/// Installs the statement counter on a connection. rusqlite 0.43 offers
/// SQLite's `sqlite3_trace_v2` hook (the legacy `trace` hook is gone); its
/// statement event fires once each time a statement starts running.
fn count_statements(conn: &mut Connection, database: Arc<AtomicU64>) -> rusqlite::Result<()> {
    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_STMT,
        Some(move |event: TraceEvent<'_>| {
            // SQLite reports each trigger subprogram as its own event, with a
            // `-- TRIGGER name` comment as the text; those belong to the
            // statement that fired them.
            if let TraceEvent::Stmt(_, sql) = event
                && !sql.starts_with("-- TRIGGER ")
            {
                STATEMENTS_EXECUTED.fetch_add(1, Ordering::Relaxed);
                database.fetch_add(1, Ordering::Relaxed);
            }
        }),
    )
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database file and switches it to WAL.
    /// Tools and tests that open a database the server already migrated use
    /// this; a server opens with [`Db::open_migrated`].
    pub fn open(path: &Path, readers: usize) -> anyhow::Result<Self> {
        Self::open_migrated(path, readers, &[])
    }

    /// [`Db::open`], then applies the migrations of `migrations` the file does
    /// not have yet (the application's list is `crate::schema::MIGRATIONS`).
    pub fn open_migrated(path: &Path, readers: usize, migrations: &[Migration]) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut writer = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "SQLite refused WAL mode (got {mode})");
        configure(&writer)?;
        let counter = database_counter(path);
        count_statements(&mut writer, counter.clone())?;
        // No list: the caller opens a database it knows is migrated.
        if !migrations.is_empty() {
            super::migrations::apply(&mut writer, migrations)?;
        }
        let touched: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = touched.clone();
        writer.update_hook(Some(move |_action, _db: &str, table: &str, _rowid| {
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            if !seen.iter().any(|t| t == table) {
                seen.push(table.to_owned());
            }
        }))?;

        let readers = readers.max(1);
        let mut pool = Vec::with_capacity(readers);
        for _ in 0..readers {
            let mut conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&conn)?;
            count_statements(&mut conn, counter.clone())?;
            pool.push(conn);
        }
        Ok(Self {
            inner: Arc::new(DbInner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(pool),
                reader_permits: Semaphore::new(readers),
                touched,
                versions: table_versions(path),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The combined change version of `tables` (see [`TableVersions`]).
    pub fn watch(&self, tables: &[&str]) -> WatchedTables {
        WatchedTables {
            versions: self.inner.versions.clone(),
            counters: tables.iter().map(|t| self.inner.versions.counter(t)).collect(),
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer connection.
    /// It commits if `f` returns `Ok`, and rolls back otherwise.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic inside a previous write poisons the mutex but leaves the
            // connection usable (its transaction was rolled back on drop).
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            inner.commit(tx)?;
            Ok(out)
        })
        .await
        .map_err(|e| ApiError::internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` on a read-only connection (a consistent snapshot per statement;
    /// wrap several statements in a transaction when they must agree).
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let permit = self.inner.reader_permits.acquire().await.map_err(|_| ApiError::unavailable("database closed"))?;
        let inner = self.inner.clone();
        let out = tokio::task::spawn_blocking(move || {
            let conn = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .ok_or_else(|| ApiError::internal("reader pool empty"))?;
            let result = f(&conn);
            inner.readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            result
        })
        .await
        .map_err(|e| ApiError::internal(format!("database task failed: {e}")));
        drop(permit);
        out?
    }

    /// Synchronous access to the writer for start-up tasks (migrate, seed, CLI).
    pub fn blocking_write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        self.inner.commit(tx)?;
        Ok(out)
    }
}

impl DbInner {
    /// Commits, then moves the versions of the tables the transaction
    /// changed, with the commit marked in flight in between (see
    /// [`WatchedTables::current`]). Tables a rolled-back transaction touched
    /// are moved with the next commit: a needless invalidation, never a
    /// missed one.
    fn commit(&self, tx: Transaction<'_>) -> rusqlite::Result<()> {
        let touched = std::mem::take(&mut *self.touched.lock().unwrap_or_else(|p| p.into_inner()));
        if touched.is_empty() {
            return tx.commit();
        }
        self.versions.in_flight.fetch_add(1, Ordering::SeqCst);
        let committed = tx.commit();
        self.versions.bump(&touched);
        self.versions.in_flight.fetch_sub(1, Ordering::SeqCst);
        committed
    }
}

/// Current time as unix seconds: every timestamp column stores this.
pub fn now_ts() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Renders a stored unix timestamp for the API (RFC 3339, UTC).
pub fn ts_to_rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `Option<i64>` timestamp column to an optional RFC 3339 string.
pub fn opt_ts(ts: Option<i64>) -> Option<String> {
    ts.map(ts_to_rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_increments_are_serialised() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 2).unwrap();
        db.write(|tx| {
            tx.execute_batch("CREATE TABLE c (n INTEGER NOT NULL); INSERT INTO c VALUES (0);")?;
            Ok(())
        })
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.write(|tx| {
                    let n: i64 = tx.query_row("SELECT n FROM c", [], |r| r.get(0))?;
                    tx.execute("UPDATE c SET n = ?1", [n + 1])?;
                    Ok(())
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let n: i64 = db.read(|c| Ok(c.query_row("SELECT n FROM c", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(n, 50);
    }

    #[tokio::test]
    async fn failed_write_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 1).unwrap();
        db.write(|tx| Ok(tx.execute_batch("CREATE TABLE c (n INTEGER NOT NULL)")?)).await.unwrap();
        let res: Result<(), ApiError> = db
            .write(|tx| {
                tx.execute("INSERT INTO c VALUES (1)", [])?;
                Err(ApiError::bad_request("nope"))
            })
            .await;
        assert!(res.is_err());
        let count: i64 = db.read(|c| Ok(c.query_row("SELECT count(*) FROM c", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(count, 0);
    }
}
