//! Operator roles: each admin route's `x-roles` is in the document and is
//! what the server enforces.

use powerbank_tests::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "no {method} {path} in the document");
    op
}

#[tokio::test]
async fn the_document_lists_each_routes_roles_and_the_server_enforces_them() {
    let s = TestServer::start().await;
    let doc = s.get("/api/openapi.json", None).await.body;

    let refunds = operation(&doc, "get", "/api/admin/refunds");
    assert_eq!(refunds["x-roles"], json!(["owner", "admin", "finance", "support"]));
    assert!(refunds["description"].as_str().unwrap_or_default().contains("Roles: owner, admin, finance, support."));
    assert!(refunds["responses"]["403"].is_object(), "403 documented: {refunds}");
    assert!(refunds["responses"]["401"].is_object(), "401 documented: {refunds}");
    let operators = operation(&doc, "post", "/api/admin/operators");
    assert_eq!(operators["x-roles"], json!(["owner"]));
    // The sign-in is not an operator route.
    assert!(operation(&doc, "post", "/api/admin/login").get("x-roles").is_none());

    let finance = s.operator("finance").await;
    let field_tech = s.operator("field_tech").await;
    let owner = s.operator("owner").await;
    let rider = s.register("9841800001").await;

    assert_eq!(s.get("/api/admin/refunds", None).await.status, StatusCode::UNAUTHORIZED);
    let r = s.get("/api/admin/refunds", Some(&rider.access)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", r.body);
    let r = s.get("/api/admin/refunds", Some(&field_tech.access)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "role_not_allowed"), "{}", r.body);
    assert_eq!(r.body["error"]["details"]["role"], "field_tech");
    assert_eq!(s.get("/api/admin/refunds", Some(&finance.access)).await.status, StatusCode::OK);
    assert_eq!(s.get("/api/admin/refunds", Some(&owner.access)).await.status, StatusCode::OK);

    // The other way round for the station link.
    assert_eq!(s.get("/api/admin/station-link", Some(&field_tech.access)).await.status, StatusCode::OK);
    let r = s.get("/api/admin/station-link", Some(&finance.access)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "role_not_allowed"), "{}", r.body);
}

#[tokio::test]
async fn me_names_the_role_and_exactly_the_routes_it_may_call() {
    let s = TestServer::start().await;
    let support = s.operator("support").await;
    let me = s.get("/api/admin/me", Some(&support.access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["role"], "support");
    assert_eq!(me.body["email"], "support@operators.test");
    let allowed: Vec<String> = me.body["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert!(allowed.contains(&"GET /api/admin/kyc".to_string()), "{allowed:?}");
    assert!(!allowed.contains(&"POST /api/admin/refunds/{id}/approve".to_string()), "{allowed:?}");
    assert!(!allowed.iter().any(|r| r.contains("/api/admin/operators")), "{allowed:?}");

    // Every route `me` lists is one the document gives the role.
    let doc = s.get("/api/openapi.json", None).await.body;
    for route in &allowed {
        let (method, path) = route.split_once(' ').unwrap();
        let roles = &operation(&doc, &method.to_lowercase(), path)["x-roles"];
        assert!(roles.as_array().unwrap().contains(&json!("support")), "{route}: {roles}");
    }
}
