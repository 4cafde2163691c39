//! Stations speaking another wire protocol than the host's JSON contract,
//! through station-protocol plugins, over a real broker: a simulated volinks
//! V1 cabinet (binary frames, JSON commands) rents and takes returns end to
//! end; frames it cannot decode are counted against it without stopping the
//! link; protocol plugins are swapped without a restart.

use std::{path::PathBuf, time::Duration};

use crate::support::renting::{balance, customer, initiate, rental};
use powerbank::core::{Db, now_ts};
use powerbank_tests::{
    Session, TestServer, both_brokers,
    mqtt::{Broker, broker_address, link_config, sim_config, start_sim_with_slots, wait_for},
};
use reqwest::{Method, StatusCode};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use station_sim::{SimSlot, SimStation};

const WAIT: Duration = Duration::from_secs(10);
/// Two volinks cabinets, known to the host by serial and on the wire by IMEI.
const HOME: (&str, &str) = ("LTP-JAWALAKHEL-VL1", "864601068419001");
const AWAY: (&str, &str) = ("KTM-BAGBAZAR-VL2", "864601068419002");

async fn server_with(
    broker: Broker,
    adjust: impl FnOnce(&mut powerbank::config::Config) + Send + 'static,
) -> TestServer {
    let link = link_config(broker, 60);
    let s = TestServer::start_with(move |c| {
        c.link = link;
        c.rentals.eject_timeout = Duration::from_secs(3);
        adjust(c);
    })
    .await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let admin = s.admin().await;
    assert!(
        wait_for(WAIT, || async {
            let st = s.get("/api/admin/station-link", Some(&admin.access)).await.body;
            st["state"] == "connected" && st["protocols"].as_array().is_some_and(|p| p.len() == 2)
        })
        .await,
        "{}",
        s.get("/api/admin/station-link", Some(&admin.access)).await.body
    );
    s
}

