//! Rentals paid through the Khalti, eSewa and Stripe plugins (against local
//! fakes of those gateways), and late `ejected` answers after an eject timed
//! out, end to end over HTTP and a real MQTT broker with simulated stations.

use std::time::Duration;

use crate::support::renting::{
    EJECT_TIMEOUT, OTHER_SN, SN, WAIT, balance, customer, initiate, rental, rows, server, sql, station, wallet_add,
};
use powerbank::core::now_ts;
use powerbank_tests::{Reply, TestServer, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn verify(s: &TestServer, token: &str, body: Value) -> Reply {
    s.post("/api/rentals/verify-payment", Some(token), body).await
}

async fn start(s: &TestServer, token: &str, intent_id: &str) -> Reply {
    s.post("/api/rentals/start", Some(token), json!({ "intent_id": intent_id })).await
}

fn intent_id(order: &Value) -> String {
    order["intent"]["id"].as_str().expect("intent id").to_string()
}

fn reference(order: &Value) -> String {
    order["intent"]["gateway_reference"].as_str().expect("gateway reference").to_string()
}

/// Banks the simulated station still holds.
fn banks(sim: &station_sim::SimStation) -> usize {
    sim.slots().iter().filter(|slot| slot.bank.is_some()).count()
}

/// (kind, status, gateway, amount) of the user's transactions, oldest first.
async fn transactions(s: &TestServer, token: &str) -> Vec<(String, String, Option<String>, i64)> {
    let r = s.get("/api/transactions?limit=100", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut out: Vec<_> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
                t["gateway"].as_str().map(str::to_owned),
                t["amount_paisa"].as_i64().unwrap(),
            )
        })
        .collect();
    out.reverse();
    out
}

