//! The delivery job: push to every active device of the user, fall back to
//! SMS when push cannot reach them, log every attempt in `sms_fcm_log`.
//!
//! The order follows the seed: FCM first; if FCM fails (no active device, or
//! FCM down) an SMS when the template's rule allows it; otherwise the in-app
//! notification, which already exists, is all the user gets. A failure that
//! may pass (FCM or Sparrow down) fails the job so the worker retries it with
//! backoff; a dead device token deactivates that device instead.

use std::sync::Arc;

use axum::{Json, extract::State};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{
    devices::Platform,
    fcm::{FcmClient, PushContent, PushTarget, SendOutcome},
};
use crate::{
    core::{ApiError, ApiQuery, Operator, Page, PageParams, error::ErrorBody, jobs::JobFuture, now_ts, ts_to_rfc3339},
    state::AppState,
};

/// The job kind registered in `server::job_handlers`.
pub const DELIVERY_JOB: &str = "notifications.deliver";

/// The job payload: everything needed to deliver, so deleting the in-app
/// notification in the meantime loses nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub notification_id: i64,
    pub user_id: i64,
    pub template_key: String,
    pub title: String,
    pub body: String,
    pub data: Value,
    pub sms_fallback: bool,
}

/// The handler for [`DELIVERY_JOB`]; it owns the FCM client and so the cached
/// OAuth token for the life of the server.
pub fn delivery_job() -> impl Fn(AppState, Value) -> JobFuture + Send + Sync + 'static {
    let fcm = Arc::new(FcmClient::new());
    move |state, payload| {
        let fcm = fcm.clone();
        Box::pin(async move {
            let delivery: Delivery =
                serde_json::from_value(payload).map_err(|e| format!("bad delivery payload: {e}"))?;
            deliver(&state, &fcm, &delivery).await
        })
    }
}

/// How push went.
enum Push {
    Delivered,
    /// Nothing to push to: FCM not configured, no active device, or every
    /// token dead. Trying again will not help.
    Unreachable(String),
    /// FCM failed in a way that may pass.
    Down(String),
}

enum Sms {
    Sent,
    NoPhone,
    Failed(String),
}

struct Attempt<'a> {
    channel: &'static str,
    device_id: Option<i64>,
    recipient: Option<String>,
    status: &'static str,
    provider_status: Option<u16>,
    provider_response: &'a str,
}

async fn log_attempt(state: &AppState, d: &Delivery, a: Attempt<'_>) -> Result<(), String> {
    let (user_id, notification_id) = (d.user_id, d.notification_id);
    let (channel, device_id, recipient, status) = (a.channel, a.device_id, a.recipient, a.status);
    let provider_status = a.provider_status.map(i64::from);
    let response = a.provider_response.to_string();
    state
        .db
        .write(move |tx| {
            tx.execute(
                "INSERT INTO sms_fcm_log (user_id, notification_id, channel, device_id, recipient, status,
                                          provider_status, provider_response, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    user_id,
                    notification_id,
                    channel,
                    device_id,
                    recipient,
                    status,
                    provider_status,
                    response,
                    now_ts()
                ],
            )?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
}

/// Tokens are credentials of a sort: the log keeps only their start.
fn token_hint(token: &str) -> String {
    format!("{}…", token.chars().take(12).collect::<String>())
}

async fn push(state: &AppState, fcm: &FcmClient, d: &Delivery) -> Result<Push, String> {
    let Some(config) = state.config.fcm.clone() else {
        return Ok(Push::Unreachable("FCM is not configured".into()));
    };
    let user_id = d.user_id;
    let (devices, unread): (Vec<(i64, String, Platform)>, i64) = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, fcm_token, platform FROM user_devices WHERE user_id = ?1 AND is_active = 1 ORDER BY id",
            )?;
            let rows =
                stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?, Platform::parse(&r.get::<_, String>(2)?))))?;
            let devices = rows.collect::<Result<Vec<_>, _>>()?;
            let unread: i64 = c.query_row(
                "SELECT COUNT(*) FROM notifications WHERE user_id = ?1 AND read_at IS NULL",
                [user_id],
                |r| r.get(0),
            )?;
            Ok((devices, unread))
        })
        .await
        .map_err(|e| e.to_string())?;
    if devices.is_empty() {
        log_attempt(
            state,
            d,
            Attempt {
                channel: "fcm",
                device_id: None,
                recipient: None,
                status: "skipped",
                provider_status: None,
                provider_response: "no active device",
            },
        )
        .await?;
        return Ok(Push::Unreachable("no active device".into()));
    }
    let mut data = match &d.data {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    data.insert("notification_id".into(), Value::String(d.notification_id.to_string()));
    data.insert("template".into(), Value::String(d.template_key.clone()));

    let (mut delivered, mut down) = (0usize, None::<String>);
    let content = PushContent { template_key: &d.template_key, title: &d.title, body: &d.body, data: &data };
    for (device_id, token, platform) in devices {
        let target = PushTarget { token: &token, platform, badge: unread };
        let outcome = fcm.send(&config, &target, &content).await;
        let (status, provider_status, answer) = match &outcome {
            SendOutcome::Sent { status, answer } => ("sent", Some(*status), answer.as_str()),
            SendOutcome::InvalidToken { status, answer } => ("invalid_token", Some(*status), answer.as_str()),
            SendOutcome::Failed { status, answer } => ("failed", *status, answer.as_str()),
        };
        log_attempt(
            state,
            d,
            Attempt {
                channel: "fcm",
                device_id: Some(device_id),
                recipient: Some(token_hint(&token)),
                status,
                provider_status,
                provider_response: answer,
            },
        )
        .await?;
        match outcome {
            SendOutcome::Sent { .. } => delivered += 1,
            SendOutcome::InvalidToken { .. } => deactivate(state, device_id, token).await?,
            SendOutcome::Failed { answer, .. } => down = Some(answer),
        }
    }
    Ok(match (delivered, down) {
        (n, _) if n > 0 => Push::Delivered,
        (_, Some(reason)) => Push::Down(reason),
        (_, None) => Push::Unreachable("every device token is invalid".into()),
    })
}