/// Registers a volinks cabinet with 8 holes.
async fn create_cabinet(s: &TestServer, admin: &Session, (sn, imei): (&str, &str)) {
    let r = s
        .post(
            "/api/admin/stations",
            Some(&admin.access),
            json!({
                "serial_number": sn, "name": format!("Cabinet {sn}"), "address": "Jawalakhel, Lalitpur",
                "city": "Lalitpur", "latitude": 27.6727, "longitude": 85.3137, "total_slots": 8,
                "protocol": "volinks-v1", "device_id": imei,
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// Six banks with volinks SNs (decimal numbers) and two free holes.
fn holes(first_sn: u32) -> Vec<SimSlot> {
    (1..=8u16)
        .map(|index| SimSlot {
            index,
            bank: (index <= 6).then(|| ((first_sn + u32::from(index)).to_string(), 80 + index as u8)),
        })
        .collect()
}

/// Starts a simulated cabinet and waits until the host shows its banks.
async fn start_cabinet(s: &TestServer, admin: &Session, (sn, _): (&str, &str), first_sn: u32) -> SimStation {
    let cabinet = start_sim_with_slots(s, admin, sn, sim_config(s), holes(first_sn)).await;
    assert!(
        wait_for(WAIT, || async {
            let st = s.get(&format!("/api/stations/{sn}"), None).await.body;
            st["status"] == "online"
                && st["slots"]
                    .as_array()
                    .is_some_and(|slots| slots.iter().filter(|slot| slot["power_bank_serial"].is_string()).count() == 6)
        })
        .await,
        "the cabinet's check frame was not applied: {}",
        s.get(&format!("/api/stations/{sn}"), None).await.body
    );
    cabinet
}

async fn station_link(s: &TestServer, admin: &Session, sn: &str) -> Value {
    s.get(&format!("/api/admin/stations/{sn}/link"), Some(&admin.access)).await.body
}

/// Records what the host publishes to a cabinet, as the cabinet sees it: a
/// second connection with the cabinet's own login (volinks firmware uses the
/// bare IMEI as client id, the simulator `station-{imei}`).
async fn spy(s: &TestServer, admin: &Session, (sn, imei): (&str, &str)) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let link = &s.config().link;
    let (host, port) = broker_address(link);
    let creds = s.get(&format!("/api/admin/stations/{sn}/mqtt-credentials"), Some(&admin.access)).await.body;
    let mut options = MqttOptions::new(imei, host, port);
    if let Some(password) = creds["password"].as_str() {
        options.set_credentials(imei, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let topic = format!("{}/powerbank/{imei}/user/get", link.mountpoint);
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _keep = client;
        let mut subscribed = Some(subscribed_tx);
        while let Ok(event) = eventloop.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let _ = tx.send(serde_json::from_slice(&p.payload).unwrap_or(Value::Null));
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(WAIT, subscribed_rx).await.expect("spy subscribed").unwrap();
    rx
}

both_brokers!(a_volinks_cabinet_rents_by_serial_and_takes_a_late_return_elsewhere);

async fn a_volinks_cabinet_rents_by_serial_and_takes_a_late_return_elsewhere(broker: Broker) {
    let s = server_with(broker, |_| {}).await;
    let admin = s.admin().await;
    create_cabinet(&s, &admin, HOME).await;
    create_cabinet(&s, &admin, AWAY).await;
    let home = start_cabinet(&s, &admin, HOME, 85_021_600).await;
    let away = start_cabinet(&s, &admin, AWAY, 85_031_600).await;
    let mut commands = spy(&s, &admin, HOME).await;
    let user = customer(&s, "9841500001", 20_000).await;

    let r = initiate(&s, &user, HOME.0, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    assert!(bank.starts_with("8502160"), "one of the cabinet's banks: {bank}");
    assert!(home.slots().iter().all(|slot| slot.bank.as_ref().map(|b| &b.0) != Some(&bank)), "it left its hole");
    // The eject went out as the vendor's popup_sn, naming the bank, with a TTL.
    let command = tokio::time::timeout(WAIT, commands.recv()).await.expect("a command").unwrap();
    assert_eq!(command["cmd"], "popup_sn", "{command}");
    assert_eq!(command["data"], bank.as_str(), "{command}");
    assert_eq!(command["ttl"], "30", "{command}");
    let sent_at: i64 = command["timestamp"].as_str().unwrap().parse().unwrap();
    assert!((now_ts() - sent_at).abs() < 30, "{command}");
    assert_eq!(balance(&s, &user).await, 15_000);

    // Returned at the other cabinet, two and a bit hours late.
    let db = Db::open(&s.db_path(), 1).unwrap();
    let started = now_ts() - (3 * 3600 + 600);
    db.write(move |tx| {
        Ok(tx.execute(
            "UPDATE rentals SET started_at = ?2, due_at = ?2 + 3600 WHERE id = ?1",
            rusqlite::params![id, started],
        )?)
    })
    .await
    .unwrap();
    away.return_bank(7, &bank, 64).await.unwrap();
    assert!(
        wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "completed" }).await,
        "{}",
        rental(&s, &user, id).await
    );
    let done = rental(&s, &user, id).await;
    assert_eq!(done["return_station_sn"], AWAY.0);
    assert_eq!(done["overdue_paisa"], 1_500);
    assert_eq!(balance(&s, &user).await, 15_000 - 1_500);
    let away_detail = s.get(&format!("/api/stations/{}", AWAY.0), None).await.body;
    let hole7 = away_detail["slots"].as_array().unwrap().iter().find(|slot| slot["slot_index"] == 7).unwrap().clone();
    assert_eq!(hole7["power_bank_serial"], bank.as_str(), "{away_detail}");
    assert_eq!(hole7["battery_level"], 64);

    for (sn, _) in [HOME, AWAY] {
        let link = station_link(&s, &admin, sn).await;
        assert_eq!(link["protocol"], "volinks-v1", "{link}");
        assert_eq!(link["protocol_loaded"], true);
        assert_eq!(link["traffic"]["decode_failures"], 0, "{link}");
        assert!(link["traffic"]["messages_applied"].as_u64() >= Some(2), "{link}");
    }
}

both_brokers!(a_volinks_pop_up_failure_refunds_and_names_the_cabinets_reason);

async fn a_volinks_pop_up_failure_refunds_and_names_the_cabinets_reason(broker: Broker) {
    let s = server_with(broker, |_| {}).await;
    let admin = s.admin().await;
    create_cabinet(&s, &admin, HOME).await;
    let mut jammed = sim_config(&s);
    jammed.eject_failure_rate = 1.0;
    jammed.volinks_failure_code = 0x12;
    let _home = start_sim_with_slots(&s, &admin, HOME.0, jammed, holes(85_021_600)).await;
    assert!(
        wait_for(WAIT, || async { s.get(&format!("/api/stations/{}", HOME.0), None).await.body["status"] == "online" })
            .await
    );
    let user = customer(&s, "9841500002", 10_000).await;

    let r = initiate(&s, &user, HOME.0, "wallet", None).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert_eq!(r.error_code(), "eject_failed");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("0x12"), "the cabinet's state code reaches the user: {message}");
    let id = r.body["error"]["details"]["rental_id"].as_i64().unwrap();
    assert_eq!(rental(&s, &user, id).await["status"], "failed");
    assert_eq!(balance(&s, &user).await, 10_000, "money back");
    let detail = s.get(&format!("/api/stations/{}", HOME.0), None).await.body;
    assert!(detail["slots"].as_array().unwrap().iter().all(|slot| slot["status"] != "reserved"), "{detail}");
}

both_brokers!(undecodable_frames_are_counted_against_the_cabinet_which_keeps_working);

async fn undecodable_frames_are_counted_against_the_cabinet_which_keeps_working(broker: Broker) {
    let s = server_with(broker, |_| {}).await;
    let admin = s.admin().await;
    create_cabinet(&s, &admin, HOME).await;
    let cabinet = start_cabinet(&s, &admin, HOME, 85_021_600).await;
    let before = s.get("/api/admin/station-link", Some(&admin.access)).await.body;

    let bad: Vec<Vec<u8>> = vec![
        vec![],                                                     // empty
        vec![0xA8, 0x00],                                           // truncated header
        vec![0xA8, 0x00, 0x0F, 0x40, 0x01, 0x02],                   // truncated return
        vec![0x00; 40],                                             // wrong head
        b"{\"cmd\":\"check\"}".to_vec(),                            // JSON on a binary topic
        vec![0xA8, 0xFF, 0xFF, 0x40, 0x01, 0x02, 0x03, 0x04, 0x05], // length far beyond the payload
        (0..=255u8).cycle().take(4_000).collect(),                  // noise
    ];
    for frame in &bad {
        cabinet.publish_raw("update", frame.clone()).await.unwrap();
    }
    cabinet.publish_raw("heart", vec![0xA8, 0x00]).await.unwrap();
    let expected = bad.len() as u64 + 1;
    assert!(
        wait_for(WAIT, || async {
            station_link(&s, &admin, HOME.0).await["traffic"]["decode_failures"].as_u64() == Some(expected)
        })
        .await,
        "{}",
        station_link(&s, &admin, HOME.0).await
    );
    let link = station_link(&s, &admin, HOME.0).await;
    assert!(link["traffic"]["last_decode_error"].as_str().is_some_and(|e| !e.is_empty()), "{link}");
    let after = s.get("/api/admin/station-link", Some(&admin.access)).await.body;
    assert_eq!(after["state"], "connected");
    assert_eq!(after["malformed"].as_u64().unwrap() - before["malformed"].as_u64().unwrap(), expected, "{after}");
    assert_eq!(after["plugin_failures"], 0, "no garbage made the plugin fail: {after}");

    // The cabinet still works: a customer rents from it.
    let user = customer(&s, "9841500003", 10_000).await;
    let r = initiate(&s, &user, HOME.0, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// plugins.toml as in the repository, with absolute paths, the gateways left
/// out and the volinks protocol switched on or off.
fn write_plugins_toml(dir: &std::path::Path, volinks_enabled: bool) -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(repo.join("plugins.toml")).unwrap();
    let mut out = String::new();
    for section in text.split("\n[").collect::<Vec<_>>() {
        let gateway = ["plugins.khalti", "plugins.esewa", "plugins.stripe"].iter().any(|g| section.starts_with(g));
        if gateway {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n[");
        }
        out.push_str(section);
        if section.starts_with("plugins.volinks-v1]") {
            out.push_str(&format!("enabled = {volinks_enabled}\n"));
        }
    }
    let dist = repo.join("plugins/dist").canonicalize().unwrap();
    let out = out.replace("path = \"plugins/dist/", &format!("path = \"{}/", dist.display()));
    let file = dir.join("plugins.toml");
    std::fs::write(&file, out).unwrap();
    file
}

#[tokio::test]
async fn protocol_plugins_are_swapped_without_a_restart() {
    let s = server_with(Broker::Embedded, |c| {
        c.plugins_path = write_plugins_toml(&c.data_dir, true);
    })
    .await;
    let admin = s.admin().await;
    create_cabinet(&s, &admin, HOME).await;
    let cabinet = start_cabinet(&s, &admin, HOME, 85_021_600).await;

    // The operator switches the volinks protocol off: its topics are dropped.
    write_plugins_toml(&s.config().data_dir, false);
    let r = s.post("/api/admin/plugins/reload", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        wait_for(WAIT, || async { station_link(&s, &admin, HOME.0).await["protocol_loaded"] == false }).await,
        "{}",
        station_link(&s, &admin, HOME.0).await
    );
    let protocols = s.get("/api/admin/station-link", Some(&admin.access)).await.body["protocols"].clone();
    assert_eq!(protocols.as_array().unwrap().len(), 1, "{protocols}");
    assert_eq!(protocols[0]["protocol"], "native");
    // A return while it is off reaches nobody.
    cabinet.return_bank(7, "85029999", 50).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let detail = s.get(&format!("/api/stations/{}", HOME.0), None).await.body;
    assert!(detail["slots"][6]["power_bank_serial"].is_null(), "{detail}");

    // Back on, without a restart: the cabinet's frames are decoded again.
    write_plugins_toml(&s.config().data_dir, true);
    let r = s.post("/api/admin/plugins/reload", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(wait_for(WAIT, || async { station_link(&s, &admin, HOME.0).await["protocol_loaded"] == true }).await);
    // Give the broker the new subscription before the cabinet speaks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    cabinet.return_bank(8, "85029998", 51).await.unwrap();
    assert!(
        wait_for(WAIT, || async {
            s.get(&format!("/api/stations/{}", HOME.0), None).await.body["slots"][7]["power_bank_serial"] == "85029998"
        })
        .await,
        "{}",
        s.get(&format!("/api/stations/{}", HOME.0), None).await.body
    );
}

#[tokio::test]
async fn stations_are_registered_with_a_configured_protocol_and_a_unique_device_id() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    create_cabinet(&s, &admin, HOME).await;
    let body = |sn: &str, extra: Value| {
        let mut b = json!({
            "serial_number": sn, "name": "Cabinet", "address": "Patan, Lalitpur", "city": "Lalitpur",
            "latitude": 27.67, "longitude": 85.32,
        });
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    let r = s.post("/api/admin/stations", Some(&admin.access), body("KTM-X-01", json!({"protocol": "modbus"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s.post("/api/admin/stations", Some(&admin.access), body("KTM-X-01", json!({"device_id": HOME.1}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.error_code(), "duplicate_device_id");
    let r = s.post("/api/admin/stations", Some(&admin.access), body("KTM-X-01", json!({"device_id": "a/b"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s.post("/api/admin/stations", Some(&admin.access), body("KTM-X-01", json!({}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let link = station_link(&s, &admin, "KTM-X-01").await;
    assert_eq!(link["protocol"], "native");
    assert_eq!(link["device_id"], "KTM-X-01");
    let r =
        s.post("/api/admin/stations", Some(&admin.access), body("KTM-Z-01", json!({"device_id": "KTM-X-01"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "KTM-X-01's serial is its wire name: {}", r.body);
    // Switching an installed station to the volinks cabinet that replaced it.
    let r = s
        .call(
            Method::PATCH,
            "/api/admin/stations/KTM-X-01",
            Some(&admin.access),
            Some(json!({"protocol": "volinks-v1", "device_id": "864601068412901"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let creds = s.get("/api/admin/stations/KTM-X-01/mqtt-credentials", Some(&admin.access)).await.body;
    assert_eq!(creds["protocol"], "volinks-v1");
    assert_eq!(creds["username"], "864601068412901");
}
