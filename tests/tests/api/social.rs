//! Social through HTTP: leaderboards ranked from real rentals (MQTT),
//! referrals and points, masked and hideable; rollups equal to a recount
//! after a mixed workload across Kathmandu week and month boundaries;
//! achievements defined by operators, unlocked by events, claimed once.

use std::time::Duration;

use powerbank::core::{Db, now_ts};
use powerbank_tests::{
    Session, TestServer,
    fake_gateways::Gateways,
    mqtt::{Broker, link_config, sim_config, start_sim, wait_for},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{JOB_TIMEOUT, notifications, upload_png};

/// Registers a rider with a name, optionally referred by `referral_code`.
async fn rider(s: &TestServer, phone: &str, name: Option<&str>, referral_code: Option<&str>) -> Session {
    let token = s.verification_token(phone, "register").await;
    let mut body = json!({"verification_token": token});
    if let Some(n) = name {
        body["full_name"] = json!(n);
    }
    if let Some(c) = referral_code {
        body["referral_code"] = json!(c);
    }
    let r = s.post("/api/auth/register", None, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "register: {}", r.body);
    Session::from_body(&r.body)
}

fn code_of(session: &Session) -> String {
    session.user["referral_code"].as_str().unwrap().to_string()
}

fn id_of(session: &Session) -> i64 {
    session.user["id"].as_i64().unwrap()
}

async fn board(s: &TestServer, token: &str, query: &str) -> Value {
    let r = s.get(&format!("/api/social/leaderboard?{query}"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
    r.body
}

fn names_and_values(board: &Value) -> Vec<(String, i64, i64)> {
    board["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_i64().unwrap(), e["rank"].as_i64().unwrap()))
        .collect()
}

/// A completed rental written the way the rental lifecycle closes one (an
/// active row set to completed), at `returned_at`, due at `due_at`.
fn completed_rental(db_path: &std::path::Path, user: i64, station: i64, returned_at: i64, due_at: i64, status: &str) {
    let conn = rusqlite::Connection::open(db_path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let code = format!("T{user}-{returned_at}-{station}-{status}");
    conn.execute(
        "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index, amount_paisa,
                              due_minutes, started_at, due_at, created_at, updated_at)
         VALUES (?1, ?2, 1, 'active', 'wallet', ?3, 1, 5000, 60, ?4, ?5, ?4, ?4)",
        rusqlite::params![code, user, station, returned_at - 1800, due_at],
    )
    .unwrap();
    conn.execute(
        "UPDATE rentals SET status = ?2, returned_at = ?3, return_station_id = station_id, updated_at = ?3 WHERE code = ?1",
        rusqlite::params![code, status, returned_at],
    )
    .unwrap();
}

#[tokio::test]
async fn leaderboards_rank_real_rentals_referrals_and_points_with_masked_names_and_hiding() {
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

    let sita = rider(&s, "9841600001", Some("Sita Sharma"), None).await;
    let ram = rider(&s, "9841600002", Some("Ram Bahadur Thapa"), None).await;
    // Referrals through registration: Sita brings two riders, Ram one.
    rider(&s, "9841600003", None, Some(&code_of(&sita))).await;
    rider(&s, "9841600004", Some("Gita"), Some(&code_of(&sita))).await;
    rider(&s, "9841600005", None, Some(&code_of(&ram))).await;

    let referrals = board(&s, &ram.access, "category=referrals&period=week").await;
    assert_eq!(names_and_values(&referrals), [("Sita S.".into(), 2, 1), ("Ram T.".into(), 1, 2)]);
    assert_eq!(referrals["entries"][1]["is_you"], true);
    assert_eq!(referrals["you"], json!({"rank": 2, "value": 1, "hidden": false}));
    assert!(referrals["period_start"].as_str().unwrap().ends_with("T18:15:00Z"), "Kathmandu midnight: {referrals}");
    for period in ["month", "all_time"] {
        let b = board(&s, &ram.access, &format!("category=referrals&period={period}")).await;
        assert_eq!(names_and_values(&b)[0], ("Sita S.".into(), 2, 1), "{period}");
    }

    // A real rental: Sita rents at Thamel over MQTT and returns the bank in time.
    crate::support::submit_and_approve(&s, &sita.access, &admin.access).await;
    let r = s
        .call(
            Method::PUT,
            "/api/profile",
            Some(&sita.access),
            Some(json!({"full_name": "Sita Sharma", "date_of_birth": "1995-04-02", "address": "Thamel, Kathmandu"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    crate::support::renting::wallet_add(&s, &sita, 10_000).await;
    let r = s
        .post(
            "/api/rentals/initiate",
            Some(&sita.access),
            json!({"station_sn": "KTM-THAMEL-01", "package_id": 1, "payment_method": "wallet"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    // Past the free-return window, well before the due time.
    let started = now_ts() - 20 * 60;
    let rental_id = r.body["id"].as_i64().unwrap();
    db.write(move |tx| {
        Ok(tx.execute("UPDATE rentals SET started_at = ?2 WHERE id = ?1", rusqlite::params![rental_id, started])?)
    })
    .await
    .unwrap();
    let free_slot = thamel.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    thamel.return_bank(free_slot, &bank, 80).await.unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || async {
            board(&s, &sita.access, "category=rentals_completed").await["you"]["value"] == 1
        })
        .await,
        "the return reaches the leaderboard"
    );
    for category in ["rentals_completed", "on_time_returns", "distinct_stations"] {
        let b = board(&s, &sita.access, &format!("category={category}&period=week")).await;
        assert_eq!(names_and_values(&b), [("Sita S.".into(), 1, 1)], "{category}");
        assert_eq!(b["you"]["rank"], 1);
    }
    // Points earned: signup (50) for everyone, referrals (100 each) and the rental's.
    let points = board(&s, &sita.access, "category=points_earned&period=all_time&limit=3").await;
    let top = names_and_values(&points);
    assert_eq!(top.len(), 3);
    assert_eq!(top[0].0, "Sita S.");
    assert!(top[0].1 > 250, "{points}");
    assert_eq!(top[1], ("Ram T.".into(), 150, 2));

    // Hiding: off every board at once; the rider still sees their own value.
    let r = s
        .call(Method::PUT, "/api/social/profile", Some(&sita.access), Some(json!({"hide_from_leaderboard": true})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.get("/api/social/profile", Some(&sita.access)).await.body["hide_from_leaderboard"], true);
    let referrals = board(&s, &ram.access, "category=referrals&period=week").await;
    assert_eq!(names_and_values(&referrals), [("Ram T.".into(), 1, 1)]);
    assert_eq!(referrals["you"]["rank"], 1);
    let mine = board(&s, &sita.access, "category=referrals&period=week").await;
    assert_eq!(mine["you"], json!({"rank": null, "value": 2, "hidden": true}));
    s.call(Method::PUT, "/api/social/profile", Some(&sita.access), Some(json!({"hide_from_leaderboard": false}))).await;
    assert_eq!(board(&s, &ram.access, "category=referrals").await["you"]["rank"], 2);

    // Bad input: 400 with a code, never a 500; signed-in only.
    for bad in ["category=fastest", "period=year", "limit=0", "limit=101", "limit=x"] {
        let r = s.get(&format!("/api/social/leaderboard?{bad}"), Some(&ram.access)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    assert_eq!(s.get("/api/social/leaderboard", None).await.status, StatusCode::UNAUTHORIZED);
}

type Rollup = (String, String, i64, i64);

fn rollups(conn: &rusqlite::Connection) -> Vec<Rollup> {
    let mut stmt = conn
        .prepare("SELECT category, period, user_id, value FROM leaderboard_rollups WHERE value <> 0 ORDER BY 1, 2, 3")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test]
async fn rollups_equal_a_recount_after_a_mixed_workload_across_kathmandu_boundaries() {
    let s = TestServer::start().await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let a = rider(&s, "9841610001", Some("Asha Gurung"), None).await;
    let b = rider(&s, "9841610002", Some("Bikash Rai"), Some(&code_of(&a))).await;
    let c = rider(&s, "9841610003", None, Some(&code_of(&a))).await;
    rider(&s, "9841610004", None, Some(&code_of(&b))).await;
    let (ua, ub, uc) = (id_of(&a), id_of(&b), id_of(&c));

    // Monday 2026-06-01 00:00 in Kathmandu is Sunday 18:15 UTC; the 1st of June too.
    let monday = 1_780_251_300;
    let path = s.db_path();
    // Asha: the last second of May's last week, the first second of June's first week,
    // the same station twice in one week, a late return, and a cancelled rental.
    completed_rental(&path, ua, 1, monday - 1, monday + 3600, "completed");
    completed_rental(&path, ua, 1, monday, monday + 3600, "completed");
    completed_rental(&path, ua, 2, monday + 86_400, monday + 3600, "completed");
    completed_rental(&path, ua, 3, monday + 2 * 86_400, monday + 3600, "cancelled");
    // Bikash: three weeks in a row, then a gap.
    for week in [0, 1, 2, 4] {
        completed_rental(
            &path,
            ub,
            4,
            monday + week * 7 * 86_400 + 100,
            monday + week * 7 * 86_400 + 5000,
            "completed",
        );
    }
    // Chandra: a rental a year earlier.
    completed_rental(&path, uc, 1, monday - 365 * 86_400, monday, "completed");

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let live = rollups(&conn);
    let value = |category: &str, period: &str, user: i64| {
        live.iter().find(|r| r.0 == category && r.1 == period && r.2 == user).map_or(0, |r| r.3)
    };
    assert_eq!(value("rentals_completed", "all", ua), 3, "the cancelled one does not count");
    assert_eq!(value("rentals_completed", "w2026-05-25", ua), 1, "Sunday 23:59:59 belongs to the old week");
    assert_eq!(value("rentals_completed", "w2026-06-01", ua), 2);
    assert_eq!(value("rentals_completed", "m2026-05", ua), 1);
    assert_eq!(value("rentals_completed", "m2026-06", ua), 2);
    assert_eq!(value("on_time_returns", "all", ua), 2, "returned after its due time");
    assert_eq!(value("distinct_stations", "w2026-06-01", ua), 2);
    assert_eq!(value("distinct_stations", "all", ua), 2);
    assert_eq!(value("distinct_stations", "w2026-05-25", ua), 1);
    assert_eq!(value("referrals", "all", ua), 2);
    assert_eq!(value("referrals", "all", ub), 1);
    assert_eq!(value("rentals_completed", "all", uc), 1);
    let streak: i64 =
        conn.query_row("SELECT current FROM social_streaks WHERE user_id = ?1", [ub], |r| r.get(0)).unwrap();
    assert_eq!(streak, 1, "the gap broke the three-week run");

    // The recount from rentals, points and referrals, in a transaction rolled back.
    conn.execute_batch("BEGIN").unwrap();
    conn.execute_batch(powerbank::social::REBUILD_SQL).unwrap();
    let recount = rollups(&conn);
    conn.execute_batch("ROLLBACK").unwrap();
    assert!(!recount.is_empty());
    assert_eq!(live, recount, "rollups kept by triggers differ from a recount");
}

async fn achievement(s: &TestServer, admin: &str, body: Value) -> Value {
    let r = s.post("/api/admin/social/achievements", Some(admin), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

fn find<'a>(list: &'a Value, code: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|a| a["code"] == code).unwrap_or_else(|| panic!("no {code}: {list}"))
}

#[tokio::test]
async fn achievements_progress_with_events_unlock_notify_and_pay_out_once() {
    let s = TestServer::start().await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let admin = s.admin().await;
    let asha = rider(&s, "9841620001", Some("Asha Gurung"), None).await;
    let icon = upload_png(&s, &admin.access).await;

    // An operator defines them; bad definitions change nothing.
    let texts = json!([{"lang": "en", "name": "Connector", "description": "Bring two friends"},
                       {"lang": "ne", "name": "जोडक", "description": "दुई साथी ल्याउनुहोस्"}]);
    let created = achievement(
        &s,
        &admin.access,
        json!({"code": "connector", "counter": "referrals", "threshold": 2, "reward_points": 40, "icon_upload_id": icon, "texts": texts}),
    )
    .await;
    assert!(created["icon_url"].as_str().unwrap().starts_with("http"), "{created}");
    for (bad, status, code) in [
        (
            json!({"code": "x1", "counter": "referrals", "threshold": 1, "reward_points": 1, "texts": texts,
                "starts_at": "2026-06-02T00:00:00Z", "ends_at": "2026-06-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_window",
        ),
        (
            json!({"code": "connector", "counter": "referrals", "threshold": 1, "reward_points": 1, "texts": texts}),
            StatusCode::CONFLICT,
            "code_taken",
        ),
        (
            json!({"code": "x2", "counter": "referrals", "threshold": 0, "reward_points": 1, "texts": texts}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"code": "x3", "counter": "fastest", "threshold": 1, "reward_points": 1, "texts": texts}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"code": "x4", "counter": "referrals", "threshold": 1, "reward_points": 1,
                "texts": [{"lang": "ne", "name": "n", "description": ""}]}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
    ] {
        let r = s.post("/api/admin/social/achievements", Some(&admin.access), bad.clone()).await;
        assert_eq!(r.status, status, "{bad}: {}", r.body);
        assert_eq!(r.error_code(), code);
    }
    assert_eq!(
        s.post("/api/admin/social/achievements", Some(&asha.access), json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.get("/api/admin/social/achievements", Some(&admin.access)).await.body.as_array().unwrap().len(), 1);

    // A future window: nothing done now counts towards it.
    achievement(
        &s,
        &admin.access,
        json!({"code": "next-month", "counter": "referrals", "threshold": 1, "reward_points": 5,
               "starts_at": "2099-01-01T00:00:00Z", "texts": [{"lang": "en", "name": "Later", "description": ""}]}),
    )
    .await;

    let mine = |token: String, lang: &'static str| {
        let s = &s;
        async move { s.get(&format!("/api/social/achievements?lang={lang}"), Some(&token)).await.body }
    };
    let list = mine(asha.access.clone(), "ne").await;
    let connector = find(&list, "connector");
    assert_eq!((connector["progress"].clone(), connector["threshold"].clone()), (json!(0), json!(2)));
    assert_eq!(connector["name"], "जोडक");
    assert_eq!(connector["claimable"], false);

    // Progress moves with the events, in their transaction.
    rider(&s, "9841620002", None, Some(&code_of(&asha))).await;
    assert_eq!(find(&mine(asha.access.clone(), "en").await, "connector")["progress"], 1);
    let r = s.post("/api/social/achievements/connector/claim", Some(&asha.access), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "not_unlocked");
    rider(&s, "9841620003", None, Some(&code_of(&asha))).await;
    let list = mine(asha.access.clone(), "en").await;
    let connector = find(&list, "connector");
    assert_eq!(connector["progress"], 2);
    assert!(connector["unlocked_at"].is_string(), "{connector}");
    assert_eq!(connector["claimable"], true);
    assert_eq!(find(&list, "next-month")["progress"], 0, "outside its window");

    // The unlock is told to the rider (a durable job).
    let told = wait_for(JOB_TIMEOUT, || async {
        notifications(&s, &asha.access, "").await.iter().any(|n| n["template"] == "achievement_unlocked")
    })
    .await;
    assert!(told, "no unlock notification");

    // Ten claims at once: one credit.
    let before = s.get("/api/points/summary", Some(&asha.access)).await.body;
    let claims = (0..10).map(|_| {
        let (s, token) = (&s, asha.access.clone());
        async move { s.post("/api/social/achievements/connector/claim", Some(&token), json!({})).await }
    });
    let replies = futures::future::join_all(claims).await;
    let ok: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::OK).collect();
    assert_eq!(ok.len(), 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(ok[0].body["points_credited"], 40);
    assert!(replies.iter().filter(|r| r.status != StatusCode::OK).all(|r| r.error_code() == "already_claimed"));
    let after = s.get("/api/points/summary", Some(&asha.access)).await.body;
    assert_eq!(after["balance"].as_i64().unwrap(), before["balance"].as_i64().unwrap() + 40, "{before} → {after}");
    let list = mine(asha.access.clone(), "en").await;
    assert_eq!(find(&list, "connector")["claimable"], false);
    assert!(find(&list, "connector")["claimed_at"].is_string());
    assert_eq!(
        s.post("/api/social/achievements/nope/claim", Some(&asha.access), json!({})).await.status,
        StatusCode::NOT_FOUND
    );

    // Defined later without a start: what riders already did counts.
    let late = achievement(
        &s,
        &admin.access,
        json!({"code": "two-friends-again", "counter": "referrals", "threshold": 2, "reward_points": 0,
               "texts": [{"lang": "en", "name": "Again", "description": ""}]}),
    )
    .await;
    assert_eq!(late["unlocked_count"], 1, "{late}");
    let admin_list = s.get("/api/admin/social/achievements", Some(&admin.access)).await.body;
    assert_eq!(find(&admin_list, "connector")["claimed_count"], 1);
}
