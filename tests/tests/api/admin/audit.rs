//! The audit log: one row per admin mutation, written with the change, none
//! for a refusal; filters and cursor; tampering found by verify.

use powerbank_tests::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn station(sn: &str) -> Value {
    json!({
        "serial_number": sn, "name": "Durbar Marg", "address": "Durbar Marg 1", "city": "Kathmandu",
        "latitude": 27.71, "longitude": 85.32, "total_slots": 4
    })
}

/// A call with a user agent, as a browser would send.
async fn call(s: &TestServer, method: Method, path: &str, token: &str, body: Value) -> Reply {
    let req = s.http.request(method, s.url(path)).bearer_auth(token).header("user-agent", "audit-test/1").json(&body);
    TestServer::read(req.send().await.unwrap()).await
}

async fn audit(s: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/admin/audit?{query}"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["results"].as_array().unwrap().clone()
}

#[tokio::test]
async fn each_admin_mutation_writes_one_row_with_changed_fields_and_refusals_write_none() {
    let s = TestServer::start().await;
    let admin = s.operator("admin").await;
    let support = s.operator("support").await;

    let r = call(&s, Method::POST, "/api/admin/stations", &admin.access, station("AUD-1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let request_id = r.headers["x-request-id"].to_str().unwrap().to_string();
    let r = call(&s, Method::PATCH, "/api/admin/stations/AUD-1", &admin.access, json!({"name": "New Road"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Refused: duplicate (409), invalid (400), wrong role (403), unknown (404).
    let r = call(&s, Method::POST, "/api/admin/stations", &admin.access, station("AUD-1")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = call(&s, Method::PATCH, "/api/admin/stations/AUD-1", &admin.access, json!({"latitude": 123.0})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = call(&s, Method::POST, "/api/admin/stations", &support.access, station("AUD-2")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(&s, Method::PATCH, "/api/admin/stations/NOPE", &admin.access, json!({"name": "Somewhere"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    let rows = audit(&s, &admin.access, "target_type=station").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (update, create) = (&rows[0], &rows[1]);
    assert_eq!(create["action"], "station.create");
    assert_eq!(create["target_id"], "AUD-1");
    assert_eq!(create["operator_id"], admin.user["id"]);
    assert_eq!(create["operator_email"], "admin@operators.test");
    assert_eq!(create["operator_role"], "admin");
    assert_eq!(create["request_id"], request_id.as_str());
    assert_eq!(create["ip"], "127.0.0.1");
    assert_eq!(create["user_agent"], "audit-test/1");
    assert!(create["before"].is_null(), "{create}");
    assert_eq!(create["after"]["serial_number"], "AUD-1");
    // An update keeps only what changed.
    assert_eq!(update["action"], "station.update");
    assert_eq!(update["before"]["name"], "Durbar Marg");
    assert_eq!(update["after"]["name"], "New Road");
    assert!(update["before"].get("city").is_none(), "unchanged fields are left out: {update}");
    assert_eq!(update["prev_hash"], create["hash"]);
}

#[tokio::test]
async fn settings_changes_are_audited_with_their_reason_and_a_missing_reason_is_refused_where_required() {
    let s = TestServer::start().await;
    let admin = s.operator("admin").await;
    let r = s
        .call(
            Method::PUT,
            "/api/admin/settings",
            Some(&admin.access),
            Some(json!({"values": {"payments.min_topup_paisa": 5_000}, "reason": "fewer tiny top-ups"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rows = audit(&s, &admin.access, "action=settings.update").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["reason"], "fewer tiny top-ups");
    assert_eq!(rows[0]["before"], json!({"payments.min_topup_paisa": 1_000}));
    assert_eq!(rows[0]["after"], json!({"payments.min_topup_paisa": 5_000}));

    // Account-changing: no reason, no change and no row.
    let support = s.operator("support").await;
    let owner = s.operator("owner").await;
    let path = format!("/api/admin/operators/{}/role", support.user["id"]);
    let r = s.post(&path, Some(&owner.access), json!({"role": "finance"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "reason_required"), "{}", r.body);
    let r = s.post(&path, Some(&owner.access), json!({"role": "finance", "reason": "   "})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "reason_required"), "{}", r.body);
    assert!(audit(&s, &admin.access, "target_type=operator").await.is_empty());
    assert_eq!(s.get("/api/admin/me", Some(&support.access)).await.body["role"], "support");
}

#[tokio::test]
async fn the_list_filters_by_operator_action_target_and_day_with_a_cursor() {
    let s = TestServer::start().await;
    let admin = s.operator("admin").await;
    let tech = s.operator("field_tech").await;
    for (i, who) in [&admin, &admin, &tech].into_iter().enumerate() {
        let r = s.post("/api/admin/stations", Some(&who.access), station(&format!("FIL-{i}"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = call(&s, Method::DELETE, "/api/admin/stations/FIL-1", &admin.access, json!(null)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let page = s.get("/api/admin/audit?action=station.create&limit=2", Some(&admin.access)).await;
    assert_eq!(page.body["results"].as_array().unwrap().len(), 2, "{}", page.body);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = audit(&s, &admin.access, &format!("action=station.create&limit=2&cursor={cursor}")).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["target_id"], "FIL-0");

    let one = audit(&s, &admin.access, "target_type=station&target_id=FIL-1").await;
    let actions: Vec<&str> = one.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["station.retire", "station.create"]);
    assert_eq!(one[0]["before"]["status"], "offline");
    assert_eq!(one[0]["after"]["status"], "retired");

    let by_tech = audit(&s, &admin.access, &format!("operator_id={}", tech.user["id"])).await;
    assert_eq!(by_tech.len(), 1);
    assert_eq!(by_tech[0]["operator_role"], "field_tech");
    assert!(audit(&s, &admin.access, "from=2001-01-01&to=2001-01-31").await.is_empty());
    assert_eq!(audit(&s, &admin.access, "from=2001-01-01").await.len(), 4);
    let bad = s.get("/api/admin/audit?from=yesterday", Some(&admin.access)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    // Reading the log is not for every role.
    assert_eq!(s.get("/api/admin/audit", Some(&tech.access)).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn verify_finds_an_edited_and_a_deleted_row() {
    let s = TestServer::start().await;
    let admin = s.operator("admin").await;
    for i in 0..4 {
        let r = s.post("/api/admin/stations", Some(&admin.access), station(&format!("TMP-{i}"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let clean = s.get("/api/admin/audit/verify", Some(&admin.access)).await;
    assert_eq!(clean.status, StatusCode::OK, "{}", clean.body);
    assert_eq!(clean.body["ok"], true, "{}", clean.body);
    assert_eq!(clean.body["rows_checked"], 4);
    powerbank::cli::verify_audit(&s.db_path()).unwrap();

    let raw = rusqlite::Connection::open(s.db_path()).unwrap();
    raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    // The table itself refuses changes...
    assert!(raw.execute("UPDATE admin_audit_log SET reason = 'nothing to see' WHERE id = 2", []).is_err());
    assert!(raw.execute("DELETE FROM admin_audit_log WHERE id = 3", []).is_err());
    // ...so someone with the file drops the triggers first.
    raw.execute_batch(
        "DROP TRIGGER admin_audit_log_no_update;
         DROP TRIGGER admin_audit_log_no_delete;
         UPDATE admin_audit_log SET target_id = 'SOMETHING-ELSE' WHERE id = 2;
         DELETE FROM admin_audit_log WHERE id = 3;",
    )
    .unwrap();

    let check = s.get("/api/admin/audit/verify", Some(&admin.access)).await;
    assert_eq!(check.body["ok"], false, "{}", check.body);
    let problems: Vec<(i64, &str)> = check.body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p["problem"].as_str().unwrap()))
        .collect();
    assert_eq!(problems, [(2, "edited"), (3, "deleted")], "{}", check.body);
    let cli = powerbank::cli::verify_audit(&s.db_path()).unwrap_err();
    assert!(cli.to_string().contains("tampered"), "{cli}");
}
