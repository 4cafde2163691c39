//! Gateways are plugins and nothing else: a gateway the host has never heard
//! of (Acme Pay) is listed, tops up and receives its signed webhooks through
//! the one `/api/payment/webhook/{gateway}` route; and the demo gateway's
//! checkout page, served by the host, credits a top-up once on approval and
//! nothing on decline.

use std::path::Path;

use powerbank_tests::{
    Reply, Session, TestServer,
    fake_gateways::{ACME_CHECKOUT_URL, ACME_ICON_URL, ACME_WEBHOOK_SECRET, Gateways, acme_pay_toml, acme_signature},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn balance(s: &TestServer, token: &str) -> i64 {
    let r = s.get("/api/wallet/balance", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "balance: {}", r.body);
    r.body["balance_paisa"].as_i64().unwrap()
}

/// Top-up payments and wallet credits of the user.
fn topup_rows(s: &TestServer, user: &Session) -> (i64, i64) {
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let uid = user.user["id"].as_i64().unwrap();
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM transactions WHERE user_id = ?1 AND kind = 'topup'),
                (SELECT COUNT(*) FROM wallet_transactions WHERE user_id = ?1 AND kind = 'topup')",
        [uid],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

async fn topup_intent(s: &TestServer, token: &str, gateway: &str, amount: i64) -> Value {
    let r = s.post("/api/wallet/topup-intent", Some(token), json!({"amount_paisa": amount, "gateway": gateway})).await;
    assert_eq!(r.status, StatusCode::CREATED, "topup-intent: {}", r.body);
    r.body
}

async fn acme_webhook(s: &TestServer, body: &str, signature: &str) -> Reply {
    let req = s
        .http
        .post(s.url("/api/payment/webhook/acme"))
        .header("content-type", "application/json")
        .header("acme-signature", signature)
        .body(body.to_string());
    TestServer::read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_gateway_the_host_never_heard_of_is_a_plugin_and_a_config_entry() {
    let gw = Gateways::start().await;
    let toml = format!("{}{}", gw.plugins_toml(""), acme_pay_toml("acme"));
    let s = TestServer::start_with(move |config| {
        let file = config.data_dir.join("plugins.toml");
        std::fs::write(&file, toml).unwrap();
        config.plugins_path = file;
    })
    .await;

    // Listed with the name and icon its plugin gives (the icon from its
    // config), beside the three the spec names, whose names come from theirs.
    let methods = s.get("/api/payment/methods", None).await;
    assert_eq!(methods.status, StatusCode::OK);
    let list = methods.body["methods"].as_array().unwrap();
    let by_id = |id: &str| list.iter().find(|m| m["id"] == id).cloned().unwrap_or_else(|| panic!("{id} not listed"));
    let acme = by_id("acme");
    assert_eq!(
        (acme["name"].as_str(), acme["icon_url"].as_str(), acme["kind"].as_str()),
        (Some("Acme Pay"), Some(ACME_ICON_URL), Some("gateway"))
    );
    assert_eq!(by_id("esewa")["name"], "eSewa");
    assert_eq!(by_id("stripe")["name"], "Card (Stripe)");

    let user = s.register("9841700001").await;
    let t = user.access.as_str();
    let created = topup_intent(&s, t, "acme", 25_000).await;
    let reference = created["gateway_reference"].as_str().unwrap().to_string();
    assert_eq!(created["payment_url"].as_str(), Some(format!("{ACME_CHECKOUT_URL}/{reference}").as_str()));

    let event = json!({
        "id": format!("evt_{reference}"),
        "type": "payment.succeeded",
        "data": { "reference": reference, "order_id": created["id"], "amount_paisa": 25_000 },
    })
    .to_string();

    // Signed with another key, or not at all: refused, nothing credited.
    let forged = acme_webhook(&s, &event, &acme_signature("guessed", &event)).await;
    assert_eq!((forged.status, forged.error_code()), (StatusCode::BAD_REQUEST, "bad_signature"), "{}", forged.body);
    let unsigned = s.post("/api/payment/webhook/acme", None, serde_json::from_str(&event).unwrap()).await;
    assert_eq!(unsigned.status, StatusCode::BAD_REQUEST, "{}", unsigned.body);
    assert_eq!(balance(&s, t).await, 0);

    // Ten deliveries of the signed event at once credit once.
    let signature = acme_signature(ACME_WEBHOOK_SECRET, &event);
    let deliveries = (0..10).map(|_| acme_webhook(&s, &event, &signature));
    let replies = futures::future::join_all(deliveries).await;
    let mut outcomes: Vec<&str> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["outcome"].as_str().unwrap()
        })
        .collect();
    outcomes.sort();
    assert_eq!(outcomes.iter().filter(|o| **o == "credited").count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| ["credited", "duplicate"].contains(o)), "{outcomes:?}");
    assert_eq!(balance(&s, t).await, 25_000);
    assert_eq!(topup_rows(&s, &user), (1, 1));
    let status = s.get(&format!("/api/payment/status/{}", created["id"].as_str().unwrap()), Some(t)).await;
    assert_eq!(status.body["status"], "completed", "{}", status.body);

    // A gateway nobody configured has no webhook.
    let unknown = s.post("/api/payment/webhook/nosuchpay", None, json!({})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
}

