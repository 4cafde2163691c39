//! Firebase Cloud Messaging, HTTP v1 API.
//!
//! Authentication is Google's service-account flow: a JWT signed (RS256) with
//! the service account's private key is exchanged at the token URI for an
//! OAuth access token, which is cached until shortly before it expires and
//! sent as the bearer of every `messages:send` call.

use std::{path::Path, time::Duration};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::{sync::Mutex, time::Instant};

use super::devices::Platform;
use crate::config::FcmConfig;

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub const GOOGLE_FCM_URL: &str = "https://fcm.googleapis.com";
/// Assertions may live at most an hour (Google's limit).
const ASSERTION_TTL_SECS: i64 = 3600;
/// A cached access token is renewed this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The fields of a Google service-account key file that FCM needs.
#[derive(Deserialize)]
struct ServiceAccount {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: String,
    client_email: String,
    private_key: String,
    token_uri: Option<String>,
}

/// Reads a service-account JSON key file (as downloaded from the Firebase
/// console) into FCM settings, checking the key up front so a bad file fails
/// at start-up rather than at the first push.
pub fn load_service_account(path: &Path, base_url: &str) -> anyhow::Result<FcmConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let account: ServiceAccount =
        serde_json::from_str(&text).with_context(|| format!("{} is not a service-account key file", path.display()))?;
    if let Some(kind) = &account.kind {
        anyhow::ensure!(kind == "service_account", "{} is a {kind} key, not a service account", path.display());
    }
    EncodingKey::from_rsa_pem(account.private_key.as_bytes())
        .with_context(|| format!("the private key in {} is not an RSA PEM key", path.display()))?;
    Ok(FcmConfig {
        base_url: base_url.trim_end_matches('/').to_string(),
        token_uri: account.token_uri.unwrap_or_else(|| GOOGLE_TOKEN_URI.to_string()),
        project_id: account.project_id,
        client_email: account.client_email,
        private_key: account.private_key,
    })
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

struct CachedToken {
    /// Which account and endpoint the token is for.
    owner: (String, String),
    access_token: String,
    renew_at: Instant,
}

/// What FCM said about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        status: u16,
        answer: String,
    },
    /// The token is dead (app uninstalled, token rotated, malformed): the
    /// device must not be tried again.
    InvalidToken {
        status: u16,
        answer: String,
    },
    /// FCM could not take the message now (down, overloaded, auth trouble);
    /// worth retrying later.
    Failed {
        status: Option<u16>,
        answer: String,
    },
}

/// Sends FCM messages, holding the HTTP client and the cached access token.
pub struct FcmClient {
    http: reqwest::Client,
    token: Mutex<Option<CachedToken>>,
}

impl Default for FcmClient {
    fn default() -> Self {
        Self::new()
    }
}

impl FcmClient {
    pub fn new() -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { http, token: Mutex::new(None) }
    }

    /// A valid access token, from the cache or freshly exchanged.
    async fn access_token(&self, config: &FcmConfig) -> Result<String, String> {
        let owner = (config.client_email.clone(), config.token_uri.clone());
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && t.owner == owner
            && Instant::now() < t.renew_at
        {
            return Ok(t.access_token.clone());
        }
        let key = EncodingKey::from_rsa_pem(config.private_key.as_bytes())
            .map_err(|e| format!("FCM service-account key: {e}"))?;
        let now = crate::core::now_ts();
        let claims = Assertion {
            iss: &config.client_email,
            scope: SCOPE,
            aud: &config.token_uri,
            iat: now,
            exp: now + ASSERTION_TTL_SECS,
        };
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
            .map_err(|e| format!("signing the FCM assertion: {e}"))?;
        let response = self
            .http
            .post(&config.token_uri)
            .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())])
            .send()
            .await
            .map_err(|e| format!("OAuth token endpoint unreachable: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("OAuth token endpoint answered {status}: {}", clip(&text)));
        }
        let answer: TokenAnswer =
            serde_json::from_str(&text).map_err(|e| format!("OAuth token answer unreadable: {e}"))?;
        let lifetime = Duration::from_secs(answer.expires_in).saturating_sub(EXPIRY_MARGIN);
        *cached =
            Some(CachedToken { owner, access_token: answer.access_token.clone(), renew_at: Instant::now() + lifetime });
        Ok(answer.access_token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Sends one notification to one device.
    pub async fn send(&self, config: &FcmConfig, target: &PushTarget<'_>, push: &PushContent<'_>) -> SendOutcome {
        let url = format!("{}/v1/projects/{}/messages:send", config.base_url.trim_end_matches('/'), config.project_id);
        let message = message(target, push);
        // A 401 means our cached token went bad early: renew it once.
        let mut renewed = false;
        loop {
            let access = match self.access_token(config).await {
                Ok(t) => t,
                Err(e) => return SendOutcome::Failed { status: None, answer: e },
            };
            let response = match self.http.post(&url).bearer_auth(&access).json(&message).send().await {
                Ok(r) => r,
                Err(e) => return SendOutcome::Failed { status: None, answer: format!("FCM unreachable: {e}") },
            };
            let status = response.status();
            let answer = clip(&response.text().await.unwrap_or_default());
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                self.forget_token().await;
                continue;
            }
            return classify(status, answer);
        }
    }
}

