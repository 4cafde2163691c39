//! Campaigns end to end: operators create, pause, resume and stop them
//! (refusals change nothing), riders see the ones that include them, rentals
//! get the best automatic discount (never together with a coupon), limits
//! hold under concurrent rentals, and a coupon grant issues personal coupons
//! through the job queue. Rentals go over HTTP to simulated stations on a
//! real MQTT broker.

use crate::support::renting::{
    OTHER_SN, SN, WAIT, at, balance, coupon, customer, initiate, rental, rows, server, sql, station,
};
use powerbank_tests::{Reply, TestServer, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create(s: &TestServer, body: Value) -> Reply {
    let admin = s.admin().await;
    s.post("/api/admin/campaigns", Some(&admin.access), body).await
}

/// A campaign running from a minute ago for a day, created as the admin.
async fn running(s: &TestServer, name: &str, audience: Value, offer: Value, limits: Value) -> Value {
    let r = create(
        s,
        json!({"name": name, "starts_at": at(-60), "ends_at": at(86_400), "audience": audience, "offer": offer,
               "limits": limits}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "create {name}: {}", r.body);
    r.body
}

async fn analytics(s: &TestServer, id: i64) -> Value {
    let admin = s.admin().await;
    let r = s.get(&format!("/api/admin/campaigns/{id}/analytics"), Some(&admin.access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn act(s: &TestServer, id: i64, action: &str) -> Reply {
    let admin = s.admin().await;
    s.post(&format!("/api/admin/campaigns/{id}/{action}"), Some(&admin.access), json!({"reason": "test"})).await
}

fn campaign_count(s: &TestServer) -> Value {
    rows(s, "SELECT COUNT(*) FROM campaigns", [])[0][0].clone()
}

#[tokio::test]
async fn operators_create_and_steer_campaigns_and_refusals_change_nothing() {
    let s = TestServer::start().await;
    let rider = s.register("9841800001").await;
    let rider_id = rider.user["id"].as_i64().unwrap();
    let audit_before = rows(&s, "SELECT COUNT(*) FROM admin_audit_log WHERE target_type = 'campaign'", []);
    let all = json!({"kind": "all"});
    let ten_percent = json!({"kind": "rental_discount", "percentage_bp": 1000});
    let window = |offer: &Value, audience: &Value| json!({"name": "Dashain", "starts_at": at(-60), "ends_at": at(3600), "audience": audience, "offer": offer});

    // Refusals: 422 with a code, nothing stored, nothing audited.
    let mut backwards = window(&ten_percent, &all);
    backwards["starts_at"] = json!(at(7200));
    let nobody = json!({"kind": "users", "user_ids": [999_999]});
    for (body, code) in [
        (backwards, "campaign_window_invalid"),
        (window(&ten_percent, &nobody), "audience_empty"),
        (window(&ten_percent, &json!({"kind": "active", "days": 0})), "invalid_audience"),
        (window(&json!({"kind": "rental_discount", "percentage_bp": 12_000}), &all), "campaign_offer_rejected"),
        (
            window(&json!({"kind": "points_multiplier", "multiplier_bp": 9_000, "on_top_ups": true}), &all),
            "campaign_offer_rejected",
        ),
        (
            window(&json!({"kind": "coupon_grant", "fixed_paisa": 500, "valid_days": 0}), &all),
            "campaign_offer_rejected",
        ),
    ] {
        let r = create(&s, body.clone()).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{body} -> {}", r.body);
    }
    let r =
        create(&s, window(&json!({"kind": "rental_discount", "percentage_bp": 100, "fixed_paisa": 100}), &all)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(campaign_count(&s), json!(0));
    assert_eq!(rows(&s, "SELECT COUNT(*) FROM admin_audit_log WHERE target_type = 'campaign'", []), audit_before);
    let support = s.operator("support").await;
    let r = s.post("/api/admin/campaigns", Some(&support.access), window(&ten_percent, &all)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "role_not_allowed"));

    // Created: running, audited, visible to the rider it includes.
    let created = create(&s, window(&ten_percent, &json!({"kind": "users", "user_ids": [rider_id]}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!((created.body["state"].as_str(), created.body["status"].as_str()), (Some("running"), Some("active")));
    let audited = rows(&s, "SELECT action FROM admin_audit_log WHERE target_type = 'campaign' ORDER BY id", []);
    assert_eq!(audited, vec![vec![json!("campaign.create")]]);
    let mine = s.get("/api/promotions/campaigns", Some(&rider.access)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["results"][0]["id"], id);
    assert_eq!(mine.body["results"][0]["offer"]["percentage_bp"], 1000);
    let outsider = s.register("9841800002").await;
    let theirs = s.get("/api/promotions/campaigns", Some(&outsider.access)).await;
    assert_eq!(theirs.body["results"], json!([]), "not in the audience");

    // Pause, resume, stop; each refusal names the state, changes nothing.
    let r = act(&s, id, "pause").await;
    assert_eq!((r.status, r.body["state"].as_str()), (StatusCode::OK, Some("paused")), "{}", r.body);
    assert_eq!(s.get("/api/promotions/campaigns", Some(&rider.access)).await.body["results"], json!([]));
    let r = act(&s, id, "pause").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "campaign_paused"));
    let r = act(&s, id, "resume").await;
    assert_eq!((r.status, r.body["state"].as_str()), (StatusCode::OK, Some("running")));
    let r = act(&s, id, "resume").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "campaign_active"));
    let r = act(&s, id, "stop").await;
    assert_eq!((r.status, r.body["state"].as_str()), (StatusCode::OK, Some("stopped")));
    for action in ["pause", "resume", "stop"] {
        let r = act(&s, id, action).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "campaign_stopped"), "{action}");
    }
    let r = act(&s, 999_999, "pause").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let audited = rows(&s, "SELECT action FROM admin_audit_log WHERE target_type = 'campaign' ORDER BY id", []);
    assert_eq!(audited.len(), 4, "create, pause, resume, stop: {audited:?}");

    let admin = s.admin().await;
    let list = s.get("/api/admin/campaigns?status=stopped", Some(&admin.access)).await;
    assert_eq!(list.body["results"][0]["id"], id, "{}", list.body);
    let a = analytics(&s, id).await;
    assert_eq!((a["redemptions"].as_i64(), a["state"].as_str()), (Some(0), Some("stopped")));
}

#[tokio::test]
async fn overlapping_campaigns_give_the_best_single_discount_and_never_stack_with_a_coupon() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841800003", 20_000).await;
    let all = json!({"kind": "all"});
    // Package 1 (HOUR_1) is NPR 50. Three running campaigns include the rider:
    // 10 % everywhere, NPR 15 off HOUR_1 at this station, 50 % at another station.
    let ten =
        running(&s, "Ten", all.clone(), json!({"kind": "rental_discount", "percentage_bp": 1000}), json!({})).await;
    let here = running(
        &s,
        "Thamel",
        all.clone(),
        json!({"kind": "rental_discount", "fixed_paisa": 1500, "station_sns": [SN], "package_codes": ["HOUR_1"]}),
        json!({"per_user": 1}),
    )
    .await;
    let elsewhere = running(
        &s,
        "Durbar",
        all.clone(),
        json!({"kind": "rental_discount", "percentage_bp": 5000, "station_sns": [OTHER_SN]}),
        json!({}),
    )
    .await;
    let id_of = |c: &Value| c["id"].as_i64().unwrap();

    // The best single automatic discount wins: NPR 15, not 10 % (NPR 5); they do not add up.
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["amount_paisa"].as_i64(), r.body["discount_paisa"].as_i64()), (Some(3_500), Some(1_500)));
    assert_eq!(balance(&s, &user).await, 16_500);
    let (a_here, a_ten, a_elsewhere) =
        (analytics(&s, id_of(&here)).await, analytics(&s, id_of(&ten)).await, analytics(&s, id_of(&elsewhere)).await);
    assert_eq!((a_here["redemptions"].as_i64(), a_here["discount_given_paisa"].as_i64()), (Some(1), Some(1_500)));
    assert_eq!((a_ten["redemptions"].as_i64(), a_elsewhere["redemptions"].as_i64()), (Some(0), Some(0)));
    assert_eq!(
        (a_here["during"]["rentals"].as_i64(), a_here["during"]["revenue_paisa"].as_i64()),
        (Some(1), Some(3_500))
    );

    let give_back = |id: i64, bank: String| {
        let (s, home, user) = (&s, &home, &user);
        async move {
            sql(s, "UPDATE rentals SET started_at = started_at - 1800 WHERE id = ?1", [id]);
            let free = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
            home.return_bank(free, &bank, 80).await.unwrap();
            assert!(wait_for(WAIT, || async { rental(s, user, id).await["status"] == "completed" }).await);
        }
    };
    give_back(r.body["id"].as_i64().unwrap(), r.body["power_bank"].as_str().unwrap().to_string()).await;

    // Its per-rider limit used, the 10 % campaign is the best left; a NPR 20
    // coupon beats it, so the coupon applies alone.
    coupon(&s, json!({"code": "FLAT20", "fixed_paisa": 2000, "valid_until": at(86_400)})).await;
    let r = initiate(&s, &user, SN, "wallet", Some("FLAT20")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["amount_paisa"].as_i64(), r.body["discount_paisa"].as_i64(), r.body["coupon_code"].as_str()),
        (Some(3_000), Some(2_000), Some("FLAT20"))
    );
    assert_eq!(analytics(&s, id_of(&ten)).await["redemptions"], 0, "never both");
    give_back(r.body["id"].as_i64().unwrap(), r.body["power_bank"].as_str().unwrap().to_string()).await;

    // A NPR 2 coupon loses to the 10 % campaign: the campaign applies, the coupon is not used.
    coupon(&s, json!({"code": "FLAT2", "fixed_paisa": 200, "valid_until": at(86_400)})).await;
    let r = initiate(&s, &user, SN, "wallet", Some("FLAT2")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["amount_paisa"].as_i64(), r.body["discount_paisa"].as_i64()), (Some(4_500), Some(500)));
    assert!(r.body["coupon_code"].is_null(), "{}", r.body);
    let used = rows(
        &s,
        "SELECT COUNT(*) FROM coupon_usages u JOIN coupons c ON c.id = u.coupon_id WHERE c.code = 'FLAT2'",
        [],
    );
    assert_eq!(used, vec![vec![json!(0)]]);
    assert_eq!(analytics(&s, id_of(&ten)).await["redemptions"], 1);
}

