//! Runtime configuration of the host, built once from CLI flags and their
//! environment fallbacks (see `cli.rs`), then shared read-only.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Holds the database (unless `db_path` says otherwise) and uploaded media.
    pub data_dir: PathBuf,
    pub db_path: PathBuf,
    pub plugins_path: PathBuf,
    /// External broker (`mqtt://host:port`); `None` means the embedded one.
    pub mqtt_url: Option<String>,
    /// Base of the URLs the host hands out for uploaded files.
    pub public_base_url: String,
    /// JWT signing secret; generated and stored in the database when absent.
    pub jwt_secret: Option<String>,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub otp: OtpConfig,
    pub sms: SmsConfig,
    pub email: EmailConfig,
    pub upload_max_bytes: usize,
    pub json_body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// Allowed CORS origins; empty allows any origin without credentials.
    pub cors_origins: Vec<String>,
    pub reader_connections: usize,
}

#[derive(Debug, Clone)]
pub struct OtpConfig {
    pub ttl_secs: i64,
    pub max_attempts: i64,
    pub per_target_per_hour: u32,
    pub per_ip_per_hour: u32,
    pub verification_ttl_secs: i64,
}

#[derive(Debug, Clone)]
pub enum SmsConfig {
    /// Writes the message to the log (development and demo).
    Log,
    /// Sparrow SMS v2 HTTP API.
    Sparrow { base_url: String, token: String, from: String },
}

#[derive(Debug, Clone)]
pub enum EmailConfig {
    Log,
    Smtp { host: String, port: u16, from: String },
}

impl Config {
    /// Defaults for a data directory: everything local, log-only delivery.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            db_path: data_dir.join("powerbank.db"),
            plugins_path: PathBuf::from("plugins.toml"),
            data_dir,
            mqtt_url: None,
            public_base_url: "http://127.0.0.1:8000".into(),
            jwt_secret: None,
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            otp: OtpConfig {
                ttl_secs: 5 * 60,
                max_attempts: 5,
                per_target_per_hour: 5,
                per_ip_per_hour: 30,
                verification_ttl_secs: 10 * 60,
            },
            sms: SmsConfig::Log,
            email: EmailConfig::Log,
            upload_max_bytes: 5 * 1024 * 1024,
            json_body_limit_bytes: 256 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            reader_connections: 4,
        }
    }

    pub fn media_dir(&self) -> PathBuf {
        self.data_dir.join("media")
    }
}
