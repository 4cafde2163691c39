//! Coupons end to end: operators manage them, the app lists and previews
//! them, and rentals redeem them through the promotions plugin, over HTTP
//! with simulated stations on a real MQTT broker.

use crate::support::renting::{SN, WAIT, at, balance, coupon, customer, initiate, rental, rows, server, sql, station};
use powerbank_tests::{TestServer, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Redemptions that count, as the admin API reports them.
async fn times_used(s: &TestServer, code: &str) -> i64 {
    let admin = s.admin().await;
    let r = s.get(&format!("/api/admin/coupons/{code}"), Some(&admin.access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["times_used"].as_i64().unwrap()
}

async fn preview(s: &TestServer, token: &str, path: &str, body: Value) -> powerbank_tests::Reply {
    s.post(&format!("/api/promotions/coupons/{path}"), Some(token), body).await
}

#[tokio::test]
async fn operators_manage_coupons_and_the_app_lists_the_live_public_ones() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let a = admin.access.as_str();
    let user = s.register("9841600001").await;

    let r = s
        .post(
            "/api/admin/coupons",
            Some(&user.access),
            json!({"code": "NOPE", "fixed_paisa": 100, "valid_until": at(3600)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let created = coupon(
        &s,
        json!({"code": "dashain-10", "name": "Dashain", "percentage_bp": 1000, "max_discount_paisa": 1000,
               "valid_until": at(86_400), "max_uses_per_user": 1}),
    )
    .await;
    assert_eq!(created["code"], "DASHAIN-10", "stored upper case");
    assert_eq!((created["percentage_bp"].as_i64(), created["fixed_paisa"].as_i64()), (Some(1000), None));
    assert_eq!((created["is_active"].as_bool(), created["times_used"].as_i64()), (Some(true), Some(0)));
    let dup = s
        .post("/api/admin/coupons", Some(a), json!({"code": "Dashain-10", "fixed_paisa": 100, "valid_until": at(60)}))
        .await;
    assert_eq!((dup.status, dup.error_code()), (StatusCode::CONFLICT, "duplicate_coupon"));
    for bad in [
        json!({"code": "X1X", "percentage_bp": 100, "fixed_paisa": 100, "valid_until": at(60)}),
        json!({"code": "X2X", "valid_until": at(60)}),
        json!({"code": "X3X", "percentage_bp": 20_000, "valid_until": at(60)}),
        json!({"code": "X4X", "fixed_paisa": 100, "valid_until": "tomorrow"}),
        json!({"code": "X5X", "fixed_paisa": 100, "valid_from": at(60), "valid_until": at(30)}),
        json!({"code": "no spaces", "fixed_paisa": 100, "valid_until": at(60)}),
        json!({"code": "X6X", "fixed_paisa": 100, "valid_until": at(60), "max_uses_total": 0}),
    ] {
        let r = s.post("/api/admin/coupons", Some(a), bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad} -> {}", r.body);
        r.error_code();
    }

    coupon(&s, json!({"code": "STAFF50", "fixed_paisa": 5000, "valid_until": at(86_400), "is_public": false})).await;
    coupon(&s, json!({"code": "OLD", "fixed_paisa": 500, "valid_from": at(-7200), "valid_until": at(-3600)})).await;
    coupon(&s, json!({"code": "SOON", "fixed_paisa": 500, "valid_from": at(3600), "valid_until": at(7200)})).await;
    coupon(&s, json!({"code": "FLAT20", "fixed_paisa": 2000, "valid_until": at(86_400)})).await;
    let listed = s.get("/api/promotions/coupons/active", None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let codes: Vec<&str> =
        listed.body["results"].as_array().unwrap().iter().filter_map(|c| c["code"].as_str()).collect();
    assert_eq!(codes, vec!["FLAT20", "DASHAIN-10"], "live public coupons only, newest first");

    let all = s.get("/api/admin/coupons?limit=2", Some(a)).await;
    assert_eq!(all.body["results"].as_array().unwrap().len(), 2);
    assert!(all.body["next_cursor"].is_string());
    let r = s.get("/api/admin/coupons/dashain-10", Some(a)).await;
    assert_eq!((r.status, r.body["name"].as_str()), (StatusCode::OK, Some("Dashain")));
    let r = s
        .call(
            Method::PATCH,
            "/api/admin/coupons/dashain-10",
            Some(a),
            Some(json!({"name": "Dashain sale", "max_uses_per_user": null, "max_uses_total": 100, "is_public": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["name"].as_str(), r.body["max_uses_per_user"].as_i64(), r.body["max_uses_total"].as_i64()),
        (Some("Dashain sale"), None, Some(100))
    );
    let r = s
        .call(Method::PATCH, "/api/admin/coupons/dashain-10", Some(a), Some(json!({"valid_until": at(-10_000_000)})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "valid_until before valid_from: {}", r.body);
    let r = s.call(Method::DELETE, "/api/admin/coupons/soon", Some(a), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/admin/coupons/SOON", Some(a)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn previews_apply_the_plugin_rules_and_refusals_have_their_own_codes() {
    let s = TestServer::start().await;
    let db = powerbank::core::Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let user = s.register("9841600002").await;
    let t = user.access.as_str();
    coupon(&s, json!({"code": "TEN", "percentage_bp": 1000, "max_discount_paisa": 1000, "valid_until": at(3600)}))
        .await;
    coupon(&s, json!({"code": "OLD", "fixed_paisa": 500, "valid_from": at(-7200), "valid_until": at(-3600)})).await;
    coupon(&s, json!({"code": "SOON", "fixed_paisa": 500, "valid_from": at(3600), "valid_until": at(7200)})).await;
    coupon(&s, json!({"code": "BIG", "fixed_paisa": 500, "min_amount_paisa": 10_000, "valid_until": at(3600)})).await;
    coupon(&s, json!({"code": "OFF", "fixed_paisa": 500, "valid_until": at(3600), "is_active": false})).await;

    // Package 1 (HOUR_1) is NPR 50 by the pricing plugin: 10 % off.
    let r = preview(&s, t, "apply", json!({"coupon_code": "ten", "package_id": 1})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["coupon_code"].as_str(), r.body["amount_paisa"].as_i64(), r.body["discount_paisa"].as_i64()),
        (Some("TEN"), Some(5_000), Some(500))
    );
    assert_eq!((r.body["final_amount_paisa"].as_i64(), r.body["package_code"].as_str()), (Some(4_500), Some("HOUR_1")));
    let r = preview(&s, t, "apply", json!({"coupon_code": "TEN", "amount_paisa": 100_000})).await;
    assert_eq!(r.body["discount_paisa"], 1_000, "capped: {}", r.body);

    for (code, expected) in [
        ("NOSUCH", "coupon_invalid"),
        ("OFF", "coupon_invalid"),
        ("OLD", "coupon_expired"),
        ("SOON", "coupon_not_yet_valid"),
        ("BIG", "coupon_below_minimum"),
    ] {
        let r = preview(&s, t, "apply", json!({"coupon_code": code, "package_id": 1})).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, expected), "{code}: {}", r.body);
        let v = preview(&s, t, "validate", json!({"coupon_code": code, "package_id": 1})).await;
        assert_eq!(v.status, StatusCode::OK, "{}", v.body);
        assert_eq!((v.body["valid"].as_bool(), v.body["reason_code"].as_str()), (Some(false), Some(expected)));
    }
    let r = preview(&s, t, "apply", json!({"coupon_code": "BIG", "package_id": 1})).await;
    assert_eq!(r.body["error"]["details"]["min_amount_paisa"], 10_000);
    let v = preview(&s, t, "validate", json!({"coupon_code": "TEN", "package_id": 1})).await;
    assert_eq!(
        (v.body["valid"].as_bool(), v.body["preview"]["final_amount_paisa"].as_i64()),
        (Some(true), Some(4_500))
    );
    let r = preview(&s, t, "apply", json!({"coupon_code": "TEN"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = preview(&s, t, "apply", json!({"coupon_code": "TEN", "package_id": 999})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.post("/api/promotions/coupons/apply", None, json!({"coupon_code": "TEN"})).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_rental_redeems_its_coupon_once_and_a_failed_eject_releases_it() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841600003", 10_000).await;
    let t = user.access.as_str();
    coupon(&s, json!({"code": "FLAT15", "fixed_paisa": 1500, "valid_until": at(86_400), "max_uses_per_user": 1})).await;

    let r = initiate(&s, &user, SN, "wallet", Some("flat15")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        (r.body["amount_paisa"].as_i64(), r.body["discount_paisa"].as_i64(), r.body["coupon_code"].as_str()),
        (Some(3_500), Some(1_500), Some("FLAT15"))
    );
    assert_eq!(balance(&s, &user).await, 6_500);
    assert_eq!(times_used(&s, "FLAT15").await, 1);
    let mine = s.get("/api/promotions/coupons/my", Some(t)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let used = &mine.body["results"][0];
    assert_eq!(
        (
            used["coupon_code"].as_str(),
            used["rental_id"].as_i64(),
            used["discount_paisa"].as_i64(),
            used["status"].as_str()
        ),
        (Some("FLAT15"), Some(id), Some(1_500), Some("redeemed"))
    );
    let v =
        s.post("/api/promotions/coupons/validate", Some(t), json!({"coupon_code": "FLAT15", "package_id": 1})).await;
    assert_eq!(v.body["reason_code"], "coupon_user_limit_reached", "{}", v.body);

    // End the rental (not within the grace window), then try the coupon again.
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    sql(&s, "UPDATE rentals SET started_at = started_at - 1800 WHERE id = ?1", [id]);
    let free_slot = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free_slot, &bank, 80).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "completed" }).await);
    let r = initiate(&s, &user, SN, "wallet", Some("FLAT15")).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "coupon_user_limit_reached"));
    assert_eq!(balance(&s, &user).await, 6_500, "nothing charged");
    assert!(s.get("/api/rentals/active", Some(t)).await.body["rental"].is_null());

    // A station that cannot eject: refunded, and the coupon counts as unused again.
    let failing_user = customer(&s, "9841600004", 10_000).await;
    coupon(&s, json!({"code": "ONCE", "fixed_paisa": 1000, "valid_until": at(86_400), "max_uses_total": 1})).await;
    let _failing = station(&s, crate::support::renting::OTHER_SN, |c| c.eject_failure_rate = 1.0).await;
    let r = initiate(&s, &failing_user, crate::support::renting::OTHER_SN, "wallet", Some("ONCE")).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_GATEWAY, "eject_failed"), "{}", r.body);
    assert_eq!(balance(&s, &failing_user).await, 10_000);
    assert_eq!(times_used(&s, "ONCE").await, 0);
    let admin = s.admin().await;
    let usages = s.get("/api/admin/coupons/ONCE/usages", Some(&admin.access)).await;
    assert_eq!(usages.body["results"][0]["status"], "released", "{}", usages.body);
    let r = initiate(&s, &failing_user, SN, "wallet", Some("ONCE")).await;
    assert_eq!(r.status, StatusCode::CREATED, "the released coupon works again: {}", r.body);
    assert_eq!((r.body["amount_paisa"].as_i64(), balance(&s, &failing_user).await), (Some(4_000), 6_000));
    assert_eq!(times_used(&s, "ONCE").await, 1);
    // A redeemed coupon cannot be deleted, only deactivated.
    let d = s.call(Method::DELETE, "/api/admin/coupons/ONCE", Some(&admin.access), None).await;
    assert_eq!((d.status, d.error_code()), (StatusCode::CONFLICT, "coupon_in_use"));
}

#[tokio::test]
async fn concurrent_redemptions_never_exceed_the_coupon_limit() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let _other = station(&s, crate::support::renting::OTHER_SN, |_| {}).await;
    coupon(&s, json!({"code": "FIRST", "fixed_paisa": 2000, "valid_until": at(86_400), "max_uses_total": 1})).await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(customer(&s, &format!("98416001{i:02}"), 10_000).await);
    }
    let sns = [SN, crate::support::renting::OTHER_SN, SN, crate::support::renting::OTHER_SN];
    let (a, b, c, d) = tokio::join!(
        initiate(&s, &users[0], sns[0], "wallet", Some("FIRST")),
        initiate(&s, &users[1], sns[1], "wallet", Some("FIRST")),
        initiate(&s, &users[2], sns[2], "wallet", Some("FIRST")),
        initiate(&s, &users[3], sns[3], "wallet", Some("FIRST")),
    );
    let replies = [a, b, c, d];
    let won: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    assert_eq!(won.len(), 1, "{:?}", replies.iter().map(|r| (r.status, r.body.clone())).collect::<Vec<_>>());
    assert_eq!(won[0].body["amount_paisa"], 3_000);
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "coupon_usage_limit_reached"));
    }
    assert_eq!(times_used(&s, "FIRST").await, 1);
    let charged = rows(&s, "SELECT COUNT(*) FROM transactions WHERE kind = 'rental'", []);
    assert_eq!(charged, vec![vec![json!(1)]], "only the winner was charged");
    let mut total = 0;
    for u in &users {
        total += balance(&s, u).await;
    }
    assert_eq!(total, 4 * 10_000 - 3_000);
}

