//! The authorization matrix, generated from `/api/openapi.json` (issue 14):
//! every signed-in operation refuses anonymous callers (401); every operator
//! operation refuses app users (403 `forbidden`) and each role its
//! `x-roles` leaves out (403 `role_not_allowed`), and lets in each role it
//! lists; every user operation on an object another user owns answers 404.
//! A route added tomorrow is walked the same way, and one whose path names an
//! object this test cannot create fails until it can.

use std::collections::BTreeMap;

use powerbank::core::{Db, now_ts};
use powerbank_tests::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    openapi::{self, DocOperation, params},
    renting::sql,
    upload_png,
};

const ROLES: [&str; 5] = ["owner", "admin", "support", "finance", "field_tech"];

/// Path parameters that name shared catalogue objects, not anyone's own.
const SHARED_PARAMS: [&str; 1] = ["sn"];
/// Catalogue objects every rider may act on (an FAQ item, an achievement):
/// nobody owns them, so there is no other user's object to reach.
const SHARED_OBJECTS: [&str; 2] = ["/api/content/faq/", "/api/social/achievements/"];
/// Reads that answer 404 while the owner's object has nothing of that kind
/// yet (a rental never swapped).
const MAY_BE_EMPTY: [&str; 1] = ["/api/rentals/{id}/swap"];

struct Operation {
    method: Method,
    path: String,
    secured: bool,
    roles: Option<Vec<String>>,
    /// A JSON body with every required field of the request schema filled.
    body: Value,
}

/// A value of `schema` with its required fields filled (the first enum value,
/// 1, "matrix check", ...), so a refusal is about who asks, not the body.
fn sample(doc: &Value, schema: &Value) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return sample(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(first) = schema["allOf"].as_array().or(schema["oneOf"].as_array()).and_then(|a| a.first()) {
        return sample(doc, first);
    }
    if let Some(value) = schema["enum"].as_array().and_then(|e| e.first()) {
        return value.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned().unwrap_or(Value::Null),
        k => k.clone(),
    };
    match kind.as_str().unwrap_or("object") {
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        "number" => json!(1.0),
        "boolean" => json!(false),
        "string" => json!("matrix check"),
        "array" => json!([]),
        _ => {
            let mut object = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                object.insert(name.to_string(), sample(doc, &schema["properties"][name]));
            }
            Value::Object(object)
        }
    }
}

fn operations(doc: &Value) -> Vec<Operation> {
    openapi::operations(doc)
        .into_iter()
        .map(|DocOperation { method, path, op }| {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let roles = op
                .get("x-roles")
                .map(|r| r.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect());
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            let body = if schema.is_null() { json!({}) } else { sample(doc, schema) };
            Operation { method, path: path.to_string(), secured, roles, body }
        })
        .collect()
}