/// The hidden fields of the checkout page's form whose `status` is `status`.
fn form_fields(html: &str, status: &str) -> Vec<(String, String)> {
    let marker = format!(r#"name="status" value="{status}""#);
    let form = html
        .split("<form")
        .find(|f| f.contains(&marker))
        .unwrap_or_else(|| panic!("no {status} form in the page: {html}"));
    let form = &form[..form.find("</form>").unwrap()];
    form.split("<input")
        .skip(1)
        .map(|input| {
            let attr = |name: &str| {
                let start = input.find(&format!(r#"{name}=""#)).unwrap() + name.len() + 2;
                input[start..start + input[start..].find('"').unwrap()].replace("&amp;", "&")
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

fn form_action(html: &str) -> String {
    let start = html.find(r#"action=""#).unwrap() + 8;
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Presses a button of the checkout page at `payment_url`; the answer's status and HTML.
async fn press(s: &TestServer, payment_url: &str, status: &str, tamper: Option<(&str, &str)>) -> (StatusCode, String) {
    let page = s.http.get(payment_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Approve") && html.contains("Decline"), "{html}");
    let mut fields = form_fields(&html, status);
    if let Some((name, value)) = tamper {
        fields.iter_mut().filter(|(k, _)| k == name).for_each(|(_, v)| *v = value.to_string());
    }
    let answer = s.http.post(s.url(&form_action(&html))).form(&fields).send().await.unwrap();
    (answer.status(), answer.text().await.unwrap())
}

#[tokio::test]
async fn demo_gateway_checkout_page_approves_once_and_declines() {
    // The repository's demo plugins, as `serve --demo` loads them.
    let s = TestServer::start_with(|config| {
        config.plugins_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("plugins.demo.toml");
    })
    .await;
    let methods = s.get("/api/payment/methods", None).await;
    let gateways: Vec<&str> = methods.body["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "gateway")
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(gateways, ["demo"], "the demo serves its own gateway only: {}", methods.body);

    let user = s.register("9841700002").await;
    let t = user.access.as_str();
    let created = topup_intent(&s, t, "demo", 50_000).await;
    let payment_url = created["payment_url"].as_str().unwrap().to_string();
    assert!(payment_url.starts_with(&s.url("/demo/checkout/demo/")), "{payment_url}");
    let page = s.http.get(&payment_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("NPR 500"), "{page}");

    // A tampered amount does not verify: nothing is credited.
    let (status, html) = press(&s, &payment_url, "succeeded", Some(("amount_paisa", "5000000"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert_eq!(balance(&s, t).await, 0);

    // Approve, then approve again (a double click): credited once.
    for _ in 0..2 {
        let (status, html) = press(&s, &payment_url, "succeeded", None).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("Payment approved"), "{html}");
    }
    assert_eq!(balance(&s, t).await, 50_000);
    assert_eq!(topup_rows(&s, &user), (1, 1));
    let status = s.get(&format!("/api/payment/status/{}", created["id"].as_str().unwrap()), Some(t)).await;
    assert_eq!(status.body["status"], "completed", "{}", status.body);

    // Declined: the intent is cancelled and nothing is credited.
    let declined = topup_intent(&s, t, "demo", 30_000).await;
    let (status, html) = press(&s, declined["payment_url"].as_str().unwrap(), "cancelled", None).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Payment declined"), "{html}");
    let status = s.get(&format!("/api/payment/status/{}", declined["id"].as_str().unwrap()), Some(t)).await;
    assert_eq!(status.body["status"], "cancelled", "{}", status.body);
    assert_eq!(balance(&s, t).await, 50_000);
    assert_eq!(topup_rows(&s, &user), (1, 1));
}
