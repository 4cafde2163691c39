//! A local S3-compatible server for the object-storage tests: moto's server
//! (PyPI `moto[server]`), started per test on a free port. `cargo xtask
//! test` installs it into a virtualenv under the target directory and names
//! it in `POWERBANK_TEST_MOTO_SERVER`; a missing moto fails the test with
//! the way to get it, it never skips.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::mqtt::free_port;

pub const ENV: &str = "POWERBANK_TEST_MOTO_SERVER";
/// moto accepts any credentials; these only have to be well-formed.
pub const ACCESS_KEY: &str = "AKIAPOWERBANKTEST";
pub const SECRET_KEY: &str = "powerbank-test-secret-key";

pub struct Moto {
    pub endpoint: String,
    child: Child,
}

/// The moto_server executable: `$POWERBANK_TEST_MOTO_SERVER`, else the
/// virtualenv `cargo xtask test` makes (`<target dir>/moto-venv`), else PATH.
fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors() {
            let candidate = dir.join("moto-venv").join("bin").join("moto_server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("moto_server")
}

impl Moto {
    /// Starts moto's S3 server on a free loopback port and waits until it answers.
    pub async fn start() -> Self {
        let port = free_port();
        let program = moto_server();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): the S3 tests need moto. `cargo xtask install-moto` installs it \
                     (cargo xtask test does so by itself), or set {ENV}",
                    program.display()
                )
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if http.get(format!("{endpoint}/moto-api/")).send().await.is_ok() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "moto did not answer on {endpoint} within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { endpoint, child }
    }

    /// Whether an anonymous (unsigned) GET of an object is refused.
    pub async fn refuses_anonymous(&self, bucket: &str, key: &str) -> bool {
        let r = reqwest::Client::new().get(format!("{}/{bucket}/{key}", self.endpoint)).send().await.expect("GET");
        r.status() == reqwest::StatusCode::FORBIDDEN
    }

    /// Creates a bucket (moto takes unsigned requests).
    pub async fn create_bucket(&self, name: &str) {
        let r = reqwest::Client::new().put(format!("{}/{name}", self.endpoint)).send().await.expect("create bucket");
        assert!(r.status().is_success(), "create bucket {name}: {}", r.status());
    }

    /// An object's bytes straight from the store (a signed GET), `None` when
    /// it is not there.
    pub async fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        use rusty_s3::S3Action;
        let endpoint = reqwest::Url::parse(&self.endpoint).expect("endpoint URL");
        let bucket_ref =
            rusty_s3::Bucket::new(endpoint, rusty_s3::UrlStyle::Path, bucket.to_string(), "us-east-1").expect("bucket");
        let credentials = rusty_s3::Credentials::new(ACCESS_KEY, SECRET_KEY);
        let url = bucket_ref.get_object(Some(&credentials), key).sign(Duration::from_secs(60));
        let r = reqwest::Client::new().get(url).send().await.expect("GET");
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        assert!(r.status().is_success(), "GET {bucket}/{key}: {}", r.status());
        Some(r.bytes().await.expect("body").to_vec())
    }

    pub fn settings(&self, bucket: &str) -> powerbank::core::storage_s3::S3Settings {
        powerbank::core::storage_s3::S3Settings {
            endpoint: self.endpoint.clone(),
            region: "us-east-1".into(),
            bucket: bucket.into(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            path_style: true,
            public_url: None,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