#[tokio::test]
async fn khalti_rental_is_paid_once_then_started() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841500001", 0).await;
    let t = user.access.as_str();
    let banks_before = banks(&home);

    let r = initiate(&s, &user, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let order = r.body.clone();
    assert_eq!((order["status"].as_str(), order["next_step"].as_str()), (Some("awaiting_payment"), Some("pay")));
    assert_eq!((order["amount_paisa"].as_i64(), order["gateway"].as_str()), (Some(5_000), Some("khalti")));
    assert_eq!(
        (order["intent"]["purpose"].as_str(), order["intent"]["status"].as_str()),
        (Some("rental"), Some("pending"))
    );
    let pidx = reference(&order);
    assert!(order["intent"]["payment_url"].as_str().unwrap().contains(&pidx), "{order}");
    let at_khalti = gw.khalti.payment(&pidx).expect("initiated at Khalti");
    assert_eq!((at_khalti.amount, at_khalti.purchase_order_id), (5_000, intent_id(&order)));
    // Nothing charged, nothing ejected.
    assert_eq!(balance(&s, &user).await, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(banks(&home), banks_before);
    let active = s.get("/api/rentals/active", Some(t)).await.body;
    assert!(active["rental"].is_null(), "{active}");
    assert_eq!(active["payment"]["id"], order["id"]);

    // Not paid yet: no start, no second rental, verify says pending.
    let r = start(&s, t, &intent_id(&order)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "payment_pending"));
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "rental_payment_in_progress"));
    let r = verify(&s, t, json!({"intent_id": intent_id(&order), "pidx": pidx})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["outcome"].as_str(), r.body["paid_now"].as_bool()), (Some("pending"), Some(false)));

    gw.khalti.complete(&pidx);
    let r = verify(&s, t, json!({"intent_id": intent_id(&order), "pidx": pidx})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["outcome"].as_str(), r.body["paid_now"].as_bool()), (Some("paid"), Some(true)), "{}", r.body);
    assert_eq!(
        (r.body["order"]["status"].as_str(), r.body["order"]["next_step"].as_str()),
        (Some("paid"), Some("start"))
    );
    // Khalti's callback and another verify for the same payment record nothing more.
    let hook = s.post("/api/payment/webhook/khalti", None, gw.khalti.callback_params(&pidx)).await;
    assert_eq!(
        (hook.status, hook.body["outcome"].as_str()),
        (StatusCode::OK, Some("already_completed")),
        "{}",
        hook.body
    );
    let r = verify(&s, t, json!({"intent_id": intent_id(&order), "pidx": pidx})).await;
    assert_eq!(r.body["outcome"], "already_paid");
    assert_eq!(transactions(&s, t).await, vec![("rental".into(), "success".into(), Some("khalti".into()), 5_000)]);
    assert_eq!(balance(&s, &user).await, 0, "a gateway payment does not touch the wallet");

    let r = start(&s, t, &intent_id(&order)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!((r.body["status"].as_str(), r.body["payment_method"].as_str()), (Some("active"), Some("khalti")));
    assert_eq!((r.body["gateway_paisa"].as_i64(), r.body["wallet_paisa"].as_i64()), (Some(5_000), Some(0)));
    assert_eq!(banks(&home), banks_before - 1, "one bank out");
    let r = start(&s, t, &intent_id(&order)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "invalid_rental_state"));
    let r = verify(&s, t, json!({"intent_id": intent_id(&order)})).await;
    assert_eq!((r.body["outcome"].as_str(), r.body["order"]["rental_id"].as_i64()), (Some("already_paid"), Some(id)));
    let linked = rows(&s, "SELECT rental_id FROM transactions WHERE kind = 'rental'", []);
    assert_eq!(linked, vec![vec![json!(id)]], "the payment names its rental");
    assert!(s.get("/api/rentals/active", Some(t)).await.body["payment"].is_null());

    // Someone else cannot verify or start it.
    let other = customer(&s, "9841500002", 0).await;
    let r = start(&s, &other.access, &intent_id(&order)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = verify(&s, &other.access, json!({"intent_id": intent_id(&order)})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_failed_or_silent_eject_credits_the_gateway_payment_to_the_wallet() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _failing = station(&s, SN, |c| c.eject_failure_rate = 1.0).await;
    let _silent = station(&s, OTHER_SN, |c| c.ignore_commands = true).await;
    let user = customer(&s, "9841500003", 0).await;
    let t = user.access.as_str();

    let r = initiate(&s, &user, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let pidx = reference(&r.body);
    gw.khalti.complete(&pidx);
    let v = verify(&s, t, json!({"intent_id": intent_id(&r.body), "pidx": pidx})).await;
    assert_eq!(v.body["outcome"], "paid", "{}", v.body);
    let failed = start(&s, t, &intent_id(&r.body)).await;
    assert_eq!((failed.status, failed.error_code()), (StatusCode::BAD_GATEWAY, "eject_failed"), "{}", failed.body);
    let details = &failed.body["error"]["details"];
    assert_eq!((details["refunded_to"].as_str(), details["refunded_paisa"].as_i64()), (Some("wallet"), Some(5_000)));
    assert!(failed.body["error"]["message"].as_str().unwrap().contains("credited to your wallet"));
    let id = details["rental_id"].as_i64().unwrap();
    assert_eq!(rental(&s, &user, id).await["status"], "failed");
    assert_eq!(balance(&s, &user).await, 5_000, "the payment went to the wallet");
    let refunds = rows(
        &s,
        "SELECT amount_paisa, direction FROM wallet_transactions WHERE user_id = ?1 AND kind = 'refund'",
        [user.user["id"].as_i64().unwrap()],
    );
    assert_eq!(refunds, vec![vec![json!(5_000), json!("credit")]]);
    let station_now = s.get(&format!("/api/stations/{SN}"), None).await.body;
    assert!(station_now["slots"].as_array().unwrap().iter().all(|slot| slot["status"] != "reserved"));

    // eSewa at a station that never answers: 504, and the money is in the wallet too.
    let r = initiate(&s, &user, OTHER_SN, "esewa", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let fields: Vec<(String, String)> = r.body["intent"]["form"]["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let posted = s.http.post(gw.esewa.form_url()).form(&fields).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::OK);
    let data = gw.esewa.pay(&reference(&r.body));
    let v = verify(&s, t, json!({"intent_id": intent_id(&r.body), "data": data})).await;
    assert_eq!(v.body["outcome"], "paid", "{}", v.body);
    let started = std::time::Instant::now();
    let silent = start(&s, t, &intent_id(&r.body)).await;
    assert_eq!((silent.status, silent.error_code()), (StatusCode::GATEWAY_TIMEOUT, "eject_timeout"), "{}", silent.body);
    assert!(started.elapsed() < EJECT_TIMEOUT + Duration::from_secs(3), "the wait is bounded");
    assert_eq!(balance(&s, &user).await, 10_000);
    let kinds = transactions(&s, t).await;
    assert_eq!(
        kinds,
        vec![
            ("rental".into(), "refunded".into(), Some("khalti".into()), 5_000),
            ("rental".into(), "refunded".into(), Some("esewa".into()), 5_000),
        ]
    );
}

#[tokio::test]
async fn stripe_webhooks_and_verifies_at_once_record_one_payment() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841500004", 0).await;
    let t = user.access.as_str();
    let r = initiate(&s, &user, SN, "stripe", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let pi = reference(&r.body);
    assert!(r.body["intent"]["client_secret"].as_str().unwrap().starts_with(&pi));
    gw.stripe.succeed(&pi);
    let body = gw.stripe.event("payment_intent.succeeded", &pi);
    let signature = gw.stripe.sign(&body);

    // Ten webhook deliveries and ten verifications, all at once.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let http = s.http.clone();
        let (base, token, intent, body, signature) =
            (s.base.clone(), t.to_string(), intent_id(&r.body), body.clone(), signature.clone());
        tasks.spawn(async move {
            let req = if i % 2 == 0 {
                http.post(format!("{base}/api/payment/webhook/stripe"))
                    .header("content-type", "application/json")
                    .header("stripe-signature", signature)
                    .body(body)
            } else {
                http.post(format!("{base}/api/rentals/verify-payment"))
                    .bearer_auth(token)
                    .json(&json!({ "intent_id": intent }))
            };
            TestServer::read(req.send().await.unwrap()).await
        });
    }
    let mut recorded = 0;
    while let Some(done) = tasks.join_next().await {
        let reply = done.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        if reply.body["outcome"] == "credited" || reply.body["outcome"] == "paid" {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1, "one of twenty recorded the payment");
    let payments = rows(
        &s,
        "SELECT COUNT(*), SUM(amount_paisa) FROM transactions WHERE kind = 'rental' AND gateway = 'stripe'",
        [],
    );
    assert_eq!(payments, vec![vec![json!(1), json!(5_000)]]);
    assert_eq!(balance(&s, &user).await, 0);

    // Two starts at once: one rental.
    let intent = intent_id(&r.body);
    let (a, b) = tokio::join!(start(&s, t, &intent), start(&s, t, &intent));
    let mut codes = [a.status, b.status];
    codes.sort();
    assert_eq!(codes, [StatusCode::CREATED, StatusCode::CONFLICT], "{} / {}", a.body, b.body);
    assert_eq!(rows(&s, "SELECT COUNT(*) FROM rentals", []), vec![vec![json!(1)]]);
}

#[tokio::test]
async fn unpaid_payments_expire_and_late_or_unused_payments_go_to_the_wallet() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841500005", 0).await;
    let t = user.access.as_str();

    // Never paid: the payments domain's background check expires the intent, and the order with it.
    let r = initiate(&s, &user, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let unpaid = r.body.clone();
    sql(
        &s,
        "UPDATE payment_intents SET expires_at = ?1 WHERE id = ?2",
        rusqlite::params![now_ts() - 1, intent_id(&unpaid)],
    );
    sql(&s, "UPDATE jobs SET run_at = 0 WHERE kind = 'payments.verify_intent' AND status = 'pending'", []);
    assert!(
        wait_for(WAIT, || async { s.get("/api/rentals/active", Some(t)).await.body["payment"].is_null() }).await,
        "the order never expired"
    );
    let status = s.get(&format!("/api/payment/status/{}", intent_id(&unpaid)), Some(t)).await;
    assert_eq!(status.body["status"], "expired");
    let r = start(&s, t, &intent_id(&unpaid)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "invalid_rental_state"));
    // Paid at the last moment after all: the money is not lost, it goes to the wallet.
    gw.khalti.complete(&reference(&unpaid));
    let r = verify(&s, t, json!({"intent_id": intent_id(&unpaid)})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["outcome"].as_str(), r.body["order"]["status"].as_str()),
        (Some("refunded_to_wallet"), Some("refunded"))
    );
    let hook = s.post("/api/payment/webhook/khalti", None, gw.khalti.callback_params(&reference(&unpaid))).await;
    assert_eq!(hook.body["outcome"], "already_completed");
    assert_eq!(balance(&s, &user).await, 5_000);

    // Cancelled by the user: a new payment may start right away.
    let r = initiate(&s, &user, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let c = s.post(&format!("/api/payment/cancel/{}", intent_id(&r.body)), Some(t), json!({})).await;
    assert_eq!((c.status, c.body["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{}", c.body);
    assert!(s.get("/api/rentals/active", Some(t)).await.body["payment"].is_null());

    // Paid and never started: the rentals sweep gives the money back to the wallet.
    let r = initiate(&s, &user, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    gw.khalti.complete(&reference(&r.body));
    let v = verify(&s, t, json!({"intent_id": intent_id(&r.body)})).await;
    assert_eq!(v.body["outcome"], "paid", "{}", v.body);
    sql(&s, "UPDATE rental_orders SET paid_at = ?1 WHERE status = 'paid'", [now_ts() - 3600]);
    sql(&s, "UPDATE jobs SET run_at = 0 WHERE kind = 'rentals.sweep' AND status = 'pending'", []);
    assert!(wait_for(WAIT, || async { balance(&s, &user).await == 10_000 }).await, "paid order never refunded");
    let r = start(&s, t, &intent_id(&r.body)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "invalid_rental_state"));
    let orders = rows(&s, "SELECT status FROM rental_orders ORDER BY id", []);
    assert_eq!(orders, vec![vec![json!("refunded")], vec![json!("cancelled")], vec![json!("refunded")]]);
    // Every payment that arrived was given back exactly once.
    let kinds = transactions(&s, t).await;
    assert!(kinds.iter().all(|(kind, status, _, _)| kind == "rental" && status == "refunded"), "{kinds:?}");
    assert_eq!(kinds.len(), 2);
}

#[tokio::test]
async fn a_late_eject_after_the_timeout_revives_the_rental_and_charges_it_again() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    // The station ejects, but a second after the host stopped waiting.
    let late = station(&s, SN, |c| c.eject_delay = EJECT_TIMEOUT + Duration::from_secs(1)).await;
    let user = customer(&s, "9841500006", 10_000).await;
    let t = user.access.as_str();

    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::GATEWAY_TIMEOUT, "eject_timeout"), "{}", r.body);
    let id = r.body["error"]["details"]["rental_id"].as_i64().unwrap();
    assert_eq!(rental(&s, &user, id).await["status"], "failed");
    assert_eq!(balance(&s, &user).await, 10_000, "refunded at the timeout");

    assert!(
        wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "active" }).await,
        "{}",
        rental(&s, &user, id).await
    );
    let revived = rental(&s, &user, id).await;
    assert!(revived["due_at"].is_string() && revived["failure_reason"].is_null(), "{revived}");
    assert_eq!(balance(&s, &user).await, 5_000, "charged again");
    let kinds = transactions(&s, t).await;
    assert_eq!(
        kinds,
        vec![("rental".into(), "refunded".into(), None, 5_000), ("rental".into(), "success".into(), None, 5_000)]
    );
    let inbox = s.get("/api/user/notifications", Some(t)).await.body;
    let resumed: Vec<&Value> =
        inbox["results"].as_array().unwrap().iter().filter(|n| n["template"] == "rental_resumed").collect();
    assert_eq!(resumed.len(), 1, "{inbox}");
    assert!(resumed[0]["body"].as_str().unwrap().contains("NPR 50.00 was charged"), "{}", resumed[0]);
    assert_eq!(s.get("/api/rentals/active", Some(t)).await.body["rental"]["id"], id);

    // It ends like any rental.
    let bank = revived["power_bank"].as_str().unwrap().to_string();
    let free_slot = late.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sql(&s, "UPDATE rentals SET started_at = started_at - 3600 WHERE id = ?1", [id]);
    late.return_bank(free_slot, &bank, 80).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "completed" }).await);
    assert_eq!(balance(&s, &user).await, 5_000);
}

