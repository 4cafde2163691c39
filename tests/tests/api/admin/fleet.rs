//! The fleet for operators (issue 13): power banks with where each one is,
//! a bank's history, and status changes with a reason. A bank in
//! maintenance is never offered for rent, even when the station reports it
//! seated again: shown with a simulated station on the real MQTT link whose
//! only charged bank is in maintenance.

use powerbank_tests::{
    TestServer,
    fake_gateways::Gateways,
    mqtt::{sim_config, start_sim_with_slots, wait_for},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use station_sim::SimSlot;

use crate::support::renting::{SN, WAIT, customer, initiate, rows, server};

async fn audit_count(s: &TestServer, token: &str, serial: &str) -> usize {
    let r = s.get(&format!("/api/admin/audit?target_type=power_bank&target_id={serial}&limit=100"), Some(token)).await;
    r.body["results"].as_array().unwrap().len()
}

async fn bank(s: &TestServer, token: &str, id: i64) -> Value {
    let r = s.get(&format!("/api/admin/power-banks/{id}"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn available_at(s: &TestServer, sn: &str) -> i64 {
    s.get(&format!("/api/stations/{sn}"), None).await.body["available_power_banks"].as_i64().unwrap()
}

#[tokio::test]
async fn a_bank_in_maintenance_is_never_ejected_for_a_rental_and_goes_back_into_service() {
    let gateways = Gateways::start().await;
    let s = server(&gateways).await;
    let tech = s.operator("field_tech").await;
    let support = s.operator("support").await;
    let admin = s.admin().await;

    // The station holds one charged bank (slot 1) and one nearly empty one
    // (slot 2); every other slot is empty.
    let detail = s.get(&format!("/api/stations/{SN}"), None).await.body;
    let slots: Vec<Value> = detail["slots"].as_array().unwrap().clone();
    let serial_at = |i: usize| slots[i]["power_bank_serial"].as_str().unwrap().to_string();
    let (charged, flat) = (serial_at(0), serial_at(1));
    let sim_slots: Vec<SimSlot> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| SimSlot {
            index: slot["slot_index"].as_u64().unwrap() as u16,
            bank: match i {
                0 => Some((charged.clone(), 95)),
                1 => Some((flat.clone(), 5)),
                _ => None,
            },
        })
        .collect();
    let sim = start_sim_with_slots(&s, &admin, SN, sim_config(&s), sim_slots).await;
    assert!(wait_for(WAIT, || async { available_at(&s, SN).await == 1 }).await, "the station reported its slots");

    // The list: where each bank is.
    let r = s.get(&format!("/api/admin/power-banks?station={SN}&status=in_slot&limit=100"), Some(&tech.access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let listed = r.body["results"].as_array().unwrap();
    let row = listed.iter().find(|b| b["serial_number"] == charged.as_str()).unwrap();
    let flat_id = listed.iter().find(|b| b["serial_number"] == flat.as_str()).unwrap()["id"].as_i64().unwrap();
    let id = row["id"].as_i64().unwrap();
    assert_eq!((row["station_sn"].as_str(), row["slot_index"].as_i64()), (Some(SN), slots[0]["slot_index"].as_i64()));
    assert_eq!(row["battery_level"], 95);
    assert!(row["open_rental"].is_null());
    for bad in ["status=broken", "limit=0"] {
        let r = s.get(&format!("/api/admin/power-banks?{bad}"), Some(&tech.access)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    assert_eq!(s.get("/api/admin/power-banks", Some(&support.access)).await.status, StatusCode::FORBIDDEN);

    // Refusals: no reason, unknown bank, no change; no audit row.
    let status = format!("/api/admin/power-banks/{id}/status");
    let r = s.post(&status, Some(&tech.access), json!({"status": "maintenance"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "reason_required"), "{}", r.body);
    let r = s
        .post(
            "/api/admin/power-banks/999999/status",
            Some(&tech.access),
            json!({"status": "maintenance", "reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = s.post(&status, Some(&tech.access), json!({"status": "available", "reason": "x"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "status_unchanged"), "{}", r.body);
    let r = s.post(&status, Some(&tech.access), json!({"status": "lost", "reason": "x"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "bank_in_slot"), "{}", r.body);
    let r = s.post(&status, Some(&tech.access), json!({"status": "broken", "reason": "x"})).await;
    assert!(r.status.is_client_error(), "{}", r.body);
    assert_eq!(audit_count(&s, &admin.access, &charged).await, 0);
    assert_eq!(s.get("/api/admin/power-banks/999999", Some(&tech.access)).await.status, StatusCode::NOT_FOUND);

    // Into maintenance: the station has nothing to rent, and nothing is ejected.
    let r = s.post(&status, Some(&tech.access), json!({"status": "maintenance", "reason": "swollen casing"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "maintenance");
    assert_eq!(available_at(&s, SN).await, 0);
    let user = customer(&s, "9841900101", 20_000).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "no_power_bank"), "{}", r.body);
    assert!(sim.slots().iter().any(|slot| slot.bank.as_ref().map(|b| b.0.as_str()) == Some(charged.as_str())));

    // The station reports the bank seated again (a return of it, battery
    // 97): it stays in maintenance.
    let seated = station_codecs::native::StationEvent::Returned {
        slot: slots[0]["slot_index"].as_u64().unwrap() as u16,
        power_bank: charged.clone(),
        battery: Some(97),
    };
    sim.publish_event(&seated).await.unwrap();
    assert!(wait_for(WAIT, || async { bank(&s, &tech.access, id).await["battery_level"] == 97 }).await);
    assert_eq!(bank(&s, &tech.access, id).await["status"], "maintenance");
    // The return job that event queued has run (it finds no rental to close),
    // so it cannot meet the rental started below.
    let pending = || rows(&s, "SELECT id FROM jobs WHERE kind = 'rentals.returned' AND status != 'done'", []);
    assert!(wait_for(WAIT, || async { pending().is_empty() }).await, "{:?}", pending());
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.error_code(), "no_power_bank", "{}", r.body);

    // Back into service: it is seated, so `in_slot`, and the next rental gets it.
    let r = s.post(&status, Some(&tech.access), json!({"status": "available", "reason": "checked, fine"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "in_slot");
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["power_bank"], charged.as_str());
    let rental_id = r.body["id"].as_i64().unwrap();

    // Out on a rental: changed only through the rental.
    let r = s.post(&status, Some(&tech.access), json!({"status": "damaged", "reason": "user called"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "bank_rented"), "{}", r.body);
    let d = bank(&s, &tech.access, id).await;
    assert_eq!(d["status"], "rented");
    assert_eq!(d["open_rental"]["id"], rental_id);
    assert!(d["station_sn"].is_null());
    assert_eq!(d["rentals_total"], 1);
    // Events of the same second keep no particular order between kinds.
    let events = d["history"].as_array().unwrap();
    let changes: Vec<&Value> = events.iter().filter(|e| e["kind"] == "status_changed").collect();
    let to: Vec<&str> = changes.iter().map(|e| e["to_status"].as_str().unwrap()).collect();
    assert_eq!(to, ["maintenance", "in_slot"], "{}", d["history"]);
    assert_eq!(changes[0]["reason"], "swollen casing");
    assert_eq!(changes[0]["operator_id"], tech.user["id"]);
    let rented: Vec<&Value> = events.iter().filter(|e| e["kind"] == "rented").collect();
    assert_eq!((rented.len(), rented[0]["rental_id"].as_i64()), (1, Some(rental_id)));
    assert_eq!(audit_count(&s, &admin.access, &charged).await, 2);

    // Retired is for good.
    let flat_status = format!("/api/admin/power-banks/{flat_id}/status");
    let r = s.post(&flat_status, Some(&tech.access), json!({"status": "retired", "reason": "end of life"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s.post(&flat_status, Some(&tech.access), json!({"status": "available", "reason": "oops"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "bank_retired"), "{}", r.body);
    let r = s.get("/api/admin/power-banks?status=retired", Some(&tech.access)).await;
    assert_eq!(r.body["results"][0]["serial_number"], flat.as_str());
}
