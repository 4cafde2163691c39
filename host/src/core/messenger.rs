//! Sends text messages to people: SMS through Sparrow SMS, email through an
//! SMTP relay, or the log in development. One-time codes go out through it,
//! and so does the SMS fallback of push notifications.

use std::time::Duration;

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, message::Mailbox};
use serde::Deserialize;

use crate::config::{EmailConfig, SmsConfig};

pub struct Messenger {
    sms: SmsConfig,
    email: EmailConfig,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    #[error("SMS gateway refused the message: {0}")]
    Refused(String),
    #[error("SMS gateway unreachable: {0}")]
    Unreachable(String),
    #[error("email delivery failed: {0}")]
    Email(String),
}

/// Sparrow SMS v2 answers JSON with its own `response_code` (200 on success).
#[derive(Deserialize)]
struct SparrowAnswer {
    response_code: i64,
    #[serde(default)]
    response: serde_json::Value,
}

impl Messenger {
    pub fn new(sms: SmsConfig, email: EmailConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { sms, email, http })
    }

    pub async fn send_sms(&self, phone_e164: &str, text: &str) -> Result<(), MessengerError> {
        match &self.sms {
            SmsConfig::Log => {
                tracing::info!(to = phone_e164, text, "sms (log sender)");
                Ok(())
            }
            SmsConfig::Sparrow { base_url, token, from } => {
                // Sparrow takes Nepali numbers without the country code.
                let to = phone_e164.strip_prefix("+977").unwrap_or(phone_e164);
                let url = format!("{}/v2/sms/", base_url.trim_end_matches('/'));
                let response = self
                    .http
                    .post(&url)
                    .form(&[("token", token.as_str()), ("from", from.as_str()), ("to", to), ("text", text)])
                    .send()
                    .await
                    .map_err(|e| MessengerError::Unreachable(e.to_string()))?;
                let status = response.status();
                let answer: Option<SparrowAnswer> = response.json().await.ok();
                match answer {
                    Some(a) if status.is_success() && a.response_code == 200 => Ok(()),
                    Some(a) => Err(MessengerError::Refused(format!(
                        "HTTP {status}, response_code {}: {}",
                        a.response_code, a.response
                    ))),
                    None => Err(MessengerError::Refused(format!("HTTP {status} without a Sparrow answer"))),
                }
            }
        }
    }

    pub async fn send_email(&self, to: &str, subject: &str, text: &str) -> Result<(), MessengerError> {
        match &self.email {
            EmailConfig::Log => {
                tracing::info!(to, subject, text, "email (log sender)");
                Ok(())
            }
            EmailConfig::Smtp { host, port, from } => {
                let from: Mailbox = from.parse().map_err(|e| MessengerError::Email(format!("from: {e}")))?;
                let to: Mailbox = to.parse().map_err(|e| MessengerError::Email(format!("to: {e}")))?;
                let message = lettre::Message::builder()
                    .from(from)
                    .to(to)
                    .subject(subject)
                    .body(text.to_string())
                    .map_err(|e| MessengerError::Email(e.to_string()))?;
                // Plain SMTP to a relay on the box or the LAN; the relay handles TLS onwards.
                let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(*port)
                    .timeout(Some(Duration::from_secs(10)))
                    .build();
                transport.send(message).await.map(|_| ()).map_err(|e| MessengerError::Email(e.to_string()))
            }
        }
    }
}