/// The device a message goes to.
pub struct PushTarget<'a> {
    pub token: &'a str,
    pub platform: Platform,
    /// The app icon's badge on iOS: the user's unread notifications.
    pub badge: i64,
}

/// What a message says.
pub struct PushContent<'a> {
    /// The notification template: it picks the Android channel and urgency.
    pub template_key: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub data: &'a Map<String, Value>,
}

/// How urgent a push is: rental events (a rental starting, ending, overdue,
/// returned) reach the phone at once; the rest may wait for the phone to wake.
fn is_urgent(template_key: &str) -> bool {
    template_key.starts_with("rental_")
}

/// The Android notification channel the app declares for a template.
pub fn android_channel(template_key: &str) -> &'static str {
    if is_urgent(template_key) { "rentals" } else { "general" }
}

/// The `messages:send` body, with the block of the device's platform
/// (`android`: priority and channel; `apns`: priority header, sound and badge).
pub fn message(target: &PushTarget<'_>, push: &PushContent<'_>) -> Value {
    // FCM data values must be strings.
    let data: Map<String, Value> = push
        .data
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), Value::String(s))
        })
        .collect();
    let urgent = is_urgent(push.template_key);
    let mut message = json!({
        "token": target.token,
        "notification": {"title": push.title, "body": push.body},
        "data": data,
    });
    match target.platform {
        Platform::Android => {
            message["android"] = json!({
                "priority": if urgent { "HIGH" } else { "NORMAL" },
                "notification": {"channel_id": android_channel(push.template_key), "sound": "default"},
            });
        }
        Platform::Ios => {
            // APNs: 10 delivers at once, 5 when the phone sees fit.
            message["apns"] = json!({
                "headers": {"apns-priority": if urgent { "10" } else { "5" }},
                "payload": {"aps": {"sound": "default", "badge": target.badge.max(0)}},
            });
        }
    }
    json!({ "message": message })
}

/// Sorts an FCM answer into sent, dead token, or try again later.
pub fn classify(status: StatusCode, answer: String) -> SendOutcome {
    let code = status.as_u16();
    if status.is_success() {
        return SendOutcome::Sent { status: code, answer };
    }
    let parsed: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
    let error = &parsed["error"];
    let mut codes: Vec<&str> =
        error["details"].as_array().into_iter().flatten().filter_map(|d| d["errorCode"].as_str()).collect();
    if let Some(s) = error["status"].as_str() {
        codes.push(s);
    }
    let dead_token = match status {
        StatusCode::NOT_FOUND => codes.contains(&"UNREGISTERED"),
        StatusCode::BAD_REQUEST => codes.contains(&"INVALID_ARGUMENT"),
        // The token was issued for another Firebase project.
        StatusCode::FORBIDDEN => codes.contains(&"SENDER_ID_MISMATCH"),
        _ => false,
    };
    if dead_token {
        SendOutcome::InvalidToken { status: code, answer }
    } else {
        SendOutcome::Failed { status: Some(code), answer }
    }
}

/// Provider answers are logged; keep them a sensible size.
fn clip(text: &str) -> String {
    text.chars().take(1000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_fcm_answers() {
        let unregistered = json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}});
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, unregistered.to_string()),
            SendOutcome::InvalidToken { status: 404, .. }
        ));
        let bad_token = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad token"}});
        assert!(matches!(classify(StatusCode::BAD_REQUEST, bad_token.to_string()), SendOutcome::InvalidToken { .. }));
        // A 404 that is not about the token (wrong project) is not the device's fault.
        let wrong_project = json!({"error": {"code": 404, "status": "NOT_FOUND"}});
        assert!(matches!(classify(StatusCode::NOT_FOUND, wrong_project.to_string()), SendOutcome::Failed { .. }));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, "oops".into()),
            SendOutcome::Failed { status: Some(503), .. }
        ));
        assert!(matches!(classify(StatusCode::OK, "{}".into()), SendOutcome::Sent { .. }));
    }

    #[test]
    fn messages_carry_the_platform_block() {
        let data = Map::new();
        let push = PushContent { template_key: "rental_overdue", title: "t", body: "b", data: &data };
        let android = message(&PushTarget { token: "tok", platform: Platform::Android, badge: 3 }, &push);
        assert_eq!(android["message"]["android"]["priority"], "HIGH");
        assert_eq!(android["message"]["android"]["notification"]["channel_id"], "rentals");
        assert!(android["message"]["apns"].is_null());
        let quiet = PushContent { template_key: "points_awarded", ..push };
        let ios = message(&PushTarget { token: "tok", platform: Platform::Ios, badge: 3 }, &quiet);
        assert_eq!(ios["message"]["apns"]["headers"]["apns-priority"], "5");
        assert_eq!(ios["message"]["apns"]["payload"]["aps"]["badge"], 3);
        assert!(ios["message"]["android"].is_null());
    }

    #[test]
    fn service_account_file_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sa.json");
        std::fs::write(
            &path,
            json!({"type": "service_account", "project_id": "p", "client_email": "e@x", "private_key": "nope"})
                .to_string(),
        )
        .unwrap();
        let err = load_service_account(&path, GOOGLE_FCM_URL).unwrap_err();
        assert!(format!("{err:#}").contains("not an RSA PEM key"), "{err:#}");
        assert!(load_service_account(&dir.path().join("missing.json"), GOOGLE_FCM_URL).is_err());
    }
}