#[tokio::test]
async fn concurrent_rentals_never_exceed_a_campaign_limit() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let _home = station(&s, SN, |_| {}).await;
    let _other = station(&s, OTHER_SN, |_| {}).await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(customer(&s, &format!("98418001{i:02}"), 10_000).await);
    }
    let first = running(
        &s,
        "First rider",
        json!({"kind": "all"}),
        json!({"kind": "rental_discount", "fixed_paisa": 2000}),
        json!({"total": 1}),
    )
    .await;
    let (a, b, c, d) = tokio::join!(
        initiate(&s, &users[0], SN, "wallet", None),
        initiate(&s, &users[1], OTHER_SN, "wallet", None),
        initiate(&s, &users[2], SN, "wallet", None),
        initiate(&s, &users[3], OTHER_SN, "wallet", None),
    );
    let replies = [a, b, c, d];
    let discounted: Vec<_> =
        replies.iter().filter(|r| r.status == StatusCode::CREATED && r.body["discount_paisa"] == 2_000).collect();
    assert_eq!(discounted.len(), 1, "{:?}", replies.iter().map(|r| (r.status, r.body.clone())).collect::<Vec<_>>());
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        // Offered the last redemption, beaten to it: refused, nothing charged.
        assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "campaign_limit_reached"), "{}", r.body);
    }
    let a = analytics(&s, first["id"].as_i64().unwrap()).await;
    assert_eq!((a["redemptions"].as_i64(), a["discount_given_paisa"].as_i64()), (Some(1), Some(2_000)));
    let counted = rows(&s, "SELECT COUNT(*) FROM campaign_redemptions WHERE released_at IS NULL", []);
    assert_eq!(counted, vec![vec![json!(1)]]);
}

