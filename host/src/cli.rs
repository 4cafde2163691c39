//! The `powerbank` command line. Every flag has an environment fallback so
//! the same binary configures from a unit file or a container.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    config::{Config, EmailConfig, MqttMode, SmsConfig},
    core::{Db, Role},
    demo, schema, server,
    users::{auth, identifier::Identifier},
};

#[derive(Parser)]
#[command(name = "powerbank", version, about = "Power-bank rental network backend")]
struct Cli {
    /// Log format: `json` (structured, the default) or `text`.
    #[arg(long, env = "POWERBANK_LOG_FORMAT", default_value = "json", global = true)]
    log_format: LogFormat,
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
    /// Print the OpenAPI document (what `GET /api/openapi.json` serves) and exit.
    Openapi,
    /// Inspect, check and hot-reload Wasm plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Load plugins.toml as the server would and show every plugin's state.
    List {
        #[arg(long, env = "POWERBANK_PLUGINS", default_value = "plugins.toml")]
        plugins: PathBuf,
    },
    /// Check a .wasm file: which world it implements, its info, its self-check.
    Validate { file: PathBuf },
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
    /// Create an admin who signs in at `POST /api/admin/login`.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        email: String,
        /// At least 12 characters.
        #[arg(long, env = "POWERBANK_ADMIN_PASSWORD")]
        password: String,
    },
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
    #[arg(long, env = "POWERBANK_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Plugin manifest.
    #[arg(long, env = "POWERBANK_PLUGINS", default_value = "plugins.toml")]
    plugins: PathBuf,
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
    /// Do not reload plugins when plugins.toml or a .wasm file changes.
    #[arg(long, env = "POWERBANK_NO_PLUGIN_WATCH")]
    no_plugin_watch: bool,
    /// Load demo data into an empty database before serving.
    #[arg(long, env = "POWERBANK_DEMO")]
    demo: bool,
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

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = self.store.config();
        config.listen = self.listen;
        config.plugins_path = self.plugins.clone();
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
        LogFormat::Text => builder.init(),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
                    println!(
                        "\npowerbank demo {}\n  Console: http://{listen}/console/  (operator sign-in below)\n  API:    http://{listen}/api/health\n  Docs:   http://{listen}/api/docs\n  Admin:  {} / {} (POST /api/admin/login)\n  OTPs for app sign-in are printed in this log.\n",
                        if loaded { "data loaded" } else { "(existing data)" },
                        demo::DEMO_ADMIN_EMAIL,
                        demo::DEMO_ADMIN_PASSWORD,
                        listen = config.listen,
                    );
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
        Command::Admin { command: AdminCommand::Create { store, email, password } } => {
            let config = store.config();
            let db = schema::open_db(&config.db_path, 1)?;
            let id = create_admin(&db, &email, &password)?;
            println!("admin {email} created (user id {id}); sign in at POST /api/admin/login");
            Ok(())
        }
    }
}

async fn plugins_command(command: PluginsCommand) -> anyhow::Result<()> {
    use powerbank_plugin_runtime::{PluginHost, PluginHostOptions, validate_file};
    match command {
        PluginsCommand::List { plugins } => {
            let (host, _) = PluginHost::start(&plugins, PluginHostOptions::default())
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", plugins.display()))?;
            println!("{:<24} {:<16} {:<10} {:<8} error", "name", "kind", "version", "state");
            for p in host.status() {
                let out = crate::plugins::PluginOut::from(p);
                println!(
                    "{:<24} {:<16} {:<10} {:<8} {}",
                    out.name,
                    out.kind,
                    out.version.as_deref().unwrap_or("-"),
                    out.status,
                    out.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        PluginsCommand::Validate { file } => {
            let report = validate_file(&file).await.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!(
                "{}: {:?} plugin {} {} (sha256 {})",
                file.display(),
                report.kind,
                report.name,
                report.version,
                report.sha256
            );
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

/// Creates an operator account; used by the CLI and the demo data.
pub fn create_admin(db: &Db, email: &str, password: &str) -> anyhow::Result<i64> {
    anyhow::ensure!(password.chars().count() >= 12, "the admin password must be at least 12 characters");
    let identifier = Identifier::parse(email).map_err(|e| anyhow::anyhow!(e.message))?;
    anyhow::ensure!(matches!(identifier, Identifier::Email(_)), "admins sign in with an email address");
    let hash = crate::users::operator_signin::hash_password(password).map_err(|e| anyhow::anyhow!(e.message))?;
    db.blocking_write(|tx| {
        auth::create_user(tx, &identifier, Role::Admin, None, Some("Operator"), Some(&hash), crate::core::now_ts())
            .map_err(|e| anyhow::anyhow!(e.message))
    })
}
