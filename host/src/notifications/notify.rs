//! [`notify`]: the one entry point other domains use to tell a user something.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::{Map, Value};

use super::delivery::{DELIVERY_JOB, Delivery};
use crate::core::{
    ApiError,
    jobs::{self, NewJob},
    now_ts,
};

/// Tells `user_id` about an event, inside the caller's transaction.
///
/// Renders the template `template_key` (one of the seeded keys:
/// `rental_started`, `rental_ending_soon`, `rental_overdue`,
/// `rental_returned`, `topup_credited`, `kyc_approved`, `kyc_rejected`,
/// `points_awarded`) with `vars`, a JSON object whose values fill the
/// template's `{{name}}` placeholders; money should be passed already
/// formatted (`core::money::format_npr`). Inserts the in-app notification
/// and, when the template's rule asks for push, enqueues the durable delivery
/// job. Nothing leaves the box before the caller commits.
///
/// Call `state.jobs.wake()` after the commit to deliver at once rather than
/// on the worker's next poll.
pub fn notify(tx: &Transaction<'_>, user_id: i64, template_key: &str, vars: Value) -> Result<(), ApiError> {
    let template: Option<(String, String, String, bool)> = tx
        .query_row(
            "SELECT t.title_template, t.body_template, COALESCE(r.channel, 'in_app'), COALESCE(r.sms_fallback, 0)
             FROM notification_templates t LEFT JOIN notification_rules r ON r.template_key = t.key
             WHERE t.key = ?1 AND t.is_active = 1",
            [template_key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    // An unknown key is a bug in the calling domain, not the user's fault.
    let Some((title_template, body_template, channel, sms_fallback)) = template else {
        return Err(ApiError::internal(format!("no active notification template {template_key}")));
    };
    let vars = match vars {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => return Err(ApiError::internal(format!("notification variables must be an object, got {other}"))),
    };
    let title = render(&title_template, &vars, template_key);
    let body = render(&body_template, &vars, template_key);
    let data = Value::Object(vars);
    let now = now_ts();
    tx.execute(
        "INSERT INTO notifications (user_id, template_key, title, body, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![user_id, template_key, title, body, data.to_string(), now],
    )?;
    let notification_id = tx.last_insert_rowid();
    if channel == "push" {
        let delivery = Delivery {
            notification_id,
            user_id,
            template_key: template_key.to_string(),
            title,
            body,
            data,
            sms_fallback,
        };
        jobs::enqueue(tx, NewJob::new(DELIVERY_JOB, &delivery).dedupe(format!("notification:{notification_id}")))?;
    }
    Ok(())
}

/// Fills `{{name}}` placeholders (spaces inside the braces allowed). Strings
/// go in as they are, other JSON values as JSON text; a placeholder without a
/// variable renders empty and is logged, since it is the caller's bug.
pub fn render(template: &str, vars: &Map<String, Value>, template_key: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else { break };
        out.push_str(&rest[..start]);
        let name = rest[start + 2..start + 2 + len].trim();
        match vars.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => {
                tracing::warn!(template = template_key, variable = name, "notification variable missing");
            }
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::render;

    fn vars(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn fills_placeholders_and_leaves_the_rest() {
        let v = vars(json!({"points": 50, "reason": "a rental", "ok": true}));
        assert_eq!(render("{{points}} for {{ reason }} ({{ok}})", &v, "t"), "50 for a rental (true)");
        assert_eq!(render("no vars", &v, "t"), "no vars");
        assert_eq!(render("missing: [{{nope}}]", &v, "t"), "missing: []");
        assert_eq!(render("unclosed {{points", &v, "t"), "unclosed {{points");
        // A value is inserted once, never re-rendered.
        let tricky = vars(json!({"a": "{{b}}", "b": "x"}));
        assert_eq!(render("{{a}}", &tricky, "t"), "{{b}}");
    }
}
