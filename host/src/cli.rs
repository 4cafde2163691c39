//! The `powerbank` command line. Every flag has an environment fallback so
//! the same binary configures from a unit file or a container, and a key in
//! `powerbank.toml` (see `config_file.rs`): flags > env > file > defaults.

use std::{
    ffi::OsString,
    io::IsTerminal,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::{
    admin,
    config::{Config, EmailConfig, MqttMode, SmsConfig},
    config_file,
    core::{Db, OperatorRole, storage::StorageConfig, storage_s3::S3Settings},
    demo, ops, schema, server,
};

#[derive(Parser)]
#[command(name = "powerbank", version, about = "Power-bank rental network backend")]
struct Cli {
    /// Log format: `json` (structured, the default) or `text` (coloured only
    /// on a terminal; `NO_COLOR` turns colour off).
    #[arg(long, env = "POWERBANK_LOG_FORMAT", default_value = "json", global = true)]
    log_format: LogFormat,
    /// Settings file (TOML; keys are the long flag names with `_`). Default:
    /// ./powerbank.toml when it exists. Flags and environment variables win
    /// over it.
    #[arg(long, env = config_file::ENV, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(StoreArgs),
    /// Load demo stations, packages, countries, banners and an app version.
    SeedDemo(StoreArgs),
    /// Manage operator accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Check the operator audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the OpenAPI document (what `GET /api/openapi.json` serves) and exit.
    Openapi,
    /// Inspect, check and hot-reload Wasm plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Copy the database and uploads into a new directory under --to, while
    /// the server runs; then keep only the newest --keep backups there.
    Backup(BackupArgs),
    /// Put a backup back in place of a stopped site (the replaced files are
    /// moved to DATA_DIR/pre-restore-*).
    Restore(RestoreArgs),
    /// Recompute every wallet and points balance from its ledger; exit 1 on
    /// any difference. Safe beside a running server.
    Verify(StoreArgs),
    /// Ask a running server's `/api/health`; exit 0 when it answers 200
    /// (a container health check that needs no curl in the image).
    Health {
        #[arg(long, env = "POWERBANK_HEALTH_URL", default_value = "http://127.0.0.1:8000/api/health")]
        url: String,
    },
}

#[derive(Args)]
struct BackupArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    storage: StorageArgs,
    /// Directory that holds the backups (one subdirectory each).
    #[arg(long = "to", id = "backup_dir", env = "POWERBANK_BACKUP_DIR")]
    backup_dir: PathBuf,
    /// How many backups to keep in that directory (0: all).
    #[arg(long = "keep", id = "backup_keep", env = "POWERBANK_BACKUP_KEEP", default_value_t = 7)]
    backup_keep: usize,
}

#[derive(Args)]
struct RestoreArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    storage: StorageArgs,
    /// The backup: one directory written by `powerbank backup`.
    #[arg(long)]
    from: PathBuf,
}

