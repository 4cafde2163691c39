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
    /// Reload plugins when plugins.toml or a listed .wasm file changes.
    pub watch_plugins: bool,
    /// The MQTT station link: broker, topics, heartbeat timeout.
    pub link: LinkConfig,
    /// Base of the URLs the host hands out for uploaded files.
    pub public_base_url: String,
    /// JWT signing secret; generated and stored in the database when absent.
    pub jwt_secret: Option<String>,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub otp: OtpConfig,
    pub operator_signin: OperatorSigninConfig,
    pub sms: SmsConfig,
    pub email: EmailConfig,
    /// Firebase Cloud Messaging for push notifications; `None` sends none
    /// (notifications fall back to SMS where their rule allows).
    pub fcm: Option<FcmConfig>,
    /// Where uploads live: local disk or an S3-compatible bucket.
    pub storage: crate::core::storage::StorageConfig,
    /// Backups the server takes by itself; `None`: only `powerbank backup`.
    pub backup: Option<BackupSchedule>,
    pub upload_max_bytes: usize,
    /// Largest plugin release (`.wasm`) an operator may upload.
    pub plugin_release_max_bytes: usize,
    /// Releases kept per plugin; older ones (never the serving one) are deleted.
    pub plugin_releases_kept: usize,
    /// A canary is stopped once at least this many of its calls ran and more
    /// than `canary_max_failure_percent` % of them failed (traps, timeouts, errors).
    pub canary_min_calls: u64,
    pub canary_max_failure_percent: u8,
    /// What one user may upload, per hour and in all.
    pub upload_quota: UploadQuota,
    pub json_body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// How often the idle background worker polls for jobs that came due.
    pub job_idle_poll: Duration,
    /// Header read timeout and connection cap of the HTTP listener.
    pub http: crate::core::http_listener::HttpLimits,
    /// Allowed CORS origins; empty allows any origin without credentials.
    pub cors_origins: Vec<String>,
    pub reader_connections: usize,
    pub rentals: RentalsConfig,
    /// Who may read `GET /metrics`, and how often its table gauges refresh.
    pub metrics: MetricsConfig,
}

/// `GET /metrics` is never public by default: it answers on the API
/// listener only with the bearer token, and on its own listener (meant for a
/// private address) with the token too when one is set.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub token: Option<String>,
    /// A separate listener for `/metrics` only.
    pub listen: Option<SocketAddr>,
    /// How often the gauges that come from tables (rentals, stations, banks,
    /// jobs) are recomputed; scrapes read the last values.
    pub refresh: Duration,
}

#[derive(Debug, Clone)]
pub struct RentalsConfig {
    /// How long initiate waits for the station's `ejected` answer.
    pub eject_timeout: Duration,
    /// A rental returned within this many minutes of its start is free.
    pub grace_minutes: i64,
}

/// How the host reaches a broker.
#[derive(Debug, Clone)]
pub enum MqttMode {
    /// No station link (tests that do not need one).
    Disabled,
    /// Start rumqttd in-process on this address and connect to it.
    Embedded { listen: SocketAddr },
    /// An external broker, `mqtt://[user:pass@]host:port`.
    External { url: String },
}

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub mode: MqttMode,
    /// Prepended verbatim to every topic, like a broker mountpoint, so several
    /// deployments (or test runs) can share one broker. Empty in production.
    pub mountpoint: String,
    /// A station with no message for this long is marked offline.
    pub heartbeat_timeout_secs: i64,
    /// How often the heartbeat expiry runs.
    pub sweep_interval: Duration,
    /// How long an eject command stays valid at the station (protocols with a
    /// TTL refuse it afterwards, so a command stuck in a queue cannot pop a
    /// bank out minutes later).
    pub eject_ttl_secs: u32,
    /// How a wait for a station's answer ends when none comes: a real timer,
    /// or (tests) a clock the test fires.
    pub answer_timeouts: crate::core::timeouts::Timeouts,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            mode: MqttMode::Embedded { listen: SocketAddr::from(([127, 0, 0, 1], 1884)) },
            mountpoint: String::new(),
            heartbeat_timeout_secs: 90,
            sweep_interval: Duration::from_secs(15),
            eject_ttl_secs: 30,
            answer_timeouts: crate::core::timeouts::Timeouts::Real,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OtpConfig {
    pub ttl_secs: i64,
    pub max_attempts: i64,
    pub per_target_per_hour: u32,
    pub per_ip_per_hour: u32,
    pub verification_ttl_secs: i64,
}

