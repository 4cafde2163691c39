//! `powerbank backup --to DIR`: a consistent copy of a live site.
//!
//! The database is copied with `VACUUM INTO` from its own read transaction,
//! so the copy is one committed state even while the server writes (WAL
//! readers never block the writer). The uploads are copied after it: upload
//! files are written before their rows and never change, so every file the
//! copied database names is there. The copy is checked with
//! `PRAGMA integrity_check`, counted, and described by `manifest.json`
//! (sizes and sha256 of every file), written last. Everything goes into a
//! `.partial-*` directory renamed into place at the end: a backup directory
//! without the prefix is always complete.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{config::Config, core::storage::StorageConfig};

pub const MANIFEST: &str = "manifest.json";
pub const DATABASE: &str = "powerbank.db";
/// Names of backup directories: `powerbank-20261130T062400Z`.
pub const PREFIX: &str = "powerbank-";
const FORMAT: u32 = 1;

/// Tables whose row counts the manifest records: the ledgers and what they hang on.
pub const COUNTED_TABLES: &[&str] = &[
    "users",
    "wallets",
    "wallet_transactions",
    "user_points",
    "points_transactions",
    "transactions",
    "rentals",
    "refunds",
    "media_uploads",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the backup directory, `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: String,
    pub created_at_unix: i64,
    pub powerbank_version: String,
    pub schema_version: i64,
    /// `local` (files copied under `media/` and `private-media/`) or
    /// `s3:BUCKET` (files stay in the bucket: keep its versioning on).
    pub uploads: String,
    /// The database first, then every upload.
    pub files: Vec<FileEntry>,
    /// Row counts of [`COUNTED_TABLES`] in the copied database.
    pub counts: BTreeMap<String, i64>,
    /// Sum of all wallet balances (paisa) and of all points balances.
    pub wallet_total_paisa: i64,
    pub points_total: i64,
    pub integrity_check: String,
}

#[derive(Debug)]
pub struct BackupOutcome {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Older backups removed by the retention rule.
    pub pruned: Vec<PathBuf>,
}

/// Takes a backup of the site `config` describes into a new directory under
/// `to`, then keeps only the newest `keep` backups there (0 keeps all).
pub fn backup(config: &Config, to: &Path, keep: usize) -> anyhow::Result<BackupOutcome> {
    anyhow::ensure!(config.db_path.is_file(), "no database at {}", config.db_path.display());
    std::fs::create_dir_all(to).with_context(|| format!("backup directory {} cannot be created", to.display()))?;
    let now = chrono::Utc::now();
    let name = unique_name(to, &format!("{PREFIX}{}", now.format("%Y%m%dT%H%M%SZ")));
    let partial = to.join(format!(".partial-{name}"));
    std::fs::create_dir(&partial).with_context(|| format!("backup directory {} is not writable", to.display()))?;
    let result = write_backup(config, &partial, now);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            // Nothing half-done stays behind.
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let dir = to.join(&name);
    std::fs::rename(&partial, &dir).with_context(|| format!("moving the backup into {}", dir.display()))?;
    let pruned = prune(to, keep)?;
    Ok(BackupOutcome { dir, manifest, pruned })
}

fn unique_name(to: &Path, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while to.join(&name).exists() || to.join(format!(".partial-{name}")).exists() {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn write_backup(config: &Config, dir: &Path, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Manifest> {
    let copy = dir.join(DATABASE);
    {
        let live = Connection::open_with_flags(&config.db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", config.db_path.display()))?;
        live.busy_timeout(std::time::Duration::from_secs(30))?;
        let target = copy.to_str().context("backup path is not UTF-8")?;
        live.execute("VACUUM INTO ?1", [target]).context("copying the database (VACUUM INTO)")?;
    }
    let (integrity, schema_version, counts, wallet_total_paisa, points_total) = {
        let conn = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        anyhow::ensure!(integrity == "ok", "the copied database fails its integrity check: {integrity}");
        let schema_version = crate::core::migrations::current_version(&conn)?;
        let counts = table_counts(&conn)?;
        let wallet_total: i64 =
            conn.query_row("SELECT COALESCE(SUM(balance_paisa), 0) FROM wallets", [], |r| r.get(0))?;
        let points_total: i64 =
            conn.query_row("SELECT COALESCE(SUM(balance), 0) FROM user_points", [], |r| r.get(0))?;
        (integrity, schema_version, counts, wallet_total, points_total)
    };
    let mut files = vec![entry_of(dir, DATABASE)?];
    let uploads = match &config.storage {
        StorageConfig::Local => {
            files.extend(copy_tree(&config.media_dir(), dir, "media")?);
            files.extend(copy_tree(&config.private_media_dir(), dir, "private-media")?);
            "local".to_string()
        }
        StorageConfig::S3(s3) => format!("s3:{}", s3.bucket),
    };
    let manifest = Manifest {
        format: FORMAT,
        created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        created_at_unix: now.timestamp(),
        powerbank_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version,
        uploads,
        files,
        counts,
        wallet_total_paisa,
        points_total,
        integrity_check: integrity,
    };
    let mut out = std::fs::File::create(dir.join(MANIFEST))?;
    out.write_all(&serde_json::to_vec_pretty(&manifest)?)?;
    out.sync_all()?;
    Ok(manifest)
}

pub fn table_counts(conn: &Connection) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    for table in COUNTED_TABLES {
        // Names come from the constant list above, never from input.
        let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        counts.insert((*table).to_string(), n);
    }
    Ok(counts)
}

/// Size and sha256 of `dir/relative`.
pub fn entry_of(dir: &Path, relative: &str) -> anyhow::Result<FileEntry> {
    let mut file = std::fs::File::open(dir.join(relative)).with_context(|| format!("reading {relative}"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileEntry { path: relative.to_string(), bytes, sha256: hex::encode(hasher.finalize()) })
}

/// Copies the files of `src` (uploads are flat) into `dir/name/`, skipping
/// temporary files of uploads still being written.
fn copy_tree(src: &Path, dir: &Path, name: &str) -> anyhow::Result<Vec<FileEntry>> {
    let mut entries = Vec::new();
    let read = match std::fs::read_dir(src) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
        Err(e) => return Err(e).with_context(|| format!("reading {}", src.display())),
    };
    std::fs::create_dir_all(dir.join(name))?;
    let mut names: Vec<String> = Vec::new();
    for item in read {
        let item = item?;
        let file_name = item.file_name().to_string_lossy().into_owned();
        if item.file_type()?.is_file() && !file_name.starts_with(".tmp") {
            names.push(file_name);
        }
    }
    names.sort();
    for file_name in names {
        let relative = format!("{name}/{file_name}");
        match std::fs::copy(src.join(&file_name), dir.join(&relative)) {
            Ok(_) => entries.push(entry_of(dir, &relative)?),
            // Deleted since it was listed (an account deletion): not in the backup.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("copying {}", src.join(&file_name).display())),
        }
    }
    Ok(entries)
}

/// Complete backups under `to`, oldest first.
pub fn list(to: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let read = match std::fs::read_dir(to) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e).with_context(|| format!("reading {}", to.display())),
    };
    for item in read {
        let item = item?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with(PREFIX) && item.path().join(MANIFEST).is_file() {
            found.push(item.path());
        }
    }
    // The names hold a UTC timestamp, so name order is time order.
    found.sort();
    Ok(found)
}

/// Keeps the newest `keep` backups (0 keeps all); returns the removed ones.
pub fn prune(to: &Path, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let all = list(to)?;
    let excess = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for old in all.into_iter().take(excess) {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing old backup {}", old.display()))?;
        removed.push(old);
    }
    Ok(removed)
}

pub fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text =
        std::fs::read(&path).with_context(|| format!("no {MANIFEST} in {}: not a powerbank backup", dir.display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).with_context(|| format!("{} is not a backup manifest", path.display()))?;
    anyhow::ensure!(
        manifest.format == FORMAT,
        "backup format {} is not one this build reads ({FORMAT})",
        manifest.format
    );
    Ok(manifest)
}
