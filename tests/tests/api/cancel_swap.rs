//! Cancelling a rental in each of its states, and swapping a power bank at
//! the station it came from, over HTTP and a real MQTT broker with simulated
//! stations.

use crate::support::{
    notifications,
    renting::{OTHER_SN, SN, WAIT, balance, customer, initiate, rental, rows, server, sql, station},
};
use powerbank_tests::{TestServer, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn put_settings(s: &TestServer, values: Value) {
    let admin = s.admin().await;
    let r = s
        .call(
            Method::PUT,
            "/api/admin/settings",
            Some(&admin.access),
            Some(json!({"values": values, "reason": "test"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn cancel(s: &TestServer, token: &str, id: i64) -> powerbank_tests::Reply {
    s.post(&format!("/api/rentals/{id}/cancel"), Some(token), json!({})).await
}

#[tokio::test]
async fn a_rental_waiting_for_its_eject_is_cancelled_at_once_and_refunded() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    // A station that never answers, and a wait long enough to cancel in.
    let _silent = station(&s, SN, |c| c.ignore_commands = true).await;
    put_settings(&s, json!({"rentals.eject_timeout_seconds": 20})).await;
    let user = customer(&s, "9841600001", 10_000).await;

    let waiting = {
        let (s, user) = (&s, &user);
        async move { initiate(s, user, SN, "wallet", None).await }
    };
    let cancelling = async {
        let uid = user.user["id"].as_i64().unwrap();
        assert!(
            wait_for(WAIT, || async {
                !rows(&s, "SELECT id FROM rentals WHERE user_id = ?1 AND status = 'pending_eject'", [uid]).is_empty()
            })
            .await,
            "no rental waiting for its eject"
        );
        let id = rows(&s, "SELECT id FROM rentals WHERE user_id = ?1", [uid])[0][0].as_i64().unwrap();
        assert_eq!(balance(&s, &user).await, 5_000, "paid while waiting");
        let r = cancel(&s, &user.access, id).await;
        (id, r)
    };
    let (initiated, (id, cancelled)) = tokio::join!(waiting, cancelling);
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["outcome"], "cancelled");
    assert_eq!(cancelled.body["rental"]["status"], "failed");
    assert_eq!(balance(&s, &user).await, 10_000, "everything given back");
    // The waiting request ends with the refund, not with a rental.
    assert_eq!(initiated.status, StatusCode::GATEWAY_TIMEOUT, "{}", initiated.body);
    let station = s.get(&format!("/api/stations/{SN}"), None).await.body;
    assert!(station["slots"].as_array().unwrap().iter().all(|slot| slot["status"] != "reserved"), "{station}");
    // Nothing more to cancel; a second cancel moves no money.
    let again = cancel(&s, &user.access, id).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "invalid_rental_state"));
    assert_eq!(balance(&s, &user).await, 10_000);
    let refunds = s.get("/api/transactions?kind=rental", Some(&user.access)).await;
    assert!(refunds.body["results"].as_array().unwrap().iter().all(|t| t["status"] == "refunded"), "{}", refunds.body);
}

#[tokio::test]
async fn an_active_rental_cancels_by_return_inside_the_window_and_needs_a_return_after() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841600002", 10_000).await;
    let other = customer(&s, "9841600003", 0).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();

    let r = cancel(&s, &user.access, id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["outcome"], "return_to_cancel");
    assert!(r.body["refund_if_returned_by"].is_string(), "{}", r.body);
    assert_eq!(r.body["rental"]["status"], "active");
    assert_eq!(balance(&s, &user).await, 5_000, "nothing given back until the bank is back");

    let r = cancel(&s, &other.access, id).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "someone else's rental: {}", r.body);

    // Far past the five-minute window.
    sql(&s, "UPDATE rentals SET started_at = started_at - 3600 WHERE id = ?1", [id]);
    let r = cancel(&s, &user.access, id).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "return_required"), "{}", r.body);
    assert_eq!(balance(&s, &user).await, 5_000);
    assert_eq!(rental(&s, &user, id).await["status"], "active");
}

