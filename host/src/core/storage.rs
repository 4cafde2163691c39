//! Where uploaded files live. The seed used Cloudinary; here a trait with a
//! local-disk backend by default, so a single box needs nothing external, and
//! an S3-compatible object store (AWS, MinIO, Garage, Ceph...) for sites that
//! keep files off the box (see `storage_s3.rs`).
//!
//! Either way there are two stores: public uploads (avatars, issue photos),
//! fetched by anyone with the URL, and private ones (identity documents),
//! fetched only through `GET /api/uploads/files/{key}`, which checks who asks.

use std::{io::Write, path::PathBuf, sync::Arc};

use anyhow::Context;

use super::storage_s3::{S3Settings, S3Store};
use crate::config::Config;

/// The public store, as handlers take it from any state (`FromRef`).
#[derive(Clone)]
pub struct PublicStore(pub Arc<dyn StorageBackend>);

/// Which backend holds uploads.
#[derive(Debug, Clone, Default)]
pub enum StorageConfig {
    /// `DATA_DIR/media` (public, served at `/media`) and `DATA_DIR/private-media`.
    #[default]
    Local,
    /// One bucket: public files under `media/`, private ones under `private/`.
    S3(S3Settings),
}

/// `GET /media/{key}`: public uploads. Local files are served from disk; with
/// S3 the host reads the object for the client, so the bucket itself can stay
/// private (set `s3_public_url` to hand out a CDN's or the bucket's URLs
/// instead, when it is public).
pub fn media_routes<S>(config: &Config) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    PublicStore: axum::extract::FromRef<S>,
{
    match &config.storage {
        StorageConfig::Local => {
            axum::Router::new().nest_service("/media", tower_http::services::ServeDir::new(config.media_dir()))
        }
        StorageConfig::S3(_) => axum::Router::new().route("/media/{key}", axum::routing::get(public_file)),
    }
}

async fn public_file(
    axum::extract::State(PublicStore(storage)): axum::extract::State<PublicStore>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Result<axum::response::Response, super::ApiError> {
    use axum::{http::header, response::IntoResponse};
    if flat_key(&key).is_err() {
        return Err(super::ApiError::not_found("file"));
    }
    let lookup = key.clone();
    let bytes = tokio::task::spawn_blocking(move || storage.get(&lookup))
        .await
        .map_err(|e| super::ApiError::internal(e.to_string()))?
        .map_err(|e| {
            tracing::error!(error = %format!("{e:#}"), "reading a public upload");
            super::ApiError::unavailable("the file store did not answer")
        })?
        .ok_or_else(|| super::ApiError::not_found("file"))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type(&key)),
            // Keys are random and files never change: caches may keep them.
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}

/// The content type of a stored upload, by the extension the upload route
/// chose from the file's bytes.
pub fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("jpg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// The public and the private store for `config`.
pub async fn build(config: &Config) -> anyhow::Result<(Arc<dyn StorageBackend>, Arc<dyn StorageBackend>)> {
    let base_url = config.public_base_url.trim_end_matches('/');
    let private_url = format!("{base_url}/api/uploads/files");
    Ok(match &config.storage {
        StorageConfig::Local => (
            Arc::new(LocalDisk::new(config.media_dir(), &format!("{base_url}/media"))?),
            Arc::new(LocalDisk::new(config.private_media_dir(), &private_url)?),
        ),
        StorageConfig::S3(settings) => {
            let public_url = settings.public_url.clone().unwrap_or_else(|| format!("{base_url}/media"));
            let (public, private) = S3Store::pair(settings, &public_url, &private_url).await?;
            (Arc::new(public), Arc::new(private))
        }
    })
}

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

pub(super) fn flat_key(key: &str) -> anyhow::Result<()> {
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
