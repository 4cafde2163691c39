//! Where releases live: their rows and promotion history in SQLite, their
//! components under the data dir by sha256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::core::{ApiError, text_enum::text_enum};

text_enum! {
    /// Where a release is in its life.
    pub enum ReleaseState {
        /// Checked and kept; may be promoted.
        Staged = "staged",
        /// Refused at upload; `reason` says why. Its component is not kept.
        Rejected = "rejected",
        /// Serving its slot.
        Active = "active",
        /// Served once; kept for a rollback.
        Retired = "retired",
    }
}

/// One release row.
#[derive(Debug, Clone)]
pub struct Release {
    pub id: i64,
    pub plugin: String,
    pub state: ReleaseState,
    pub sha256: String,
    pub size_bytes: i64,
    pub config: BTreeMap<String, String>,
    pub plugin_name: Option<String>,
    pub version: Option<String>,
    pub contract: Option<String>,
    pub signature: Option<String>,
    pub signed_by: Option<String>,
    pub reason: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: i64,
}

/// A release about to be recorded.
pub struct NewRelease<'a> {
    pub plugin: &'a str,
    pub state: ReleaseState,
    pub sha256: &'a str,
    pub size_bytes: i64,
    pub config: &'a BTreeMap<String, String>,
    pub check: Option<&'a powerbank_plugin_runtime::ReleaseCheck>,
    pub signature: Option<&'a str>,
    pub signed_by: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub created_by: i64,
    pub now: i64,
}

const COLUMNS: &str = "id, plugin, state, sha256, size_bytes, config, plugin_name, version, contract, \
                       signature, signed_by, reason, created_by, created_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Release> {
    let config: String = r.get("config")?;
    Ok(Release {
        id: r.get("id")?,
        plugin: r.get("plugin")?,
        state: r.get("state")?,
        sha256: r.get("sha256")?,
        size_bytes: r.get("size_bytes")?,
        // Written by `insert` from a map of strings; an unreadable one reads as empty.
        config: serde_json::from_str(&config).unwrap_or_default(),
        plugin_name: r.get("plugin_name")?,
        version: r.get("version")?,
        contract: r.get("contract")?,
        signature: r.get("signature")?,
        signed_by: r.get("signed_by")?,
        reason: r.get("reason")?,
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
    })
}

pub fn insert(tx: &Transaction<'_>, new: &NewRelease<'_>) -> Result<i64, ApiError> {
    let config = serde_json::to_string(new.config).map_err(|e| ApiError::internal(e.to_string()))?;
    tx.execute(
        "INSERT INTO plugin_releases (plugin, state, sha256, size_bytes, config, plugin_name, version, contract,
                                      signature, signed_by, reason, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            new.plugin,
            new.state,
            new.sha256,
            new.size_bytes,
            config,
            new.check.map(|c| c.name.as_str()),
            new.check.map(|c| c.version.as_str()),
            new.check.map(|c| c.contract.as_str()),
            new.signature,
            new.signed_by,
            new.reason,
            new.created_by,
            new.now,
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

pub fn get(c: &Connection, plugin: &str, id: i64) -> Result<Option<Release>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM plugin_releases WHERE plugin = ?1 AND id = ?2");
    Ok(c.query_row(&sql, params![plugin, id], from_row).optional()?)
}

/// A plugin's kept releases, newest first.
pub fn list(c: &Connection, plugin: &str) -> Result<Vec<Release>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM plugin_releases WHERE plugin = ?1 ORDER BY id DESC");
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map([plugin], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The release serving each slot that a release serves, for start-up.
pub fn serving_all(c: &Connection) -> rusqlite::Result<Vec<Release>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM plugin_releases r
         WHERE r.id IN (SELECT p.release_id FROM plugin_promotions p
                        WHERE p.id = (SELECT MAX(q.id) FROM plugin_promotions q WHERE q.plugin = p.plugin))"
    );
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

/// What served the slot before the current source: `Some(None)` is the file,
/// `None` means nothing was ever promoted (the file serves already).
pub fn previous_source(c: &Connection, plugin: &str) -> Result<Option<Option<i64>>, ApiError> {
    let mut stmt = c.prepare("SELECT release_id FROM plugin_promotions WHERE plugin = ?1 ORDER BY id DESC LIMIT 2")?;
    let recent = stmt.query_map([plugin], |r| r.get::<_, Option<i64>>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(match recent.as_slice() {
        [] => None,
        [_current] => Some(None),
        [_current, before, ..] => Some(*before),
    })
}

/// Records that `release_id` (or, with `None`, the file) serves `plugin`
/// from now on, and moves the release states to match.
pub fn record_promotion(
    tx: &Transaction<'_>,
    plugin: &str,
    release_id: Option<i64>,
    by_user: i64,
    now: i64,
) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE plugin_releases SET state = ?2 WHERE plugin = ?1 AND state = ?3",
        params![plugin, ReleaseState::Retired, ReleaseState::Active],
    )?;
    if let Some(id) = release_id {
        tx.execute("UPDATE plugin_releases SET state = ?2 WHERE id = ?1", params![id, ReleaseState::Active])?;
    }
    tx.execute(
        "INSERT INTO plugin_promotions (plugin, release_id, by_user, at) VALUES (?1, ?2, ?3, ?4)",
        params![plugin, release_id, by_user, now],
    )?;
    Ok(())
}

/// Deletes all but the newest `keep` releases of `plugin` (never the one
/// serving) and returns the sha256 of components no kept release uses.
pub fn prune(tx: &Transaction<'_>, plugin: &str, keep: usize) -> Result<Vec<String>, ApiError> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let mut stmt = tx.prepare(
        "SELECT id, sha256 FROM plugin_releases WHERE plugin = ?1 AND state != ?2 AND id NOT IN
           (SELECT id FROM plugin_releases WHERE plugin = ?1 ORDER BY id DESC LIMIT ?3)",
    )?;
    let doomed = stmt
        .query_map(params![plugin, ReleaseState::Active, keep], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut unused = Vec::new();
    for (id, sha256) in doomed {
        tx.execute("DELETE FROM plugin_releases WHERE id = ?1", [id])?;
        let still_used: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM plugin_releases WHERE sha256 = ?1 AND state != ?2)",
            params![sha256, ReleaseState::Rejected],
            |r| r.get(0),
        )?;
        if !still_used && !unused.contains(&sha256) {
            unused.push(sha256);
        }
    }
    Ok(unused)
}

/// The folder holding release components, `<data dir>/plugin-releases`.
pub fn blob_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("plugin-releases")
}

pub fn blob_path(data_dir: &Path, sha256: &str) -> PathBuf {
    blob_dir(data_dir).join(format!("{sha256}.wasm"))
}

/// Writes a component under its sha256, once: a temporary file renamed into
/// place, so a reader never sees half a component.
pub async fn store_blob(data_dir: &Path, sha256: &str, bytes: &[u8]) -> Result<PathBuf, ApiError> {
    let path = blob_path(data_dir, sha256);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(path);
    }
    let dir = blob_dir(data_dir);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
    let tmp = dir.join(format!("{sha256}.{}.tmp", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&tmp, bytes).await.map_err(|e| ApiError::internal(format!("{}: {e}", tmp.display())))?;
    tokio::fs::rename(&tmp, &path).await.map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    Ok(path)
}

pub async fn remove_blobs(data_dir: &Path, sha256s: &[String]) {
    for sha256 in sha256s {
        let path = blob_path(data_dir, sha256);
        if let Err(e) = tokio::fs::remove_file(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a pruned plugin release");
        }
    }
}
