//! The MQTT station link over a real broker: the embedded one by default, or
//! the broker in `POWERBANK_TEST_MQTT_URL` (CI points it at Mosquitto).

use std::{process::Stdio, time::Duration};

use powerbank::config::{LinkConfig, MqttMode};
use powerbank_tests::{
    TestServer, both_brokers,
    mqtt::{Broker, free_port, link_config, linked_server, sim_config, start_sim, wait_for},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use station_codecs::native::StationEvent;

const SN: &str = "KTM-THAMEL-01";
const WAIT: Duration = Duration::from_secs(10);

async fn station(s: &TestServer, sn: &str) -> Value {
    s.get(&format!("/api/stations/{sn}"), None).await.body
}

async fn link_status(s: &TestServer, token: &str) -> Value {
    s.get("/api/admin/station-link", Some(token)).await.body
}

both_brokers!(status_reports_become_station_state_and_eject_is_acknowledged);

async fn status_reports_become_station_state_and_eject_is_acknowledged(broker: Broker) {
    let s = linked_server(link_config(broker, 60)).await;
    let admin = s.admin().await;
    // Start from a station the host believes offline with a stale firmware.
    let mut sim = sim_config(&s);
    sim.firmware = "sim-2.3.4".into();
    let station_sim = start_sim(&s, &admin, SN, sim).await;
    assert!(
        wait_for(WAIT, || async { station(&s, SN).await["firmware_version"] == "sim-2.3.4" }).await,
        "status not applied: {}",
        station(&s, SN).await
    );
    let before = station(&s, SN).await;
    assert_eq!(before["status"], "online");
    let bank = before["slots"][0]["power_bank_serial"].as_str().unwrap().to_string();

    let r = s.post(&format!("/api/admin/stations/{SN}/eject"), Some(&admin.access), json!({"slot": 1})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["power_bank"], bank.as_str());
    let after = station(&s, SN).await;
    assert_eq!(after["slots"][0]["status"], "empty");
    assert_eq!(after["available_power_banks"].as_i64(), before["available_power_banks"].as_i64().map(|n| n - 1));

    // The bank comes back into another station's slot: a return event.
    let other = start_sim(&s, &admin, "KTM-DURBAR-01", sim_config(&s)).await;
    other.return_bank(7, &bank, 64).await.unwrap();
    assert!(
        wait_for(WAIT, || async {
            station(&s, "KTM-DURBAR-01").await["slots"][6]["power_bank_serial"] == bank.as_str()
        })
        .await
    );
    // An empty slot cannot eject: the station says so and the API answers 502.
    let r = s.post(&format!("/api/admin/stations/{SN}/eject"), Some(&admin.access), json!({"slot": 1})).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.error_code(), "eject_failed");
    station_sim.stop().await;
    other.stop().await;
}

both_brokers!(eject_timeout_and_non_admins);