/// Marks a device dead, unless it registered a new token meanwhile.
async fn deactivate(state: &AppState, device_id: i64, token: String) -> Result<(), String> {
    tracing::info!(device_id, "FCM token no longer valid; device deactivated");
    state
        .db
        .write(move |tx| {
            tx.execute(
                "UPDATE user_devices SET is_active = 0, deactivated_reason = 'fcm_token_invalid', updated_at = ?3
                 WHERE id = ?1 AND fcm_token = ?2",
                params![device_id, token, now_ts()],
            )?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
}

async fn sms(state: &AppState, d: &Delivery) -> Result<Sms, String> {
    let user_id = d.user_id;
    let phone: Option<String> = state
        .db
        .read(move |c| {
            Ok(c.query_row("SELECT phone FROM users WHERE id = ?1 AND status = 'active'", [user_id], |r| r.get(0))
                .optional()?
                .flatten())
        })
        .await
        .map_err(|e| e.to_string())?;
    let Some(phone) = phone else {
        let skipped = Attempt {
            channel: "sms",
            device_id: None,
            recipient: None,
            status: "skipped",
            provider_status: None,
            provider_response: "no phone number",
        };
        log_attempt(state, d, skipped).await?;
        return Ok(Sms::NoPhone);
    };
    let text = format!("{}: {}", d.title, d.body);
    let result = state.messenger.send_sms(&phone, &text).await;
    let (status, answer) = match &result {
        Ok(()) => ("sent", "accepted".to_string()),
        Err(e) => ("failed", e.to_string()),
    };
    let attempt = Attempt {
        channel: "sms",
        device_id: None,
        recipient: Some(phone),
        status,
        provider_status: None,
        provider_response: &answer,
    };
    log_attempt(state, d, attempt).await?;
    Ok(match result {
        Ok(()) => Sms::Sent,
        Err(_) => Sms::Failed(answer),
    })
}

async fn deliver(state: &AppState, fcm: &FcmClient, d: &Delivery) -> Result<(), String> {
    let (reason, transient) = match push(state, fcm, d).await? {
        Push::Delivered => return Ok(()),
        Push::Unreachable(reason) => (reason, false),
        Push::Down(reason) => (reason, true),
    };
    if d.sms_fallback {
        match sms(state, d).await? {
            Sms::Sent => return Ok(()),
            Sms::NoPhone => {}
            Sms::Failed(e) => return Err(format!("push: {reason}; SMS fallback: {e}")),
        }
    }
    // In-app only: retry later only if push may come back.
    if transient { Err(format!("push: {reason}")) } else { Ok(()) }
}

/// One push or SMS attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub user_id: i64,
    pub notification_id: Option<i64>,
    /// `fcm` or `sms`.
    pub channel: String,
    /// The device row, for FCM.
    pub device_id: Option<i64>,
    /// The phone number for SMS; the start of the token for FCM.
    pub recipient: Option<String>,
    /// `sent`, `failed`, `invalid_token` or `skipped`.
    pub status: String,
    /// HTTP status of the provider's answer.
    pub provider_status: Option<i64>,
    pub provider_response: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryLogQuery {
    pub user_id: Option<i64>,
    pub notification_id: Option<i64>,
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Push and SMS attempts, newest first (`sms_fcm_log`).
#[utoipa::path(
    get, path = "/api/admin/notifications/deliveries", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support"]))),
    params(DeliveryLogQuery),
    responses(
        (status = 200, description = "A page of delivery attempts", body = Page<DeliveryAttempt>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator, or a role this route does not allow (`role_not_allowed`)", body = ErrorBody),
    )
)]
pub async fn delivery_log(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(q): ApiQuery<DeliveryLogQuery>,
) -> Result<Json<Page<DeliveryAttempt>>, ApiError> {
    let paging = PageParams { cursor: q.cursor, limit: q.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let (user_id, notification_id) = (q.user_id, q.notification_id);
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, user_id, notification_id, channel, device_id, recipient, status, provider_status,
                        provider_response, created_at
                 FROM sms_fcm_log
                 WHERE id < ?1 AND (?2 IS NULL OR user_id = ?2) AND (?3 IS NULL OR notification_id = ?3)
                 ORDER BY id DESC LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![before, user_id, notification_id, limit + 1], |r| {
                Ok(DeliveryAttempt {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    notification_id: r.get(2)?,
                    channel: r.get(3)?,
                    device_id: r.get(4)?,
                    recipient: r.get(5)?,
                    status: r.get(6)?,
                    provider_status: r.get(7)?,
                    provider_response: r.get(8)?,
                    created_at: ts_to_rfc3339(r.get(9)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |a| a.id)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        config::{Config, FcmConfig},
        core::{Role, jobs},
        notifications::notify,
        users::{auth::create_user, identifier::Identifier},
    };

    /// A server state whose FCM cannot be reached (nothing listens on port 1),
    /// with SMS going to the log sender, and a user with one device.
    async fn state_with_dead_fcm() -> (tempfile::TempDir, AppState, i64) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.fcm = Some(FcmConfig {
            base_url: "http://127.0.0.1:1".into(),
            token_uri: "http://127.0.0.1:1/token".into(),
            project_id: "p".into(),
            client_email: "e@example.com".into(),
            private_key: "not a key".into(),
        });
        let state = crate::server::build_state(config).await.unwrap();
        let user_id = state
            .db
            .write(|tx| {
                let id = create_user(tx, &Identifier::parse("9841000099")?, Role::User, None, None, None, now_ts())?;
                tx.execute(
                    "INSERT INTO user_devices (user_id, device_id, fcm_token, platform, created_at, updated_at)
                     VALUES (?1, 'd', 'token-0123456789', 'android', 0, 0)",
                    [id],
                )?;
                Ok(id)
            })
            .await
            .unwrap();
        (dir, state, user_id)
    }

    async fn job_status(state: &AppState) -> (String, Option<String>) {
        state
            .db
            .read(|c| {
                Ok(c.query_row("SELECT status, last_error FROM jobs ORDER BY id DESC LIMIT 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?)
            })
            .await
            .unwrap()
    }

    async fn logged(state: &AppState) -> Vec<(String, String)> {
        state
            .db
            .read(|c| {
                let mut stmt = c.prepare("SELECT channel, status FROM sms_fcm_log ORDER BY id")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn fcm_down_without_sms_fallback_retries_the_job() {
        let (_dir, state, user_id) = state_with_dead_fcm().await;
        // rental_started pushes but has no SMS fallback.
        state
            .db
            .write(move |tx| notify::notify(tx, user_id, "rental_started", json!({"power_bank": "PB1"})))
            .await
            .unwrap();
        assert!(jobs::run_one(&state).await.unwrap());
        let (status, error) = job_status(&state).await;
        assert_eq!(status, "pending", "the job waits for a retry");
        assert!(error.unwrap().starts_with("push:"));
        assert_eq!(logged(&state).await, vec![("fcm".to_string(), "failed".to_string())]);
    }

    #[tokio::test]
    async fn fcm_down_with_sms_fallback_sends_the_sms_and_finishes() {
        let (_dir, state, user_id) = state_with_dead_fcm().await;
        state.db.write(move |tx| notify::notify(tx, user_id, "kyc_approved", json!({"kyc_id": 1}))).await.unwrap();
        assert!(jobs::run_one(&state).await.unwrap());
        assert_eq!(job_status(&state).await.0, "done");
        assert_eq!(
            logged(&state).await,
            vec![("fcm".to_string(), "failed".to_string()), ("sms".to_string(), "sent".to_string())]
        );
        // The device keeps its token: the failure was FCM's, not the device's.
        let active: bool =
            state.db.read(|c| Ok(c.query_row("SELECT is_active FROM user_devices", [], |r| r.get(0))?)).await.unwrap();
        assert!(active);
    }

    #[tokio::test]
    async fn in_app_only_templates_enqueue_nothing() {
        let (_dir, state, user_id) = state_with_dead_fcm().await;
        state
            .db
            .write(move |tx| {
                notify::notify(tx, user_id, "points_awarded", json!({"points": 5, "reason": "a rental", "balance": 5}))
            })
            .await
            .unwrap();
        assert!(!jobs::run_one(&state).await.unwrap());
        let body: String =
            state.db.read(|c| Ok(c.query_row("SELECT body FROM notifications", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(body, "5 points for a rental. Balance: 5 points.");
        let unknown = state.db.write(move |tx| notify::notify(tx, user_id, "no_such_event", json!({}))).await;
        assert!(unknown.is_err());
    }
}
