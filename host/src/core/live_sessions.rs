//! The answers of the session check (`access::AuthUser`), kept until a table
//! it reads changes.
//!
//! Every signed-in request asks whether its user is still active and its
//! sign-in session not revoked. The answer changes only when `users` or
//! `token_families` do (logout, refresh-token reuse, account deletion or
//! suspension, a role change), and every such change is a commit that moves
//! their table versions (`db::TableVersions`): the cache starts afresh then,
//! so a revoked session is refused from the very next request. A query the
//! check makes on another table must add that table to [`SESSION_TABLES`].

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, LazyLock, Mutex},
};

use rusqlite::Connection;

use super::{ApiError, Db, db::WatchedTables};

/// The tables the session check reads.
pub const SESSION_TABLES: &[&str] = &["users", "token_families"];

/// Sessions kept at once; past that the cache starts afresh.
const MAX_SESSIONS: usize = 100_000;

type Key = (i64, String);

pub struct LiveSessions {
    version: WatchedTables,
    entries: Mutex<(u64, HashMap<Key, Option<String>>)>,
}

/// One cache per database file, like its table versions.
static BY_DATABASE: LazyLock<Mutex<HashMap<PathBuf, Arc<LiveSessions>>>> = LazyLock::new(Default::default);

impl LiveSessions {
    pub fn of(db: &Db) -> Arc<LiveSessions> {
        BY_DATABASE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(db.path().to_path_buf())
            .or_insert_with(|| {
                Arc::new(LiveSessions { version: db.watch(SESSION_TABLES), entries: Mutex::new((0, HashMap::new())) })
            })
            .clone()
    }

    /// The role of `user_id` in session `sid` if both are live, from the
    /// cache or from `lookup` (run on a reader, after the version was read).
    pub async fn role<F>(&self, db: &Db, user_id: i64, sid: &str, lookup: F) -> Result<Option<String>, ApiError>
    where
        F: FnOnce(&Connection) -> Result<Option<String>, ApiError> + Send + 'static,
    {
        let Some(version) = self.version.current() else {
            // A commit is moving the version: ask the database, keep nothing.
            return db.read(lookup).await;
        };
        let key = (user_id, sid.to_owned());
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.0 == version
                && let Some(role) = entries.1.get(&key)
            {
                return Ok(role.clone());
            }
        }
        let role = db.read(lookup).await?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.0 < version {
            *entries = (version, HashMap::new());
        }
        if entries.0 == version {
            if entries.1.len() >= MAX_SESSIONS {
                entries.1.clear();
            }
            entries.1.insert(key, role.clone());
        }
        Ok(role)
    }
}