#[tokio::test]
async fn a_late_eject_the_wallet_cannot_pay_becomes_a_due_and_gateway_rentals_revive_too() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _late = station(&s, SN, |c| c.eject_delay = EJECT_TIMEOUT + Duration::from_millis(1500)).await;

    // Refunded at the timeout, and spent before the bank comes out.
    let poor = customer(&s, "9841500007", 5_000).await;
    let r = initiate(&s, &poor, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.body);
    let id = r.body["error"]["details"]["rental_id"].as_i64().unwrap();
    wallet_add(&s, &poor, -5_000).await;
    assert!(wait_for(WAIT, || async { rental(&s, &poor, id).await["status"] == "active" }).await);
    let revived = rental(&s, &poor, id).await;
    assert_eq!((revived["unpaid_due_paisa"].as_i64(), revived["wallet_paisa"].as_i64()), (Some(5_000), Some(0)));
    let inbox = s.get("/api/user/notifications", Some(&poor.access)).await.body.to_string();
    assert!(inbox.contains("NPR 50.00 is due"), "{inbox}");
    wallet_add(&s, &poor, 5_000).await;
    let paid =
        s.post(&format!("/api/rentals/{id}/pay-due"), Some(&poor.access), json!({"payment_method": "wallet"})).await;
    assert_eq!((paid.status, paid.body["unpaid_due_paisa"].as_i64()), (StatusCode::OK, Some(0)), "{}", paid.body);
    assert_eq!(balance(&s, &poor).await, 0);

    // Paid by Khalti, refunded to the wallet at the timeout, charged from it when the bank comes out.
    let user = customer(&s, "9841500008", 0).await;
    let r = initiate(&s, &user, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    gw.khalti.complete(&reference(&r.body));
    let v = verify(&s, &user.access, json!({"intent_id": intent_id(&r.body)})).await;
    assert_eq!(v.body["outcome"], "paid", "{}", v.body);
    let timed_out = start(&s, &user.access, &intent_id(&r.body)).await;
    assert_eq!(timed_out.status, StatusCode::GATEWAY_TIMEOUT, "{}", timed_out.body);
    let id = timed_out.body["error"]["details"]["rental_id"].as_i64().unwrap();
    assert_eq!(balance(&s, &user).await, 5_000);
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "active" }).await);
    assert_eq!(balance(&s, &user).await, 0);
    let revived = rental(&s, &user, id).await;
    assert_eq!((revived["wallet_paisa"].as_i64(), revived["gateway_paisa"].as_i64()), (Some(5_000), Some(0)));
}

