//! Station issues for operators (issue 13): the list across stations with
//! its filters, assigning to an enabled operator, priority, and the moves
//! open → in_progress → resolved | rejected; the reporter is notified when
//! it is resolved. Refusals change nothing and write no audit row.

use powerbank::core::Db;
use powerbank_tests::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::notifications;

const SN: &str = "KTM-THAMEL-01";
const OTHER_SN: &str = "KTM-DURBAR-01";

async fn report(s: &TestServer, token: &str, sn: &str, kind: &str) -> i64 {
    let r = s
        .post(
            &format!("/api/stations/{sn}/report-issue"),
            Some(token),
            json!({"issue_type": kind, "description": "slot 3 does not release the bank"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["results"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

async fn audit_count(s: &TestServer, token: &str, id: i64) -> usize {
    let r = s.get(&format!("/api/admin/audit?target_type=station_issue&target_id={id}&limit=100"), Some(token)).await;
    r.body["results"].as_array().unwrap().len()
}

#[tokio::test]
async fn operators_triage_station_issues_and_the_reporter_hears_of_the_resolution() {
    let s = TestServer::start().await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let owner = s.operator("owner").await;
    let tech = s.operator("field_tech").await;
    let support = s.operator("support").await;
    let finance = s.operator("finance").await;
    let reporter = s.register("9841800001").await;
    let stuck = report(&s, &reporter.access, SN, "slot_stuck").await;
    let dirty = report(&s, &reporter.access, OTHER_SN, "dirty").await;

    // The list, across stations, with its filters.
    let list = |q: &'static str| {
        let (s, token) = (&s, support.access.clone());
        async move {
            let r = s.get(&format!("/api/admin/station-issues?{q}"), Some(&token)).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            r.body
        }
    };
    assert_eq!(ids(&list("").await), [dirty, stuck]);
    assert_eq!(ids(&list("station=KTM-THAMEL-01").await), [stuck]);
    assert_eq!(ids(&list("type=dirty&status=open&priority=normal").await), [dirty]);
    assert!(ids(&list("priority=urgent").await).is_empty());
    let page = list("limit=1").await;
    assert_eq!(ids(&page), [dirty]);
    assert_eq!(page["results"][0]["reporter_phone"], "+9779841800001");
    for bad in ["status=closed", "priority=meh", "limit=500"] {
        let r = s.get(&format!("/api/admin/station-issues?{bad}"), Some(&support.access)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    assert_eq!(s.get("/api/admin/station-issues", Some(&finance.access)).await.status, StatusCode::FORBIDDEN);

    let path = format!("/api/admin/station-issues/{stuck}");
    let patch = |token: &String, body: Value| {
        let (s, path, token) = (&s, path.clone(), token.clone());
        async move { s.call(Method::PATCH, &path, Some(&token), Some(body)).await }
    };
    let tech_id = tech.user["id"].as_i64().unwrap();

    // Refusals: nothing changes, no audit row.
    let r = patch(&tech.access, json!({"status": "resolved", "resolution_note": "fixed"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "invalid_transition"), "{}", r.body);
    let r = patch(&tech.access, json!({"assignee_id": 999999})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let riders = reporter.user["id"].as_i64().unwrap();
    let r = patch(&tech.access, json!({"assignee_id": riders})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "an app user is no operator: {}", r.body);
    let r = patch(&tech.access, json!({"priority": "whenever"})).await;
    assert!(r.status.is_client_error(), "{}", r.body);
    let r = patch(&tech.access, json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s
        .call(Method::PATCH, "/api/admin/station-issues/999999", Some(&tech.access), Some(json!({"priority": "high"})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // A disabled operator cannot be assigned.
    let r = s
        .post(
            "/api/admin/operators",
            Some(&owner.access),
            json!({"email": "gone@operators.test", "password": "correct horse battery", "role": "field_tech"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let gone_id = r.body["id"].as_i64().unwrap();
    let r = s
        .post(&format!("/api/admin/operators/{gone_id}/disable"), Some(&owner.access), json!({"reason": "left"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = patch(&tech.access, json!({"assignee_id": gone_id})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "operator_disabled"), "{}", r.body);
    assert_eq!(audit_count(&s, &owner.access, stuck).await, 0);
    assert_eq!(list("").await["results"][1]["status"], "open");

    // Assign, prioritise, start work.
    let r = patch(&support.access, json!({"assignee_id": tech_id, "priority": "urgent"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["assignee_id"].as_i64(), r.body["priority"].as_str()), (Some(tech_id), Some("urgent")));
    assert_eq!(ids(&list("priority=urgent").await), [stuck]);
    let r = s.get(&format!("/api/admin/station-issues?assignee={tech_id}"), Some(&tech.access)).await;
    assert_eq!(ids(&r.body), [stuck]);
    let r = patch(&tech.access, json!({"status": "in_progress"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Resolving needs a note; then the reporter is told, once.
    let r = patch(&tech.access, json!({"status": "resolved"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(notifications(&s, &reporter.access, "").await.iter().all(|n| n["template"] != "station_issue_resolved"));
    let r = patch(&tech.access, json!({"status": "resolved", "resolution_note": "freed the latch of slot 3"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "resolved");
    assert!(r.body["resolved_at"].is_string());
    let told: Vec<Value> = notifications(&s, &reporter.access, "")
        .await
        .into_iter()
        .filter(|n| n["template"] == "station_issue_resolved")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0]["body"].as_str().unwrap().contains("freed the latch of slot 3"), "{}", told[0]);
    // The reporter sees it resolved; the public list no longer shows it.
    let mine = s.get("/api/stations/my-reports", Some(&reporter.access)).await;
    assert_eq!(mine.body["results"][1]["status"], "resolved", "{}", mine.body);
    let public = s.get(&format!("/api/stations/{SN}/issues"), None).await;
    assert!(ids(&public.body).is_empty());

    // Resolving a resolved issue is not a move; nor is anything else now.
    let r = patch(&tech.access, json!({"status": "resolved", "resolution_note": "again"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "invalid_transition"), "{}", r.body);
    let r = patch(&tech.access, json!({"priority": "low"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "issue_closed"), "{}", r.body);
    assert_eq!(audit_count(&s, &owner.access, stuck).await, 3);

    // An open issue may be rejected at once, with a note; nobody is notified.
    let other = format!("/api/admin/station-issues/{dirty}");
    let r = s
        .call(
            Method::PATCH,
            &other,
            Some(&support.access),
            Some(json!({"status": "rejected", "resolution_note": "duplicate"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "rejected");
    let told = notifications(&s, &reporter.access, "").await;
    assert_eq!(told.iter().filter(|n| n["template"] == "station_issue_resolved").count(), 1);
}