/// Where uploads are kept.
#[derive(Args, Clone)]
struct StorageArgs {
    /// `local` (DATA_DIR/media and DATA_DIR/private-media) or `s3`.
    #[arg(long, env = "POWERBANK_STORAGE", default_value = "local")]
    storage: StorageKind,
    /// S3 endpoint, e.g. `https://s3.ap-south-1.amazonaws.com` or `http://127.0.0.1:9000`.
    #[arg(long, env = "POWERBANK_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    #[arg(long, env = "POWERBANK_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    #[arg(long, env = "POWERBANK_S3_BUCKET")]
    s3_bucket: Option<String>,
    #[arg(long, env = "POWERBANK_S3_ACCESS_KEY")]
    s3_access_key: Option<String>,
    #[arg(long, env = "POWERBANK_S3_SECRET_KEY", hide_env_values = true)]
    s3_secret_key: Option<String>,
    /// Path-style URLs (endpoint/bucket/key), as MinIO, Garage and Ceph need.
    #[arg(long, env = "POWERBANK_S3_PATH_STYLE")]
    s3_path_style: bool,
    /// Base URL of public uploads (a CDN, or the bucket when it is public);
    /// default: the host's /media, which reads the bucket.
    #[arg(long, env = "POWERBANK_S3_PUBLIC_URL")]
    s3_public_url: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StorageKind {
    Local,
    S3,
}

impl StorageArgs {
    fn config(&self) -> anyhow::Result<StorageConfig> {
        Ok(match self.storage {
            StorageKind::Local => StorageConfig::Local,
            StorageKind::S3 => {
                let need = |v: &Option<String>, flag: &str| {
                    v.clone().filter(|v| !v.is_empty()).with_context(|| format!("--storage s3 needs --{flag}"))
                };
                StorageConfig::S3(S3Settings {
                    endpoint: need(&self.s3_endpoint, "s3-endpoint")?,
                    region: self.s3_region.clone(),
                    bucket: need(&self.s3_bucket, "s3-bucket")?,
                    access_key: need(&self.s3_access_key, "s3-access-key")?,
                    secret_key: need(&self.s3_secret_key, "s3-secret-key")?,
                    path_style: self.s3_path_style,
                    public_url: self.s3_public_url.clone(),
                })
            }
        })
    }
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Load plugins.toml as the server would (with the releases promoted in
    /// its database) and show every plugin's state and source.
    List {
        #[arg(long, env = "POWERBANK_PLUGINS", default_value = "plugins.toml")]
        plugins: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check a .wasm file: which world it implements, its info, its
    /// self-check and, given trusted keys, its signature (`FILE.sig` or `--signature`).
    Validate {
        file: PathBuf,
        /// A public key (hex) to check the signature against; repeatable.
        #[arg(long = "trusted-key")]
        trusted_keys: Vec<String>,
        /// The signature (hex); default: the contents of `FILE.sig`.
        #[arg(long)]
        signature: Option<String>,
    },
    /// Make an ed25519 key pair for signing plugin releases: the public key
    /// goes in plugins.toml (`[signing] trusted_keys`), the secret stays off the server.
    Keygen,
    /// Sign a .wasm file (its sha256): writes `FILE.sig` and prints the signature.
    Sign {
        file: PathBuf,
        /// File holding the secret key (hex), as `plugins keygen` printed it.
        #[arg(long, env = "POWERBANK_PLUGIN_SIGNING_KEY_FILE")]
        key_file: PathBuf,
    },
    /// Ask a running server to reload its plugins (admin credentials needed).
    Reload {
        #[arg(long, env = "POWERBANK_API", default_value = "http://127.0.0.1:8000")]
        api: String,
        #[arg(long, env = "POWERBANK_ADMIN_EMAIL")]
        email: String,
        #[arg(long, env = "POWERBANK_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an operator who signs in at `POST /api/admin/login`.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        email: String,
        /// At least 12 characters.
        #[arg(long, env = "POWERBANK_ADMIN_PASSWORD")]
        password: String,
        /// What the operator may do: owner (everything, manages operators),
        /// admin, support, finance or field_tech (docs/admin.md).
        #[arg(long, default_value = "owner", value_parser = parse_role)]
        role: OperatorRole,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the audit log's hash chain; exit 1 when a row was edited or
    /// deleted. Safe beside a running server.
    Verify(StoreArgs),
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Directory for the database and uploaded media.
    #[arg(long, env = "POWERBANK_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Database file (default: DATA_DIR/powerbank.db).
    #[arg(long, env = "POWERBANK_DB")]
    db: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    storage: StorageArgs,
    /// Take backups into this directory while serving (off when unset).
    #[arg(long, env = "POWERBANK_BACKUP_DIR")]
    backup_dir: Option<PathBuf>,
    /// Hours between scheduled backups, counted from the newest one there.
    #[arg(long, env = "POWERBANK_BACKUP_EVERY_HOURS", default_value_t = 24)]
    backup_every_hours: u64,
    /// How many scheduled backups to keep (0: all).
    #[arg(long, env = "POWERBANK_BACKUP_KEEP", default_value_t = 7)]
    backup_keep: usize,
    #[arg(long, env = "POWERBANK_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Plugin manifest [default: plugins.toml; with --demo, plugins.demo.toml
    /// (the demo gateway instead of the real ones) when it exists].
    #[arg(long, env = "POWERBANK_PLUGINS")]
    plugins: Option<PathBuf>,
    /// External MQTT broker, e.g. `mqtt://127.0.0.1:1883`; default: embedded broker.
    #[arg(long, env = "POWERBANK_MQTT_URL")]
    mqtt_url: Option<String>,
    /// Where the embedded broker listens (when no external broker is given).
    #[arg(long, env = "POWERBANK_MQTT_LISTEN", default_value = "127.0.0.1:1884")]
    mqtt_listen: SocketAddr,
    /// Prepended to every station topic, like a broker mountpoint (lets
    /// several deployments share a broker). The protocol plugins name the
    /// topics themselves.
    #[arg(long, env = "POWERBANK_MQTT_MOUNTPOINT", default_value = "")]
    mqtt_mountpoint: String,
    /// Seconds an eject command stays valid at stations whose protocol has a TTL.
    #[arg(long, env = "POWERBANK_EJECT_TTL", default_value_t = 30)]
    eject_ttl: u32,
    /// Seconds without a heartbeat before a station counts as offline.
    #[arg(long, env = "POWERBANK_HEARTBEAT_TIMEOUT", default_value_t = 90)]
    heartbeat_timeout: i64,
    /// Run without a station link (no broker, no MQTT).
    #[arg(long, env = "POWERBANK_NO_MQTT")]
    no_mqtt: bool,
    /// Base of URLs handed out for uploads (default: http://LISTEN).
    #[arg(long, env = "POWERBANK_PUBLIC_URL")]
    public_url: Option<String>,
    /// JWT signing secret (32+ characters); generated and stored when absent.
    #[arg(long, env = "POWERBANK_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Comma-separated allowed CORS origins (default: any).
    #[arg(long, env = "POWERBANK_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Sparrow SMS API base URL; SMS go to the log when unset.
    #[arg(long, env = "POWERBANK_SPARROW_URL")]
    sparrow_url: Option<String>,
    #[arg(long, env = "POWERBANK_SPARROW_TOKEN", hide_env_values = true, default_value = "")]
    sparrow_token: String,
    #[arg(long, env = "POWERBANK_SPARROW_FROM", default_value = "powerbank")]
    sparrow_from: String,
    /// Firebase service-account key file (JSON) for push notifications;
    /// no push when unset.
    #[arg(long, env = "POWERBANK_FCM_CREDENTIALS")]
    fcm_credentials: Option<PathBuf>,
    /// FCM API base URL.
    #[arg(long, env = "POWERBANK_FCM_URL", default_value = crate::notifications::fcm::GOOGLE_FCM_URL)]
    fcm_url: String,
    /// SMTP relay host; emails go to the log when unset.
    #[arg(long, env = "POWERBANK_SMTP_HOST")]
    smtp_host: Option<String>,
    #[arg(long, env = "POWERBANK_SMTP_PORT", default_value_t = 25)]
    smtp_port: u16,
    #[arg(long, env = "POWERBANK_EMAIL_FROM", default_value = "powerbank <no-reply@localhost>")]
    email_from: String,
    /// Bearer token that `GET /metrics` requires (16+ characters); without
    /// it and without --metrics-listen, /metrics answers 404.
    #[arg(long, env = "POWERBANK_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Serve /metrics on this address too (e.g. a private interface).
    #[arg(long, env = "POWERBANK_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Seconds between refreshes of the gauges read from tables.
    #[arg(long, env = "POWERBANK_METRICS_REFRESH_SECS", default_value_t = 15)]
    metrics_refresh_secs: u64,
    /// Do not reload plugins when plugins.toml or a .wasm file changes.
    #[arg(long, env = "POWERBANK_NO_PLUGIN_WATCH")]
    no_plugin_watch: bool,
    /// Load demo data into an empty database before serving, and run a
    /// simulated station for each station (with the embedded broker).
    #[arg(long, env = "POWERBANK_DEMO")]
    demo: bool,
    /// With --demo: load the demo data but run no simulated stations (a test
    /// harness that runs `powerbank-station-sim` itself, with its own timing).
    #[arg(long, env = "POWERBANK_NO_DEMO_STATIONS", requires = "demo")]
    no_demo_stations: bool,
}

impl StoreArgs {
    fn config(&self) -> Config {
        let mut config = Config::with_data_dir(self.data_dir.clone());
        if let Some(db) = &self.db {
            config.db_path = db.clone();
        }
        config
    }
}

/// The demo's plugin manifest: the repository's plugins with the demo
/// gateway in place of the real ones, which need keys a newcomer lacks.
pub const DEMO_PLUGINS: &str = "plugins.demo.toml";

impl ServeArgs {
    /// `--plugins`, or by default `plugins.toml`; with `--demo`, the demo's
    /// manifest when there is one.
    fn plugins_path(&self) -> PathBuf {
        match &self.plugins {
            Some(path) => path.clone(),
            None if self.demo && Path::new(DEMO_PLUGINS).is_file() => PathBuf::from(DEMO_PLUGINS),
            None => PathBuf::from("plugins.toml"),
        }
    }

    fn config(&self) -> anyhow::Result<Config> {
        let mut config = self.store.config();
        config.storage = self.storage.config()?;
        if let Some(dir) = &self.backup_dir {
            anyhow::ensure!(self.backup_every_hours > 0, "--backup-every-hours must be at least 1");
            config.backup = Some(ops::BackupSchedule {
                dir: dir.clone(),
                every: Duration::from_secs(self.backup_every_hours.saturating_mul(3600)),
                keep: self.backup_keep,
            });
        }
        config.listen = self.listen;
        config.plugins_path = self.plugins_path();
        config.watch_plugins = !self.no_plugin_watch;
        config.link.mode = match (&self.mqtt_url, self.no_mqtt) {
            (_, true) => MqttMode::Disabled,
            (Some(url), false) => MqttMode::External { url: url.clone() },
            (None, false) => MqttMode::Embedded { listen: self.mqtt_listen },
        };
        config.link.mountpoint = self.mqtt_mountpoint.clone();
        config.link.eject_ttl_secs = self.eject_ttl.clamp(5, 600);
        config.link.heartbeat_timeout_secs = self.heartbeat_timeout.max(5);
        config.public_base_url = self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen));
        config.jwt_secret = self.jwt_secret.clone();
        config.cors_origins = self.cors_origins.clone();
        if let Some(token) = self.metrics_token.as_deref().filter(|t| !t.is_empty()) {
            anyhow::ensure!(token.len() >= 16, "--metrics-token must be at least 16 characters");
            config.metrics.token = Some(token.to_owned());
        }
        config.metrics.listen = self.metrics_listen;
        config.metrics.refresh = Duration::from_secs(self.metrics_refresh_secs.clamp(1, 3600));
        if let Some(base_url) = &self.sparrow_url {
            config.sms = SmsConfig::Sparrow {
                base_url: base_url.clone(),
                token: self.sparrow_token.clone(),
                from: self.sparrow_from.clone(),
            };
        }
        if let Some(path) = &self.fcm_credentials {
            config.fcm = Some(crate::notifications::fcm::load_service_account(path, &self.fcm_url)?);
        }
        if let Some(host) = &self.smtp_host {
            config.email =
                EmailConfig::Smtp { host: host.clone(), port: self.smtp_port, from: self.email_from.clone() };
        }
        Ok(config)
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POWERBANK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
        // Colour codes are for a terminal; in a file or a pipe they are noise
        // (and get in the way of grepping the log for an OTP).
        LogFormat::Text => builder.with_ansi(colour_on(std::io::stderr().is_terminal())).init(),
    }
}

/// Colour when writing to a terminal, unless `NO_COLOR` is set (no-color.org).
fn colour_on(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Parses the command line over the settings of the config file.
fn parse(args: Vec<OsString>, env_config: Option<OsString>) -> Result<Cli, ParseFailure> {
    let mut command = Cli::command();
    if let Some(path) = config_file::locate(&args, env_config).map_err(ParseFailure::File)? {
        command = config_file::apply(command, &path).map_err(ParseFailure::File)?;
    }
    let matches = command.try_get_matches_from(args).map_err(ParseFailure::Clap)?;
    Cli::from_arg_matches(&matches).map_err(ParseFailure::Clap)
}

#[derive(Debug)]
enum ParseFailure {
    File(anyhow::Error),
    Clap(clap::Error),
}

pub fn main() -> ExitCode {
    let cli = match parse(std::env::args_os().collect(), std::env::var_os(config_file::ENV)) {
        Ok(cli) => cli,
        Err(ParseFailure::Clap(e)) => e.exit(),
        Err(ParseFailure::File(e)) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(cli.log_format);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "powerbank failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let config = args.config()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let state = server::build_state(config.clone()).await?;
                if args.demo {
                    let db = state.db.clone();
                    let loaded = tokio::task::spawn_blocking(move || demo::seed_if_empty(&db)).await??;
                    let stations = if args.no_demo_stations {
                        "not simulated (--no-demo-stations)"
                    } else if matches!(config.link.mode, MqttMode::Embedded { .. }) {
                        "simulated in this process (embedded broker)"
                    } else {
                        "not simulated (no embedded broker): run powerbank-station-sim"
                    };
                    let gateways: Vec<String> = state
                        .plugins
                        .gateway_names()
                        .into_iter()
                        .filter_map(|g| state.plugins.display_info(&g))
                        .map(|g| format!("{} ({})", g.name, g.display_name))
                        .collect();
                    let payments = match gateways.is_empty() {
                        true => "no gateway serving (plugins: see `powerbank plugins list`)".to_string(),
                        false => format!(
                            "{}; top up with POST /api/wallet/topup-intent, then open its payment_url",
                            gateways.join(", ")
                        ),
                    };
                    println!(
                        "
powerbank demo {}
  Console:  http://{listen}/console/  (operator sign-in below)
  API:      http://{listen}/api/health
  Docs:     http://{listen}/api/docs
  Admin:    {} / {} (POST /api/admin/login)
  Stations: {stations}
  Plugins:  {plugins}
  Payments: {payments}
  OTPs for app sign-in are printed in this log.
",
                        if loaded { "data loaded" } else { "(existing data)" },
                        demo::DEMO_ADMIN_EMAIL,
                        demo::DEMO_ADMIN_PASSWORD,
                        listen = config.listen,
                        plugins = config.plugins_path.display(),
                    );
                    if !args.no_demo_stations {
                        crate::demo_stations::spawn(&state);
                    }
                }
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .with_context(|| format!("binding {}", config.listen))?;
                tracing::info!(listen = %config.listen, db = %config.db_path.display(), "serving");
                server::serve(listener, state, server::shutdown_signal()).await
            })
        }
        Command::Migrate(store) => {
            let config = store.config();
            schema::open_db(&config.db_path, 1)?;
            println!("database {} is up to date", config.db_path.display());
            Ok(())
        }
        Command::SeedDemo(store) => {
            let config = store.config();
            let db = schema::open_db(&config.db_path, 1)?;
            let seeded = demo::seed_if_empty(&db)?;
            println!("{}", if seeded { "demo data loaded" } else { "database already has stations; nothing loaded" });
            Ok(())
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&server::api().1)?);
            Ok(())
        }
        Command::Plugins { command } => tokio::runtime::Runtime::new()?.block_on(plugins_command(command)),
        Command::Backup(args) => {
            let mut config = args.store.config();
            config.storage = args.storage.config()?;
            let outcome = ops::backup::backup(&config, &args.backup_dir, args.backup_keep)?;
            let m = &outcome.manifest;
            println!(
                "backup {} written: schema {}, {} file(s), {} wallet and {} points ledger rows, integrity {}",
                outcome.dir.display(),
                m.schema_version,
                m.files.len(),
                m.counts.get("wallet_transactions").copied().unwrap_or(0),
                m.counts.get("points_transactions").copied().unwrap_or(0),
                m.integrity_check,
            );
            if m.uploads != "local" {
                println!("uploads stay in {} (not copied): keep versioning on for that bucket", m.uploads);
            }
            for old in &outcome.pruned {
                println!("removed old backup {}", old.display());
            }
            Ok(())
        }
        Command::Restore(args) => {
            let mut config = args.store.config();
            config.storage = args.storage.config()?;
            let outcome = ops::restore::restore(&config, &args.from)?;
            println!(
                "restored {} (taken {}, schema {}) into {}",
                args.from.display(),
                outcome.manifest.created_at,
                outcome.manifest.schema_version,
                config.db_path.display()
            );
            if let Some(aside) = &outcome.set_aside {
                println!("the replaced database and uploads are in {}", aside.display());
            }
            print_verify(&outcome.report)
        }
        Command::Verify(store) => print_verify(&ops::verify::verify_file(&store.config().db_path)?),
        Command::Audit { command: AuditCommand::Verify(store) } => verify_audit(&store.config().db_path),
        Command::Health { url } => tokio::runtime::Runtime::new()?.block_on(async {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
            let answer = http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
            let status = answer.status();
            let body = answer.text().await.unwrap_or_default();
            println!("{body}");
            anyhow::ensure!(status.is_success(), "{url} answered {status}");
            Ok(())
        }),
        Command::Admin { command: AdminCommand::Create { store, email, password, role } } => {
            let config = store.config();
            let db = schema::open_db(&config.db_path, 1)?;
            let id = create_operator(&db, &email, &password, role)?;
            println!("operator {email} ({role}) created (user id {id}); sign in at POST /api/admin/login");
            Ok(())
        }
    }
}

