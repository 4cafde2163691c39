//! Test harness: starts the real server on a loopback port with its SQLite
//! file in a temporary directory, plus faithful fakes of the external
//! services it calls (Sparrow SMS), all over real HTTP.

pub mod fake_fcm;
pub mod fake_gateways;
pub mod fakes;
pub mod moto;
pub mod mqtt;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use powerbank::config::{Config, SmsConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

pub use fake_fcm::FakeFcm;
pub use fakes::FakeSparrow;

pub const SPARROW_TOKEN: &str = "test-sparrow-token";

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub sms: FakeSparrow,
    pub data_dir: Arc<tempfile::TempDir>,
    config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A response read whole: status, headers and JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error-shaped body, asserting the shape.
    pub fn error_code(&self) -> &str {
        let error = &self.body["error"];
        assert!(error["message"].is_string(), "not the error shape: {}", self.body);
        assert!(error["request_id"].is_string(), "error without request_id: {}", self.body);
        error["code"].as_str().unwrap_or_default()
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after letting the test adjust the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let sms = FakeSparrow::start(SPARROW_TOKEN).await;
        let mut config = Config::for_tests(data_dir.path());
        config.sms =
            SmsConfig::Sparrow { base_url: sms.base_url(), token: SPARROW_TOKEN.into(), from: "powerbank".into() };
        // Every test user signs up from 127.0.0.1; the per-IP limit has its own test.
        config.otp.per_ip_per_hour = 10_000;
        // Tests that need the station link turn it on (see `mqtt.rs`).
        config.link.mode = powerbank::config::MqttMode::Disabled;
        adjust(&mut config);
        Self::launch(config, data_dir, sms).await.expect("server starts")
    }

    async fn launch(mut config: Config, data_dir: Arc<tempfile::TempDir>, sms: FakeSparrow) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        config.listen = addr;
        config.public_base_url = format!("http://{addr}");
        let state = powerbank::server::build_state(config.clone()).await.context("build state")?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(powerbank::server::serve(listener, state, async move {
            let _ = rx.await;
        }));
        Ok(Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            sms,
            data_dir,
            config,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn db_path(&self) -> PathBuf {
        self.config.db_path.clone()
    }

    /// Stops the server (letting in-flight requests finish) and starts a new
    /// one on the same data directory.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let data_dir = self.data_dir.clone();
        let sms = self.sms.clone();
        let config = self.config.clone();
        Self::launch(config, data_dir, sms).await.expect("server restarts")
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Requests an OTP and reads it from the fake SMS gateway.
    pub async fn otp(&self, phone: &str, purpose: &str) -> String {
        let r = self.post("/api/auth/get-otp", None, json!({"identifier": phone, "purpose": purpose})).await;
        assert_eq!(r.status, StatusCode::OK, "get-otp: {}", r.body);
        self.sms.last_code().expect("an SMS with a code")
    }

    pub async fn verification_token(&self, phone: &str, purpose: &str) -> String {
        let code = self.otp(phone, purpose).await;
        let r = self
            .post("/api/auth/verify-otp", None, json!({"identifier": phone, "otp": code, "purpose": purpose}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "verify-otp: {}", r.body);
        r.body["verification_token"].as_str().expect("verification token").to_string()
    }

    /// Registers a user; returns (access token, refresh token, user JSON).
    pub async fn register(&self, phone: &str) -> Session {
        let token = self.verification_token(phone, "register").await;
        let r = self.post("/api/auth/register", None, json!({"verification_token": token})).await;
        assert_eq!(r.status, StatusCode::CREATED, "register: {}", r.body);
        Session::from_body(&r.body)
    }

    /// Signs in as the demo-style admin (an `owner`) created directly in the database.
    pub async fn admin(&self) -> Session {
        let email = "ops@powerbank.test";
        let password = "correct horse battery staple";
        let db = powerbank::core::Db::open(&self.db_path(), 1).expect("db");
        // Idempotent: a second call signs in to the admin the first one made.
        let _ = powerbank::cli::create_admin(&db, email, password);
        let r = self.post("/api/admin/login", None, json!({"email": email, "password": password})).await;
        assert_eq!(r.status, StatusCode::OK, "admin login: {}", r.body);
        Session::from_body(&r.body)
    }

    /// Signs in as an operator of `role` (`owner`, `admin`, `support`,
    /// `finance`, `field_tech`), created directly in the database on first use.
    pub async fn operator(&self, role: &str) -> Session {
        let email = format!("{role}@operators.test");
        let password = "correct horse battery staple";
        let db = powerbank::core::Db::open(&self.db_path(), 1).expect("db");
        let parsed = role.parse().expect("an operator role");
        // Idempotent: a second call signs in to the operator the first one made.
        let _ = powerbank::cli::create_operator(&db, &email, password, parsed);
        let r = self.post("/api/admin/login", None, json!({"email": email, "password": password})).await;
        assert_eq!(r.status, StatusCode::OK, "{role} login: {}", r.body);
        Session::from_body(&r.body)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub user: Value,
}

impl Session {
    pub fn from_body(body: &Value) -> Self {
        Session {
            access: body["access_token"].as_str().expect("access_token").to_string(),
            refresh: body["refresh_token"].as_str().expect("refresh_token").to_string(),
            user: body["user"].clone(),
        }
    }
}