#[tokio::test]
async fn a_gateway_rental_pays_the_discounted_price_and_an_unpaid_one_releases_the_coupon() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841600005", 0).await;
    let t = user.access.as_str();
    coupon(&s, json!({"code": "KHALTI20", "percentage_bp": 2000, "valid_until": at(86_400), "max_uses_total": 1}))
        .await;

    let r = initiate(&s, &user, SN, "khalti", Some("khalti20")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(
        (r.body["list_amount_paisa"].as_i64(), r.body["discount_paisa"].as_i64(), r.body["amount_paisa"].as_i64()),
        (Some(5_000), Some(1_000), Some(4_000))
    );
    let pidx = r.body["intent"]["gateway_reference"].as_str().unwrap().to_string();
    assert_eq!(gw.khalti.payment(&pidx).unwrap().amount, 4_000, "Khalti is asked for the discounted price");
    assert_eq!(times_used(&s, "KHALTI20").await, 1, "held while the payment is open");
    let other = customer(&s, "9841600006", 10_000).await;
    let r2 = initiate(&s, &other, SN, "wallet", Some("KHALTI20")).await;
    assert_eq!((r2.status, r2.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "coupon_usage_limit_reached"));

    // The payment expires unpaid: the coupon is free again.
    let intent = r.body["intent"]["id"].as_str().unwrap().to_string();
    sql(
        &s,
        "UPDATE payment_intents SET expires_at = ?1 WHERE id = ?2",
        rusqlite::params![powerbank::core::now_ts() - 1, intent],
    );
    sql(&s, "UPDATE jobs SET run_at = 0 WHERE kind = 'payments.verify_intent' AND status = 'pending'", []);
    assert!(wait_for(WAIT, || async { times_used(&s, "KHALTI20").await == 0 }).await, "coupon never released");
    let r2 = initiate(&s, &other, SN, "wallet", Some("KHALTI20")).await;
    assert_eq!(r2.status, StatusCode::CREATED, "{}", r2.body);
    assert_eq!(r2.body["amount_paisa"], 4_000);
    let _ = t;
}

#[tokio::test]
async fn promotion_endpoints_are_documented_with_schemas() {
    let s = TestServer::start().await;
    let spec = s.get("/api/openapi.json", None).await.body;
    let endpoints = [
        ("get", "/api/promotions/coupons/active", false),
        ("post", "/api/promotions/coupons/apply", true),
        ("post", "/api/promotions/coupons/validate", true),
        ("get", "/api/promotions/coupons/my", false),
        ("get", "/api/admin/coupons", false),
        ("post", "/api/admin/coupons", true),
        ("get", "/api/admin/coupons/{code}", false),
        ("patch", "/api/admin/coupons/{code}", true),
        ("get", "/api/admin/coupons/{code}/usages", false),
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
    assert!(spec["paths"]["/api/admin/coupons/{code}"]["delete"].is_object());
}
