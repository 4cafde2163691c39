//! `powerbank restore --from DIR`: puts a backup back in place of a stopped
//! site. Every check runs before anything is touched: the manifest must
//! match the files byte for byte, the copied database must pass its
//! integrity check and have a schema this build knows, and no process may
//! have the current database open. The current database and uploads are
//! then moved aside (`DATA_DIR/pre-restore-*`, the way back), the backup is
//! copied in, migrations bring it up to date, and the ledgers are verified.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use super::{
    backup::{self, DATABASE, Manifest},
    verify::{self, VerifyReport},
};
use crate::config::Config;

#[derive(Debug)]
pub struct RestoreOutcome {
    pub manifest: Manifest,
    /// Where the replaced database and uploads were moved (None: there were none).
    pub set_aside: Option<PathBuf>,
    pub report: VerifyReport,
}

/// Whether the backup in `from` is whole: every file of the manifest, with
/// its size and sha256.
pub fn check_backup(from: &Path) -> anyhow::Result<Manifest> {
    let manifest = backup::read_manifest(from)?;
    anyhow::ensure!(
        manifest.files.first().is_some_and(|f| f.path == DATABASE),
        "the manifest in {} lists no database",
        from.display()
    );
    let mut problems = Vec::new();
    for expected in &manifest.files {
        if expected.path.split('/').any(|part| part == ".." || part.is_empty()) {
            problems.push(format!("{}: not a path inside the backup", expected.path));
            continue;
        }
        match backup::entry_of(from, &expected.path) {
            Ok(found) if found == *expected => {}
            Ok(found) if found.bytes != expected.bytes => {
                problems.push(format!("{}: {} bytes, the manifest says {}", expected.path, found.bytes, expected.bytes))
            }
            Ok(_) => problems.push(format!("{}: sha256 differs from the manifest", expected.path)),
            Err(_) => problems.push(format!("{}: missing", expected.path)),
        }
    }
    anyhow::ensure!(
        problems.is_empty(),
        "the backup in {} does not match its manifest; nothing was changed:\n  {}",
        from.display(),
        problems.join("\n  ")
    );
    let latest = crate::schema::latest_version();
    anyhow::ensure!(
        manifest.schema_version <= latest,
        "the backup has schema version {}, newer than this build knows ({latest}): restore it with the release that took it",
        manifest.schema_version
    );
    let conn = Connection::open_with_flags(from.join(DATABASE), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    anyhow::ensure!(integrity == "ok", "the backup's database fails its integrity check: {integrity}");
    let counts = backup::table_counts(&conn)?;
    anyhow::ensure!(counts == manifest.counts, "the backup's row counts differ from its manifest");
    Ok(manifest)
}

/// Fails when any process has the database at `path` open. A connection to a
/// WAL database holds a shared lock on the file for as long as it is open,
/// and leaving WAL mode needs the exclusive lock: the switch fails at once
/// (no busy wait) while a server, or anything else, uses the file.
pub fn ensure_not_in_use(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::ZERO)?;
    match conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0)) {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => Ok(()),
        Ok(mode) => anyhow::bail!(
            "the database {} is in use (it stayed in {mode} mode): stop the server before restoring",
            path.display()
        ),
        Err(rusqlite::Error::SqliteFailure(code, _))
            if matches!(code.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            anyhow::bail!(
                "the database {} is in use by a running process: stop the server before restoring; nothing was changed",
                path.display()
            )
        }
        Err(e) => Err(e).with_context(|| format!("cannot check whether {} is in use", path.display())),
    }
}

/// Restores the backup in `from` over the site `config` describes.
pub fn restore(config: &Config, from: &Path) -> anyhow::Result<RestoreOutcome> {
    let manifest = check_backup(from)?;
    ensure_not_in_use(&config.db_path)?;
    let with_uploads = manifest.uploads == "local";

    // Move what is there aside: the way back if the restore was a mistake.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let aside = config.data_dir.join(format!("pre-restore-{stamp}"));
    let mut moved = Vec::new();
    let mut to_move = vec![config.db_path.clone(), wal_of(&config.db_path, "-wal"), wal_of(&config.db_path, "-shm")];
    if with_uploads {
        to_move.push(config.media_dir());
        to_move.push(config.private_media_dir());
    }
    for path in to_move.into_iter().filter(|p| p.exists()) {
        std::fs::create_dir_all(&aside).with_context(|| format!("creating {}", aside.display()))?;
        let name = path.file_name().context("path without a file name")?;
        let target = aside.join(name);
        if let Err(e) = std::fs::rename(&path, &target) {
            // Put back what already moved, so a failed restore changes nothing.
            for (from, to) in moved.iter().rev() {
                let _ = std::fs::rename(to, from);
            }
            return Err(e).with_context(|| format!("moving {} aside to {}", path.display(), target.display()));
        }
        moved.push((path, target));
    }

    if let Some(dir) = config.db_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = wal_of(&config.db_path, ".restoring");
    std::fs::copy(from.join(DATABASE), &tmp).context("copying the database in")?;
    std::fs::rename(&tmp, &config.db_path)?;
    if with_uploads {
        for file in manifest.files.iter().skip(1) {
            let (dir, name) = file.path.split_once('/').context("upload path without a directory")?;
            let target_dir = match dir {
                "media" => config.media_dir(),
                "private-media" => config.private_media_dir(),
                other => anyhow::bail!("unexpected directory {other} in the backup"),
            };
            std::fs::create_dir_all(&target_dir)?;
            std::fs::copy(from.join(&file.path), target_dir.join(name))
                .with_context(|| format!("restoring {}", file.path))?;
        }
    }
    // Brings an older backup's schema up to date, and checks the ledgers.
    drop(crate::schema::open_db(&config.db_path, 1)?);
    let report = verify::verify_file(&config.db_path)?;
    Ok(RestoreOutcome { manifest, set_aside: (!moved.is_empty()).then_some(aside), report })
}

fn wal_of(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