/// Per-user upload limits (`app_core/upload.rs`).
#[derive(Debug, Clone)]
pub struct UploadQuota {
    pub files_per_hour: i64,
    pub bytes_per_hour: i64,
    pub total_files: i64,
    pub total_bytes: i64,
}

/// Operator sign-in lockouts and password hashing (`users/operator_signin.rs`).
#[derive(Debug, Clone)]
pub struct OperatorSigninConfig {
    /// Failures from one address on one account before it locks them out.
    pub free_failures: u32,
    /// The first lock; each further failure doubles it, up to `max_lock_secs`.
    pub lock_secs: i64,
    pub max_lock_secs: i64,
    /// Failures one address may make over all accounts in an hour.
    pub failures_per_ip_per_hour: u32,
    /// How long a sign-in waits for a turn to hash before 503.
    pub hash_queue_wait: Duration,
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

/// FCM HTTP v1 settings, normally read from a Google service-account JSON
/// file (see `notifications::fcm::load_service_account`).
#[derive(Clone)]
pub struct FcmConfig {
    /// `https://fcm.googleapis.com` in production.
    pub base_url: String,
    /// Where the signed service-account assertion is exchanged for an access token.
    pub token_uri: String,
    pub project_id: String,
    pub client_email: String,
    /// The service account's RSA private key (PEM).
    pub private_key: String,
}

impl std::fmt::Debug for FcmConfig {
    // The private key never goes to logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmConfig")
            .field("base_url", &self.base_url)
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for a data directory: everything local, log-only delivery.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            db_path: data_dir.join("powerbank.db"),
            plugins_path: PathBuf::from("plugins.toml"),
            watch_plugins: false,
            data_dir,
            link: Default::default(),
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
            operator_signin: OperatorSigninConfig {
                free_failures: 5,
                lock_secs: 60,
                max_lock_secs: 3600,
                failures_per_ip_per_hour: 50,
                hash_queue_wait: Duration::from_secs(3),
            },
            sms: SmsConfig::Log,
            email: EmailConfig::Log,
            fcm: None,
            storage: Default::default(),
            backup: None,
            upload_max_bytes: 5 * 1024 * 1024,
            plugin_release_max_bytes: 20 * 1024 * 1024,
            plugin_releases_kept: 10,
            canary_min_calls: 20,
            canary_max_failure_percent: 20,
            upload_quota: UploadQuota {
                files_per_hour: 20,
                bytes_per_hour: 30 * 1024 * 1024,
                total_files: 200,
                total_bytes: 200 * 1024 * 1024,
            },
            json_body_limit_bytes: 256 * 1024,
            request_timeout: Duration::from_secs(30),
            job_idle_poll: Duration::from_secs(1),
            http: Default::default(),
            cors_origins: Vec::new(),
            reader_connections: 4,
            rentals: RentalsConfig { eject_timeout: Duration::from_secs(15), grace_minutes: 5 },
            metrics: MetricsConfig { token: None, listen: None, refresh: Duration::from_secs(15) },
        }
    }

    /// Defaults for tests: a temporary data directory and the repository's
    /// plugins.toml (whose plugins `cargo xtask build-plugins` builds).
    pub fn for_tests(data_dir: &std::path::Path) -> Self {
        let mut config = Self::with_data_dir(data_dir.to_path_buf());
        config.plugins_path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins.toml"));
        config.link.mode = MqttMode::Disabled;
        config
    }

    /// Uploads anyone with the URL may fetch (served at `/media`).
    pub fn media_dir(&self) -> PathBuf {
        self.data_dir.join("media")
    }

    /// Uploads only their owner and operators may fetch (identity documents).
    pub fn private_media_dir(&self) -> PathBuf {
        self.data_dir.join("private-media")
    }
}

/// Backups the server takes by itself (`ops` runs them).
#[derive(Debug, Clone)]
pub struct BackupSchedule {
    pub dir: std::path::PathBuf,
    pub every: Duration,
    /// How many backups to keep in `dir` (0: all).
    pub keep: usize,
}
