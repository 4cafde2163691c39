//! Points for the events of contract 0.3, through HTTP (and MQTT for the
//! rentals): a completed profile, an approved KYC, an on-time return and a
//! referee's first completed rental (points-standard with `referral_payout =
//! "first_rental"`), each awarded once however often it happens or its job
//! runs.

use std::time::Duration;

use crate::support::{
    renting::{EJECT_TIMEOUT, SN, WAIT, initiate, rental, rows, sql, wallet_add},
    submit_and_approve,
};
use powerbank::core::{Db, now_ts};
use powerbank_tests::{
    Session, TestServer,
    fake_gateways::Gateways,
    mqtt::{Broker, link_config, sim_config, start_sim, wait_for},
};
use reqwest::{Method, StatusCode};
use serde_json::json;
use station_sim::SimStation;

const POINTS_CONFIG: &str = "config = { profile_completed_points = 20, kyc_approved_points = 30, \
                             on_time_return_points = 7, referral_payout = \"first_rental\" }\n";

/// A server with the station link and points-standard configured for the new events.
async fn server(gateways: &Gateways) -> TestServer {
    let link = link_config(Broker::Embedded, 60);
    let toml = gateways.plugins_toml("");
    let (head, tail) = toml.split_once("kind = \"points-rules\"\n").expect("points entry");
    let toml = format!("{head}kind = \"points-rules\"\n{POINTS_CONFIG}{tail}");
    let s = TestServer::start_with(move |c| {
        c.link = link;
        c.rentals.eject_timeout = EJECT_TIMEOUT;
        c.plugins_path = c.data_dir.join("plugins.toml");
        std::fs::write(&c.plugins_path, toml).unwrap();
    })
    .await;
    powerbank::demo::seed_if_empty(&Db::open(&s.db_path(), 1).unwrap()).unwrap();
    let admin = s.admin().await;
    assert!(
        wait_for(WAIT, || async {
            s.get("/api/admin/station-link", Some(&admin.access)).await.body["state"] == "connected"
        })
        .await
    );
    s
}

async fn points(s: &TestServer, user: &Session) -> i64 {
    s.get("/api/wallet/balance", Some(&user.access)).await.body["points"].as_i64().unwrap()
}

/// Waits until no points award is waiting or running.
async fn awards_settled(s: &TestServer) {
    let busy = || {
        rows(
            s,
            "SELECT COUNT(*) FROM jobs WHERE kind IN ('points.award_event', 'kyc.approved')
             AND status IN ('pending', 'running')",
            [],
        )[0][0]
            .as_i64()
            .unwrap()
    };
    assert!(wait_for(WAIT, || async { busy() == 0 }).await, "points awards did not run");
}

async fn complete_profile(s: &TestServer, user: &Session) {
    let r = s
        .call(
            Method::PUT,
            "/api/profile",
            Some(&user.access),
            Some(json!({"full_name": "Sita Rai", "date_of_birth": "1996-05-02", "address": "Baneshwor, Kathmandu"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["is_complete"], true);
}

/// Rents at `SN` and returns the bank on time, after the free window.
async fn rent_and_return_on_time(s: &TestServer, user: &Session, home: &SimStation) -> i64 {
    let r = initiate(s, user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    // Started 20 minutes ago (past the 5-minute free window), due in 40.
    sql(
        s,
        "UPDATE rentals SET started_at = ?2, due_at = ?2 + 3600 WHERE id = ?1",
        rusqlite::params![id, now_ts() - 1200],
    );
    let free = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free, &bank, 80).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(s, user, id).await["status"] == "completed" }).await);
    id
}

#[tokio::test]
async fn profile_kyc_on_time_returns_and_a_referees_first_rental_earn_once() {
    let gateways = Gateways::start().await;
    let s = server(&gateways).await;
    let admin = s.admin().await;
    let home = start_sim(&s, &admin, SN, sim_config(&s)).await;

    let referrer = s.register("9841700001").await;
    let code = s.get("/api/referral/my-code", Some(&referrer.access)).await.body["code"].as_str().unwrap().to_string();
    let referee = s.register("9841700002").await;
    let signup = points(&s, &referee).await;
    let referrer_start = points(&s, &referrer).await;
    // Referrals pay at the first rental: nothing at the claim.
    let claim = s.post("/api/referral/claim", Some(&referee.access), json!({"code": code})).await;
    assert_eq!(claim.status, StatusCode::CREATED, "{}", claim.body);
    assert_eq!(claim.body["points_awarded"], 0);
    assert_eq!(points(&s, &referrer).await, referrer_start);

    // A complete profile earns 20, once: editing it again earns nothing.
    complete_profile(&s, &referee).await;
    assert!(wait_for(WAIT, || async { points(&s, &referee).await == signup + 20 }).await);
    complete_profile(&s, &referee).await;
    awards_settled(&s).await;
    assert_eq!(points(&s, &referee).await, signup + 20);

    // An approved KYC earns 30; the approval's job run again earns nothing.
    submit_and_approve(&s, &referee.access, &admin.access).await;
    assert!(wait_for(WAIT, || async { points(&s, &referee).await == signup + 50 }).await);
    let user_id = referee.user["id"].as_i64().unwrap();
    sql(
        &s,
        "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_at, created_at, updated_at)
         VALUES ('kyc.approved', ?1, 'pending', 0, 5, 0, 0, 0)",
        [json!({"user_id": user_id}).to_string()],
    );
    awards_settled(&s).await;
    assert_eq!(points(&s, &referee).await, signup + 50);

    // The first rental, returned on time: 5 for the rental, 7 for being on
    // time, and the referral pays both sides (referee 50, referrer 100).
    wallet_add(&s, &referee, 20_000).await;
    rent_and_return_on_time(&s, &referee, &home).await;
    let after_first = signup + 50 + 5 + 7 + 50;
    assert!(
        wait_for(WAIT, || async { points(&s, &referee).await == after_first }).await,
        "{} points",
        points(&s, &referee).await
    );
    assert!(wait_for(WAIT, || async { points(&s, &referrer).await == referrer_start + 100 }).await);

    // The second on-time rental: 5 and 7 again, no second referral payout.
    rent_and_return_on_time(&s, &referee, &home).await;
    assert!(wait_for(WAIT, || async { points(&s, &referee).await == after_first + 12 }).await);
    awards_settled(&s).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(points(&s, &referrer).await, referrer_start + 100);
    assert_eq!(points(&s, &referee).await, after_first + 12);
    let history = s.get("/api/points/history?limit=100", Some(&referee.access)).await;
    let reasons: Vec<&str> =
        history.body["results"].as_array().unwrap().iter().filter_map(|h| h["reason"].as_str()).collect();
    assert_eq!(reasons.iter().filter(|r| **r == "on-time return").count(), 2, "{}", history.body);
    assert_eq!(reasons.iter().filter(|r| **r == "KYC approved").count(), 1, "{}", history.body);
}