#[tokio::test]
async fn a_rental_waiting_for_its_gateway_payment_is_cancelled_at_once() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841600004", 0).await;
    let other = customer(&s, "9841600005", 0).await;

    // Waiting for its payment: cancelled, nothing moved; a second order is allowed.
    let r = initiate(&s, &user, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let order = r.body["id"].as_i64().unwrap();
    let r = s.post(&format!("/api/rentals/orders/{order}/cancel"), Some(&other.access), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = s.post(&format!("/api/rentals/orders/{order}/cancel"), Some(&user.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["intent"]["status"], "cancelled");
    let r = s.post(&format!("/api/rentals/orders/{order}/cancel"), Some(&user.access), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "invalid_order_state"));
    assert!(s.get("/api/rentals/active", Some(&user.access)).await.body["payment"].is_null());

    // Paid and not started: the payment goes to the wallet at once.
    let r = initiate(&s, &user, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let order = r.body["id"].as_i64().unwrap();
    let intent = r.body["intent"]["id"].as_str().unwrap().to_string();
    let pidx = r.body["intent"]["gateway_reference"].as_str().unwrap().to_string();
    gw.khalti.complete(&pidx);
    let r = s.post("/api/rentals/verify-payment", Some(&user.access), json!({"intent_id": intent, "pidx": pidx})).await;
    assert_eq!(r.body["outcome"], "paid", "{}", r.body);
    let r = s.post(&format!("/api/rentals/orders/{order}/cancel"), Some(&user.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "refunded");
    assert_eq!(balance(&s, &user).await, 5_000, "the gateway payment is in the wallet");
    let r = s.post("/api/rentals/start", Some(&user.access), json!({"intent_id": intent})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a cancelled order does not start: {}", r.body);
    assert_eq!(balance(&s, &user).await, 5_000);
}

async fn swap(s: &TestServer, token: &str, id: i64) -> powerbank_tests::Reply {
    s.post(&format!("/api/rentals/{id}/swap"), Some(token), json!({})).await
}

async fn swap_status(s: &TestServer, token: &str, id: i64) -> Value {
    let r = s.get(&format!("/api/rentals/{id}/swap"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// A slot of the simulated station with no bank in it.
fn free_slot(sim: &station_sim::SimStation) -> u16 {
    sim.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap()
}

#[tokio::test]
async fn a_bank_seated_for_a_swap_is_exchanged_for_another_in_the_same_rental() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841600011", 10_000).await;
    let other = customer(&s, "9841600012", 0).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let old_bank = r.body["power_bank"].as_str().unwrap().to_string();

    let r = swap(&s, &other.access, id).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "someone else's rental: {}", r.body);
    let r = s.get(&format!("/api/rentals/{id}/swap"), Some(&user.access)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "never swapped");

    let r = swap(&s, &user.access, id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["status"], "awaiting_return");
    assert_eq!(r.body["station_sn"], SN);
    assert_eq!(r.body["old_power_bank"], old_bank.as_str());
    let r = swap(&s, &user.access, id).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "swap_in_progress"));

    // The rider seats the bank; the station ejects another.
    home.return_bank(free_slot(&home), &old_bank, 12).await.unwrap();
    assert!(
        wait_for(WAIT, || async { swap_status(&s, &user.access, id).await["status"] == "completed" }).await,
        "{}",
        swap_status(&s, &user.access, id).await
    );
    let done = swap_status(&s, &user.access, id).await;
    let new_bank = done["new_power_bank"].as_str().unwrap().to_string();
    assert_ne!(new_bank, old_bank);
    let now = rental(&s, &user, id).await;
    assert_eq!(now["status"], "active");
    assert_eq!(now["power_bank"], new_bank.as_str());
    assert_eq!(balance(&s, &user).await, 5_000, "no new charge");
    assert!(home.slots().iter().all(|slot| slot.bank.as_ref().map(|b| &b.0) != Some(&new_bank)), "the new bank is out");
    assert!(home.slots().iter().any(|slot| slot.bank.as_ref().map(|b| &b.0) == Some(&old_bank)), "the old one is in");
    let inbox = notifications(&s, &user.access, "").await;
    assert!(inbox.iter().any(|n| n["template"] == "rental_swapped"), "{inbox:?}");
    assert_eq!(
        rows(&s, "SELECT COUNT(*) FROM rental_swaps WHERE rental_id = ?1 AND status = 'completed'", [id])[0][0],
        1
    );

    // The new bank returns as the rental's bank.
    sql(&s, "UPDATE rentals SET started_at = started_at - 1800 WHERE id = ?1", [id]);
    let r = swap(&s, &user.access, id).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "swap_window_passed"), "{}", r.body);
    home.return_bank(free_slot(&home), &new_bank, 60).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "completed" }).await);
    assert_eq!(balance(&s, &user).await, 5_000);
    let r = swap(&s, &user.access, id).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "invalid_rental_state"));
}