async fn eject_timeout_and_non_admins(broker: Broker) {
    let s = linked_server(link_config(broker, 60)).await;
    let admin = s.admin().await;
    let mut config = sim_config(&s);
    config.ignore_commands = true;
    let _sim = start_sim(&s, &admin, SN, config).await;
    assert!(wait_for(WAIT, || async { station(&s, SN).await["firmware_version"] == "sim-1.0.0" }).await);
    let r = s
        .post(&format!("/api/admin/stations/{SN}/eject"), Some(&admin.access), json!({"slot": 2, "timeout_secs": 1}))
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.error_code(), "eject_timeout");

    let user = s.register("9841200001").await;
    let r = s.post(&format!("/api/admin/stations/{SN}/eject"), Some(&user.access), json!({"slot": 2})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = s.get("/api/admin/station-link", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = s.post("/api/admin/stations/NOPE/eject", Some(&admin.access), json!({"slot": 2})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

both_brokers!(garbage_and_oversized_payloads_are_counted_and_ignored);

async fn garbage_and_oversized_payloads_are_counted_and_ignored(broker: Broker) {
    let s = linked_server(link_config(broker, 60)).await;
    let admin = s.admin().await;
    let sim = start_sim(&s, &admin, SN, sim_config(&s)).await;
    assert!(wait_for(WAIT, || async { station(&s, SN).await["status"] == "online" }).await);

    sim.publish_raw("status", b"\xff\xfe not json".to_vec()).await.unwrap();
    sim.publish_raw("events", br#"{"type": "teleported", "slot": 1}"#.to_vec()).await.unwrap();
    sim.publish_raw("events", br#"{"type": "returned", "slot": -4, "power_bank": 7}"#.to_vec()).await.unwrap();
    sim.publish_raw("heartbeat", b"[1,2,3]".to_vec()).await.unwrap();
    sim.publish_raw("status", vec![b'{'; 20 * 1024]).await.unwrap();
    assert!(
        wait_for(WAIT, || async {
            let st = link_status(&s, &admin.access).await;
            st["malformed"].as_u64() >= Some(4) && st["oversized"].as_u64() >= Some(1)
        })
        .await,
        "{}",
        link_status(&s, &admin.access).await
    );
    // Counted against the station that sent them, with the reason.
    let traffic = s.get(&format!("/api/admin/stations/{SN}/link"), Some(&admin.access)).await.body;
    assert_eq!(traffic["protocol"], "native");
    assert_eq!(traffic["protocol_loaded"], true);
    assert!(traffic["traffic"]["decode_failures"].as_u64() >= Some(4), "{traffic}");
    assert!(traffic["traffic"]["last_decode_error"].is_string(), "{traffic}");
    // Nothing broke: the link is up and the station still answers commands.
    assert_eq!(link_status(&s, &admin.access).await["state"], "connected");
    let r = s.post(&format!("/api/admin/stations/{SN}/eject"), Some(&admin.access), json!({"slot": 3})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A well-formed event from a station the host does not know is ignored too.
    sim.publish_event(&StationEvent::SlotFault { slot: 1, reason: "test".into() }).await.unwrap();
    assert!(wait_for(WAIT, || async { station(&s, SN).await["slots"][0]["status"] == "fault" }).await);
}

both_brokers!(last_will_and_missing_heartbeats_mark_stations_offline);

async fn last_will_and_missing_heartbeats_mark_stations_offline(broker: Broker) {
    let s = linked_server(link_config(broker, 2)).await;
    let admin = s.admin().await;
    let crashing = start_sim(&s, &admin, SN, sim_config(&s)).await;
    let mut hung = start_sim(&s, &admin, "KTM-DURBAR-01", sim_config(&s)).await;
    assert!(wait_for(WAIT, || async { station(&s, SN).await["status"] == "online" }).await);
    assert!(wait_for(WAIT, || async { station(&s, "KTM-DURBAR-01").await["status"] == "online" }).await);

    // Power cut: the broker publishes the station's last will.
    crashing.crash();
    assert!(wait_for(WAIT, || async { station(&s, SN).await["status"] == "offline" }).await, "last will not applied");

    // Controller hangs: connected, but no heartbeats for longer than the timeout.
    hung.stop_heartbeats();
    assert!(
        wait_for(WAIT, || async { station(&s, "KTM-DURBAR-01").await["status"] == "offline" }).await,
        "heartbeat expiry not applied"
    );
    // Stations nobody simulates were marked offline by the same sweep.
    assert_eq!(station(&s, "KTM-BOUDHA-01").await["status"], "offline");
}

/// A private Mosquitto we can kill and start again on the same port.
struct Mosquitto {
    port: u16,
    child: std::process::Child,
}

impl Mosquitto {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("mosquitto")
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the mosquitto binary must be installed for the broker-restart test");
        std::thread::sleep(Duration::from_millis(300));
        Self { port, child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn host_reconnects_and_resubscribes_after_a_broker_restart() {
    let mut broker = Mosquitto::start(free_port());
    let link = LinkConfig {
        mode: MqttMode::External { url: format!("mqtt://127.0.0.1:{}", broker.port) },
        ..link_config(Broker::Embedded, 60)
    };
    let s = linked_server(link).await;
    let admin = s.admin().await;
    let sim = start_sim(&s, &admin, SN, sim_config(&s)).await;
    assert!(wait_for(WAIT, || async { station(&s, SN).await["status"] == "online" }).await);

    broker.kill();
    assert!(wait_for(WAIT, || async { link_status(&s, &admin.access).await["state"] == "connecting" }).await);
    let health = s.get("/api/health", None).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE, "{}", health.body);
    assert_eq!(health.body["mqtt"]["status"], "down");

    let port = broker.port;
    let _broker = Mosquitto::start(port);
    assert!(
        wait_for(Duration::from_secs(20), || async {
            let st = link_status(&s, &admin.access).await;
            st["state"] == "connected" && st["connects"].as_u64() >= Some(2)
        })
        .await,
        "host did not reconnect: {}",
        link_status(&s, &admin.access).await
    );
    // The station reconnects too; a command round trip proves both sides
    // subscribed again (the new broker remembers nothing).
    let ejected = wait_for(Duration::from_secs(20), || async {
        s.post(&format!("/api/admin/stations/{SN}/eject"), Some(&admin.access), json!({"slot": 1, "timeout_secs": 2}))
            .await
            .status
            == StatusCode::OK
    })
    .await;
    assert!(ejected, "no command round trip after the restart");
    assert_eq!(s.get("/api/health", None).await.status, StatusCode::OK);
    drop(sim);
}
