//! Local stand-ins for the payment gateways, speaking their real protocols
//! over HTTP on 127.0.0.1: Khalti ePayment (initiate, lookup, merchant
//! refund, `Authorization: Key`), eSewa ePay v2 (the signed form, the status
//! API and the signed success `data`), and Stripe (PaymentIntents, refunds,
//! bearer auth, idempotency keys, signed webhooks).
//!
//! Acme Pay, a gateway the host has never heard of, needs no fake server
//! (its plugin calls nobody): [`acme_pay_toml`] is its plugins.toml entry.
//!
//! One file per fake. Each can be told to fail (`Behaviour::Fail` answers
//! 503) or to be slow (`Behaviour::Slow`), and [`Gateways`] writes a
//! plugins.toml that points the repository's built gateway plugins at them.

mod acme;
mod esewa;
mod khalti;
mod stripe;

pub use acme::{ACME_CHECKOUT_URL, ACME_ICON_URL, ACME_WEBHOOK_SECRET, acme_pay_toml, acme_signature};
pub use esewa::{ESEWA_PRODUCT_CODE, EsewaPayment, FakeEsewa, esewa_amount};
pub use khalti::{FakeKhalti, KhaltiPayment};
pub use stripe::FakeStripe;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

/// How a fake answers right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    /// 503 on every request.
    Fail,
    /// Waits this long before answering.
    Slow(Duration),
}

#[derive(Clone)]
struct Control {
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<AtomicU64>,
}

impl Control {
    fn new() -> Self {
        Control { behaviour: Arc::new(Mutex::new(Behaviour::Normal)), requests: Arc::new(AtomicU64::new(0)) }
    }

    /// Applies the behaviour; `Some` is the answer to send instead.
    async fn gate(&self) -> Option<Response> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let behaviour = *self.behaviour.lock().unwrap();
        match behaviour {
            Behaviour::Normal => None,
            Behaviour::Fail => Some(
                (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"detail": "Service temporarily unavailable"})))
                    .into_response(),
            ),
            Behaviour::Slow(d) => {
                tokio::time::sleep(d).await;
                None
            }
        }
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn random_id(len: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string().chars().take(len).collect()
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake gateway");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

// ---------------------------------------------------------------- plugins.toml

pub const KHALTI_SECRET: &str = "test_secret_key_f59e8b7d18b4499ca40f68195a846e9b";
pub const ESEWA_SECRET: &str = "8gBm/:&EnhH.1/q";
pub const STRIPE_SECRET: &str = "sk_test_51PowerbankFakeKey";
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_powerbank_fake_endpoint_secret";

/// The three fakes, and the plugins.toml that points the gateway plugins at them.
#[derive(Clone)]
pub struct Gateways {
    pub khalti: FakeKhalti,
    pub esewa: FakeEsewa,
    pub stripe: FakeStripe,
}

/// Absolute path of a built plugin in the repository's `plugins/dist/`.
pub fn dist(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("plugins").join("dist").join(file)
}

/// Per-call limits of the gateway plugins in tests: short, so a slow fake
/// shows as a timeout quickly.
pub const GATEWAY_TIMEOUT_MS: u64 = 2_000;

impl Gateways {
    pub async fn start() -> Self {
        Gateways {
            khalti: FakeKhalti::start(KHALTI_SECRET).await,
            esewa: FakeEsewa::start(ESEWA_SECRET).await,
            stripe: FakeStripe::start(STRIPE_SECRET, STRIPE_WEBHOOK_SECRET).await,
        }
    }

    /// A complete plugins.toml: the standard pricing, points and promotions
    /// plugins, the two station protocols and the three gateways pointed at
    /// the fakes. `khalti_extra`
    /// is added to Khalti's config table (to make a "new version").
    pub fn plugins_toml(&self, khalti_extra: &str) -> String {
        let path = |f: &str| dist(f).display().to_string().replace('\\', "/");
        format!(
            r#"
version = 1

[plugins.pricing-standard]
kind = "pricing"
path = "{pricing}"

[plugins.points-standard]
kind = "points-rules"
path = "{points}"

[plugins.promotions-standard]
kind = "promotions"
path = "{promotions}"

[plugins.native]
kind = "station-protocol"
path = "{station_native}"

[plugins.volinks-v1]
kind = "station-protocol"
path = "{station_volinks}"

[plugins.khalti]
kind = "payment-gateway"
path = "{khalti}"
allowed_hosts = ["http://{khalti_host}"]
secrets = {{ secret_key = {{ value = "{khalti_secret}" }} }}
[plugins.khalti.config]
base_url = "{khalti_base}"
website_url = "https://powerbank.test"
return_url = "https://powerbank.test/payment/khalti/return"
{khalti_extra}
[plugins.khalti.limits]
timeout_ms = {timeout}
max_outbound_calls = 3

[plugins.esewa]
kind = "payment-gateway"
path = "{esewa}"
allowed_hosts = ["http://{esewa_host}"]
secrets = {{ secret_key = {{ value = "{esewa_secret}" }} }}
[plugins.esewa.config]
base_url = "{esewa_base}"
form_url = "{esewa_form}"
product_code = "EPAYTEST"
success_url = "https://powerbank.test/payment/esewa/success"
failure_url = "https://powerbank.test/payment/esewa/failure"
[plugins.esewa.limits]
timeout_ms = {timeout}
max_outbound_calls = 2

[plugins.stripe]
kind = "payment-gateway"
path = "{stripe}"
allowed_hosts = ["http://{stripe_host}"]
secrets = {{ secret_key = {{ value = "{stripe_secret}" }}, webhook_secret = {{ value = "{stripe_whsec}" }} }}
[plugins.stripe.config]
base_url = "{stripe_base}"
[plugins.stripe.limits]
timeout_ms = {timeout}
max_outbound_calls = 2
"#,
            pricing = path("pricing_standard.wasm"),
            points = path("points_standard.wasm"),
            promotions = path("promotions_standard.wasm"),
            station_native = path("station_native.wasm"),
            station_volinks = path("station_volinks_v1.wasm"),
            khalti = path("khalti.wasm"),
            khalti_host = self.khalti.host(),
            khalti_secret = KHALTI_SECRET,
            khalti_base = self.khalti.base_url(),
            esewa = path("esewa.wasm"),
            esewa_host = self.esewa.host(),
            esewa_secret = ESEWA_SECRET.replace('\\', "\\\\"),
            esewa_base = self.esewa.base_url(),
            esewa_form = self.esewa.form_url(),
            stripe = path("stripe.wasm"),
            stripe_host = self.stripe.host(),
            stripe_secret = STRIPE_SECRET,
            stripe_whsec = STRIPE_WEBHOOK_SECRET,
            stripe_base = self.stripe.base_url(),
            timeout = GATEWAY_TIMEOUT_MS,
        )
    }

    /// Writes [`Self::plugins_toml`] into `dir`; returns its path.
    pub fn write_plugins_toml(&self, dir: &Path, khalti_extra: &str) -> PathBuf {
        let file = dir.join("plugins.toml");
        std::fs::write(&file, self.plugins_toml(khalti_extra)).expect("write plugins.toml");
        file
    }

    /// A test server whose gateway plugins talk to these fakes.
    pub async fn server(&self) -> crate::TestServer {
        let gateways = self.clone();
        crate::TestServer::start_with(move |config| {
            config.plugins_path = gateways.write_plugins_toml(&config.data_dir, "");
        })
        .await
    }
}
