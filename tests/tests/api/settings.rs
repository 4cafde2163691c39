//! Operator settings through HTTP: the app's public subset, the operators'
//! list and change, bounds and refusals, and the code obeying a change at once.

use powerbank_tests::{TestServer, fake_gateways::Gateways};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::renting::{SN, customer, initiate, server, sql, station};

async fn put(s: &TestServer, token: &str, values: Value) -> powerbank_tests::Reply {
    s.call(Method::PUT, "/api/admin/settings", Some(token), Some(json!({ "values": values, "reason": "test" }))).await
}

fn setting<'a>(list: &'a Value, key: &str) -> &'a Value {
    list["results"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no {key}: {list}"))
}

#[tokio::test]
async fn operators_change_settings_the_app_reads_them_and_bad_values_change_nothing() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let user = s.register("9841700001").await;

    // The app sees the public settings without signing in; never the private ones.
    let app = s.get("/api/app/config", None).await;
    assert_eq!(app.status, StatusCode::OK, "{}", app.body);
    assert_eq!(app.body["settings"]["rentals.free_return_minutes"], 5);
    assert_eq!(app.body["settings"]["payments.min_topup_paisa"], 1_000);
    assert!(app.body["settings"].get("rentals.eject_timeout_seconds").is_none(), "{}", app.body);

    // Operators only.
    assert_eq!(s.get("/api/admin/settings", None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/api/admin/settings", Some(&user.access)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(put(&s, &user.access, json!({"payments.min_topup_paisa": 5_000})).await.status, StatusCode::FORBIDDEN);

    let list = s.get("/api/admin/settings", Some(&admin.access)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let min = setting(&list.body, "payments.min_topup_paisa");
    assert_eq!(min["value"], 1_000);
    assert_eq!(min["unit"], "paisa");
    assert_eq!(min["overridden"], false);

    // A change takes effect at once: top-ups below the new minimum are refused.
    let r = put(&s, &admin.access, json!({"payments.min_topup_paisa": 5_000})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(setting(&r.body, "payments.min_topup_paisa")["overridden"], true);
    let topup = s
        .post("/api/wallet/topup-intent", Some(&user.access), json!({"amount_paisa": 2_000, "gateway": "khalti"}))
        .await;
    assert_eq!(topup.status, StatusCode::BAD_REQUEST, "{}", topup.body);
    assert_eq!(s.get("/api/app/config", None).await.body["settings"]["payments.min_topup_paisa"], 5_000);
    let methods = s.get("/api/payment/methods", None).await;
    let gateways: Vec<&Value> =
        methods.body["methods"].as_array().unwrap().iter().filter(|m| m["kind"] == "gateway").collect();
    assert!(gateways.iter().all(|m| m["min_amount_paisa"] == 5_000), "{}", methods.body);

    // Out of bounds, the wrong type, an unknown key, a minimum above the
    // maximum: refused whole, with a code, and nothing changes.
    for (bad, code) in [
        (json!({"payments.min_topup_paisa": 50}), "invalid_setting"),
        (json!({"payments.min_topup_paisa": "5000"}), "invalid_setting"),
        (json!({"rentals.free_return_minutes": 10, "payments.max_topup_paisa": 1_000}), "invalid_setting"),
        (json!({"rentals.free_return_minutes": 10, "no.such.setting": 1}), "unknown_setting"),
    ] {
        let r = put(&s, &admin.access, bad.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", r.body);
        assert_eq!(r.error_code(), code, "{bad}");
    }
    let r = put(&s, &admin.access, json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let after = s.get("/api/admin/settings", Some(&admin.access)).await;
    assert_eq!(setting(&after.body, "rentals.free_return_minutes")["value"], 5);
    assert_eq!(setting(&after.body, "payments.min_topup_paisa")["value"], 5_000);

    // null restores the default.
    let r = put(&s, &admin.access, json!({"payments.min_topup_paisa": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(setting(&r.body, "payments.min_topup_paisa")["value"], 1_000);
    assert_eq!(setting(&r.body, "payments.min_topup_paisa")["overridden"], false);
}

#[tokio::test]
async fn the_free_return_window_is_the_operators_setting() {
    let gateways = Gateways::start().await;
    let s = server(&gateways).await;
    let admin = s.admin().await;
    let _home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841700002", 30_000).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();

    // Two minutes in: inside the default five-minute window, a cancel
    // answers with the refund deadline...
    sql(&s, "UPDATE rentals SET started_at = started_at - 120 WHERE id = ?1", [id]);
    let cancel = s.post(&format!("/api/rentals/{id}/cancel"), Some(&user.access), json!({})).await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);
    // ...and once operators shorten the window to one minute, it has passed.
    let r = put(&s, &admin.access, json!({"rentals.free_return_minutes": 1})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let late = s.post(&format!("/api/rentals/{id}/cancel"), Some(&user.access), json!({})).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    assert_eq!(late.error_code(), "return_required");
}

#[tokio::test]
async fn the_kyc_requirement_and_rentals_at_once_are_the_operators_settings() {
    let gateways = Gateways::start().await;
    let s = server(&gateways).await;
    let admin = s.admin().await;
    let _home = station(&s, SN, |_| {}).await;
    // A rider with a complete profile and money, but no KYC.
    let user = s.register("9841700003").await;
    let profile =
        json!({"full_name": "Bikash Thapa", "date_of_birth": "1990-05-01", "address": "Baneshwor, Kathmandu"});
    let r = s.call(Method::PUT, "/api/profile", Some(&user.access), Some(profile)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    crate::support::renting::wallet_add(&s, &user, 30_000).await;

    let app = s.get("/api/app/config", None).await;
    assert_eq!(app.body["settings"]["rentals.kyc_required"], true);
    assert_eq!(app.body["settings"]["rentals.max_active_per_user"], 1);
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["reason"], "kyc_not_approved");

    // KYC no longer required: the same rider rents at once.
    let r = put(&s, &admin.access, json!({"rentals.kyc_required": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.get("/api/app/config", None).await.body["settings"]["rentals.kyc_required"], false);
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // One rental at a time by default...
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "rental_in_progress"), "{}", r.body);
    // ...two once operators allow it, and no third.
    let r = put(&s, &admin.access, json!({"rentals.max_active_per_user": 2})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "rental_in_progress"), "{}", r.body);
    assert_eq!(r.body["error"]["details"]["max_active_rentals"], 2);
    let active = s.get("/api/rentals/active", Some(&user.access)).await;
    assert_eq!(active.body["rental"]["status"], "active", "{}", active.body);

    // Bounds: refused whole, nothing changes.
    for bad in [json!({"rentals.max_active_per_user": 0}), json!({"rentals.max_active_per_user": 6})] {
        let r = put(&s, &admin.access, bad.clone()).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_setting"), "{bad}");
    }
    assert_eq!(s.get("/api/app/config", None).await.body["settings"]["rentals.max_active_per_user"], 2);
}

#[tokio::test]
async fn the_largest_top_up_is_the_operators_setting() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let user = s.register("9841700004").await;
    let topup = |paisa: i64| {
        let (s, token) = (&s, user.access.clone());
        async move {
            s.post("/api/wallet/topup-intent", Some(&token), json!({"amount_paisa": paisa, "gateway": "khalti"})).await
        }
    };
    let r = put(&s, &admin.access, json!({"payments.max_topup_paisa": 5_000})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.get("/api/app/config", None).await.body["settings"]["payments.max_topup_paisa"], 5_000);
    let r = topup(6_000).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["error"]["details"]["fields"]["amount_paisa"].is_array(), "{}", r.body);
    // Back to the default: the same amount passes the bound check (whatever
    // the gateway then says).
    let r = put(&s, &admin.access, json!({"payments.max_topup_paisa": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = topup(6_000).await;
    assert!(r.body["error"]["details"]["fields"]["amount_paisa"].is_null(), "{}", r.body);
}