/// The status of a call, its error code when it has one; the body of a
/// stream (the console's live events) is not waited for.
async fn status(
    s: &TestServer,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, String) {
    let mut req = s.http.request(method.clone(), s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if *method != Method::GET && *method != Method::DELETE {
        req = req.json(body);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status();
    if !code.is_client_error() {
        return (code, String::new());
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (code, body["error"]["code"].as_str().unwrap_or_default().to_string())
}

/// `path` with the parameters `values` names filled (the others left as they are).
fn fill(path: &str, values: &BTreeMap<String, String>) -> String {
    openapi::fill_path(path, |name| values.get(name).cloned().unwrap_or_else(|| format!("{{{name}}}")))
}

#[tokio::test]
async fn every_operation_refuses_strangers_wrong_roles_and_other_users_objects() {
    let s = TestServer::start().await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let doc = s.get("/api/openapi.json", None).await.body;
    let ops = operations(&doc);
    assert!(ops.len() > 60, "the document lists {} operations", ops.len());

    let mut tokens = BTreeMap::new();
    for role in ROLES {
        tokens.insert(role, s.operator(role).await.access);
    }
    let owner_of_objects = s.register("9841900001").await;
    let stranger = s.register("9841900002").await;

    // Any path parameter becomes 1 for the role checks: the role is checked
    // before the path is looked at.
    let ones: BTreeMap<String, String> =
        ops.iter().flat_map(|o| params(&o.path)).map(|p| (p, "1".to_string())).collect();
    let (mut anonymous_checked, mut role_checks) = (0, 0);
    // `/metrics` is outside the API: it exists only where an operator set a
    // token or a private listener (its own tests cover its 401 and 404).
    for op in ops.iter().filter(|o| o.path.starts_with("/api/")) {
        let path = fill(&op.path, &ones);
        let operator_route = op.path.starts_with("/api/admin/") && op.secured;
        if op.secured {
            let (code, _) = status(&s, &op.method, &path, None, &json!({})).await;
            assert_eq!(code, StatusCode::UNAUTHORIZED, "anonymous {} {}", op.method, op.path);
            anonymous_checked += 1;
        }
        if !operator_route {
            assert!(op.roles.is_none(), "{} {} declares roles but is not an operator route", op.method, op.path);
            continue;
        }
        let roles = op.roles.as_ref().unwrap_or_else(|| panic!("{} {} has no x-roles", op.method, op.path));
        assert_eq!(roles.first().map(String::as_str), Some("owner"), "{} {}", op.method, op.path);
        assert!(
            roles.len() > 1 || op.path.starts_with("/api/admin/operators"),
            "{} {} is for owners only: declare its roles (x-roles)",
            op.method,
            op.path
        );
        let (code, error) = status(&s, &op.method, &path, Some(&stranger.access), &json!({})).await;
        assert_eq!((code, error.as_str()), (StatusCode::FORBIDDEN, "forbidden"), "app user {} {}", op.method, op.path);
        for role in ROLES {
            let (code, error) = status(&s, &op.method, &path, Some(&tokens[role]), &json!({})).await;
            if roles.iter().any(|r| r == role) {
                assert!(
                    code != StatusCode::UNAUTHORIZED && code != StatusCode::FORBIDDEN,
                    "{role} is declared on {} {} but got {code} {error}",
                    op.method,
                    op.path
                );
            } else {
                assert_eq!(
                    (code, error.as_str()),
                    (StatusCode::FORBIDDEN, "role_not_allowed"),
                    "{role} is not declared on {} {}",
                    op.method,
                    op.path
                );
            }
            role_checks += 1;
        }
    }
    assert!(anonymous_checked > 40 && role_checks > 150, "{anonymous_checked} anonymous, {role_checks} role checks");

    // Objects of one user, reached by another: 404, never theirs.
    let owned = owned_objects(&s, &owner_of_objects).await;
    let (mut ownership_checks, mut wrong) = (0, Vec::new());
    for op in ops.iter().filter(|o| o.secured && !o.path.starts_with("/api/admin/")) {
        let names = params(&op.path);
        if names.is_empty()
            || names.iter().all(|n| SHARED_PARAMS.contains(&n.as_str()))
            || SHARED_OBJECTS.iter().any(|prefix| op.path.starts_with(prefix))
        {
            continue;
        }
        let object = owned
            .iter()
            .find(|(prefix, _)| op.path.starts_with(prefix.as_str()))
            .map(|(_, values)| values)
            .unwrap_or_else(|| {
                panic!(
                    "{} {} names a user's object this test cannot create: add it to owned_objects",
                    op.method, op.path
                )
            });
        let path = fill(&op.path, object);
        let body = valid_bodies().remove(op.path.as_str()).unwrap_or_else(|| op.body.clone());
        let (code, error) = status(&s, &op.method, &path, Some(&stranger.access), &body).await;
        if code != StatusCode::NOT_FOUND {
            wrong.push(format!("another user's object: {} {path} {body} gave {code} {error}", op.method));
        }
        if op.method == Method::GET && !MAY_BE_EMPTY.contains(&op.path.as_str()) {
            // The object is there: its owner reads it.
            let (code, error) = status(&s, &op.method, &path, Some(&owner_of_objects.access), &body).await;
            if code == StatusCode::NOT_FOUND {
                wrong.push(format!("the owner reads {path}: {error}"));
            }
        }
        ownership_checks += 1;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(ownership_checks >= 8, "{ownership_checks} ownership checks");
}

/// Bodies the owner could send, for operations whose rules the schema does
/// not carry (ranges checked before the object is looked up).
fn valid_bodies() -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        ("/api/rentals/{id}/extend", json!({"extra_minutes": 30, "payment_method": "wallet"})),
        ("/api/rentals/{id}/report-issue", json!({"issue_type": "damaged", "description": "the cable is broken"})),
    ])
}

/// One object of each kind user operations name by id, owned by `user`: path
/// prefix to the values of its parameters.
async fn owned_objects(s: &TestServer, user: &powerbank_tests::Session) -> Vec<(String, BTreeMap<String, String>)> {
    let id = user.user["id"].as_i64().unwrap();
    let now = now_ts();
    sql(
        s,
        "INSERT INTO rentals (code, user_id, package_id, status, payment_method, station_id, slot_index, amount_paisa,
                              due_minutes, started_at, due_at, created_at, updated_at)
         VALUES ('MATRIX01', ?1, (SELECT MIN(id) FROM rental_packages), 'active', 'wallet',
                 (SELECT MIN(id) FROM stations), 1, 5000, 60, ?2, ?2 + 3600, ?2, ?2)",
        rusqlite::params![id, now],
    );
    sql(
        s,
        "INSERT INTO transactions (reference, user_id, kind, status, amount_paisa, wallet_paisa, gateway,
                                   payment_intent_id, description, created_at, updated_at)
         VALUES ('TXN-MATRIX-1', ?1, 'topup', 'success', 10000, 10000, 'khalti', 'pi_matrix_1', 'Top-up', ?2, ?2)",
        rusqlite::params![id, now],
    );
    sql(
        s,
        "INSERT INTO payment_intents (id, user_id, purpose, gateway, amount_paisa, status, expires_at, created_at, updated_at)
         VALUES ('pi_matrix_1', ?1, 'topup', 'khalti', 10000, 'pending', ?2 + 3600, ?2, ?2)",
        rusqlite::params![id, now],
    );
    sql(
        s,
        "INSERT INTO notifications (user_id, template_key, title, body, created_at)
         VALUES (?1, 'matrix', 'Hello', 'A notification', ?2)",
        rusqlite::params![id, now],
    );
    let one = |sql_text: &str| -> String {
        let rows = crate::support::renting::rows(s, sql_text, [id]);
        match &rows[0][0] {
            Value::String(v) => v.clone(),
            v => v.to_string(),
        }
    };
    let rental = one("SELECT id FROM rentals WHERE user_id = ?1");
    let transaction = one("SELECT id FROM transactions WHERE user_id = ?1");
    let notification = one("SELECT id FROM notifications WHERE user_id = ?1");
    upload_png(s, &user.access).await;
    let key = one("SELECT storage_key FROM media_uploads WHERE user_id = ?1");
    let r = crate::support::register_device(s, &user.access, "matrix-device", "fcm-matrix-token").await;
    assert!(r.status.is_success(), "device: {}", r.body);
    let r = s
        .post("/api/content/contact", Some(&user.access), json!({"subject": "Matrix check", "message": "Hello there"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "contact: {}", r.body);
    let thread = r.body["id"].to_string();
    let of = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    vec![
        ("/api/rentals/".into(), of(&[("id", &rental)])),
        ("/api/payment/cancel/".into(), of(&[("intent_id", "pi_matrix_1")])),
        ("/api/payment/status/".into(), of(&[("intent_id", "pi_matrix_1")])),
        ("/api/payment/refund/".into(), of(&[("transaction_id", &transaction)])),
        ("/api/user/notification/".into(), of(&[("id", &notification)])),
        ("/api/uploads/files/".into(), of(&[("key", &key)])),
        ("/api/user/device/".into(), of(&[("device_id", "matrix-device")])),
        ("/api/content/contact/".into(), of(&[("id", &thread)])),
    ]
}
