//! Power banks that never come back, end to end over HTTP and MQTT with
//! simulated stations: overdue reminders at the pricing plugin's points, the
//! sweep declaring the bank lost (penalty and overdue charged, the rest a due
//! that blocks renting), a second sweep charging nothing more, and the bank
//! seated later at another station giving the penalty back.
//!
//! Time moves by rewriting the rental's due time in the database (as the
//! other rental tests do) and running the periodic sweep at once; every
//! amount is kept far from an hour boundary, so the speed of the machine
//! does not matter.

use crate::support::{
    notifications,
    renting::{OTHER_SN, SN, WAIT, balance, customer, initiate, rental, rows, server, sql, station},
};
use powerbank::core::now_ts;
use powerbank_tests::{TestServer, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::StatusCode;

/// Runs the periodic sweep now and waits until it has finished: the run
/// that is waiting is brought forward, so it reads the database as it is now.
async fn run_sweep(s: &TestServer) {
    let waiting = || {
        rows(s, "SELECT id FROM jobs WHERE kind = 'rentals.sweep' AND status = 'pending'", [])
            .first()
            .and_then(|r| r[0].as_i64())
    };
    assert!(wait_for(WAIT, || async { waiting().is_some() }).await, "no sweep waiting");
    let id = waiting().unwrap();
    sql(s, "UPDATE jobs SET run_at = 0 WHERE id = ?1", [id]);
    let done = || async { rows(s, "SELECT status FROM jobs WHERE id = ?1", [id])[0][0] == "done" };
    assert!(wait_for(WAIT, done).await, "the sweep did not run");
}

/// Puts the rental's due time `minutes` in the past (started an hour before).
fn overdue_by(s: &TestServer, id: i64, minutes: i64) {
    let due = now_ts() - minutes * 60;
    sql(s, "UPDATE rentals SET started_at = ?2 - 3600, due_at = ?2 WHERE id = ?1", rusqlite::params![id, due]);
}

async fn count(s: &TestServer, token: &str, template: &str) -> usize {
    notifications(s, token, "?limit=100").await.iter().filter(|n| n["template"] == template).count()
}

#[tokio::test]
async fn a_bank_never_returned_is_declared_lost_once_and_reconciled_when_it_comes_back() {
    let gateways = Gateways::start().await;
    let s = server(&gateways).await;
    let _home = station(&s, SN, |_| {}).await;
    let away = station(&s, OTHER_SN, |_| {}).await;
    let user = customer(&s, "9841500001", 20_000).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    assert_eq!(balance(&s, &user).await, 15_000);

    // 90 minutes late: the reminder points 0 and 60 (pricing-standard's
    // defaults are 0, 60 and 720) have passed; one reminder goes out, once.
    overdue_by(&s, id, 90);
    run_sweep(&s).await;
    run_sweep(&s).await;
    assert_eq!(count(&s, &user.access, "rental_overdue").await, 1);
    assert_eq!(rental(&s, &user, id).await["status"], "active");

    // 24 h 30 min late, past `lost_after_hours` (24): declared lost. 25
    // started hours at NPR 5 is NPR 125 overdue, plus the NPR 5,000 penalty:
    // the wallet's NPR 150 is taken, NPR 4,975 is due.
    overdue_by(&s, id, 24 * 60 + 30);
    run_sweep(&s).await;
    let lost = rental(&s, &user, id).await;
    assert_eq!(lost["status"], "lost", "{lost}");
    assert_eq!(lost["overdue_paisa"], 12_500);
    assert_eq!(lost["lost_penalty_paisa"], 500_000);
    assert_eq!(lost["unpaid_due_paisa"], 512_500 - 15_000);
    assert!(lost["lost_at"].is_string());
    assert_eq!(balance(&s, &user).await, 0);
    assert_eq!(rows(&s, "SELECT status FROM power_banks WHERE serial_number = ?1", [&bank])[0][0], "lost");
    assert_eq!(count(&s, &user.access, "rental_lost").await, 1);
    assert!(s.get("/api/rentals/active", Some(&user.access)).await.body["rental"].is_null());
    // The due blocks the next rental.
    let blocked = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(blocked.status, StatusCode::PAYMENT_REQUIRED, "{}", blocked.body);
    assert_eq!(blocked.error_code(), "unpaid_dues");

    // The sweep again: nothing more is charged or recorded.
    run_sweep(&s).await;
    let again = rental(&s, &user, id).await;
    assert_eq!((again["unpaid_due_paisa"].as_i64(), again["status"].as_str()), (Some(497_500), Some("lost")));
    let overdue_charges = s.get("/api/transactions?kind=overdue", Some(&user.access)).await;
    assert_eq!(overdue_charges.body["results"].as_array().unwrap().len(), 1, "{}", overdue_charges.body);
    assert_eq!(count(&s, &user.access, "rental_lost").await, 1);

    // The bank turns up at another station: the penalty is replaced by the
    // overdue charge up to now (still 25 started hours, NPR 125). The NPR
    // 5,000 given back clears the NPR 4,975 due and NPR 25 goes to the
    // wallet: the user paid NPR 125 in all.
    let free = away.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    away.return_bank(free, &bank, 40).await.unwrap();
    assert!(
        wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "completed" }).await,
        "{}",
        rental(&s, &user, id).await
    );
    let found = rental(&s, &user, id).await;
    assert_eq!(found["overdue_paisa"], 12_500);
    assert_eq!(found["unpaid_due_paisa"], 0);
    assert_eq!(found["return_station_sn"], OTHER_SN);
    assert!(found["lost_at"].is_string(), "the loss stays on record");
    assert_eq!(balance(&s, &user).await, 2_500);
    assert_eq!(rows(&s, "SELECT status FROM power_banks WHERE serial_number = ?1", [&bank])[0][0], "in_slot");
    assert!(wait_for(WAIT, || async { count(&s, &user.access, "rental_found").await == 1 }).await);

    // The same return reported again changes nothing.
    away.publish_event(&station_codecs::native::StationEvent::Returned {
        slot: free,
        power_bank: bank.clone(),
        battery: Some(40),
    })
    .await
    .unwrap();
    run_sweep(&s).await;
    assert_eq!(balance(&s, &user).await, 2_500);
    assert_eq!(count(&s, &user.access, "rental_found").await, 1);
}
