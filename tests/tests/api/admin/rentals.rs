//! Rentals for operators (issue 13): the filtered list, a rental's timeline,
//! force-complete through the real return path, mark-lost through the
//! sweep's path, waiving a due, and rental issue triage; over HTTP with a
//! simulated station on the real MQTT link. Refusals change nothing and
//! write no audit row.

use powerbank::core::now_ts;
use powerbank_tests::{TestServer, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    notifications,
    renting::{OTHER_SN, SN, WAIT, balance, customer, initiate, rental, rows, server, sql, station},
};

async fn audit_count(s: &TestServer, token: &str, kind: &str, id: i64) -> usize {
    let r = s.get(&format!("/api/admin/audit?target_type={kind}&target_id={id}&limit=100"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["results"].as_array().unwrap().len()
}

fn ids(page: &Value) -> Vec<i64> {
    page["results"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

/// Puts the rental's due time `minutes` in the past (started an hour before).
fn overdue_by(s: &TestServer, id: i64, minutes: i64) {
    let due = now_ts() - minutes * 60;
    sql(s, "UPDATE rentals SET started_at = ?2 - 3600, due_at = ?2 WHERE id = ?1", rusqlite::params![id, due]);
}

fn bank_status(s: &TestServer, serial: &str) -> (Value, Value) {
    let row = rows(
        s,
        "SELECT pb.status, st.serial_number FROM power_banks pb LEFT JOIN stations st ON st.id = pb.station_id
         WHERE pb.serial_number = ?1",
        [serial],
    );
    (row[0][0].clone(), row[0][1].clone())
}

#[tokio::test]
async fn force_complete_closes_a_rental_as_a_real_return_and_refuses_anything_else() {
    let gateways = Gateways::start().await;
    let s = server(&gateways).await;
    let _home = station(&s, SN, |_| {}).await;
    let admin = s.operator("admin").await;
    let support = s.operator("support").await;
    let user = customer(&s, "9841700001", 20_000).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    // 90 minutes late: the return path prices the overdue time.
    overdue_by(&s, id, 90);
    let before = balance(&s, &user).await;
    let path = format!("/api/admin/rentals/{id}/force-complete");

    // Refusals: no reason, unknown rental or station, a role without it.
    let r = s.post(&path, Some(&admin.access), json!({"station_sn": OTHER_SN})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "reason_required"), "{}", r.body);
    let r = s
        .post(
            "/api/admin/rentals/999999/force-complete",
            Some(&admin.access),
            json!({"station_sn": OTHER_SN, "reason": "lost event"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = s.post(&path, Some(&admin.access), json!({"station_sn": "NOPE-01", "reason": "lost event"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = s.post(&path, Some(&support.access), json!({"station_sn": OTHER_SN, "reason": "lost event"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "role_not_allowed"), "{}", r.body);
    assert_eq!(rental(&s, &user, id).await["status"], "active");
    assert_eq!(audit_count(&s, &admin.access, "rental", id).await, 0);

    let r = s
        .post(&path, Some(&admin.access), json!({"station_sn": OTHER_SN, "reason": "returned event never arrived"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["return_station_sn"], OTHER_SN);
    let overdue = r.body["overdue_paisa"].as_i64().unwrap();
    assert!(overdue > 0, "the overdue time is charged as on a real return: {}", r.body);
    assert_eq!(balance(&s, &user).await, before - overdue);
    assert_eq!(r.body["is_returned_on_time"], false);
    // The bank is at that station, in service, until the station reports its slot.
    assert_eq!(bank_status(&s, &bank), (json!("available"), json!(OTHER_SN)));
    assert!(
        wait_for(WAIT, || async {
            notifications(&s, &user.access, "?limit=100").await.iter().any(|n| n["template"] == "rental_returned")
        })
        .await
    );
    assert_eq!(audit_count(&s, &admin.access, "rental", id).await, 1);

    // A completed rental cannot be completed again.
    let r = s.post(&path, Some(&admin.access), json!({"station_sn": OTHER_SN, "reason": "again"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "not_active"), "{}", r.body);
    assert_eq!(audit_count(&s, &admin.access, "rental", id).await, 1);

    // The timeline holds it all, oldest first.
    let d = s.get(&format!("/api/admin/rentals/{id}"), Some(&support.access)).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let kinds: Vec<&str> = d.body["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in ["initiated", "eject_requested", "ejected", "started", "returned", "charge", "operator_action"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let times: Vec<&str> = d.body["timeline"].as_array().unwrap().iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "in time order");
    let charges: i64 = d.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "charge")
        .map(|e| e["amount_paisa"].as_i64().unwrap())
        .sum();
    assert_eq!(charges, 5_000 + overdue, "the rental and its overdue charge");
    assert_eq!(s.get("/api/admin/rentals/999999", Some(&support.access)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mark_lost_then_waive_the_due_unblocks_the_next_rental_and_the_list_filters() {
    let gateways = Gateways::start().await;
    let s = server(&gateways).await;
    let _home = station(&s, SN, |_| {}).await;
    let admin = s.operator("admin").await;
    let finance = s.operator("finance").await;
    let user = customer(&s, "9841700011", 20_000).await;
    let uid = user.user["id"].as_i64().unwrap();
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    overdue_by(&s, id, 90);

    // The list: filters by status, overdue, station, user, package, dates.
    let list = |q: String| {
        let (s, token) = (&s, finance.access.clone());
        async move {
            let r = s.get(&format!("/api/admin/rentals?{q}"), Some(&token)).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            ids(&r.body)
        }
    };
    assert_eq!(list(format!("user_id={uid}")).await, [id]);
    assert_eq!(list(format!("user_id={uid}&overdue=true&status=active&station={SN}&package_id=1")).await, [id]);
    assert!(list(format!("user_id={uid}&station={OTHER_SN}")).await.is_empty());
    assert!(list(format!("user_id={uid}&status=lost")).await.is_empty());
    assert!(list(format!("user_id={uid}&to=2001-01-01")).await.is_empty());
    let page = s.get(&format!("/api/admin/rentals?user_id={uid}"), Some(&finance.access)).await;
    assert_eq!(page.body["results"][0]["overdue"], true);
    assert_eq!(page.body["results"][0]["user_phone"], "+9779841700011");
    for bad in ["status=gone", "from=2020-13-01", "limit=0", "cursor=zz"] {
        let r = s.get(&format!("/api/admin/rentals?{bad}"), Some(&finance.access)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }

    // Mark lost: the sweep's path (penalty and overdue charged, the rest due).
    let path = format!("/api/admin/rentals/{id}/mark-lost");
    let r = s.post(&path, Some(&admin.access), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "reason_required"), "{}", r.body);
    let r = s.post(&path, Some(&finance.access), json!({"reason": "gone"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = s.post(&path, Some(&admin.access), json!({"reason": "user says it was stolen"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "lost");
    assert_eq!(r.body["lost_penalty_paisa"], 500_000);
    let due = r.body["unpaid_due_paisa"].as_i64().unwrap();
    assert!(due > 0, "{}", r.body);
    assert_eq!(balance(&s, &user).await, 0, "the wallet paid what it could");
    assert_eq!(bank_status(&s, &bank).0, "lost");
    let history = rows(&s, "SELECT to_status, reason FROM power_bank_status_changes WHERE rental_id = ?1", [id]);
    assert_eq!(history, [[json!("lost"), json!("user says it was stolen")]]);
    let r = s.post(&path, Some(&admin.access), json!({"reason": "again"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "not_active"), "{}", r.body);
    assert_eq!(list(format!("user_id={uid}&status=lost")).await, [id]);
    assert!(
        wait_for(WAIT, || async {
            notifications(&s, &user.access, "?limit=100").await.iter().any(|n| n["template"] == "rental_lost")
        })
        .await
    );

    // The due blocks the next rental until waived.
    let blocked = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(blocked.error_code(), "unpaid_dues", "{}", blocked.body);
    let waive = format!("/api/admin/rentals/{id}/waive-due");
    let audits = audit_count(&s, &admin.access, "rental", id).await;
    let r = s.post(&waive, Some(&finance.access), json!({"amount_paisa": 1000})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "reason_required"), "{}", r.body);
    let r = s.post(&waive, Some(&finance.access), json!({"amount_paisa": due + 1, "reason": "too much"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s.post(&waive, Some(&finance.access), json!({"amount_paisa": 0, "reason": "zero"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = s.post("/api/admin/rentals/999999/waive-due", Some(&finance.access), json!({"reason": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(audit_count(&s, &admin.access, "rental", id).await, audits);

    let r = s.post(&waive, Some(&finance.access), json!({"amount_paisa": 1000, "reason": "goodwill"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["due_before_paisa"].as_i64(), r.body["due_after_paisa"].as_i64()),
        (Some(due), Some(due - 1000))
    );
    let r = s.post(&waive, Some(&finance.access), json!({"reason": "the bank was stolen from the user"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["due_after_paisa"], 0);
    assert_eq!(balance(&s, &user).await, 0, "a waiver moves no money");
    let r = s.post(&waive, Some(&finance.access), json!({"reason": "again"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "no_due"), "{}", r.body);
    assert_eq!(audit_count(&s, &admin.access, "rental", id).await, audits + 2);

    // Nothing blocks the next rental now (paid from a fresh top-up).
    crate::support::renting::wallet_add(&s, &user, 10_000).await;
    let next = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(next.status, StatusCode::CREATED, "{}", next.body);

    let d = s.get(&format!("/api/admin/rentals/{id}"), Some(&finance.access)).await;
    let kinds: Vec<&str> = d.body["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in ["lost", "charge", "due_waived", "operator_action"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "due_waived").count(), 2);
}

#[tokio::test]
async fn rental_issue_reports_are_triaged_through_allowed_moves_only() {
    let gateways = Gateways::start().await;
    let s = server(&gateways).await;
    let _home = station(&s, SN, |_| {}).await;
    let support = s.operator("support").await;
    let tech = s.operator("field_tech").await;
    let admin = s.operator("admin").await;
    let user = customer(&s, "9841700021", 20_000).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    let rental_id = r.body["id"].as_i64().unwrap();
    let r = s
        .post(
            &format!("/api/rentals/{rental_id}/report-issue"),
            Some(&user.access),
            json!({"issue_type": "not_charging", "description": "the bank does not charge my phone"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();

    let r = s.get(&format!("/api/admin/rental-issues?status=open&rental_id={rental_id}"), Some(&support.access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(ids(&r.body), [id]);
    assert_eq!(r.body["results"][0]["issue_type"], "not_charging");
    let r = s.get("/api/admin/rental-issues?issue_type=billing", Some(&support.access)).await;
    assert!(ids(&r.body).is_empty());
    assert_eq!(
        s.get("/api/admin/rental-issues?status=bogus", Some(&support.access)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(s.get("/api/admin/rental-issues", Some(&tech.access)).await.status, StatusCode::FORBIDDEN);

    let path = format!("/api/admin/rental-issues/{id}");
    let patch = |body: Value| s.call(Method::PATCH, &path, Some(&support.access), Some(body));
    let r = patch(json!({"status": "resolved", "note": "swapped the bank"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "invalid_transition"), "{}", r.body);
    let r = patch(json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s
        .call(Method::PATCH, "/api/admin/rental-issues/999999", Some(&support.access), Some(json!({"note": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(audit_count(&s, &admin.access, "rental_issue", id).await, 0);

    let r = patch(json!({"status": "in_progress", "note": "calling the user"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["note"].as_str()), (Some("in_progress"), Some("calling the user")));
    let r = patch(json!({"status": "resolved"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a resolution needs a note: {}", r.body);
    let r = patch(json!({"status": "resolved", "note": "refunded the hour"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["resolved_at"].is_string());
    let r = patch(json!({"status": "rejected", "note": "changed my mind"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "invalid_transition"), "{}", r.body);
    let r = patch(json!({"note": "late note"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "issue_closed"), "{}", r.body);
    assert_eq!(audit_count(&s, &admin.access, "rental_issue", id).await, 2);
}
