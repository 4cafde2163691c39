//! Steps shared by the gateway-rental and coupon tests: a server with the
//! station link, the demo stations and the gateway plugins pointed at local
//! fakes; customers who may rent; simulated stations.
#![allow(dead_code)]

use std::time::Duration;

use powerbank::{
    core::Db,
    ledger::{WalletKind, wallet_change},
};
use powerbank_tests::{
    Reply, Session, TestServer,
    fake_gateways::Gateways,
    mqtt::{Broker, link_config, sim_config, start_sim, wait_for},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_sim::{SimConfig, SimStation};

pub const SN: &str = "KTM-THAMEL-01";
pub const OTHER_SN: &str = "KTM-DURBAR-01";
pub const WAIT: Duration = Duration::from_secs(10);
/// How long initiate and start wait for a station's answer in these tests.
pub const EJECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A server whose gateway plugins talk to `gateways`, with the station link
/// connected and the demo data loaded.
pub async fn server(gateways: &Gateways) -> TestServer {
    let link = link_config(Broker::Embedded, 60);
    let gateways = gateways.clone();
    let s = TestServer::start_with(move |c| {
        c.link = link;
        c.rentals.eject_timeout = EJECT_TIMEOUT;
        c.plugins_path = c.data_dir.join("plugins.toml");
        std::fs::write(&c.plugins_path, gateways.plugins_toml("")).unwrap();
    })
    .await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let admin = s.admin().await;
    assert!(
        wait_for(WAIT, || async {
            s.get("/api/admin/station-link", Some(&admin.access)).await.body["state"] == "connected"
        })
        .await,
        "station link did not connect"
    );
    s
}

/// A simulated station answering commands as `adjust` says.
pub async fn station(s: &TestServer, sn: &str, adjust: impl FnOnce(&mut SimConfig)) -> SimStation {
    let admin = s.admin().await;
    let mut config = sim_config(s);
    adjust(&mut config);
    start_sim(s, &admin, sn, config).await
}

/// A customer who may rent: KYC approved, profile complete, `paisa` in the wallet.
pub async fn customer(s: &TestServer, phone: &str, paisa: i64) -> Session {
    let user = s.register(phone).await;
    let admin = s.admin().await;
    crate::support::submit_and_approve(s, &user.access, &admin.access).await;
    let r = s
        .call(
            Method::PUT,
            "/api/profile",
            Some(&user.access),
            Some(json!({"full_name": "Asha Gurung", "date_of_birth": "1994-02-11", "address": "Jhamsikhel, Lalitpur"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    if paisa != 0 {
        wallet_add(s, &user, paisa).await;
    }
    user
}

/// Moves the wallet directly through the ledger (top-ups have their own tests).
pub async fn wallet_add(s: &TestServer, user: &Session, paisa: i64) {
    let id = user.user["id"].as_i64().unwrap();
    let db = Db::open(&s.db_path(), 1).unwrap();
    db.write(move |tx| wallet_change(tx, id, paisa, WalletKind::Adjustment, None, "test adjustment")).await.unwrap();
}

pub async fn balance(s: &TestServer, user: &Session) -> i64 {
    s.get("/api/wallet/balance", Some(&user.access)).await.body["balance_paisa"].as_i64().unwrap()
}

pub async fn initiate(s: &TestServer, user: &Session, sn: &str, method: &str, coupon: Option<&str>) -> Reply {
    let mut body = json!({"station_sn": sn, "package_id": 1, "payment_method": method});
    if let Some(c) = coupon {
        body["coupon_code"] = json!(c);
    }
    s.post("/api/rentals/initiate", Some(&user.access), body).await
}

/// The caller's rental by id, from the history.
pub async fn rental(s: &TestServer, user: &Session, id: i64) -> Value {
    let h = s.get("/api/rentals/history?limit=100", Some(&user.access)).await;
    h.body["results"].as_array().unwrap().iter().find(|r| r["id"] == id).cloned().unwrap_or(Value::Null)
}

/// Rows of one SQL query, as JSON arrays, straight from the database file.
pub fn rows(s: &TestServer, sql: &str, params: impl rusqlite::Params) -> Vec<Vec<Value>> {
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map(params, |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(v) => json!(v),
                    rusqlite::types::ValueRef::Real(v) => json!(v),
                    rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    rusqlite::types::ValueRef::Blob(_) => Value::Null,
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

pub fn sql(s: &TestServer, statement: &str, params: impl rusqlite::Params) {
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(statement, params).unwrap();
}

/// Creates a coupon as the admin; returns its JSON.
pub async fn coupon(s: &TestServer, fields: Value) -> Value {
    let admin = s.admin().await;
    let r = s.post("/api/admin/coupons", Some(&admin.access), fields).await;
    assert_eq!(r.status, StatusCode::CREATED, "create coupon: {}", r.body);
    r.body
}

/// An RFC 3339 time `secs` from now.
pub fn at(secs: i64) -> String {
    chrono::DateTime::from_timestamp(powerbank::core::now_ts() + secs, 0).unwrap().to_rfc3339()
}
