//! The catalogue as operators manage it (issue 13): rental packages (a
//! package rentals refer to is deactivated, not deleted), amenities, banners,
//! app versions (the app's version check follows at once) and countries;
//! every change audited, every refusal changing nothing.

use powerbank::core::{Db, now_ts};
use powerbank_tests::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::renting::{at, sql};

async fn seeded() -> TestServer {
    let s = TestServer::start().await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    s
}

async fn audit_actions(s: &TestServer, token: &str, target_type: &str, target_id: &str) -> Vec<String> {
    let r = s
        .get(&format!("/api/admin/audit?target_type={target_type}&target_id={target_id}&limit=100"), Some(token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["results"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap().to_string()).collect()
}

async fn patch(s: &TestServer, path: &str, token: &str, body: Value) -> powerbank_tests::Reply {
    s.call(Method::PATCH, path, Some(token), Some(body)).await
}

async fn delete(s: &TestServer, path: &str, token: &str) -> powerbank_tests::Reply {
    s.call(Method::DELETE, path, Some(token), None).await
}

fn codes(list: &Value, field: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|p| p[field].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn packages_are_managed_and_one_in_use_is_deactivated_not_deleted() {
    let s = seeded().await;
    let admin = s.operator("admin").await;
    let support = s.operator("support").await;
    let tech = s.operator("field_tech").await;

    // Reads: support too; field techs not at all.
    let list = s.get("/api/admin/packages?limit=2", Some(&support.access)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["results"].as_array().unwrap().len(), 2);
    assert!(list.body["next_cursor"].is_string());
    assert_eq!(s.get("/api/admin/packages", Some(&tech.access)).await.status, StatusCode::FORBIDDEN);
    let create = json!({"code": "day_3", "name": "3 days", "duration_minutes": 4320, "price_paisa": 60_000});
    let r = s.post("/api/admin/packages", Some(&support.access), create.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    let r = s.post("/api/admin/packages", Some(&admin.access), create.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["code"], "DAY_3");
    assert_eq!(r.body["price_npr"], "600.00");
    assert_eq!(r.body["rentals"], 0);
    assert!(codes(&s.get("/api/packages", None).await.body, "code").contains(&"DAY_3".to_string()));

    // Refusals, each with its code, and nothing changes.
    for (body, status, code) in [
        (create.clone(), StatusCode::CONFLICT, "duplicate_code"),
        (
            json!({"code": "X1", "name": "Bad", "duration_minutes": 0, "price_paisa": 100}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"code": "X1", "name": "Bad", "duration_minutes": 60, "price_paisa": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            json!({"code": "a b", "name": "Bad", "duration_minutes": 60, "price_paisa": 100}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"code": "X1", "name": "Bad", "duration_minutes": 60, "price_paisa": 100, "payment_model": "later"}),
            StatusCode::BAD_REQUEST,
            "",
        ),
    ] {
        let r = s.post("/api/admin/packages", Some(&admin.access), body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        if !code.is_empty() {
            assert_eq!(r.error_code(), code, "{body}");
        }
    }
    let all = s.get("/api/admin/packages?limit=100", Some(&admin.access)).await;
    assert_eq!(all.body["results"].as_array().unwrap().len(), 4, "{}", all.body);

    // A change applies to what riders are offered at once.
    let r = patch(&s, &format!("/api/admin/packages/{id}"), &admin.access, json!({"price_paisa": 55_000})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["price_paisa"], 55_000);
    let offered = s.get("/api/packages", None).await.body;
    let day3 = offered.as_array().unwrap().iter().find(|p| p["code"] == "DAY_3").unwrap();
    assert_eq!(day3["price_paisa"], 55_000);
    let r = patch(&s, "/api/admin/packages/999999", &admin.access, json!({"price_paisa": 1})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Nothing refers to it: deleted.
    let r = delete(&s, &format!("/api/admin/packages/{id}"), &admin.access).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["outcome"], "deleted");
    assert!(r.body["package"].is_null());
    assert_eq!(s.get(&format!("/api/admin/packages/{id}"), Some(&admin.access)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        audit_actions(&s, &admin.access, "package", &id.to_string()).await,
        ["package.delete", "package.update", "package.create"]
    );

    // A package a rental refers to stays, deactivated: no longer offered.
    let rider = s.register("9841300001").await;
    let rider_id = rider.user["id"].as_i64().unwrap();
    sql(
        &s,
        "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index,
             amount_paisa, due_minutes, created_at, updated_at)
         VALUES ('RNT-CAT-1', ?1, 1, 'completed', 'wallet', 1, 1, 5000, 60, ?2, ?2)",
        rusqlite::params![rider_id, now_ts()],
    );
    let r = delete(&s, "/api/admin/packages/1", &admin.access).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["outcome"], "deactivated");
    assert_eq!(r.body["package"]["is_active"], false);
    assert_eq!(r.body["package"]["rentals"], 1);
    assert!(!codes(&s.get("/api/packages", None).await.body, "code").contains(&"HOUR_1".to_string()));
    assert_eq!(s.get("/api/admin/packages/1", Some(&support.access)).await.body["is_active"], false);
    // Again: 409 naming the state, and no second audit row.
    let r = delete(&s, "/api/admin/packages/1", &admin.access).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.error_code(), "package_inactive");
    assert_eq!(audit_actions(&s, &admin.access, "package", "1").await, ["package.deactivate"]);
    // Reactivating is a change like any other.
    let r = patch(&s, "/api/admin/packages/1", &admin.access, json!({"is_active": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(codes(&s.get("/api/packages", None).await.body, "code").contains(&"HOUR_1".to_string()));
}

#[tokio::test]
async fn amenities_are_listed_renamed_and_deleted_off_every_station() {
    let s = seeded().await;
    let admin = s.operator("admin").await;
    let support = s.operator("support").await;
    let sn = "KTM-THAMEL-01";

    let r = s.post("/api/admin/amenities", Some(&admin.access), json!({"code": "toilet", "name": "Toilet"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = s
        .call(
            Method::PUT,
            &format!("/api/admin/stations/{sn}/amenities"),
            Some(&admin.access),
            Some(json!({"codes": ["toilet", "wifi"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let list = s.get("/api/admin/amenities", Some(&support.access)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let toilet = list.body["results"].as_array().unwrap().iter().find(|a| a["code"] == "toilet").cloned().unwrap();
    assert_eq!(toilet["stations"], 1);
    let r = patch(&s, "/api/admin/amenities/toilet", &support.access, json!({"name": "Restroom"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = patch(&s, "/api/admin/amenities/TOILET", &admin.access, json!({"name": "Restroom"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Restroom");
    let station = s.get(&format!("/api/stations/{sn}"), None).await;
    assert!(station.body["amenities"].as_array().unwrap().iter().any(|a| a["name"] == "Restroom"), "{}", station.body);
    let r = patch(&s, "/api/admin/amenities/toilet", &admin.access, json!({"name": ""})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    let r = delete(&s, "/api/admin/amenities/toilet", &admin.access).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["removed_from_stations"], 1);
    let station = s.get(&format!("/api/stations/{sn}"), None).await;
    assert_eq!(codes(&station.body["amenities"], "code"), ["wifi"]);
    assert_eq!(delete(&s, "/api/admin/amenities/toilet", &admin.access).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        audit_actions(&s, &admin.access, "amenity", "toilet").await,
        ["amenity.delete", "amenity.update", "amenity.create"]
    );
}

#[tokio::test]
async fn banners_show_in_their_window_and_order() {
    let s = seeded().await;
    let admin = s.operator("admin").await;
    let live_titles = |s: &TestServer| {
        let url = s.url("/api/banners");
        async move { codes(&reqwest::get(url).await.unwrap().json::<Value>().await.unwrap(), "title") }
    };
    let before = live_titles(&s).await;

    let r = s
        .post(
            "/api/admin/banners",
            Some(&admin.access),
            json!({"title": "Tihar lights", "image_url": "https://example.com/t.jpg", "display_order": -5,
                   "valid_from": at(-3600), "valid_until": at(86_400)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["live"], true);
    let id = r.body["id"].as_i64().unwrap();
    // Lowest order first.
    assert_eq!(live_titles(&s).await.first().map(String::as_str), Some("Tihar lights"));

    // Scheduled for later: listed for operators, not shown yet.
    let r = s
        .post(
            "/api/admin/banners",
            Some(&admin.access),
            json!({"title": "Holi", "image_url": "https://example.com/h.jpg",
                   "valid_from": at(30 * 86_400), "valid_until": at(31 * 86_400)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["live"], false);
    assert!(!live_titles(&s).await.contains(&"Holi".to_string()));
    let all = s.get("/api/admin/banners?limit=100", Some(&admin.access)).await;
    assert_eq!(all.body["results"].as_array().unwrap().len(), before.len() + 2, "{}", all.body);

    for bad in [
        json!({"title": "X", "image_url": "https://example.com/x.jpg", "valid_until": at(86_400)}),
        json!({"title": "Window", "image_url": "ftp://example.com/x.jpg", "valid_until": at(86_400)}),
        json!({"title": "Window", "image_url": "https://example.com/x.jpg", "valid_from": at(100), "valid_until": at(50)}),
        json!({"title": "Window", "image_url": "https://example.com/x.jpg", "valid_until": "tomorrow"}),
    ] {
        let r = s.post("/api/admin/banners", Some(&admin.access), bad.clone()).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{bad}: {}", r.body);
    }
    // A window made empty by a change is refused too, and nothing changes.
    let r = patch(&s, &format!("/api/admin/banners/{id}"), &admin.access, json!({"valid_until": at(-7200)})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(live_titles(&s).await.contains(&"Tihar lights".to_string()));

    let r = patch(&s, &format!("/api/admin/banners/{id}"), &admin.access, json!({"is_active": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!live_titles(&s).await.contains(&"Tihar lights".to_string()));
    let r = delete(&s, &format!("/api/admin/banners/{id}"), &admin.access).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&format!("/api/admin/banners/{id}"), Some(&admin.access)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        audit_actions(&s, &admin.access, "banner", &id.to_string()).await,
        ["banner.delete", "banner.update", "banner.create"]
    );
}

#[tokio::test]
async fn a_published_or_withdrawn_app_version_reaches_the_app_at_once() {
    let s = TestServer::start().await;
    let admin = s.operator("admin").await;
    let check = |version: &'static str| {
        let s = &s;
        async move {
            let r = s.get(&format!("/api/app/version?platform=android&version={version}"), None).await;
            (r.status, r.body)
        }
    };
    assert_eq!(check("1.0.0").await.0, StatusCode::NOT_FOUND);

    let publish = |body: Value| {
        let s = &s;
        let token = admin.access.clone();
        async move { s.post("/api/admin/app-versions", Some(&token), body).await }
    };
    let r = publish(json!({"platform": "android", "version": "1.0.0", "min_supported_version": "1.0.0",
                           "download_url": "https://example.com/app.apk", "released_at": at(-86_400)}))
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The answer is cached now.
    let (status, body) = check("1.0.0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["update_available"], false);

    let r = publish(json!({"platform": "android", "version": "1.1.0", "min_supported_version": "1.1.0",
                           "download_url": "https://example.com/app-1.1.apk", "release_notes": "Faster map"}))
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let newest = r.body["id"].as_i64().unwrap();
    let (_, body) = check("1.0.0").await;
    assert_eq!(body["latest_version"], "1.1.0", "the cached answer was dropped: {body}");
    assert_eq!(body["update_required"], true);
    let updates = s.get("/api/app/updates?platform=android", None).await.body;
    assert_eq!(codes(&updates, "version"), ["1.1.0", "1.0.0"]);

    // Scheduled for tomorrow: not published yet.
    let r = publish(json!({"platform": "android", "version": "2.0.0", "min_supported_version": "1.0.0",
                           "download_url": "https://example.com/app-2.apk", "released_at": at(86_400)}))
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(check("1.0.0").await.1["latest_version"], "1.1.0");

    for (bad, status, code) in [
        (
            json!({"platform": "android", "version": "1.1.0", "min_supported_version": "1.0.0", "download_url": "https://example.com/a.apk"}),
            StatusCode::CONFLICT,
            "duplicate_version",
        ),
        (
            json!({"platform": "symbian", "version": "1.2.0", "min_supported_version": "1.0.0", "download_url": "https://example.com/a.apk"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"platform": "ios", "version": "1.2.0", "min_supported_version": "1.3.0", "download_url": "https://example.com/a.apk"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"platform": "ios", "version": "one", "min_supported_version": "1.0.0", "download_url": "https://example.com/a.apk"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
    ] {
        let r = publish(bad.clone()).await;
        assert_eq!((r.status, r.error_code()), (status, code), "{bad}: {}", r.body);
    }

    // An edit and a withdrawal show at once too.
    let r = patch(
        &s,
        &format!("/api/admin/app-versions/{newest}"),
        &admin.access,
        json!({"min_supported_version": "1.0.0"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(check("1.0.0").await.1["update_required"], false);
    let r = delete(&s, &format!("/api/admin/app-versions/{newest}"), &admin.access).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(check("1.0.0").await.1["latest_version"], "1.0.0");
    let updates = s.get("/api/app/updates?platform=android", None).await.body;
    assert_eq!(codes(&updates, "version"), ["1.0.0"]);
    assert_eq!(
        delete(&s, &format!("/api/admin/app-versions/{newest}"), &admin.access).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = s.get("/api/admin/app-versions", Some(&admin.access)).await;
    assert_eq!(codes(&listed.body["results"], "version"), ["2.0.0", "1.0.0"]);
    assert_eq!(
        audit_actions(&s, &admin.access, "app_version", &newest.to_string()).await,
        ["app_version.delete", "app_version.update", "app_version.create"]
    );
}

#[tokio::test]
async fn countries_are_added_changed_and_switched_on_and_off() {
    let s = seeded().await;
    let admin = s.operator("admin").await;
    let support = s.operator("support").await;
    let offered = |s: &TestServer| {
        let url = s.url("/api/countries");
        async move { codes(&reqwest::get(url).await.unwrap().json::<Value>().await.unwrap(), "code") }
    };

    let r = s
        .post(
            "/api/admin/countries",
            Some(&admin.access),
            json!({"name": "Sri Lanka", "code": "lk", "dial_code": "+94"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["code"], "LK");
    assert!(offered(&s).await.contains(&"LK".to_string()));
    for (bad, status, code) in [
        (json!({"name": "Sri Lanka", "code": "LK", "dial_code": "+94"}), StatusCode::CONFLICT, "duplicate_code"),
        (json!({"name": "Nowhere", "code": "XYZ", "dial_code": "+1"}), StatusCode::BAD_REQUEST, "validation_failed"),
        (json!({"name": "Nowhere", "code": "XY", "dial_code": "00"}), StatusCode::BAD_REQUEST, "validation_failed"),
    ] {
        let r = s.post("/api/admin/countries", Some(&admin.access), bad.clone()).await;
        assert_eq!((r.status, r.error_code()), (status, code), "{bad}: {}", r.body);
    }
    let r =
        patch(&s, "/api/admin/countries/lk", &admin.access, json!({"flag_url": "https://example.com/lk.svg"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["flag_url"], "https://example.com/lk.svg");
    let r = patch(&s, "/api/admin/countries/LK", &admin.access, json!({"flag_url": null})).await;
    assert!(r.body["flag_url"].is_null(), "{}", r.body);

    let r = s.post("/api/admin/countries/LK/deactivate", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!offered(&s).await.contains(&"LK".to_string()));
    let r = s.post("/api/admin/countries/LK/deactivate", Some(&admin.access), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "country_inactive"), "{}", r.body);
    let r = s.post("/api/admin/countries/LK/activate", Some(&support.access), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = s.post("/api/admin/countries/LK/activate", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(offered(&s).await.contains(&"LK".to_string()));
    let r = s.post("/api/admin/countries/ZZ/activate", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let list = s.get("/api/admin/countries?limit=100", Some(&support.access)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["results"].as_array().unwrap().len(), 8);
    assert_eq!(
        audit_actions(&s, &admin.access, "country", "LK").await,
        ["country.activate", "country.deactivate", "country.update", "country.update", "country.create"]
    );
}
