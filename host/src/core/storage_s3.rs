//! Uploads in an S3-compatible bucket. Requests are signed with SigV4 by
//! `rusty-s3` (it builds short-lived presigned URLs and does no I/O) and sent
//! with the host's own reqwest client, so no second HTTP stack comes along.
//!
//! One bucket holds both stores: public uploads under `media/`, served by the
//! host at `/media/{key}` (or at `s3_public_url`, a CDN or the bucket itself
//! when its policy lets anyone read `media/*`), and identity documents under
//! `private/`, which only the host reads, for `GET /api/uploads/files/{key}`.
//! The bucket itself may stay private.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use reqwest::{StatusCode, Url};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::storage::StorageBackend;

/// How long a request URL the host signs for itself stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct S3Settings {
    /// `https://s3.eu-central-1.amazonaws.com`, `http://127.0.0.1:9000`, ...
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// `endpoint/bucket/key` URLs, as self-hosted stores (MinIO, Garage,
    /// Ceph) need; otherwise `bucket.endpoint/key` (virtual-hosted style).
    pub path_style: bool,
    /// Base URL of public uploads (e.g. a CDN in front of `media/`);
    /// default: the host's `/media`, which reads the bucket.
    pub public_url: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    // The secret key never goes to logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("path_style", &self.path_style)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The objects under one prefix of the bucket.
pub struct S3Store {
    bucket: Arc<Bucket>,
    credentials: Arc<Credentials>,
    prefix: &'static str,
    url_prefix: String,
    http: reqwest::Client,
    /// The trait is blocking (callers use `spawn_blocking`); requests are
    /// async, so each call runs them to completion on the host's runtime.
    runtime: tokio::runtime::Handle,
}

impl S3Store {
    /// The public (`media/`) and private (`private/`) stores, after checking
    /// that the bucket answers to these credentials.
    pub async fn pair(settings: &S3Settings, public_url: &str, private_url: &str) -> anyhow::Result<(Self, Self)> {
        let endpoint = Url::parse(&settings.endpoint).with_context(|| format!("S3 endpoint {}", settings.endpoint))?;
        let style = if settings.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(endpoint, style, settings.bucket.clone(), settings.region.clone())
            .map_err(|e| anyhow::anyhow!("S3 bucket {} at {}: {e}", settings.bucket, settings.endpoint))?;
        let credentials = Credentials::new(settings.access_key.clone(), settings.secret_key.clone());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()?;
        let head = bucket.head_bucket(Some(&credentials)).sign(SIGNED_FOR);
        let answer = http.head(head).send().await.with_context(|| format!("S3 endpoint {}", settings.endpoint))?;
        anyhow::ensure!(
            answer.status().is_success(),
            "S3 bucket {} at {} answered {} to HEAD (missing bucket or wrong credentials?)",
            settings.bucket,
            settings.endpoint,
            answer.status()
        );
        let (bucket, credentials) = (Arc::new(bucket), Arc::new(credentials));
        let runtime = tokio::runtime::Handle::current();
        let store = |prefix, url_prefix: &str| Self {
            bucket: bucket.clone(),
            credentials: credentials.clone(),
            prefix,
            url_prefix: url_prefix.trim_end_matches('/').to_string(),
            http: http.clone(),
            runtime: runtime.clone(),
        };
        Ok((store("media/", public_url), store("private/", private_url)))
    }

    fn object(&self, key: &str) -> anyhow::Result<String> {
        super::storage::flat_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }
}

impl StorageBackend for S3Store {
    fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let object = self.object(key)?;
        let url = self.bucket.put_object(Some(&self.credentials), &object).sign(SIGNED_FOR);
        let request = self.http.put(url).header("content-type", super::storage::content_type(key)).body(bytes.to_vec());
        let answer = self.runtime.block_on(request.send()).with_context(|| format!("S3 PUT {object}"))?;
        anyhow::ensure!(answer.status().is_success(), "S3 PUT {object}: {}", answer.status());
        Ok(())
    }

    fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.url_prefix)
    }

    fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let object = self.object(key)?;
        let url = self.bucket.get_object(Some(&self.credentials), &object).sign(SIGNED_FOR);
        self.runtime.block_on(async {
            let answer = self.http.get(url).send().await.with_context(|| format!("S3 GET {object}"))?;
            match answer.status() {
                StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => Ok(Some(answer.bytes().await?.to_vec())),
                s => anyhow::bail!("S3 GET {object}: {s}"),
            }
        })
    }

    fn delete(&self, key: &str) -> anyhow::Result<()> {
        let object = self.object(key)?;
        let url = self.bucket.delete_object(Some(&self.credentials), &object).sign(SIGNED_FOR);
        let answer =
            self.runtime.block_on(self.http.delete(url).send()).with_context(|| format!("S3 DELETE {object}"))?;
        // Deleting a missing object is not an error (S3 answers 204 anyway).
        anyhow::ensure!(
            answer.status().is_success() || answer.status() == StatusCode::NOT_FOUND,
            "S3 DELETE {object}: {}",
            answer.status()
        );
        Ok(())
    }
}
