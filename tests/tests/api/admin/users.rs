//! Users, as operators see them: search, detail, suspend / ban / reactivate,
//! balance corrections through the ledger, notes.

use powerbank_tests::{Session, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn audit_count(s: &TestServer, token: &str, user: i64) -> usize {
    let r = s.get(&format!("/api/admin/audit?target_type=user&target_id={user}&limit=100"), Some(token)).await;
    r.body["results"].as_array().unwrap().len()
}

fn ids(page: &Value) -> Vec<i64> {
    page["results"].as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()).collect()
}

async fn login(s: &TestServer, phone: &str) -> powerbank_tests::Reply {
    let token = s.verification_token(phone, "login").await;
    s.post("/api/auth/login", None, json!({"verification_token": token})).await
}

#[tokio::test]
async fn operators_find_users_by_phone_email_code_id_and_name_and_see_their_detail() {
    let s = TestServer::start().await;
    let support = s.operator("support").await;
    let asha = s.register("9841600001").await;
    let bikash = s.register("9841600002").await;
    let chandra = s.register("9851600003").await;
    let r = s.call(Method::PUT, "/api/profile", Some(&asha.access), Some(json!({"full_name": "Asha Gurung"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (a, b, c) =
        (asha.user["id"].as_i64().unwrap(), bikash.user["id"].as_i64().unwrap(), chandra.user["id"].as_i64().unwrap());

    let find = |q: String| {
        let s = &s;
        let token = support.access.clone();
        async move {
            let r = s.get(&format!("/api/admin/users?{q}"), Some(&token)).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            ids(&r.body)
        }
    };
    assert_eq!(find("q=984160".into()).await, [b, a]);
    assert_eq!(find("q=%2B977985160".into()).await, [c]);
    assert_eq!(find("q=gurung".into()).await, [a]);
    assert_eq!(find(format!("q={}", bikash.user["referral_code"].as_str().unwrap().to_lowercase())).await, [b]);
    assert_eq!(find(format!("q={c}")).await, [c]);
    assert_eq!(find("kyc=none&status=active".into()).await, [c, b, a]);
    assert!(find("status=suspended".into()).await.is_empty());
    assert!(find("created_to=2001-01-01".into()).await.is_empty());
    // Operators are not app users.
    assert!(!find("".into()).await.contains(&support.user["id"].as_i64().unwrap()));
    let page = s.get("/api/admin/users?limit=2", Some(&support.access)).await;
    assert_eq!(ids(&page.body), [c, b]);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    assert_eq!(find(format!("limit=2&cursor={cursor}")).await, [a]);
    for bad in ["status=gone", "kyc=maybe", "q=a*", "created_from=01-01-2020", "limit=0"] {
        let r = s.get(&format!("/api/admin/users?{bad}"), Some(&support.access)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }

    let d = s.get(&format!("/api/admin/users/{a}"), Some(&support.access)).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["full_name"], "Asha Gurung");
    assert_eq!(d.body["phone"], "+9779841600001");
    assert_eq!(d.body["kyc_status"], "none");
    assert_eq!(d.body["wallet_balance_paisa"], 0);
    assert!(d.body["open_rental"].is_null());
    assert_eq!(d.body["unpaid_dues_paisa"], 0);
    assert_eq!(d.body["last_rentals"], json!([]));
    assert_eq!(s.get("/api/admin/users/999999", Some(&support.access)).await.status, StatusCode::NOT_FOUND);
    let op = support.user["id"].as_i64().unwrap();
    assert_eq!(s.get(&format!("/api/admin/users/{op}"), Some(&support.access)).await.status, StatusCode::NOT_FOUND);
    let tech = s.operator("field_tech").await;
    assert_eq!(s.get(&format!("/api/admin/users/{a}"), Some(&tech.access)).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_suspended_user_is_out_at_once_and_a_ban_is_lifted_only_by_an_admin() {
    let s = TestServer::start().await;
    let support = s.operator("support").await;
    let admin = s.operator("admin").await;
    let user: Session = s.register("9841610001").await;
    let id = user.user["id"].as_i64().unwrap();
    let path = |action: &str| format!("/api/admin/users/{id}/{action}");

    // Refusals change nothing and write no audit row.
    let r = s.post(&path("suspend"), Some(&support.access), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "reason_required"), "{}", r.body);
    let r = s.post("/api/admin/users/999999/suspend", Some(&support.access), json!({"reason": "abuse"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = s.post(&path("reactivate"), Some(&support.access), json!({"reason": "not suspended"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "user_active"), "{}", r.body);
    let r = s.post(&path("ban"), Some(&support.access), json!({"reason": "abuse"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "role_not_allowed"), "{}", r.body);
    assert_eq!(s.get("/api/auth/me", Some(&user.access)).await.status, StatusCode::OK);
    assert_eq!(audit_count(&s, &admin.access, id).await, 0);

    let r = s.post(&path("suspend"), Some(&support.access), json!({"reason": "chargeback abuse"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["restriction"].as_str()), (Some("suspended"), Some("suspended")));
    assert_eq!(s.get("/api/auth/me", Some(&user.access)).await.status, StatusCode::UNAUTHORIZED);
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": user.refresh})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = login(&s, "9841610001").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "account_suspended"), "{}", r.body);
    let r = s.post(&path("suspend"), Some(&support.access), json!({"reason": "again"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "user_suspended"), "{}", r.body);
    let d = s.get(&format!("/api/admin/users/{id}"), Some(&support.access)).await;
    assert_eq!(d.body["restriction_detail"]["reason"], "chargeback abuse");

    let r = s.post(&path("reactivate"), Some(&support.access), json!({"reason": "talked to them"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["restriction"].is_null());
    assert_eq!(login(&s, "9841610001").await.status, StatusCode::OK);

    // A ban: support may not lift it, an admin may.
    let r = s.post(&path("ban"), Some(&admin.access), json!({"reason": "fraud"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["restriction"], "banned");
    let r = s.post(&path("reactivate"), Some(&support.access), json!({"reason": "please"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "role_not_allowed"), "{}", r.body);
    let r = s.post(&path("ban"), Some(&admin.access), json!({"reason": "twice"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "user_banned"), "{}", r.body);
    assert_eq!(login(&s, "9841610001").await.status, StatusCode::FORBIDDEN);
    let r = s.post(&path("reactivate"), Some(&admin.access), json!({"reason": "cleared"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let log = s.get(&format!("/api/admin/audit?target_type=user&target_id={id}"), Some(&admin.access)).await;
    let actions: Vec<&str> =
        log.body["results"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["user.reactivate", "user.ban", "user.reactivate", "user.suspend"]);
    assert_eq!(log.body["results"][3]["before"]["status"], "active");
    assert_eq!(log.body["results"][3]["after"]["status"], "suspended");
}

#[tokio::test]
async fn balance_corrections_go_through_the_ledger_once_per_key_and_never_below_zero() {
    let s = TestServer::start().await;
    let finance = s.operator("finance").await;
    let support = s.operator("support").await;
    let user = s.register("9841620001").await;
    let id = user.user["id"].as_i64().unwrap();
    let wallet = format!("/api/admin/users/{id}/wallet-adjustments");
    let points = format!("/api/admin/users/{id}/points-adjustments");
    let balance = || async { s.get("/api/wallet", Some(&user.access)).await.body };

    let credit =
        json!({"amount": 5_000, "reason": "goodwill for a stuck rental", "idempotency_key": "adj-0001-credit"});
    let r = s.post(&wallet, Some(&support.access), credit.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "support moves no money: {}", r.body);
    let r = s.post(&wallet, Some(&finance.access), credit.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["balance_after"], 5_000);
    let first = r.body["id"].clone();
    // A retry answers the first result and moves nothing.
    let r = s.post(&wallet, Some(&finance.access), credit).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["id"].clone(), r.body["replayed"].clone()), (first, json!(true)));
    let w = balance().await;
    assert_eq!(w["balance_paisa"], 5_000);
    assert_eq!(w["recent"][0]["kind"], "operator_adjustment");
    assert_eq!(w["recent"].as_array().unwrap().len(), 1);

    for (body, status, code) in [
        (
            json!({"amount": 1, "reason": "x", "idempotency_key": "adj-0001-credit"}),
            StatusCode::CONFLICT,
            "idempotency_key_reused",
        ),
        (
            json!({"amount": -6_000, "reason": "take back", "idempotency_key": "adj-0002-debit"}),
            StatusCode::CONFLICT,
            "insufficient_balance",
        ),
        (json!({"amount": -100, "idempotency_key": "adj-0003-debit"}), StatusCode::BAD_REQUEST, "reason_required"),
        (
            json!({"amount": 0, "reason": "nothing", "idempotency_key": "adj-0004-zero"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"amount": 10_000_001, "reason": "too much", "idempotency_key": "adj-0005-huge"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            json!({"amount": 100, "reason": "short key", "idempotency_key": "k"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
    ] {
        let r = s.post(&wallet, Some(&finance.access), body.clone()).await;
        assert_eq!((r.status, r.error_code()), (status, code), "{body}: {}", r.body);
    }
    assert_eq!(balance().await["balance_paisa"], 5_000, "refusals moved nothing");
    let r = s
        .post(
            &wallet,
            Some(&finance.access),
            json!({"amount": -2_000, "reason": "double credit", "idempotency_key": "adj-0006-debit"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(balance().await["balance_paisa"], 3_000);

    // Sign-up may have granted points: work from the balance there is.
    let before = balance().await["points"].as_i64().unwrap();
    let r = s
        .post(
            &points,
            Some(&finance.access),
            json!({"amount": 100, "reason": "apology", "idempotency_key": "pts-0001"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["balance_after"], before + 100);
    let too_many = -(before + 101);
    let r = s
        .post(
            &points,
            Some(&finance.access),
            json!({"amount": too_many, "reason": "too many", "idempotency_key": "pts-0002"}),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "insufficient_balance"), "{}", r.body);
    let r = s
        .post(
            &points,
            Some(&finance.access),
            json!({"amount": -40, "reason": "correction", "idempotency_key": "pts-0003"}),
        )
        .await;
    assert_eq!(r.body["balance_after"], before + 60, "{}", r.body);
    assert_eq!(balance().await["points"], before + 60);

    // Four moves, four audit rows; the refusals and the retry none.
    let log = s.get(&format!("/api/admin/audit?target_type=user&target_id={id}"), Some(&finance.access)).await;
    assert_eq!(log.status, StatusCode::FORBIDDEN, "finance does not read the audit log");
    let admin = s.operator("admin").await;
    assert_eq!(audit_count(&s, &admin.access, id).await, 4);
    // The ledger still adds up.
    let report = powerbank::ops::verify::verify_file(&s.db_path()).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test]
async fn operators_keep_internal_notes_on_a_user() {
    let s = TestServer::start().await;
    let support = s.operator("support").await;
    let user = s.register("9841630001").await;
    let id = user.user["id"].as_i64().unwrap();
    let notes = format!("/api/admin/users/{id}/notes");
    for text in ["called about a stuck bank", "sent a coupon"] {
        let r = s.post(&notes, Some(&support.access), json!({"body": text})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["operator_email"], "support@operators.test");
    }
    let r = s.post(&notes, Some(&support.access), json!({"body": "  "})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s.post("/api/admin/users/999999/notes", Some(&support.access), json!({"body": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let list = s.get(&format!("{notes}?limit=1"), Some(&support.access)).await;
    assert_eq!(list.body["results"][0]["body"], "sent a coupon");
    assert!(list.body["next_cursor"].is_string());
    let d = s.get(&format!("/api/admin/users/{id}"), Some(&support.access)).await;
    assert_eq!(d.body["notes"].as_array().unwrap().len(), 2);
}
