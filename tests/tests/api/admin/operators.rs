//! Operator accounts: owners create them, change their role and disable
//! them; a disabled operator's tokens stop at once.

use powerbank_tests::TestServer;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn owners_create_operators_change_roles_and_disable_them_at_once() {
    let s = TestServer::start().await;
    let owner = s.operator("owner").await;
    let admin = s.operator("admin").await;

    // Only owners manage operators.
    let r = s.get("/api/admin/operators", Some(&admin.access)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "role_not_allowed"), "{}", r.body);
    let new = json!({"email": "tech@operators.test", "password": "a long enough password", "role": "field_tech"});
    assert_eq!(s.post("/api/admin/operators", Some(&admin.access), new.clone()).await.status, StatusCode::FORBIDDEN);

    // Bad input changes nothing.
    for (body, status) in [
        (json!({"email": "tech@operators.test", "password": "short", "role": "field_tech"}), StatusCode::BAD_REQUEST),
        (
            json!({"email": "9841000000", "password": "a long enough password", "role": "field_tech"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "tech@operators.test", "password": "a long enough password", "role": "boss"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "admin@operators.test", "password": "a long enough password", "role": "support"}),
            StatusCode::CONFLICT,
        ),
    ] {
        let r = s.post("/api/admin/operators", Some(&owner.access), body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }

    let r = s.post("/api/admin/operators", Some(&owner.access), new).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["role"], "field_tech");
    assert_eq!(r.body["created_by"], owner.user["id"]);
    let tech_id = r.body["id"].as_i64().unwrap();
    let login = s
        .post("/api/admin/login", None, json!({"email": "tech@operators.test", "password": "a long enough password"}))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let tech = login.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/admin/me", Some(&tech)).await.body["role"], "field_tech");
    assert_eq!(s.get("/api/admin/refunds", Some(&tech)).await.status, StatusCode::FORBIDDEN);

    // A new role applies to the next request of the same token.
    let role = format!("/api/admin/operators/{tech_id}/role");
    let r = s.post(&role, Some(&owner.access), json!({"role": "finance", "reason": "moved to the finance desk"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.get("/api/admin/refunds", Some(&tech)).await.status, StatusCode::OK);
    let r = s.post(&role, Some(&owner.access), json!({"role": "finance", "reason": "again"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "role_unchanged"), "{}", r.body);
    let r =
        s.post("/api/admin/operators/999999/role", Some(&owner.access), json!({"role": "admin", "reason": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // Disabled: the token stops at once, and so does signing in.
    let disable = format!("/api/admin/operators/{tech_id}/disable");
    let r = s.post(&disable, Some(&owner.access), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "reason_required"), "{}", r.body);
    assert_eq!(s.get("/api/admin/me", Some(&tech)).await.status, StatusCode::OK, "a refused disable changed nothing");
    let r = s.post(&disable, Some(&owner.access), json!({"reason": "left the company"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["disabled"], true);
    assert_eq!(s.get("/api/admin/me", Some(&tech)).await.status, StatusCode::UNAUTHORIZED);
    let login = s
        .post("/api/admin/login", None, json!({"email": "tech@operators.test", "password": "a long enough password"}))
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.body);
    let r = s.post(&disable, Some(&owner.access), json!({"reason": "twice"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "operator_disabled"), "{}", r.body);
    let r =
        s.post(&format!("/api/admin/operators/{tech_id}/enable"), Some(&owner.access), json!({"reason": "back"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let login = s
        .post("/api/admin/login", None, json!({"email": "tech@operators.test", "password": "a long enough password"}))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);

    // The only owner cannot demote or disable itself.
    let me = format!("/api/admin/operators/{}", owner.user["id"]);
    let r = s.post(&format!("{me}/role"), Some(&owner.access), json!({"role": "admin", "reason": "step down"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "last_owner"), "{}", r.body);
    let r = s.post(&format!("{me}/disable"), Some(&owner.access), json!({"reason": "leave"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "last_owner"), "{}", r.body);

    // The list, filtered by role; every change is in the audit log.
    let list = s.get("/api/admin/operators?role=finance", Some(&owner.access)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let ids: Vec<i64> = list.body["results"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [tech_id]);
    let log = s.get(&format!("/api/admin/audit?target_type=operator&target_id={tech_id}"), Some(&owner.access)).await;
    let actions: Vec<&str> =
        log.body["results"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["operator.enable", "operator.disable", "operator.role", "operator.create"]);
    let role_row = &log.body["results"][2];
    assert_eq!(role_row["reason"], "moved to the finance desk");
    assert_eq!(role_row["before"]["role"], "field_tech");
    assert_eq!(role_row["after"]["role"], "finance");
}
