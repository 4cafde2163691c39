//! Top-ups through the Khalti, eSewa and Stripe plugins against local fakes
//! of those gateways, over real HTTP: intents, verification, webhooks,
//! idempotency, failures of the gateway, the background verification job,
//! refunds, hot-swapping a gateway plugin, and the OpenAPI document.

use std::time::{Duration, Instant};

use powerbank::core::{Db, now_ts};
use powerbank_tests::{
    Reply, Session, TestServer,
    fake_gateways::{Behaviour, ESEWA_SECRET, FakeStripe, Gateways},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// 10 points per whole NPR 100 topped up (the standard points plugin).
fn topup_points(amount_paisa: i64) -> i64 {
    amount_paisa / 10_000 * 10
}

async fn setup(phone: &str) -> (Gateways, TestServer, Session) {
    let gateways = Gateways::start().await;
    let s = gateways.server().await;
    let user = s.register(phone).await;
    (gateways, s, user)
}

/// (wallet paisa, points)
async fn balance(s: &TestServer, token: &str) -> (i64, i64) {
    let r = s.get("/api/wallet/balance", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "balance: {}", r.body);
    (r.body["balance_paisa"].as_i64().unwrap(), r.body["points"].as_i64().unwrap())
}

async fn post_with(s: &TestServer, path: &str, token: Option<&str>, headers: &[(&str, &str)], body: Value) -> Reply {
    let mut req = s.http.post(s.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    TestServer::read(req.send().await.expect("request sent")).await
}

async fn intent(s: &TestServer, token: &str, gateway: &str, amount: i64) -> Value {
    let r = s.post("/api/wallet/topup-intent", Some(token), json!({"amount_paisa": amount, "gateway": gateway})).await;
    assert_eq!(r.status, StatusCode::CREATED, "topup-intent: {}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["amount_paisa"], amount);
    r.body
}

async fn verify(s: &TestServer, token: &str, body: Value) -> Reply {
    s.post("/api/payment/verify-topup", Some(token), body).await
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("intent id").to_string()
}

fn reference(v: &Value) -> String {
    v["gateway_reference"].as_str().expect("gateway reference").to_string()
}

async fn khalti_webhook(s: &TestServer, params: &Value) -> Reply {
    s.post("/api/payment/webhook/khalti", None, params.clone()).await
}

async fn stripe_webhook(s: &TestServer, body: &str, signature: &str) -> Reply {
    let req = s
        .http
        .post(s.url("/api/payment/webhook/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body.to_string());
    TestServer::read(req.send().await.unwrap()).await
}

async fn esewa_webhook(s: &TestServer, data: &str) -> Reply {
    s.post("/api/payment/webhook/esewa", None, json!({ "data": data })).await
}

/// Number of top-up payments and top-up wallet credits of the user.
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

fn sql(s: &TestServer, statement: &str, params: impl rusqlite::Params) {
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(statement, params).unwrap();
}

async fn wait_for_status(s: &TestServer, token: &str, intent_id: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let r = s.get(&format!("/api/payment/status/{intent_id}"), Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "status: {}", r.body);
        if r.body["status"] == status {
            return r.body;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "intent never became {status}: {}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn khalti_topup_is_credited_once_with_points() {
    let (gw, s, user) = setup("9841100001").await;
    let t = user.access.as_str();
    let (start_wallet, start_points) = balance(&s, t).await;
    assert_eq!(start_wallet, 0);

    let created = intent(&s, t, "khalti", 25_000).await;
    let pidx = reference(&created);
    assert!(created["payment_url"].as_str().unwrap().contains(&pidx), "{created}");
    let at_khalti = gw.khalti.payment(&pidx).expect("initiated at Khalti");
    assert_eq!((at_khalti.amount, at_khalti.purchase_order_id.as_str()), (25_000, id(&created).as_str()));

    // Not paid yet: verification credits nothing.
    let r = verify(&s, t, json!({"intent_id": id(&created), "pidx": pidx})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["outcome"].as_str(), r.body["credited"].as_bool()), (Some("pending"), Some(false)));

    gw.khalti.complete(&pidx);
    let r = verify(&s, t, json!({"intent_id": id(&created), "pidx": pidx})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["outcome"], "credited", "{}", r.body);
    assert_eq!(r.body["balance_paisa"], 25_000);
    assert_eq!(r.body["points_awarded"], topup_points(25_000));
    assert!(r.body["transaction_reference"].as_str().unwrap().starts_with("TXN-"));

    // The same payment again, by verify and by Khalti's callback: nothing more.
    let again = verify(&s, t, json!({"intent_id": id(&created), "pidx": pidx})).await;
    assert_eq!(
        (again.body["outcome"].as_str(), again.body["credited"].as_bool()),
        (Some("already_completed"), Some(false))
    );
    let params = gw.khalti.callback_params(&pidx);
    let hook = khalti_webhook(&s, &params).await;
    assert_eq!(
        (hook.status, hook.body["outcome"].as_str()),
        (StatusCode::OK, Some("already_completed")),
        "{}",
        hook.body
    );
    let hook = khalti_webhook(&s, &params).await;
    assert_eq!((hook.status, hook.body["outcome"].as_str()), (StatusCode::OK, Some("duplicate")));

    assert_eq!(balance(&s, t).await, (25_000, start_points + topup_points(25_000)));
    assert_eq!(topup_rows(&s, &user), (1, 1));
    let txns = s.get("/api/transactions?kind=topup", Some(t)).await;
    let rows = txns.body["results"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["gateway"].as_str(), rows[0]["status"].as_str()), (Some("khalti"), Some("success")));
    let status = s.get(&format!("/api/payment/status/{}", id(&created)), Some(t)).await;
    assert_eq!(status.body["status"], "completed");
    let notes = s.get("/api/user/notifications", Some(t)).await;
    assert!(notes.body.to_string().contains("topup_credited") || notes.body.to_string().contains("Wallet topped up"));
}

#[tokio::test]
async fn khalti_webhook_alone_credits_and_ten_deliveries_credit_once() {
    let (gw, s, user) = setup("9841100002").await;
    let t = user.access.as_str();
    let created = intent(&s, t, "khalti", 10_000).await;
    let pidx = reference(&created);
    gw.khalti.complete(&pidx);
    let params = gw.khalti.callback_params(&pidx);
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        let r = khalti_webhook(&s, &params).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        outcomes.push(r.body["outcome"].as_str().unwrap().to_string());
    }
    assert_eq!(outcomes[0], "credited");
    assert!(outcomes[1..].iter().all(|o| o == "duplicate"), "{outcomes:?}");
    assert_eq!(balance(&s, t).await.0, 10_000);
    assert_eq!(topup_rows(&s, &user), (1, 1));
}

#[tokio::test]
async fn esewa_topup_with_signed_data_and_status_check() {
    let (gw, s, user) = setup("9841100003").await;
    let t = user.access.as_str();
    let (_, points_before) = balance(&s, t).await;
    let created = intent(&s, t, "esewa", 150_000).await;
    let form = &created["form"];
    assert_eq!(form["action"].as_str(), Some(gw.esewa.form_url().as_str()));
    assert_eq!(form["fields"]["total_amount"], "1500");
    assert_eq!(form["fields"]["signed_field_names"], "total_amount,transaction_uuid,product_code");
    // The app posts the signed form to eSewa, which checks the signature.
    let fields: Vec<(String, String)> =
        form["fields"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    let posted = s.http.post(gw.esewa.form_url()).form(&fields).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::OK);
    let uuid = reference(&created);
    assert_eq!(uuid, id(&created));

    // Before paying, eSewa's status API has nothing complete.
    let r = verify(&s, t, json!({"intent_id": id(&created)})).await;
    assert_eq!(r.body["outcome"], "pending", "{}", r.body);

    let data = gw.esewa.pay(&uuid);
    let r = verify(&s, t, json!({"intent_id": id(&created), "data": data})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["outcome"], "credited", "{}", r.body);
    assert_eq!(r.body["points_awarded"], topup_points(150_000));

    let hook = esewa_webhook(&s, &data).await;
    assert_eq!(
        (hook.status, hook.body["outcome"].as_str()),
        (StatusCode::OK, Some("already_completed")),
        "{}",
        hook.body
    );
    for _ in 0..3 {
        let hook = esewa_webhook(&s, &data).await;
        assert_eq!(hook.body["outcome"], "duplicate");
    }
    assert_eq!(balance(&s, t).await, (150_000, points_before + topup_points(150_000)));
    assert_eq!(topup_rows(&s, &user), (1, 1));
}

#[tokio::test]
async fn stripe_topup_by_webhook_and_ten_deliveries_credit_once() {
    let (gw, s, user) = setup("9841100004").await;
    let t = user.access.as_str();
    let (_, points_before) = balance(&s, t).await;
    let created = intent(&s, t, "stripe", 20_000).await;
    let pi = reference(&created);
    assert!(pi.starts_with("pi_"));
    assert!(created["client_secret"].as_str().unwrap().starts_with(&pi));
    let at_stripe = gw.stripe.intent(&pi).unwrap();
    assert_eq!((at_stripe["amount"].as_i64(), at_stripe["currency"].as_str()), (Some(20_000), Some("npr")));
    assert_eq!(at_stripe["metadata"]["order_id"].as_str(), Some(id(&created).as_str()));

    // Still requires a payment method: nothing to credit.
    let r = verify(&s, t, json!({"intent_id": id(&created)})).await;
    assert_eq!(r.body["outcome"], "pending", "{}", r.body);

    gw.stripe.succeed(&pi);
    let body = gw.stripe.event("payment_intent.succeeded", &pi);
    let signature = gw.stripe.sign(&body);
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        let r = stripe_webhook(&s, &body, &signature).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        outcomes.push(r.body["outcome"].as_str().unwrap().to_string());
    }
    assert_eq!(outcomes[0], "credited");
    assert!(outcomes[1..].iter().all(|o| o == "duplicate"), "{outcomes:?}");

    let r = verify(&s, t, json!({"intent_id": id(&created)})).await;
    assert_eq!(r.body["outcome"], "already_completed");
    // Other event types are acknowledged and ignored.
    let other = gw.stripe.event("payment_intent.created", &pi);
    let r = stripe_webhook(&s, &other, &gw.stripe.sign(&other)).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("ignored")));

    assert_eq!(balance(&s, t).await, (20_000, points_before + topup_points(20_000)));
    assert_eq!(topup_rows(&s, &user), (1, 1));
}

