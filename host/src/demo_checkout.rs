//! The demo gateway's checkout page (`gateway-plugins/demo`): where a payer
//! sent by the demo gateway approves or declines, so a top-up or a
//! gateway-paid rental works out of the box with no gateway account.
//!
//! It plays the gateway's server: `GET /demo/checkout/{gateway}/{reference}`
//! shows the amount and two buttons; the chosen one posts back here, and the
//! page delivers the gateway's notification for that decision through the
//! same path as any webhook (`payments::webhooks::handle`), signed with the
//! token the plugin put into the link. The page knows no key and decides
//! nothing: the plugin verifies the token, and the webhook machinery credits
//! once however often the button is pressed. For a gateway that is not the
//! demo's, the plugin refuses the notification and nothing happens. Plain
//! HTML, no script and nothing fetched from elsewhere.

use axum::{
    Form, Router,
    extract::rejection::QueryRejection,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;

use crate::{
    core::money::format_npr,
    payments::webhooks::{self, WebhookAck},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/demo/checkout/{gateway}/{reference}", get(page).post(decide))
}

/// What the demo gateway's link carries.
#[derive(Debug, Deserialize)]
struct CheckoutLink {
    amount_paisa: i64,
    #[serde(default)]
    description: String,
    approve: String,
    decline: String,
    return_url: Option<String>,
}

/// One press of a button.
#[derive(Debug, Deserialize)]
struct Decision {
    amount_paisa: i64,
    /// `succeeded` or `cancelled`.
    status: String,
    signature: String,
    return_url: Option<String>,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `application/x-www-form-urlencoded` text of `pairs`.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · powerbank demo gateway</title>
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 26rem; margin: 3rem auto; padding: 0 1rem; color: #1d2430; }}
    .card {{ border: 1px solid #d6dbe3; border-radius: 12px; padding: 1.5rem; }}
    .amount {{ font-size: 2rem; font-weight: 700; margin: .5rem 0 1rem; }}
    .note {{ color: #5b6573; font-size: .9rem; }}
    form {{ display: inline; }}
    button {{ font-size: 1rem; padding: .6rem 1.2rem; border-radius: 8px; border: 1px solid #aab3c0; cursor: pointer; margin-right: .5rem; }}
    button.approve {{ background: #1f7a3d; color: white; border-color: #1f7a3d; }}
  </style>
</head>
<body><div class="card">
<p class="note">powerbank demo gateway: no real money moves.</p>
{body}
</div></body>
</html>
"#,
        title = escape(title),
    );
    let mut response = (status, Html(page)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn page(
    Path((gateway, reference)): Path<(String, String)>,
    link: Result<Query<CheckoutLink>, QueryRejection>,
) -> Response {
    let Ok(Query(link)) = link else {
        return html(StatusCode::BAD_REQUEST, "Not a checkout link", "<h1>Not a checkout link</h1>");
    };
    let action = format!("/demo/checkout/{}/{}", escape(&gateway), escape(&reference));
    let return_field = link
        .return_url
        .as_deref()
        .map(|u| format!(r#"<input type="hidden" name="return_url" value="{}">"#, escape(u)))
        .unwrap_or_default();
    let button = |status: &str, signature: &str, label: &str, class: &str| {
        format!(
            r#"<form method="post" action="{action}">
<input type="hidden" name="amount_paisa" value="{amount}">
<input type="hidden" name="status" value="{status}">
<input type="hidden" name="signature" value="{signature}">{return_field}
<button type="submit" class="{class}">{label}</button>
</form>"#,
            amount = link.amount_paisa,
            signature = escape(signature),
        )
    };
    let body = format!(
        "<h1>Pay with the demo gateway</h1>\n<p>{description}</p>\n<p class=\"amount\">NPR {amount}</p>\n{approve}\n{decline}\n<p class=\"note\">Reference {reference}</p>",
        description = escape(&link.description),
        amount = format_npr(link.amount_paisa),
        approve = button("succeeded", &link.approve, "Approve", "approve"),
        decline = button("cancelled", &link.decline, "Decline", "decline"),
        reference = escape(&reference),
    );
    html(StatusCode::OK, "Checkout", &body)
}

async fn decide(
    State(state): State<AppState>,
    Path((gateway, reference)): Path<(String, String)>,
    Form(decision): Form<Decision>,
) -> Response {
    let amount = decision.amount_paisa.to_string();
    let fields = [
        ("ref", reference.as_str()),
        ("amount_paisa", amount.as_str()),
        ("status", decision.status.as_str()),
        ("signature", decision.signature.as_str()),
    ];
    let notification = form_encode(&fields);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
    if !state.plugins.gateway_names().contains(&gateway) {
        return html(StatusCode::NOT_FOUND, "Unknown gateway", "<h1>No such gateway is serving</h1>");
    }
    let result = webhooks::handle(state, gateway, headers, notification.into_bytes().into()).await;
    let back = decision.return_url.as_deref().map(|url| {
        let separator = if url.contains('?') { '&' } else { '?' };
        let link = format!("{url}{separator}{}", form_encode(&fields));
        format!(r#"<p><a href="{}">Back to the app</a></p>"#, escape(&link))
    });
    let back = back.unwrap_or_default();
    match result {
        Ok(axum::Json(WebhookAck { outcome, .. })) => {
            let (title, says) = match (decision.status.as_str(), outcome.as_str()) {
                ("succeeded", "credited" | "duplicate" | "already_completed") => {
                    ("Payment approved", format!("NPR {} paid.", format_npr(decision.amount_paisa)))
                }
                ("cancelled", "cancelled" | "duplicate") => ("Payment declined", "Nothing was paid.".to_string()),
                (_, other) => ("Payment not applied", format!("The payment could not be applied ({other}).")),
            };
            html(StatusCode::OK, title, &format!("<h1>{title}</h1>\n<p>{}</p>\n{back}", escape(&says)))
        }
        Err(e) => {
            let status = e.status;
            let body = format!("<h1>Payment refused</h1>\n<p>{}</p>\n{back}", escape(&e.message));
            html(status, "Payment refused", &body)
        }
    }
}