async fn plugins_command(command: PluginsCommand) -> anyhow::Result<()> {
    use powerbank_plugin_runtime::{PluginHost, PluginHostOptions, validate_file};
    match command {
        PluginsCommand::List { plugins, store } => {
            let config = store.config();
            // Read the promotions without migrating someone's database: a
            // database without releases (or none at all) means files serve.
            let releases = if config.db_path.exists() {
                let db = Db::open(&config.db_path, 1)?;
                crate::plugins::releases::serving_releases(&db, &config.data_dir).unwrap_or_else(|e| {
                    eprintln!("no plugin releases read from {}: {e:#}", config.db_path.display());
                    Default::default()
                })
            } else {
                Default::default()
            };
            let (host, _) = PluginHost::start_with_releases(&plugins, PluginHostOptions::default(), releases)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", plugins.display()))?;
            println!(
                "{:<24} {:<16} {:<10} {:<8} {:<12} {:<14} error",
                "name", "kind", "version", "state", "source", "sha256"
            );
            for p in host.status() {
                let out = crate::plugins::PluginOut::from(p);
                let source = match out.release_id {
                    Some(id) => format!("release {id}"),
                    None => out.source.to_string(),
                };
                let sha = out.sha256.as_deref().map_or("-".to_string(), |s| s.chars().take(12).collect());
                println!(
                    "{:<24} {:<16} {:<10} {:<8} {:<12} {:<14} {}",
                    out.name,
                    out.kind,
                    out.version.as_deref().unwrap_or("-"),
                    out.status,
                    source,
                    sha,
                    out.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        PluginsCommand::Validate { file, trusted_keys, signature } => {
            let report = validate_file(&file).await.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!(
                "{}: {:?} plugin {} {} (sha256 {})",
                file.display(),
                report.kind,
                report.name,
                report.version,
                report.sha256
            );
            let mut sig_path = file.clone().into_os_string();
            sig_path.push(".sig");
            let signature = signature.or_else(|| std::fs::read_to_string(&sig_path).ok().map(|s| s.trim().to_string()));
            match (signature, trusted_keys.is_empty()) {
                (None, true) => println!("unsigned"),
                (None, false) => anyhow::bail!("unsigned: no --signature and no {}", PathBuf::from(sig_path).display()),
                (Some(_), true) => println!("signed (give --trusted-key to check the signature)"),
                (Some(signature), false) => {
                    let key = powerbank_plugin_runtime::signing::verify(&trusted_keys, &report.sha256, &signature)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                    println!("signature valid, by {key}");
                }
            }
            Ok(())
        }
        PluginsCommand::Keygen => {
            use rand::RngCore;
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            let (secret, public) = powerbank_plugin_runtime::signing::keypair_from_seed(seed);
            println!("public key (plugins.toml [signing] trusted_keys): {public}");
            println!("secret key (keep it off the server; `plugins sign --key-file`): {secret}");
            Ok(())
        }
        PluginsCommand::Sign { file, key_file } => {
            let secret = std::fs::read_to_string(&key_file).with_context(|| format!("{}", key_file.display()))?;
            let bytes = std::fs::read(&file).with_context(|| format!("{}", file.display()))?;
            let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
            let signature =
                powerbank_plugin_runtime::signing::sign(&secret, &sha256).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut sig_path = file.into_os_string();
            sig_path.push(".sig");
            std::fs::write(&sig_path, format!("{signature}\n"))?;
            println!("{signature}");
            eprintln!("written to {} (sha256 {sha256})", PathBuf::from(sig_path).display());
            Ok(())
        }
        PluginsCommand::Reload { api, email, password } => {
            let http = reqwest::Client::new();
            let api = api.trim_end_matches('/');
            let login: serde_json::Value = http
                .post(format!("{api}/api/admin/login"))
                .json(&serde_json::json!({"email": email, "password": password}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let token = login["access_token"].as_str().context("no access token in the login answer")?;
            let response = http.post(format!("{api}/api/admin/plugins/reload")).bearer_auth(token).send().await?;
            let status = response.status();
            let body: serde_json::Value = response.json().await?;
            println!("{}", serde_json::to_string_pretty(&body)?);
            anyhow::ensure!(status.is_success(), "reload refused: HTTP {status}");
            let failed = body["failed"].as_array().map_or(0, Vec::len);
            anyhow::ensure!(failed == 0, "{failed} plugin(s) failed to load; the previous versions keep serving");
            Ok(())
        }
    }
}

/// Prints the audit log check; an error (exit 1) on any problem.
pub fn verify_audit(path: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(path.is_file(), "no database at {}", path.display());
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let check = crate::core::audit::verify(&conn).map_err(|e| anyhow::anyhow!(e.message))?;
    println!(
        "checked {} audit row(s); newest {} with hash {}",
        check.rows_checked,
        check.last_id.map_or("-".into(), |id| id.to_string()),
        check.head_hash.as_deref().unwrap_or("-")
    );
    for p in &check.problems {
        println!("PROBLEM row {}: {} ({})", p.id, p.problem, p.detail);
    }
    anyhow::ensure!(check.ok, "the audit log was tampered with: {} problem(s)", check.problems.len());
    println!("the audit log is intact");
    Ok(())
}

fn parse_role(text: &str) -> Result<OperatorRole, String> {
    text.parse()
}

/// Prints a ledger check; an error (exit 1) when any balance differs.
fn print_verify(report: &ops::verify::VerifyReport) -> anyhow::Result<()> {
    println!(
        "checked {} wallet(s) against {} ledger row(s) and {} points account(s) against {} row(s)",
        report.wallets_checked, report.wallet_ledger_rows, report.points_accounts_checked, report.points_ledger_rows
    );
    for d in &report.differences {
        println!(
            "DIFFERENCE {} user {}: balance {}, ledger sum {}, newest row's balance_after {}",
            d.ledger,
            d.user_id,
            d.stored.map_or("missing".into(), |v| v.to_string()),
            d.from_ledger,
            d.last_balance_after.map_or("-".into(), |v| v.to_string()),
        );
    }
    anyhow::ensure!(report.is_clean(), "{} balance(s) differ from their ledgers", report.differences.len());
    println!("every balance equals its ledger");
    Ok(())
}

/// Creates an owner (the site's first operator); used by the demo data and tests.
pub fn create_admin(db: &Db, email: &str, password: &str) -> anyhow::Result<i64> {
    create_operator(db, email, password, OperatorRole::Owner)
}

/// Creates an operator account with `role`; used by `powerbank admin create`.
pub fn create_operator(db: &Db, email: &str, password: &str, role: OperatorRole) -> anyhow::Result<i64> {
    let (identifier, hash) =
        admin::operators::prepare_credentials(email, password).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    db.blocking_write(|tx| {
        admin::operators::create(tx, &identifier, &hash, role, None).map_err(|e| anyhow::anyhow!(e.message))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn serve_args(cli: Cli) -> Box<ServeArgs> {
        match cli.command {
            Command::Serve(args) => args,
            _ => panic!("not serve"),
        }
    }

    fn config_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("powerbank.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap().to_string();
        (dir, path)
    }

    const FILE: &str = r#"
        listen = "127.0.0.1:9100"
        eject_ttl = 45
        data_dir = "/srv/powerbank"
        cors_origins = ["https://a.example", "https://b.example"]
        no_plugin_watch = true
        storage = "s3"
        s3_endpoint = "http://127.0.0.1:9000"
        s3_bucket = "uploads"
        s3_access_key = "key"
        s3_secret_key = "secret"
        s3_path_style = true
        backup_dir = "/srv/backups"
        backup_keep = 3
    "#;

    #[test]
    fn the_file_sets_defaults_and_flags_win_over_it() {
        let (_dir, path) = config_file(FILE);
        let cli = parse(args(&["powerbank", "--config", &path, "serve", "--listen", "127.0.0.1:9200"]), None).unwrap();
        let serve = serve_args(cli);
        let config = serve.config().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9200", "the flag wins");
        assert_eq!(config.link.eject_ttl_secs, 45, "the file beats the built-in 30");
        assert_eq!(config.data_dir, PathBuf::from("/srv/powerbank"));
        assert_eq!(config.cors_origins, vec!["https://a.example", "https://b.example"]);
        assert!(!config.watch_plugins);
        let StorageConfig::S3(s3) = &config.storage else { panic!("s3 storage") };
        assert!(s3.path_style);
        assert_eq!((s3.bucket.as_str(), s3.region.as_str()), ("uploads", "us-east-1"));
        let backup = config.backup.expect("scheduled backups");
        assert_eq!(
            (backup.dir, backup.keep, backup.every),
            (PathBuf::from("/srv/backups"), 3, Duration::from_secs(86_400))
        );

        // The same file configures the backup command: `backup_dir` is its --to.
        let cli = parse(args(&["powerbank", "backup"]), Some(path.clone().into())).unwrap();
        let Command::Backup(backup) = cli.command else { panic!("backup") };
        assert_eq!((backup.backup_dir, backup.backup_keep), (PathBuf::from("/srv/backups"), 3));
    }

    #[test]
    fn unknown_keys_and_missing_files_are_refused() {
        let (_dir, path) = config_file("listn = \"127.0.0.1:1\"\n");
        let Err(ParseFailure::File(e)) = parse(args(&["powerbank", "--config", &path, "serve"]), None) else {
            panic!("a typo must be refused")
        };
        assert!(format!("{e:#}").contains("unknown key `listn`"), "{e:#}");
        let (_dir, path) = config_file("password = \"from-file\"\n");
        assert!(
            matches!(parse(args(&["powerbank", "--config", &path, "serve"]), None), Err(ParseFailure::File(_))),
            "admin credentials are not settings"
        );
        assert!(matches!(
            parse(args(&["powerbank", "serve"]), Some("/nonexistent/powerbank.toml".into())),
            Err(ParseFailure::File(_))
        ));
    }

    /// Environment beats file. The environment is process-wide, so the check
    /// runs in a child process (this test binary, running only
    /// `env_child`) that is given the variables.
    #[test]
    fn the_environment_wins_over_the_file() {
        let (_dir, path) = config_file(FILE);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "cli::tests::env_child", "--nocapture", "--test-threads", "1"])
            .env("POWERBANK_TEST_CONFIG_CHILD", &path)
            .env("POWERBANK_EJECT_TTL", "50")
            .env("POWERBANK_LISTEN", "127.0.0.1:9300")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("env_child checked"), "the child did not run: {stdout}");
    }

    #[test]
    fn env_child() {
        let Some(path) = std::env::var_os("POWERBANK_TEST_CONFIG_CHILD") else { return };
        let cli = parse(args(&["powerbank", "serve"]), Some(path)).unwrap();
        let config = serve_args(cli).config().unwrap();
        assert_eq!(config.link.eject_ttl_secs, 50, "env beats file");
        assert_eq!(config.listen.to_string(), "127.0.0.1:9300", "env beats file");
        assert_eq!(config.data_dir, PathBuf::from("/srv/powerbank"), "the file beats the default");
        println!("env_child checked");
    }

    /// The shipped example and the documentation name every key the file may
    /// set, and nothing else.
    #[test]
    fn the_example_file_parses_and_the_docs_list_every_key() {
        let example = include_str!("../../deploy/powerbank.toml.example");
        config_file::apply_str(Cli::command(), example).unwrap();
        let docs = include_str!("../../docs/configuration.md");
        for key in config_file::known_keys(&Cli::command()) {
            assert!(docs.contains(&format!("| `{key}` |")), "docs/configuration.md lacks `{key}`");
        }
    }

    #[test]
    fn text_logs_are_coloured_only_on_a_terminal() {
        assert!(!colour_on(false));
    }
}