#[tokio::test]
async fn forged_tampered_unknown_and_expired_credit_nothing() {
    let (gw, s, user) = setup("9841100005").await;
    let t = user.access.as_str();

    // Stripe: a wrong secret, a body changed after signing, an old timestamp.
    let created = intent(&s, t, "stripe", 10_000).await;
    let pi = reference(&created);
    gw.stripe.succeed(&pi);
    let body = gw.stripe.event("payment_intent.succeeded", &pi);
    let forged = FakeStripe::signature_with("whsec_not_the_secret", &body, now_ts());
    let r = stripe_webhook(&s, &body, &forged).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "bad_signature"));
    let tampered = body.replace("\"amount\":10000", "\"amount\":99999999");
    assert_ne!(tampered, body);
    let r = stripe_webhook(&s, &tampered, &gw.stripe.sign(&body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = stripe_webhook(&s, &body, &gw.stripe.sign_at(&body, now_ts() - 600)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "bad_signature"));
    let r = stripe_webhook(&s, &body, "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Stripe signed it, but for another amount than the intent's.
    let mut event: Value = serde_json::from_str(&body).unwrap();
    event["id"] = json!("evt_wrong_amount");
    event["data"]["object"]["amount"] = json!(100);
    event["data"]["object"]["amount_received"] = json!(100);
    let wrong = event.to_string();
    let r = stripe_webhook(&s, &wrong, &gw.stripe.sign(&wrong)).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("amount_mismatch")), "{}", r.body);
    // A signed event about a payment this server never made.
    let mut stranger: Value = serde_json::from_str(&body).unwrap();
    stranger["id"] = json!("evt_stranger");
    stranger["data"]["object"]["id"] = json!("pi_somebody_else");
    stranger["data"]["object"]["metadata"] = json!({});
    let stranger = stranger.to_string();
    let r = stripe_webhook(&s, &stranger, &gw.stripe.sign(&stranger)).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("unknown_intent")));
    let status = s.get(&format!("/api/payment/status/{}", id(&created)), Some(t)).await;
    assert_eq!(status.body["status"], "pending");
    assert!(status.body["last_error"].as_str().unwrap().contains("amount_mismatch"), "{}", status.body);

    // eSewa: data signed with another key; signed data for another amount.
    let e = intent(&s, t, "esewa", 10_000).await;
    let fields: Vec<(String, String)> = e["form"]["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    s.http.post(gw.esewa.form_url()).form(&fields).send().await.unwrap();
    let uuid = reference(&e);
    let forged = gw.esewa.success_data(&uuid, 10_000, "not-the-secret");
    let r = verify(&s, t, json!({"intent_id": id(&e), "data": forged})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "bad_signature"));
    let r = esewa_webhook(&s, &forged).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "bad_signature"));
    let cheaper = gw.esewa.success_data(&uuid, 1_000, ESEWA_SECRET);
    let r = verify(&s, t, json!({"intent_id": id(&e), "data": cheaper})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "amount_mismatch"));
    // Signed, but eSewa's status API has no completed payment: nothing.
    let r = esewa_webhook(&s, &gw.esewa.success_data(&uuid, 10_000, ESEWA_SECRET)).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("ignored")), "{}", r.body);

    // Khalti: it reports another total; a callback claiming another amount;
    // a pidx Khalti does not know; an intent that does not exist.
    let k = intent(&s, t, "khalti", 10_000).await;
    let pidx = reference(&k);
    gw.khalti.complete_with_amount(&pidx, 5_000);
    let r = verify(&s, t, json!({"intent_id": id(&k), "pidx": pidx})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "amount_mismatch"));
    let r = khalti_webhook(&s, &gw.khalti.callback_params(&pidx)).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("amount_mismatch")), "{}", r.body);
    let k2 = intent(&s, t, "khalti", 10_000).await;
    let pidx2 = reference(&k2);
    gw.khalti.complete(&pidx2);
    let r = verify(&s, t, json!({"intent_id": id(&k2), "pidx": pidx2, "params": {"amount": "100"}})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "amount_mismatch"));
    let mut claim = gw.khalti.callback_params(&pidx2);
    claim["total_amount"] = json!("100");
    claim["amount"] = json!("100");
    let r = khalti_webhook(&s, &claim).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = verify(&s, t, json!({"intent_id": id(&k2), "pidx": "someone-elses-pidx"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "gateway_rejected"));
    let r = khalti_webhook(&s, &json!({"pidx": "no-such-pidx", "status": "Completed", "total_amount": "10000"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = verify(&s, t, json!({"intent_id": "00000000-0000-0000-0000-000000000000"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "not_found"));

    assert_eq!(balance(&s, t).await.0, 0);
    assert_eq!(topup_rows(&s, &user), (0, 0));

    // Another user's intent is not found either.
    let other = s.register("9841100015").await;
    let r = verify(&s, &other.access, json!({"intent_id": id(&k2)})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // ... and the honest verification still works afterwards.
    let r = verify(&s, t, json!({"intent_id": id(&k2), "pidx": pidx2})).await;
    assert_eq!(r.body["outcome"], "credited", "{}", r.body);
}

#[tokio::test]
async fn a_down_or_slow_gateway_answers_502_or_504_and_the_job_finishes_the_work() {
    let (gw, s, user) = setup("9841100006").await;
    let t = user.access.as_str();

    gw.khalti.set_behaviour(Behaviour::Fail);
    let r = s.post("/api/wallet/topup-intent", Some(t), json!({"amount_paisa": 10_000, "gateway": "khalti"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_GATEWAY, "gateway_unavailable"));

    gw.khalti.set_behaviour(Behaviour::Normal);
    let created = intent(&s, t, "khalti", 10_000).await;
    let pidx = reference(&created);
    gw.khalti.complete(&pidx);

    gw.khalti.set_behaviour(Behaviour::Fail);
    let r = verify(&s, t, json!({"intent_id": id(&created), "pidx": pidx})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_GATEWAY, "gateway_unavailable"));
    gw.khalti.set_behaviour(Behaviour::Slow(Duration::from_secs(4)));
    let started = Instant::now();
    let r = verify(&s, t, json!({"intent_id": id(&created), "pidx": pidx})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::GATEWAY_TIMEOUT, "gateway_timeout"), "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(4), "answered within the plugin's budget");
    let status = s.get(&format!("/api/payment/status/{}", id(&created)), Some(t)).await;
    assert_eq!(status.body["status"], "pending");
    assert!(status.body["last_error"].as_str().is_some(), "{}", status.body);
    assert_eq!(balance(&s, t).await.0, 0);

    // The gateway recovers; the background check credits without the app.
    gw.khalti.set_behaviour(Behaviour::Normal);
    sql(&s, "UPDATE jobs SET run_at = 0 WHERE kind = 'payments.verify_intent' AND status = 'pending'", []);
    let done = wait_for_status(&s, t, &id(&created), "completed").await;
    assert!(done["transaction_id"].as_i64().is_some());
    assert_eq!(balance(&s, t).await.0, 10_000);

    // An intent never paid expires once its time is up (after one last check).
    let unpaid = intent(&s, t, "khalti", 10_000).await;
    sql(&s, "UPDATE payment_intents SET expires_at = ?1 WHERE id = ?2", rusqlite::params![now_ts() - 1, id(&unpaid)]);
    sql(&s, "UPDATE jobs SET run_at = 0 WHERE kind = 'payments.verify_intent' AND status = 'pending'", []);
    wait_for_status(&s, t, &id(&unpaid), "expired").await;
    let r = verify(&s, t, json!({"intent_id": id(&unpaid)})).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("expired")));
    // Paid at the very last moment after all: the money arrived, so it is
    // credited (once), whether the app or Khalti tells us.
    gw.khalti.complete(&reference(&unpaid));
    let r = verify(&s, t, json!({"intent_id": id(&unpaid)})).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("credited")), "{}", r.body);
    let hook = khalti_webhook(&s, &gw.khalti.callback_params(&reference(&unpaid))).await;
    assert_eq!(hook.body["outcome"], "already_completed");
    assert_eq!(balance(&s, t).await.0, 20_000);

    // Cancel asks the gateway first.
    let c = intent(&s, t, "khalti", 10_000).await;
    let r = s.post(&format!("/api/payment/cancel/{}", id(&c)), Some(t), json!({})).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{}", r.body);
    let paid = intent(&s, t, "khalti", 10_000).await;
    gw.khalti.complete(&reference(&paid));
    let r = s.post(&format!("/api/payment/cancel/{}", id(&paid)), Some(t), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "already_paid"));
    assert_eq!(balance(&s, t).await.0, 30_000);
}

