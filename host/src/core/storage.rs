//! Where uploaded files live. The seed used Cloudinary; here a trait with a
//! local-disk backend by default, so a single box needs nothing external.

use std::{io::Write, path::PathBuf};

use anyhow::Context;

pub trait StorageBackend: Send + Sync + 'static {
    /// Stores `bytes` under `key` (a flat, server-chosen name). Blocking: call
    /// from a blocking task.
    fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()>;
    /// The public URL of a stored key.
    fn url(&self, key: &str) -> String;
    /// Removes a stored file; a missing file is not an error. Blocking.
    fn delete(&self, key: &str) -> anyhow::Result<()>;
}

/// Files under a directory, served by the host at `/media/{key}`.
pub struct LocalDisk {
    dir: PathBuf,
    base_url: String,
}

impl LocalDisk {
    pub fn new(dir: PathBuf, public_base_url: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir, base_url: public_base_url.trim_end_matches('/').to_string() })
    }
}

impl StorageBackend for LocalDisk {
    fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        anyhow::ensure!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "storage key {key:?} is not a flat name"
        );
        // Write to a temporary file and rename, so a reader never sees half a file.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.dir.join(key)).map_err(|e| e.error)?;
        Ok(())
    }

    fn url(&self, key: &str) -> String {
        format!("{}/media/{key}", self.base_url)
    }

    fn delete(&self, key: &str) -> anyhow::Result<()> {
        anyhow::ensure!(!key.contains('/') && !key.contains(".."), "storage key {key:?} is not a flat name");
        match std::fs::remove_file(self.dir.join(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