#[tokio::test]
async fn an_ejected_without_request_id_is_matched_by_bank_and_a_refused_eject_is_not_revived() {
    use station_codecs::native::StationEvent;
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let silent = station(&s, SN, |c| c.ignore_commands = true).await;
    let failing = station(&s, OTHER_SN, |c| c.eject_failure_rate = 1.0).await;
    let user = customer(&s, "9841500009", 20_000).await;

    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.body);
    let id = r.body["error"]["details"]["rental_id"].as_i64().unwrap();
    let (slot, bank): (u16, String) = {
        let row = rows(
            &s,
            "SELECT r.slot_index, pb.serial_number FROM rentals r JOIN power_banks pb ON pb.id = r.power_bank_id
             WHERE r.id = ?1",
            [id],
        );
        (row[0][0].as_u64().unwrap() as u16, row[0][1].as_str().unwrap().to_string())
    };
    // The station's firmware reports the eject without the request id.
    silent
        .publish_event(&StationEvent::Ejected { request_id: String::new(), slot, power_bank: bank.clone() })
        .await
        .unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "active" }).await);
    assert_eq!(balance(&s, &user).await, 15_000);
    assert_eq!(rental(&s, &user, id).await["power_bank"], bank.as_str());

    // A rental the station refused stays failed whatever it says later; the
    // user has a rental anyway, so a second one is refused.
    let other = customer(&s, "9841500010", 20_000).await;
    let r = initiate(&s, &other, OTHER_SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    let refused = r.body["error"]["details"]["rental_id"].as_i64().unwrap();
    let row = rows(
        &s,
        "SELECT r.slot_index, pb.serial_number, r.eject_request_id FROM rentals r
         JOIN power_banks pb ON pb.id = r.power_bank_id WHERE r.id = ?1",
        [refused],
    );
    failing
        .publish_event(&StationEvent::Ejected {
            request_id: row[0][2].as_str().unwrap().to_string(),
            slot: row[0][0].as_u64().unwrap() as u16,
            power_bank: row[0][1].as_str().unwrap().to_string(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rental(&s, &other, refused).await["status"], "failed");
    assert_eq!(balance(&s, &other).await, 20_000);
}

#[tokio::test]
async fn rental_payment_endpoints_are_documented_with_schemas() {
    let s = TestServer::start().await;
    let spec = s.get("/api/openapi.json", None).await.body;
    for (method, path, status) in [
        ("post", "/api/rentals/initiate", "202"),
        ("post", "/api/rentals/initiate", "201"),
        ("post", "/api/rentals/verify-payment", "200"),
        ("post", "/api/rentals/start", "201"),
    ] {
        let op = &spec["paths"][path][method];
        assert!(op["requestBody"]["content"].is_object(), "{method} {path} has no request schema");
        assert!(
            op["responses"][status]["content"]["application/json"]["schema"].is_object(),
            "{method} {path} has no {status} schema"
        );
    }
    for schema in ["RentalOrderOut", "RentalPaymentOut", "VerifyRentalPaymentIn", "StartRentalIn", "RentalOut"] {
        assert!(spec["components"]["schemas"][schema].is_object(), "{schema} missing");
    }
}

/// A completed rental of `user` that still owes `due` paisa (as a late
/// return the wallet could not cover leaves it); its id.
fn rental_with_due(s: &TestServer, user: &powerbank_tests::Session, code: &str, due: i64) -> i64 {
    let now = now_ts();
    sql(
        s,
        "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index, amount_paisa,
                              due_minutes, started_at, due_at, returned_at, overdue_paisa, unpaid_due_paisa,
                              created_at, updated_at)
         VALUES (?1, ?2, 1, 'completed', 'wallet', (SELECT MIN(id) FROM stations), 1, 5000, 60, ?3 - 7200,
                 ?3 - 3600, ?3, ?4, ?4, ?3 - 7200, ?3)",
        rusqlite::params![code, user.user["id"].as_i64().unwrap(), now, due],
    );
    rows(s, "SELECT id FROM rentals WHERE code = ?1", [code])[0][0].as_i64().unwrap()
}

async fn pay_due(s: &TestServer, user: &powerbank_tests::Session, id: i64, method: &str) -> Reply {
    s.post(&format!("/api/rentals/{id}/pay-due"), Some(&user.access), json!({ "payment_method": method })).await
}

async fn verify_rental_payment(s: &TestServer, user: &powerbank_tests::Session, id: i64, intent: &str) -> Reply {
    s.post(&format!("/api/rentals/{id}/verify-payment"), Some(&user.access), json!({ "intent_id": intent })).await
}

/// The wallet credits of kind `unapplied_payment`: (amount, description).
fn unapplied_credits(s: &TestServer, user: &powerbank_tests::Session) -> Vec<Vec<Value>> {
    rows(
        s,
        "SELECT amount_paisa, direction FROM wallet_transactions WHERE user_id = ?1 AND kind = 'unapplied_payment'",
        [user.user["id"].as_i64().unwrap()],
    )
}

#[tokio::test]
async fn a_due_paid_by_khalti_is_settled_once_however_many_webhooks_arrive() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841500021", 0).await;
    let id = rental_with_due(&s, &user, "DUE-KHALTI-1", 1_500);
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::PAYMENT_REQUIRED, "unpaid_dues"));

    let r = pay_due(&s, &user, id, "khalti").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let payment = r.body.clone();
    assert_eq!(
        (payment["purpose"].as_str(), payment["status"].as_str(), payment["next_step"].as_str()),
        (Some("rental_due"), Some("awaiting_payment"), Some("pay"))
    );
    assert_eq!((payment["amount_paisa"].as_i64(), payment["rental_id"].as_i64()), (Some(1_500), Some(id)));
    assert_eq!(payment["intent"]["purpose"], "rental_due");
    let pidx = reference(&payment);
    assert!(payment["intent"]["payment_url"].as_str().unwrap().contains(&pidx), "{payment}");
    assert_eq!(gw.khalti.payment(&pidx).expect("opened at Khalti").amount, 1_500);
    // One due payment at a time; nothing paid yet.
    let again = pay_due(&s, &user, id, "khalti").await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "payment_in_progress"), "{}", again.body);
    let v = verify_rental_payment(&s, &user, id, &intent_id(&payment)).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    assert_eq!(
        (v.body["outcome"].as_str(), v.body["rental"]["unpaid_due_paisa"].as_i64()),
        (Some("pending"), Some(1_500))
    );

    // Paid: ten deliveries of Khalti's callback at once settle the due once.
    gw.khalti.complete(&pidx);
    let mut hooks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (http, url, body) =
            (s.http.clone(), s.url("/api/payment/webhook/khalti"), gw.khalti.callback_params(&pidx));
        hooks.spawn(async move { TestServer::read(http.post(url).json(&body).send().await.unwrap()).await });
    }
    let mut credited = 0;
    while let Some(hook) = hooks.join_next().await {
        let hook = hook.unwrap();
        assert_eq!(hook.status, StatusCode::OK, "{}", hook.body);
        credited += usize::from(hook.body["outcome"] == "credited");
    }
    assert_eq!(credited, 1, "one delivery of ten recorded the payment");
    assert_eq!(
        transactions(&s, &user.access).await,
        vec![("overdue".into(), "success".into(), Some("khalti".into()), 1_500)]
    );
    assert_eq!(rows(&s, "SELECT rental_id FROM transactions WHERE kind = 'overdue'", []), vec![vec![json!(id)]]);
    assert_eq!(balance(&s, &user).await, 0, "a gateway payment does not touch the wallet");
    let v = verify_rental_payment(&s, &user, id, &intent_id(&payment)).await;
    assert_eq!(
        (v.body["outcome"].as_str(), v.body["paid_now"].as_bool(), v.body["rental"]["unpaid_due_paisa"].as_i64()),
        (Some("already_applied"), Some(false), Some(0)),
        "{}",
        v.body
    );
    assert_eq!(v.body["payment"]["status"], "applied");
    assert!(unapplied_credits(&s, &user).is_empty());
    let r = pay_due(&s, &user, id, "khalti").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "nothing_due"));
    // The due no longer blocks renting.
    let r = initiate(&s, &user, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    // Someone else's rental or payment: 404.
    let other = customer(&s, "9841500022", 0).await;
    let r = verify_rental_payment(&s, &other, id, &intent_id(&payment)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = pay_due(&s, &other, id, "khalti").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = pay_due(&s, &user, id, "cash").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

#[tokio::test]
async fn a_due_paid_another_way_or_an_expired_payment_goes_to_the_wallet() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let user = customer(&s, "9841500023", 1_500).await;

    // Paid from the wallet while the Khalti payment was open: when Khalti's
    // money arrives, it is credited to the wallet, not taken for the due twice.
    let id = rental_with_due(&s, &user, "DUE-TWICE-1", 1_500);
    let r = pay_due(&s, &user, id, "khalti").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let by_khalti = r.body.clone();
    let r = pay_due(&s, &user, id, "wallet").await;
    assert_eq!((r.status, r.body["unpaid_due_paisa"].as_i64()), (StatusCode::OK, Some(0)), "{}", r.body);
    assert_eq!(balance(&s, &user).await, 0);
    gw.khalti.complete(&reference(&by_khalti));
    let hook = s.post("/api/payment/webhook/khalti", None, gw.khalti.callback_params(&reference(&by_khalti))).await;
    assert_eq!(hook.body["outcome"], "credited", "{}", hook.body);
    assert_eq!(balance(&s, &user).await, 1_500, "the late payment is in the wallet");
    assert_eq!(unapplied_credits(&s, &user), vec![vec![json!(1_500), json!("credit")]]);
    let v = verify_rental_payment(&s, &user, id, &intent_id(&by_khalti)).await;
    assert_eq!(
        (v.body["outcome"].as_str(), v.body["payment"]["status"].as_str()),
        (Some("credited_to_wallet"), Some("credited_to_wallet")),
        "{}",
        v.body
    );
    assert_eq!(
        transactions(&s, &user.access).await,
        vec![
            ("overdue".into(), "success".into(), None, 1_500),
            ("overdue".into(), "refunded".into(), Some("khalti".into()), 1_500),
        ],
        "one due paid once; the gateway payment is marked as given back"
    );

    // Never paid in time: the intent expires, and so does the payment; paid
    // after all, the money goes to the wallet and the due stays.
    let late = rental_with_due(&s, &user, "DUE-LATE-1", 1_200);
    let r = pay_due(&s, &user, late, "khalti").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let expiring = r.body.clone();
    sql(
        &s,
        "UPDATE payment_intents SET expires_at = ?1 WHERE id = ?2",
        rusqlite::params![now_ts() - 1, intent_id(&expiring)],
    );
    sql(&s, "UPDATE jobs SET run_at = 0 WHERE kind = 'payments.verify_intent' AND status = 'pending'", []);
    let status_of = |intent: String| {
        let s = &s;
        let token = user.access.clone();
        async move { s.get(&format!("/api/payment/status/{intent}"), Some(&token)).await.body["status"].clone() }
    };
    assert!(wait_for(WAIT, || async { status_of(intent_id(&expiring)).await == "expired" }).await, "never expired");
    let v = verify_rental_payment(&s, &user, late, &intent_id(&expiring)).await;
    assert_eq!(v.body["outcome"], "expired", "{}", v.body);
    gw.khalti.complete(&reference(&expiring));
    let v = verify_rental_payment(&s, &user, late, &intent_id(&expiring)).await;
    assert_eq!(
        (v.body["outcome"].as_str(), v.body["paid_now"].as_bool(), v.body["rental"]["unpaid_due_paisa"].as_i64()),
        (Some("credited_to_wallet"), Some(true), Some(1_200)),
        "{}",
        v.body
    );
    assert_eq!(balance(&s, &user).await, 2_700);
    // Now paid from the wallet the money went to.
    let r = pay_due(&s, &user, late, "wallet").await;
    assert_eq!((r.status, r.body["unpaid_due_paisa"].as_i64()), (StatusCode::OK, Some(0)), "{}", r.body);
    assert_eq!(balance(&s, &user).await, 1_500);
}

#[tokio::test]
async fn an_extension_paid_by_gateway_moves_the_due_time_once_or_goes_to_the_wallet() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841500024", 5_000).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    let due_before = chrono::DateTime::parse_from_rfc3339(r.body["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(balance(&s, &user).await, 0);

    let extend = |minutes: i64| {
        let (s, token) = (&s, user.access.clone());
        async move {
            s.post(
                &format!("/api/rentals/{id}/extend"),
                Some(&token),
                json!({"extra_minutes": minutes, "payment_method": "khalti"}),
            )
            .await
        }
    };
    let r = extend(30).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let first = r.body.clone();
    assert_eq!(
        (first["purpose"].as_str(), first["extra_minutes"].as_i64(), first["intent"]["purpose"].as_str()),
        (Some("rental_extension"), Some(30), Some("rental_extension"))
    );
    let price = first["amount_paisa"].as_i64().unwrap();
    assert!(price > 0, "{first}");
    let r = extend(30).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "payment_in_progress"));

    gw.khalti.complete(&reference(&first));
    let v = verify_rental_payment(&s, &user, id, &intent_id(&first)).await;
    assert_eq!((v.body["outcome"].as_str(), v.body["paid_now"].as_bool()), (Some("applied"), Some(true)), "{}", v.body);
    let due_after = chrono::DateTime::parse_from_rfc3339(v.body["rental"]["due_at"].as_str().unwrap()).unwrap();
    assert_eq!((due_after - due_before).num_minutes(), 30, "{}", v.body);
    let hook = s.post("/api/payment/webhook/khalti", None, gw.khalti.callback_params(&reference(&first))).await;
    assert_eq!(hook.body["outcome"], "already_completed", "{}", hook.body);
    let v = verify_rental_payment(&s, &user, id, &intent_id(&first)).await;
    assert_eq!(v.body["outcome"], "already_applied");
    let extensions = rows(
        &s,
        "SELECT e.extra_minutes, e.amount_paisa, t.kind, t.gateway FROM rental_extensions e
         JOIN transactions t ON t.id = e.transaction_id WHERE e.rental_id = ?1",
        [id],
    );
    assert_eq!(extensions, vec![vec![json!(30), json!(price), json!("rental_extension"), json!("khalti")]]);
    assert_eq!(balance(&s, &user).await, 0);

    // A second extension is opened, then the bank comes back (inside the
    // free window: cancelled, refunded): paid afterwards, it goes to the wallet.
    let r = extend(60).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let second = r.body.clone();
    let free_slot = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free_slot, &bank, 80).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] != "active" }).await);
    let refunded = balance(&s, &user).await;
    gw.khalti.complete(&reference(&second));
    let v = verify_rental_payment(&s, &user, id, &intent_id(&second)).await;
    assert_eq!(v.body["outcome"], "credited_to_wallet", "{}", v.body);
    assert_eq!(balance(&s, &user).await, refunded + second["amount_paisa"].as_i64().unwrap());
    assert_eq!(unapplied_credits(&s, &user), vec![vec![second["amount_paisa"].clone(), json!("credit")]]);
    assert_eq!(rows(&s, "SELECT COUNT(*) FROM rental_extensions WHERE rental_id = ?1", [id]), vec![vec![json!(1)]]);
}

#[tokio::test]
async fn due_and_extension_gateway_payments_are_documented_with_schemas() {
    let s = TestServer::start().await;
    let spec = s.get("/api/openapi.json", None).await.body;
    for (method, path, status) in [
        ("post", "/api/rentals/{id}/pay-due", "200"),
        ("post", "/api/rentals/{id}/pay-due", "202"),
        ("post", "/api/rentals/{id}/extend", "200"),
        ("post", "/api/rentals/{id}/extend", "202"),
        ("post", "/api/rentals/{id}/verify-payment", "200"),
    ] {
        let op = &spec["paths"][path][method];
        assert!(op["requestBody"]["content"].is_object(), "{method} {path} has no request schema");
        assert!(
            op["responses"][status]["content"]["application/json"]["schema"].is_object(),
            "{method} {path} has no {status} schema"
        );
    }
    for schema in ["RentalGatewayPaymentOut", "RentalGatewayPaymentResult", "PayDueRequest", "ExtendRequest"] {
        assert!(spec["components"]["schemas"][schema].is_object(), "{schema} missing");
    }
}