#[tokio::test]
async fn idempotency_keys_return_the_first_answer() {
    let (gw, s, user) = setup("9841100007").await;
    let t = user.access.as_str();
    let key = [("Idempotency-Key", "topup-7f3a")];
    let body = json!({"amount_paisa": 30_000, "gateway": "khalti"});
    let first = post_with(&s, "/api/wallet/topup-intent", Some(t), &key, body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let requests_after_first = gw.khalti.requests();
    let second = post_with(&s, "/api/wallet/topup-intent", Some(t), &key, body).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.body["id"], second.body["id"]);
    assert_eq!(gw.khalti.requests(), requests_after_first, "the retry did not reach Khalti");
    let reused =
        post_with(&s, "/api/wallet/topup-intent", Some(t), &key, json!({"amount_paisa": 40_000, "gateway": "khalti"}))
            .await;
    assert_eq!((reused.status, reused.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));

    let pidx = reference(&first.body);
    gw.khalti.complete(&pidx);
    let vkey = [("Idempotency-Key", "verify-7f3a")];
    let vbody = json!({"intent_id": id(&first.body), "pidx": pidx});
    let v1 = post_with(&s, "/api/payment/verify-topup", Some(t), &vkey, vbody.clone()).await;
    let v2 = post_with(&s, "/api/payment/verify-topup", Some(t), &vkey, vbody.clone()).await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.body);
    assert_eq!(v1.body, v2.body, "the retry gets the first answer");
    assert_eq!(v1.body["credited"], true);
    // Concurrent retries with one key: still one credit.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (http, url, token, vbody) =
            (s.http.clone(), s.url("/api/payment/verify-topup"), user.access.clone(), vbody.clone());
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "verify-7f3a")
                .json(&vbody)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(balance(&s, t).await.0, 30_000);
    assert_eq!(topup_rows(&s, &user), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_spends_of_a_balance_that_covers_one() {
    let (gw, s, user) = setup("9841100008").await;
    let t = user.access.as_str();
    let uid = user.user["id"].as_i64().unwrap();
    let created = intent(&s, t, "khalti", 10_000).await;
    gw.khalti.complete(&reference(&created));
    let r = verify(&s, t, json!({"intent_id": id(&created)})).await;
    assert_eq!(r.body["outcome"], "credited", "{}", r.body);

    // The server's own database file, written by a second process-like
    // handle while the server keeps serving reads and verifications.
    let db = Db::open(&s.db_path(), 2).unwrap();
    let mut spends = Vec::new();
    for i in 0..50 {
        let db = db.clone();
        spends.push(tokio::spawn(async move {
            db.write(move |tx| {
                powerbank::ledger::wallet_change(
                    tx,
                    uid,
                    -10_000,
                    powerbank::ledger::WalletKind::RentalCharge,
                    None,
                    &format!("spend {i}"),
                )
            })
            .await
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..10 {
        let (http, url, token) = (s.http.clone(), s.url("/api/wallet/balance"), user.access.clone());
        readers.push(tokio::spawn(async move {
            let v: Value = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
            v["balance_paisa"].as_i64().unwrap()
        }));
    }
    let mut ok = 0;
    for task in spends {
        match task.await.unwrap() {
            Ok(balance) => {
                ok += 1;
                assert_eq!(balance, 0);
            }
            Err(e) => assert_eq!(e.code, "insufficient_balance", "{e}"),
        }
    }
    for reader in readers {
        let seen = reader.await.unwrap();
        assert!(seen == 0 || seen == 10_000, "a reader saw {seen}");
    }
    assert_eq!(ok, 1, "exactly one spend succeeds");
    assert_eq!(balance(&s, t).await.0, 0);
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let (min_after, debits): (i64, i64) = conn
        .query_row(
            "SELECT MIN(balance_after_paisa), SUM(direction = 'debit') FROM wallet_transactions WHERE user_id = ?1",
            [uid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((min_after, debits), (0, 1), "never negative, one debit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_swapping_khalti_while_top_ups_run_loses_and_doubles_nothing() {
    let (gw, s, user) = setup("9841100009").await;
    let admin = s.admin().await;
    let plugins_toml = s.config().plugins_path.clone();
    let data_dir = s.data_dir.path().to_path_buf();
    let (_, points_before) = balance(&s, &user.access).await;

    const FLOWS: usize = 24;
    let mut flows = Vec::new();
    for i in 0..FLOWS {
        let (http, base, token, khalti) = (s.http.clone(), s.base.clone(), user.access.clone(), gw.khalti.clone());
        flows.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((i as u64 % 6) * 40)).await;
            let created: Value = http
                .post(format!("{base}/api/wallet/topup-intent"))
                .bearer_auth(&token)
                .json(&json!({"amount_paisa": 10_000, "gateway": "khalti"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let intent_id = created["id"].as_str().unwrap_or_else(|| panic!("intent: {created}")).to_string();
            khalti.complete(created["gateway_reference"].as_str().unwrap());
            // Verify (and retry a failed attempt, as the app would).
            for _ in 0..5 {
                let r = http
                    .post(format!("{base}/api/payment/verify-topup"))
                    .bearer_auth(&token)
                    .json(&json!({"intent_id": intent_id}))
                    .send()
                    .await
                    .unwrap();
                if r.status().is_success() {
                    let body: Value = r.json().await.unwrap();
                    return (intent_id, body["outcome"].as_str().unwrap().to_string());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("verification kept failing");
        }));
    }
    // Meanwhile the operator swaps Khalti for a new version five times.
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        gw.write_plugins_toml(&data_dir, &format!("release = \"v{round}\""));
        assert_eq!(plugins_toml, data_dir.join("plugins.toml"));
        let r = s.post("/api/admin/plugins/reload", Some(&admin.access), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "reload: {}", r.body);
        assert!(r.body["loaded"].as_array().unwrap().iter().any(|n| n == "khalti"), "{}", r.body);
        assert!(r.body["failed"].as_array().unwrap().is_empty(), "{}", r.body);
    }
    let mut credited = 0;
    for flow in flows {
        let (_, outcome) = flow.await.unwrap();
        assert_eq!(outcome, "credited");
        credited += 1;
    }
    assert_eq!(credited, FLOWS);
    let total = 10_000 * FLOWS as i64;
    assert_eq!(balance(&s, &user.access).await, (total, points_before + topup_points(10_000) * FLOWS as i64));
    assert_eq!(topup_rows(&s, &user), (FLOWS as i64, FLOWS as i64));
}

#[tokio::test]
async fn refunds_go_back_through_the_gateway_or_the_wallet() {
    let (gw, s, user) = setup("9841100010").await;
    let t = user.access.as_str();
    let admin = s.admin().await;
    let a = admin.access.as_str();

    // A Stripe top-up, refunded through Stripe.
    let created = intent(&s, t, "stripe", 20_000).await;
    gw.stripe.succeed(&reference(&created));
    let v = verify(&s, t, json!({"intent_id": id(&created)})).await;
    let txn = v.body["intent"]["transaction_id"].as_i64().unwrap();
    let r = s.post(&format!("/api/payment/refund/{txn}"), Some(t), json!({"reason": "topped up by mistake"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["amount_paisa"].as_i64()), (Some("pending"), Some(20_000)));
    let refund_id = r.body["id"].as_i64().unwrap();
    let again = s.post(&format!("/api/payment/refund/{txn}"), Some(t), json!({"reason": "again"})).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "refund_exists"));
    let mine = s.get("/api/payment/refunds", Some(t)).await;
    assert_eq!(mine.body["results"].as_array().unwrap().len(), 1);
    let pending = s.get("/api/admin/refunds?status=pending", Some(a)).await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.body);
    assert!(pending.body["results"].as_array().unwrap().iter().any(|r| r["id"] == refund_id));
    let forbidden = s.get("/api/admin/refunds", Some(t)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    let r = s.post(&format!("/api/admin/refunds/{refund_id}/approve"), Some(a), json!({"note": "ok"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "processed", "{}", r.body);
    assert!(r.body["gateway_refund_id"].as_str().unwrap().starts_with("re_"));
    let refunds = gw.stripe.refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 20_000);
    assert_eq!(balance(&s, t).await.0, 0);
    let twice =
        s.post(&format!("/api/admin/refunds/{refund_id}/approve"), Some(a), json!({"reason": "customer asked"})).await;
    assert_eq!((twice.status, twice.error_code()), (StatusCode::CONFLICT, "refund_not_pending"));
    let txns = s.get("/api/transactions", Some(t)).await;
    let statuses: Vec<(String, String)> = txns.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["kind"].as_str().unwrap().to_string(), t["status"].as_str().unwrap().to_string()))
        .collect();
    assert!(statuses.contains(&("topup".into(), "refunded".into())), "{statuses:?}");
    assert!(statuses.contains(&("refund".into(), "success".into())), "{statuses:?}");

    // A Khalti top-up, refunded through Khalti's merchant refund API.
    let k = intent(&s, t, "khalti", 10_000).await;
    gw.khalti.complete(&reference(&k));
    let v = verify(&s, t, json!({"intent_id": id(&k)})).await;
    let ktxn = v.body["transaction_reference"].as_str().unwrap().to_string();
    let r = s.post(&format!("/api/payment/refund/{ktxn}"), Some(t), json!({"reason": "no longer needed"})).await;
    let kid = r.body["id"].as_i64().unwrap();
    let r = s.post(&format!("/api/admin/refunds/{kid}/approve"), Some(a), json!({"reason": "customer asked"})).await;
    assert_eq!(r.body["status"], "processed", "{}", r.body);
    assert_eq!(gw.khalti.refunds().len(), 1);
    assert_eq!(gw.khalti.payment(&reference(&k)).unwrap().status, "Refunded");

    // eSewa has no refund API: the refund fails and the money stays in the wallet.
    let e = intent(&s, t, "esewa", 10_000).await;
    let fields: Vec<(String, String)> = e["form"]["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    s.http.post(gw.esewa.form_url()).form(&fields).send().await.unwrap();
    let data = gw.esewa.pay(&reference(&e));
    let v = verify(&s, t, json!({"intent_id": id(&e), "data": data})).await;
    let etxn = v.body["intent"]["transaction_id"].as_i64().unwrap();
    let r = s.post(&format!("/api/payment/refund/{etxn}"), Some(t), json!({"reason": "test"})).await;
    let eid = r.body["id"].as_i64().unwrap();
    let r = s.post(&format!("/api/admin/refunds/{eid}/approve"), Some(a), json!({"reason": "customer asked"})).await;
    assert_eq!(r.body["status"], "failed", "{}", r.body);
    assert!(r.body["last_error"].as_str().unwrap().contains("esewa"), "{}", r.body);
    assert_eq!(balance(&s, t).await.0, 10_000);

    // A top-up already spent cannot be refunded; a rejection tells why.
    let k2 = intent(&s, t, "khalti", 10_000).await;
    gw.khalti.complete(&reference(&k2));
    let v = verify(&s, t, json!({"intent_id": id(&k2)})).await;
    let k2txn = v.body["intent"]["transaction_id"].as_i64().unwrap();
    let uid = user.user["id"].as_i64().unwrap();
    Db::open(&s.db_path(), 1)
        .unwrap()
        .write(move |tx| {
            powerbank::ledger::wallet_change(
                tx,
                uid,
                -20_000,
                powerbank::ledger::WalletKind::RentalCharge,
                None,
                "a rental",
            )
        })
        .await
        .unwrap();
    let r = s.post(&format!("/api/payment/refund/{k2txn}"), Some(t), json!({"reason": "please"})).await;
    let k2id = r.body["id"].as_i64().unwrap();
    let r = s.post(&format!("/api/admin/refunds/{k2id}/approve"), Some(a), json!({"reason": "customer asked"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::PAYMENT_REQUIRED, "insufficient_balance"));
    let r = s.post(&format!("/api/admin/refunds/{k2id}/reject"), Some(a), json!({"reason": "already spent"})).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("rejected")), "{}", r.body);
    assert_eq!(r.body["review_note"], "already spent");
}

#[tokio::test]
async fn methods_and_payment_options() {
    let (gw, s, user) = setup("9841100011").await;
    let t = user.access.as_str();
    let r = s.get("/api/payment/methods", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<&str> = r.body["methods"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["wallet", "points", "esewa", "khalti", "stripe"]);

    let created = intent(&s, t, "khalti", 10_000).await;
    gw.khalti.complete(&reference(&created));
    verify(&s, t, json!({"intent_id": id(&created)})).await;
    let (wallet, points) = balance(&s, t).await;
    let points_value = points * 10; // 10 points = NPR 1
    assert_eq!(wallet, 10_000);

    // Less than the points are worth: points alone pay it.
    let small = points_value - 5;
    let r = s.post("/api/payment/calculate-options", Some(t), json!({"amount_paisa": small})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["recommended"], "points");
    assert_eq!(r.body["options"][0]["points_used"], (small + 9) / 10);
    // More than the points, less than both: points first, then the wallet.
    let mid = points_value + 5_000;
    let r = s.post("/api/payment/calculate-options", Some(t), json!({"amount_paisa": mid})).await;
    assert_eq!(r.body["recommended"], "wallet_points", "{}", r.body);
    let combined = &r.body["options"][1];
    assert_eq!((combined["points_used"].as_i64(), combined["wallet_paisa"].as_i64()), (Some(points), Some(5_000)));
    assert_eq!(r.body["options"][0]["feasible"], false);
    assert_eq!(r.body["topup_required_paisa"], 0);
    // More than everything: says how much to top up.
    let big = points_value + wallet + 2_500;
    let r = s.post("/api/payment/calculate-options", Some(t), json!({"amount_paisa": big})).await;
    assert_eq!(r.body["recommended"], Value::Null);
    assert_eq!(r.body["topup_required_paisa"], 2_500);
    assert!(r.body["options"].as_array().unwrap().iter().all(|o| o["feasible"] == false));
    let r = s.post("/api/payment/calculate-options", Some(t), json!({"amount_paisa": 0})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount"));
    let r = s.post("/api/wallet/topup-intent", Some(t), json!({"amount_paisa": 10_000, "gateway": "paypal"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    let r = s.post("/api/wallet/topup-intent", Some(t), json!({"amount_paisa": 500, "gateway": "khalti"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_gateway_without_its_secret_fails_alone() {
    let gw = Gateways::start().await;
    let toml = gw.plugins_toml("").replace(
        &format!(
            "secrets = {{ secret_key = {{ value = \"{}\" }}, webhook_secret",
            powerbank_tests::fake_gateways::STRIPE_SECRET
        ),
        "secrets = { secret_key = { env = \"POWERBANK_TEST_SURELY_UNSET_STRIPE_KEY\" }, webhook_secret",
    );
    assert!(toml.contains("SURELY_UNSET"));
    let s = TestServer::start_with(move |c| {
        let path = c.data_dir.join("plugins.toml");
        std::fs::write(&path, toml).unwrap();
        c.plugins_path = path;
    })
    .await;
    assert_eq!(s.get("/api/health", None).await.status, StatusCode::OK);
    let r = s.get("/api/payment/methods", None).await;
    let ids: Vec<&str> = r.body["methods"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["wallet", "points", "esewa", "khalti"]);
    let admin = s.admin().await;
    let plugins = s.get("/api/admin/plugins", Some(&admin.access)).await;
    let stripe = plugins.body.as_array().unwrap().iter().find(|p| p["name"] == "stripe").unwrap().clone();
    assert_eq!(stripe["status"], "failed");
    assert!(stripe["last_error"].as_str().unwrap().contains("POWERBANK_TEST_SURELY_UNSET_STRIPE_KEY"), "{stripe}");

    let user = s.register("9841100012").await;
    let r = s
        .post("/api/wallet/topup-intent", Some(&user.access), json!({"amount_paisa": 10_000, "gateway": "stripe"}))
        .await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    let r = stripe_webhook(&s, "{}", "t=1,v1=00").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    intent(&s, &user.access, "khalti", 10_000).await;
}

#[tokio::test]
async fn payment_endpoints_are_documented_with_schemas() {
    // The repository's plugins.toml: gateways whose keys are not in the
    // environment fail alone, and the server serves regardless.
    let s = TestServer::start().await;
    assert_eq!(s.get("/api/health", None).await.status, StatusCode::OK);
    let methods = s.get("/api/payment/methods", None).await;
    assert_eq!(
        (methods.body["methods"][0]["id"].as_str(), methods.body["methods"][1]["id"].as_str()),
        (Some("wallet"), Some("points"))
    );
    let spec = s.get("/api/openapi.json", None).await.body;
    let endpoints = [
        ("post", "/api/wallet/topup-intent", true),
        ("post", "/api/payment/verify-topup", true),
        ("get", "/api/payment/methods", false),
        ("post", "/api/payment/calculate-options", true),
        ("post", "/api/payment/webhook/{gateway}", true),
        ("get", "/api/payment/status/{intent_id}", false),
        ("post", "/api/payment/cancel/{intent_id}", false),
        ("post", "/api/payment/refund/{transaction_id}", true),
        ("get", "/api/payment/refunds", false),
        ("get", "/api/admin/refunds", false),
        ("post", "/api/admin/refunds/{id}/approve", true),
        ("post", "/api/admin/refunds/{id}/reject", true),
    ];
    for (method, path, has_body) in endpoints {
        let op = &spec["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        if has_body {
            assert!(op["requestBody"]["content"].is_object(), "{method} {path} has no request schema");
        }
        let ok = op["responses"].as_object().unwrap().iter().find(|(code, _)| code.starts_with('2'));
        let (_, ok) = ok.unwrap_or_else(|| panic!("{method} {path} has no 2xx response"));
        assert!(ok["content"]["application/json"]["schema"].is_object(), "{method} {path} has no response schema");
    }
}