#[tokio::test]
async fn a_swap_whose_eject_fails_closes_the_rental_as_returned_and_refunds_it() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841600021", 10_000).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    let r = swap(&s, &user.access, id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    // The same cabinet, now jamming every eject.
    home.stop().await;
    let jammed = station(&s, SN, |c| c.eject_failure_rate = 1.0).await;
    jammed.return_bank(free_slot(&jammed), &bank, 15).await.unwrap();
    assert!(
        wait_for(WAIT, || async { swap_status(&s, &user.access, id).await["status"] == "failed" }).await,
        "{}",
        swap_status(&s, &user.access, id).await
    );
    let closed = rental(&s, &user, id).await;
    assert_eq!(closed["status"], "cancelled", "{closed}");
    assert_eq!(closed["return_station_sn"], SN);
    assert!(!closed["returned_at"].is_null());
    assert_eq!(balance(&s, &user).await, 10_000, "refunded in full");
    assert!(s.get("/api/rentals/active", Some(&user.access)).await.body["rental"].is_null());
    let inbox = notifications(&s, &user.access, "").await;
    assert!(inbox.iter().any(|n| n["template"] == "rental_swap_failed"), "{inbox:?}");
    let station = s.get(&format!("/api/stations/{SN}"), None).await.body;
    assert!(station["slots"].as_array().unwrap().iter().all(|slot| slot["status"] != "reserved"), "{station}");
}

#[tokio::test]
async fn swap_cancel_and_return_at_once_leave_exactly_one_outcome() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    for (round, phone) in ["9841600031", "9841600032", "9841600033"].into_iter().enumerate() {
        let user = customer(&s, phone, 10_000).await;
        let r = initiate(&s, &user, SN, "wallet", None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["id"].as_i64().unwrap();
        let bank = r.body["power_bank"].as_str().unwrap().to_string();
        let slot = free_slot(&home);
        let (swapped, cancelled, returned) =
            tokio::join!(swap(&s, &user.access, id), cancel(&s, &user.access, id), home.return_bank(slot, &bank, 40));
        returned.unwrap();
        // A cancel of an active rental changes nothing by itself.
        assert!(cancelled.status == StatusCode::OK || cancelled.status == StatusCode::CONFLICT, "{}", cancelled.body);
        let settled = || async {
            let r = rental(&s, &user, id).await;
            let swap_done = s.get(&format!("/api/rentals/{id}/swap"), Some(&user.access)).await.body["status"].clone();
            (r["status"] != "active" || swap_done == "completed" || swap_done == "failed").then_some((r, swap_done))
        };
        let (_, swap_done) = powerbank_tests::fake_fcm::eventually("one outcome", WAIT, settled).await;
        // Read again: the swap may have completed between the two reads above.
        let r = rental(&s, &user, id).await;
        let completed_swaps =
            rows(&s, "SELECT COUNT(*) FROM rental_swaps WHERE rental_id = ?1 AND status = 'completed'", [id])[0][0]
                .as_i64()
                .unwrap();
        if swapped.status == StatusCode::ACCEPTED {
            // Swapped: the rental goes on with another bank, charged once.
            assert_eq!(swap_done, "completed", "round {round}: {r}");
            assert_eq!(r["status"], "active", "round {round}");
            assert_ne!(r["power_bank"], bank.as_str());
            assert_eq!(completed_swaps, 1);
            assert_eq!(balance(&s, &user).await, 5_000, "round {round}");
            // Put it back so the next round has banks to rent.
            let b = r["power_bank"].as_str().unwrap().to_string();
            home.return_bank(free_slot(&home), &b, 90).await.unwrap();
            assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] != "active" }).await);
        } else {
            // Returned: closed within the free window, refunded, never swapped.
            assert_eq!(swapped.status, StatusCode::CONFLICT, "round {round}: {}", swapped.body);
            assert_eq!(r["status"], "cancelled", "round {round}: {r}");
            assert_eq!(completed_swaps, 0);
            assert_eq!(balance(&s, &user).await, 10_000, "round {round}");
        }
        let refunds = rows(
            &s,
            "SELECT COUNT(*) FROM wallet_transactions WHERE user_id = ?1 AND kind = 'refund'",
            [user.user["id"].as_i64().unwrap()],
        )[0][0]
            .as_i64()
            .unwrap();
        assert!(refunds <= 1, "round {round}: refunded {refunds} times");
    }
}

#[tokio::test]
async fn a_bank_seated_at_another_station_during_a_swap_is_an_ordinary_return() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let away = station(&s, OTHER_SN, |_| {}).await;
    let user = customer(&s, "9841600041", 10_000).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    let r = swap(&s, &user.access, id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    away.return_bank(free_slot(&away), &bank, 30).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "cancelled" }).await);
    let swap_now = swap_status(&s, &user.access, id).await;
    assert_eq!(swap_now["status"], "expired", "{swap_now}");
    assert!(swap_now["new_power_bank"].is_null());
    assert_eq!(rental(&s, &user, id).await["return_station_sn"], OTHER_SN);
    assert_eq!(balance(&s, &user).await, 10_000, "a return inside the free window, refunded once");
}
