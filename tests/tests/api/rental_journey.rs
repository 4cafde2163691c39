//! The whole customer journey over real HTTP, a real MQTT broker and a fake
//! Khalti: register → KYC approved by an admin → top up → rent → ejected →
//! returned late at another station → overdue charged → points awarded →
//! history and transactions show it all.

use std::time::Duration;

use powerbank::core::{Db, now_ts};
use powerbank_tests::{
    TestServer,
    fake_gateways::Gateways,
    mqtt::{Broker, link_config, sim_config, start_sim, wait_for},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn register_kyc_topup_rent_return_late_elsewhere() {
    let gateways = Gateways::start().await;
    let link = link_config(Broker::Embedded, 60);
    let gw = gateways.clone();
    let s = TestServer::start_with(move |c| {
        c.plugins_path = gw.write_plugins_toml(&c.data_dir, "");
        c.link = link;
        c.rentals.eject_timeout = Duration::from_secs(3);
    })
    .await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let admin = s.admin().await;
    assert!(
        wait_for(Duration::from_secs(10), || async {
            s.get("/api/admin/station-link", Some(&admin.access)).await.body["state"] == "connected"
        })
        .await
    );
    let thamel = start_sim(&s, &admin, "KTM-THAMEL-01", sim_config(&s)).await;
    let durbar = start_sim(&s, &admin, "KTM-DURBAR-01", sim_config(&s)).await;

    // Register, KYC, profile.
    let user = s.register("9841500001").await;
    let t = user.access.as_str();
    crate::support::submit_and_approve(&s, t, &admin.access).await;
    let r = s
        .call(
            Method::PUT,
            "/api/profile",
            Some(t),
            Some(
                json!({"full_name": "Bikash Tamang", "date_of_birth": "1992-09-01", "address": "Baneshwor, Kathmandu"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Top up NPR 200 through Khalti.
    let r = s.post("/api/wallet/topup-intent", Some(t), json!({"amount_paisa": 20_000, "gateway": "khalti"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let intent_id = r.body["id"].as_str().unwrap().to_string();
    let pidx = r.body["gateway_reference"].as_str().unwrap().to_string();
    gateways.khalti.complete(&pidx);
    let r = s.post("/api/payment/verify-topup", Some(t), json!({"intent_id": intent_id, "pidx": pidx})).await;
    assert_eq!(r.body["outcome"], "credited", "{}", r.body);
    let balance = |body: &Value| (body["balance_paisa"].as_i64().unwrap(), body["points"].as_i64().unwrap());
    let (wallet, points) = balance(&s.get("/api/wallet/balance", Some(t)).await.body);
    assert_eq!(wallet, 20_000);
    assert_eq!(points, 50 + 20, "signup + top-up points");

    // Rent at Thamel: the station ejects a bank.
    let r = s
        .post(
            "/api/rentals/initiate",
            Some(t),
            json!({"station_sn": "KTM-THAMEL-01", "package_id": 1, "payment_method": "wallet"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rental_id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    assert!(thamel.slots().iter().all(|slot| slot.bank.as_ref().map(|b| b.0.as_str()) != Some(bank.as_str())));

    // Kept 1 h 30 min past the one-hour package, returned at Durbar Square.
    let started = now_ts() - (2 * 3600 + 1800);
    db.write(move |tx| {
        Ok(tx.execute(
            "UPDATE rentals SET started_at = ?2, due_at = ?2 + 3600 WHERE id = ?1",
            rusqlite::params![rental_id, started],
        )?)
    })
    .await
    .unwrap();
    durbar.return_bank(8, &bank, 61).await.unwrap();
    let history = || async { s.get("/api/rentals/history", Some(t)).await.body };
    assert!(
        wait_for(Duration::from_secs(10), || async { history().await["results"][0]["status"] == "completed" }).await
    );
    let done = history().await["results"][0].clone();
    assert_eq!(done["id"], rental_id);
    assert_eq!(done["return_station_sn"], "KTM-DURBAR-01");
    assert_eq!(done["overdue_paisa"], 1_000, "two started hours late at NPR 5");

    let (wallet, points) = balance(&s.get("/api/wallet/balance", Some(t)).await.body);
    assert_eq!(wallet, 20_000 - 5_000 - 1_000);
    assert_eq!(points, 50 + 20 + 5, "rental points on top");
    let txs = s.get("/api/transactions", Some(t)).await.body;
    let kinds: Vec<&str> = txs["results"].as_array().unwrap().iter().filter_map(|x| x["kind"].as_str()).collect();
    assert_eq!(kinds, ["overdue", "rental", "topup"], "newest first");
    let inbox = s.get("/api/user/notifications", Some(t)).await.body;
    let titles = inbox.to_string();
    assert!(titles.contains(&bank), "rental notifications name the bank: {titles}");
}
