//! Analytics for operators: the dashboard, series and station performance,
//! as JSON and CSV, read from rollups that triggers keep in the transaction
//! of each change and that always equal a recount.

use std::time::Duration;

use crate::support::renting::{OTHER_SN, SN, WAIT, customer, initiate, rental, rows, server, sql, station};
use powerbank_tests::{Reply, TestServer, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every rollup row that is not zero (a count taken back leaves a zero row).
fn rollups(conn: &rusqlite::Connection) -> Vec<(String, String, String, String, i64)> {
    let mut stmt = conn
        .prepare(
            "SELECT metric, grain, bucket, dim, value FROM analytics_rollups WHERE value <> 0
             ORDER BY metric, grain, bucket, dim",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn station_days(conn: &rusqlite::Connection) -> Vec<Vec<i64>> {
    let mut stmt = conn
        .prepare(
            "SELECT CAST(replace(day, '-', '') AS INTEGER), station_id, rentals, rentals_completed, rentals_failed,
                    rented_seconds, rental_charges, refunds
             FROM analytics_station_days
             WHERE rentals <> 0 OR rentals_completed <> 0 OR rentals_failed <> 0 OR rented_seconds <> 0
                OR rental_charges <> 0 OR refunds <> 0
             ORDER BY day, station_id",
        )
        .unwrap();
    stmt.query_map([], |r| (0..8).map(|i| r.get(i)).collect()).unwrap().map(Result::unwrap).collect()
}

async fn csv(s: &TestServer, path: &str, token: &str, accept: Option<&str>) -> (StatusCode, String, String) {
    let mut req = s.http.get(s.url(path)).bearer_auth(token);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let kind = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, kind, resp.text().await.unwrap())
}

fn totals(r: &Reply) -> Vec<i64> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["totals"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect()
}

#[tokio::test]
async fn rollups_equal_a_recount_after_a_mixed_workload_and_every_answer_comes_as_csv() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let _failing = station(&s, OTHER_SN, |c| c.eject_failure_rate = 1.0).await;
    let finance = s.operator("finance").await;
    let admin = s.operator("admin").await;
    let f = finance.access.as_str();

    // Asha rents from the wallet and returns late (an overdue charge).
    let asha = customer(&s, "9841700001", 20_000).await;
    let r = initiate(&s, &asha, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (asha_rental, bank) = (r.body["id"].as_i64().unwrap(), r.body["power_bank"].as_str().unwrap().to_string());
    sql(&s, "UPDATE rentals SET started_at = started_at - 7200, due_at = due_at - 5400 WHERE id = ?1", [asha_rental]);
    let free = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free, &bank, 70).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &asha, asha_rental).await["status"] == "completed" }).await);

    // Bikash's eject fails: charged, then given back.
    let bikash = customer(&s, "9841700002", 10_000).await;
    let r = initiate(&s, &bikash, OTHER_SN, "wallet", None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_GATEWAY, "eject_failed"), "{}", r.body);

    // Chandra tops up through Khalti, then rents paying Khalti (the payment
    // is linked to the rental after it was made).
    let chandra = customer(&s, "9841700003", 0).await;
    let c = chandra.access.as_str();
    let r = s.post("/api/wallet/topup-intent", Some(c), json!({"amount_paisa": 25_000, "gateway": "khalti"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (intent, pidx) =
        (r.body["id"].as_str().unwrap().to_string(), r.body["gateway_reference"].as_str().unwrap().to_string());
    gw.khalti.complete(&pidx);
    let r = s.post("/api/payment/verify-topup", Some(c), json!({"intent_id": intent, "pidx": pidx})).await;
    assert_eq!(r.body["outcome"], "credited", "{}", r.body);
    let r = initiate(&s, &chandra, SN, "khalti", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let (intent, pidx) = (
        r.body["intent"]["id"].as_str().unwrap().to_string(),
        r.body["intent"]["gateway_reference"].as_str().unwrap().to_string(),
    );
    gw.khalti.complete(&pidx);
    let r = s.post("/api/rentals/verify-payment", Some(c), json!({"intent_id": intent, "pidx": pidx})).await;
    assert_eq!(r.body["outcome"], "paid", "{}", r.body);
    let r = s.post("/api/rentals/start", Some(c), json!({"intent_id": intent})).await;
    assert!(r.status.is_success(), "{}", r.body);

    // An operator's points credit.
    let b = bikash.user["id"].as_i64().unwrap();
    let body = json!({"amount": 300, "reason": "sorry for the stuck slot", "idempotency_key": "analytics-points-1"});
    let r = s.post(&format!("/api/admin/users/{b}/points-adjustments"), Some(&admin.access), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // The rollups the triggers kept are the recount, row for row.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let (live, live_days) = (rollups(&conn), station_days(&conn));
    conn.execute_batch("BEGIN").unwrap();
    conn.execute_batch(powerbank::analytics::REBUILD_SQL).unwrap();
    let (recount, recount_days) = (rollups(&conn), station_days(&conn));
    conn.execute_batch("ROLLBACK").unwrap();
    assert!(live.iter().any(|r| r.0 == "refunds") && live.iter().any(|r| r.0 == "points_issued"), "{live:?}");
    assert_eq!(live, recount, "rollups kept by triggers differ from a recount");
    assert_eq!(live_days, recount_days, "station days kept by triggers differ from a recount");

    // Series over the last 30 days (the default range).
    let series = |q: &str| {
        let path = format!("/api/admin/analytics/series?{q}");
        let s = &s;
        async move { s.get(&path, Some(f)).await }
    };
    let r = series("metric=rentals").await;
    assert_eq!(r.body["columns"], json!(["started", "completed", "failed"]));
    assert_eq!(r.body["points"].as_array().unwrap().len(), 30);
    assert_eq!(totals(&r), [3, 1, 1]);
    assert_eq!(totals(&series(&format!("metric=rentals&station={SN}")).await), [2, 1, 0]);
    assert_eq!(totals(&series(&format!("metric=rentals&station={OTHER_SN}")).await), [1, 0, 1]);
    let khalti = totals(&series("metric=revenue&gateway=khalti").await);
    assert_eq!(khalti, [25_000, 5_000, 0, 5_000], "top-up, rental paid by Khalti");
    let all = totals(&series("metric=revenue").await);
    assert_eq!(all[0], 25_000);
    assert!(all[1] > 10_000 && all[2] >= 5_000 && all[3] == all[1] - all[2], "{all:?}");
    let users = totals(&series("metric=new_users").await);
    let registered = rows(&s, "SELECT COUNT(*) FROM users WHERE role = 'user'", []);
    assert_eq!(json!(users[0]), registered[0][0]);
    let points = totals(&series("metric=points").await);
    assert!(points[0] >= 300, "{points:?}");
    let today = series("metric=rentals&granularity=hour&from=2026-01-01&to=2026-01-07").await;
    assert_eq!(today.body["points"].as_array().unwrap().len(), 7 * 24);
    assert_eq!(today.body["points"][25]["bucket"], "2026-01-02 01");

    // Station performance, sorted.
    let r = s.get("/api/admin/analytics/stations?sort=rentals", Some(f)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = r.body["results"].as_array().unwrap();
    assert_eq!(list[0]["station_sn"], SN);
    assert_eq!((list[0]["rentals"].as_i64(), list[0]["rentals_completed"].as_i64()), (Some(2), Some(1)));
    assert!(list[0]["rented_hours"].as_f64().unwrap() >= 2.0, "{}", list[0]);
    assert!(list[0]["utilisation"].as_f64().unwrap() > 0.0, "{}", list[0]);
    assert!(list[0]["uptime"].as_f64().unwrap() > 0.0, "the link brought it online: {}", list[0]);
    let other = list.iter().find(|x| x["station_sn"] == OTHER_SN).unwrap();
    assert_eq!(other["eject_failure_rate"], 1.0);
    let r = s.get("/api/admin/analytics/stations?sort=station&order=asc", Some(f)).await;
    let sns: Vec<&str> =
        r.body["results"].as_array().unwrap().iter().map(|x| x["station_sn"].as_str().unwrap()).collect();
    assert!(sns.windows(2).all(|w| w[0] <= w[1]), "{sns:?}");

    // The dashboard.
    let d = s.get("/api/admin/dashboard", Some(f)).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(json!(d.body["users_total"].as_i64().unwrap()), registered[0][0]);
    assert_eq!(d.body["rentals_active"], 1, "Chandra's");
    assert!(d.body["stations_online"].as_i64().unwrap() >= 2, "{}", d.body);
    assert!(d.body["power_banks_by_status"].as_array().unwrap().iter().any(|x| x["status"] == "rented"));
    assert_eq!(d.body["open_station_issues"], 0);
    let month = &d.body["revenue_this_month"];
    assert!(month["channels"].as_array().unwrap().iter().any(|c| c["channel"] == "khalti"), "{month}");

    // CSV, by query or by Accept, streamed with a header line.
    let (status, kind, text) = csv(&s, "/api/admin/analytics/series?metric=rentals&format=csv", f, None).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "bucket,started,completed,failed");
    assert_eq!(lines.len(), 31);
    let (_, kind, text) = csv(&s, "/api/admin/analytics/stations", f, Some("text/csv")).await;
    assert!(kind.starts_with("text/csv"));
    assert!(text.starts_with("station_sn,name,city,status,rentals,"), "{text}");
    assert!(text.lines().any(|l| l.starts_with(&format!("{SN},"))), "{text}");
    let (_, _, text) = csv(&s, "/api/admin/dashboard", f, Some("text/csv")).await;
    assert!(text.lines().any(|l| l == "rentals_active,1"), "{text}");
    let (_, kind, _) = csv(&s, "/api/admin/dashboard?format=json", f, Some("text/csv")).await;
    assert!(kind.starts_with("application/json"), "format wins over Accept");
}

#[tokio::test]
async fn bad_ranges_and_filters_are_refused_and_roles_are_enforced() {
    let s = TestServer::start().await;
    let finance = s.operator("finance").await;
    let f = finance.access.as_str();
    for bad in [
        "metric=visits",
        "metric=rentals&granularity=week",
        "metric=rentals&from=2026-01-01&to=2026-03-01&granularity=hour",
        "metric=rentals&from=2024-01-01&to=2026-01-01",
        "metric=rentals&from=2026-02-01&to=2026-01-01",
        "metric=rentals&from=1.1.2026",
        "metric=new_users&station=KTM-THAMEL-01",
        "metric=rentals&gateway=khalti",
        "metric=rentals&format=xml",
    ] {
        let r = s.get(&format!("/api/admin/analytics/series?{bad}"), Some(f)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        r.error_code();
    }
    let r = s.get("/api/admin/analytics/series?metric=rentals&station=NOPE-1", Some(f)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let ok = s
        .get("/api/admin/analytics/series?metric=revenue&from=2026-01-01&to=2026-01-07&granularity=hour", Some(f))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["totals"], json!([0, 0, 0, 0]));
    for bad in ["sort=popularity", "order=up", "from=2020-01-01&to=2026-01-01"] {
        let r = s.get(&format!("/api/admin/analytics/stations?{bad}"), Some(f)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }

    // Support reads the dashboard only; field technicians none of it.
    let support = s.operator("support").await;
    let tech = s.operator("field_tech").await;
    let status = |path: &'static str, token: String| {
        let s = &s;
        async move { s.get(path, Some(&token)).await.status }
    };
    assert_eq!(status("/api/admin/dashboard", support.access.clone()).await, StatusCode::OK);
    assert_eq!(
        status("/api/admin/analytics/series?metric=rentals", support.access.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status("/api/admin/analytics/stations", support.access.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(status("/api/admin/dashboard", tech.access.clone()).await, StatusCode::FORBIDDEN);
    let user = s.register("9841700009").await;
    assert_eq!(status("/api/admin/dashboard", user.access.clone()).await, StatusCode::FORBIDDEN);
    let _: Value = s.get("/api/admin/dashboard", Some(f)).await.body;
}
