//! Where uploaded files live. The seed used Cloudinary; here a trait with a
//! local-disk backend by default, so a single box needs nothing external.

use std::{io::Write, path::PathBuf};

use anyhow::Context;

pub trait StorageBackend: Send + Sync + 'static {
    /// Stores `bytes` under `key` (a flat, server-chosen name). Blocking: call
    /// from a blocking task.
    fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()>;
    /// The URL a stored key is fetched from.
    fn url(&self, key: &str) -> String;
    /// The bytes of a stored key, `None` if there is none. Blocking.
    fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Removes a stored file; a missing file is not an error. Blocking.
    fn delete(&self, key: &str) -> anyhow::Result<()>;
}

/// Files under a directory, fetched at `{url_prefix}/{key}`: the public one
/// is served as static files at `/media`, the private one (identity
/// documents) only through `GET /api/uploads/files/{key}`, which checks who asks.
pub struct LocalDisk {
    dir: PathBuf,
    url_prefix: String,
}

impl LocalDisk {
    pub fn new(dir: PathBuf, url_prefix: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir, url_prefix: url_prefix.trim_end_matches('/').to_string() })
    }
}

fn flat_key(key: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && !key.contains(".."),
        "storage key {key:?} is not a flat name"
    );
    Ok(())
}

impl StorageBackend for LocalDisk {
    fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        flat_key(key)?;
        // Write to a temporary file and rename, so a reader never sees half a file.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.dir.join(key)).map_err(|e| e.error)?;
        Ok(())
    }

    fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.url_prefix)
    }

    fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        flat_key(key)?;
        match std::fs::read(self.dir.join(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn delete(&self, key: &str) -> anyhow::Result<()> {
        flat_key(key)?;
        match std::fs::remove_file(self.dir.join(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