#[tokio::test]
async fn a_coupon_grant_issues_each_member_a_personal_coupon_at_the_start() {
    let s = TestServer::start().await;
    let db = powerbank::core::Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let member = s.register("9841800201").await;
    let outsider = s.register("9841800202").await;
    let member_id = member.user["id"].as_i64().unwrap();
    let grant = running(
        &s,
        "Welcome back",
        json!({"kind": "users", "user_ids": [member_id]}),
        json!({"kind": "coupon_grant", "fixed_paisa": 1000, "valid_days": 7}),
        json!({}),
    )
    .await;
    let code = format!("C{}U{member_id}", grant["id"]);
    assert!(
        wait_for(WAIT, || async {
            rows(&s, "SELECT COUNT(*) FROM coupons WHERE code = ?1", [&code]) == vec![vec![json!(1)]]
        })
        .await,
        "coupon {code} never issued"
    );
    let validate = |token: String, code: String| {
        let s = &s;
        async move {
            s.post("/api/promotions/coupons/validate", Some(&token), json!({"coupon_code": code, "package_id": 1}))
                .await
        }
    };
    let r = validate(member.access.clone(), code.clone()).await;
    assert_eq!((r.status, r.body["valid"].as_bool()), (StatusCode::OK, Some(true)), "{}", r.body);
    let r = validate(outsider.access.clone(), code.clone()).await;
    assert_eq!(r.body["reason_code"], "coupon_invalid", "another rider's coupon: {}", r.body);
    assert_eq!(analytics(&s, grant["id"].as_i64().unwrap()).await["coupons_issued"], 1);
}
