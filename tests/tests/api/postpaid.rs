//! Postpaid packages: a minimum balance to start, nothing charged at the
//! start, the pricing plugin's price charged at return, a shortfall kept as
//! a due. Over HTTP and a real MQTT broker with a simulated station.

use crate::support::renting::{SN, WAIT, balance, customer, rental, rows, server, sql, station, wallet_add};
use powerbank_tests::{Reply, Session, TestServer, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::StatusCode;
use serde_json::json;

/// A postpaid one-hour package at NPR 150; returns its id.
fn postpaid_package(s: &TestServer) -> i64 {
    sql(
        s,
        "INSERT INTO rental_packages (code, name, duration_minutes, price_paisa, payment_model, created_at)
         VALUES ('PAY_LATER_1H', 'Pay later, 1 hour', 60, 15000, 'postpaid', 0)",
        [],
    );
    rows(s, "SELECT id FROM rental_packages WHERE code = 'PAY_LATER_1H'", [])[0][0].as_i64().unwrap()
}

async fn start(s: &TestServer, user: &Session, package: i64, method: &str) -> Reply {
    s.post(
        "/api/rentals/initiate",
        Some(&user.access),
        json!({"station_sn": SN, "package_id": package, "payment_method": method}),
    )
    .await
}

#[tokio::test]
async fn postpaid_rentals_pay_at_return_and_keep_a_shortfall_as_a_due() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let package = postpaid_package(&s);
    let user = customer(&s, "9841900001", 5_000).await;

    // Below the minimum balance (NPR 100 by default): refused, nothing reserved.
    let r = start(&s, &user, package, "wallet").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::PAYMENT_REQUIRED, "postpaid_min_balance"), "{}", r.body);
    assert_eq!(r.body["error"]["details"]["min_balance_paisa"], 10_000);
    let station = s.get(&format!("/api/stations/{SN}"), None).await.body;
    assert!(station["slots"].as_array().unwrap().iter().all(|slot| slot["status"] != "reserved"));
    // Paid from the wallet only, without coupons.
    wallet_add(&s, &user, 15_000).await;
    let r = start(&s, &user, package, "khalti").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Started: nothing charged.
    let r = start(&s, &user, package, "wallet").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["amount_paisa"], 0);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    assert_eq!(balance(&s, &user).await, 20_000);

    // Returned after half an hour: the plugin's price, from the wallet.
    sql(&s, "UPDATE rentals SET started_at = started_at - 1800, due_at = due_at - 1800 WHERE id = ?1", [id]);
    let free = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free, &bank, 50).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "completed" }).await);
    let done = rental(&s, &user, id).await;
    assert_eq!(done["amount_paisa"], 15_000, "{done}");
    assert_eq!(done["unpaid_due_paisa"], 0);
    assert_eq!(balance(&s, &user).await, 5_000);
    let txs = s.get("/api/transactions?kind=rental", Some(&user.access)).await;
    assert_eq!(txs.body["results"][0]["amount_paisa"], 15_000, "{}", txs.body);

    // Exactly the minimum in the wallet: it covers part of the price, the rest is a due.
    wallet_add(&s, &user, 5_000).await;
    let r = start(&s, &user, package, "wallet").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    sql(&s, "UPDATE rentals SET started_at = started_at - 1800, due_at = due_at - 1800 WHERE id = ?1", [id]);
    let free = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free, &bank, 50).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "completed" }).await);
    let done = rental(&s, &user, id).await;
    assert_eq!(done["unpaid_due_paisa"], 5_000, "{done}");
    assert_eq!(balance(&s, &user).await, 0);
    let r = start(&s, &user, package, "wallet").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::PAYMENT_REQUIRED, "unpaid_dues"), "{}", r.body);
}

#[tokio::test]
async fn a_postpaid_return_within_the_free_window_costs_nothing() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let package = postpaid_package(&s);
    let user = customer(&s, "9841900002", 10_000).await;
    let r = start(&s, &user, package, "wallet").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    let free = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free, &bank, 50).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "cancelled" }).await);
    assert_eq!(balance(&s, &user).await, 10_000);
    assert_eq!(rental(&s, &user, id).await["unpaid_due_paisa"], 0);
}
