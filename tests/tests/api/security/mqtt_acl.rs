//! One station's broker login acts only as that station: on the embedded
//! broker, in both station protocols, another station's topics and `#` are
//! refused (the connection is closed) and nothing of theirs is delivered.

use std::time::Duration;

use powerbank::core::Db;
use powerbank_tests::{
    Session, TestServer,
    mqtt::{Broker, broker_address, link_config, sim_config, start_sim, start_sim_with_slots, wait_for},
};
use reqwest::StatusCode;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use station_sim::SimSlot;

const WAIT: Duration = Duration::from_secs(10);
const ATTACKER: &str = "KTM-THAMEL-01";
const VICTIM: &str = "KTM-DURBAR-01";
/// Two volinks cabinets: (serial, IMEI).
const HOME: (&str, &str) = ("LTP-JAWALAKHEL-VL1", "864601068419001");
const AWAY: (&str, &str) = ("KTM-BAGBAZAR-VL2", "864601068419002");

/// A server on the embedded broker with both protocols loaded.
async fn server() -> (TestServer, Session) {
    let s = TestServer::start_with(|c| c.link = link_config(Broker::Embedded, 60)).await;
    powerbank::demo::seed_if_empty(&Db::open(&s.db_path(), 1).unwrap()).unwrap();
    let admin = s.admin().await;
    assert!(
        wait_for(WAIT, || async {
            let st = s.get("/api/admin/station-link", Some(&admin.access)).await.body;
            st["state"] == "connected" && st["protocols"].as_array().is_some_and(|p| p.len() == 2)
        })
        .await,
        "the station link did not come up"
    );
    (s, admin)
}

/// A raw MQTT client signed in with `sn`'s own credentials.
async fn login_as(s: &TestServer, admin: &Session, sn: &str, will: Option<LastWill>) -> (AsyncClient, EventLoop) {
    let creds = s.get(&format!("/api/admin/stations/{sn}/mqtt-credentials"), Some(&admin.access)).await;
    assert_eq!(creds.status, StatusCode::OK, "{}", creds.body);
    let device_id = creds.body["device_id"].as_str().unwrap();
    let (host, port) = broker_address(&s.config().link);
    let mut options = MqttOptions::new(creds.body["client_id"].as_str().unwrap(), host, port);
    options.set_credentials(device_id, creds.body["password"].as_str().unwrap());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some(will) = will {
        options.set_last_will(will);
    }
    AsyncClient::new(options, 16)
}

/// What one connection saw until the broker closed it or `WAIT` passed.
#[derive(Debug, Default)]
struct Seen {
    connected: bool,
    refused: Option<ConnectReturnCode>,
    closed: bool,
    acks: usize,
    publishes: Vec<String>,
}

/// Polls the connection until it ends, or `until` holds, or `WAIT` passes.
async fn watch(eventloop: &mut EventLoop, until: impl Fn(&Seen) -> bool) -> Seen {
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !until(&seen) {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => break,
            Ok(Err(rumqttc::ConnectionError::ConnectionRefused(code))) => {
                seen.refused = Some(code);
                break;
            }
            Ok(Err(_)) => {
                seen.closed = true;
                break;
            }
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => seen.connected = true,
            Ok(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                assert!(ack.return_codes.iter().all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))));
                seen.acks += 1;
            }
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => seen.acks += 1,
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => seen.publishes.push(p.topic),
            Ok(Ok(_)) => {}
        }
    }
    seen
}

/// Signs in as `sn`, sends requests and reports what followed, until the
/// connection ends or `acks` acknowledgements came (or `WAIT` passed).
async fn attempt(
    s: &TestServer,
    admin: &Session,
    sn: &str,
    acks: usize,
    request: impl AsyncFnOnce(&AsyncClient),
) -> Seen {
    let (client, mut eventloop) = login_as(s, admin, sn, None).await;
    let connected = watch(&mut eventloop, |seen| seen.connected).await;
    assert!(connected.connected, "{sn} cannot sign in at all: {connected:?}");
    request(&client).await;
    watch(&mut eventloop, |seen| seen.acks >= acks).await
}

/// Refused requests are never acknowledged: wait for the connection to end.
const REFUSED: usize = usize::MAX;

async fn station(s: &TestServer, sn: &str) -> Value {
    s.get(&format!("/api/stations/{sn}"), None).await.body
}

fn faulted_slots(detail: &Value) -> usize {
    detail["slots"].as_array().unwrap().iter().filter(|slot| slot["status"] == "fault").count()
}

#[tokio::test]
async fn a_native_station_login_cannot_act_as_another_station() {
    let (s, admin) = server().await;
    let mp = s.config().link.mountpoint.clone();
    let _victim = start_sim(&s, &admin, VICTIM, sim_config(&s)).await;
    assert!(wait_for(WAIT, || async { station(&s, VICTIM).await["status"] == "online" }).await);

    // Publishing the victim's status (every slot broken) closes the connection.
    let forged =
        json!({"online": true, "slots": (1..=8).map(|i| json!({"index": i, "state": "fault"})).collect::<Vec<_>>()});
    let topic = format!("{mp}powerbank/stations/{VICTIM}/status");
    let seen = attempt(&s, &admin, ATTACKER, REFUSED, async |c: &AsyncClient| {
        c.publish(topic, QoS::AtLeastOnce, true, forged.to_string()).await.unwrap();
    })
    .await;
    assert!(seen.closed && seen.acks == 0, "a forged status was accepted: {seen:?}");

    // Subscribing to everything, or to the victim's commands, closes it too,
    // before a single message of the heartbeating victim arrives.
    for filter in ["#".to_string(), format!("{mp}#"), format!("{mp}powerbank/stations/{VICTIM}/commands")] {
        let seen = attempt(&s, &admin, ATTACKER, REFUSED, async |c: &AsyncClient| {
            c.subscribe(filter.clone(), QoS::AtLeastOnce).await.unwrap();
        })
        .await;
        assert!(seen.closed && seen.acks == 0 && seen.publishes.is_empty(), "{filter}: {seen:?}");
    }

    // A last will on the victim's topic is refused at sign-in.
    let will =
        LastWill::new(format!("{mp}powerbank/stations/{VICTIM}/status"), forged.to_string(), QoS::AtLeastOnce, true);
    let (_client, mut eventloop) = login_as(&s, &admin, ATTACKER, Some(will)).await;
    let seen = watch(&mut eventloop, |_| false).await;
    assert_eq!(seen.refused, Some(ConnectReturnCode::NotAuthorized), "{seen:?}");

    // Its own topics still work: its commands topic, and its own status as a
    // simulated station. Messages are applied in order, so once its own
    // status shows, the forged one would have been applied before it.
    let seen = attempt(&s, &admin, ATTACKER, 1, async |c: &AsyncClient| {
        c.subscribe(format!("{mp}powerbank/stations/{ATTACKER}/commands"), QoS::AtLeastOnce).await.unwrap();
    })
    .await;
    assert!(!seen.closed && seen.acks == 1, "its own commands topic: {seen:?}");
    let mut own = sim_config(&s);
    own.firmware = "attacker-1.0".into();
    let _attacker = start_sim(&s, &admin, ATTACKER, own).await;
    assert!(wait_for(WAIT, || async { station(&s, ATTACKER).await["firmware_version"] == "attacker-1.0" }).await);
    let victim = station(&s, VICTIM).await;
    assert_eq!(faulted_slots(&victim), 0, "the victim's slots were changed: {victim}");
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

async fn decode_failures(s: &TestServer, admin: &Session, sn: &str) -> u64 {
    let link = s.get(&format!("/api/admin/stations/{sn}/link"), Some(&admin.access)).await.body;
    link["traffic"]["decode_failures"].as_u64().unwrap_or_else(|| panic!("{link}"))
}

#[tokio::test]
async fn a_volinks_cabinet_login_cannot_act_as_another_cabinet() {
    let (s, admin) = server().await;
    let mp = s.config().link.mountpoint.clone();
    create_cabinet(&s, &admin, HOME).await;
    create_cabinet(&s, &admin, AWAY).await;
    let holes = (1..=8u16).map(|index| SimSlot { index, bank: None }).collect();
    let _away = start_sim_with_slots(&s, &admin, AWAY.0, sim_config(&s), holes).await;
    assert!(wait_for(WAIT, || async { station(&s, AWAY.0).await["status"] == "online" }).await);

    // Garbage on the other cabinet's update topic would count against it.
    let topic = format!("{mp}/powerbank/{}/user/update", AWAY.1);
    let seen = attempt(&s, &admin, HOME.0, REFUSED, async |c: &AsyncClient| {
        c.publish(topic, QoS::AtLeastOnce, false, vec![0xFFu8; 12]).await.unwrap();
    })
    .await;
    assert!(seen.closed && seen.acks == 0, "a forged frame was accepted: {seen:?}");

    for filter in ["#".to_string(), format!("{mp}/powerbank/+/user/get"), format!("{mp}/powerbank/{}/user/get", AWAY.1)]
    {
        let seen = attempt(&s, &admin, HOME.0, REFUSED, async |c: &AsyncClient| {
            c.subscribe(filter.clone(), QoS::AtLeastOnce).await.unwrap();
        })
        .await;
        assert!(seen.closed && seen.acks == 0 && seen.publishes.is_empty(), "{filter}: {seen:?}");
    }

    // Its own topics work; a frame of its own that does not decode counts
    // against itself only, and the host read it after the refused one.
    let seen = attempt(&s, &admin, HOME.0, 2, async |c: &AsyncClient| {
        c.subscribe(format!("{mp}/powerbank/{}/user/get", HOME.1), QoS::AtLeastOnce).await.unwrap();
        c.publish(format!("{mp}/powerbank/{}/user/update", HOME.1), QoS::AtLeastOnce, false, vec![0xFFu8; 12])
            .await
            .unwrap();
    })
    .await;
    assert!(!seen.closed && seen.acks == 2, "its own topics: {seen:?}");
    assert!(wait_for(WAIT, || async { decode_failures(&s, &admin, HOME.0).await == 1 }).await);
    assert_eq!(decode_failures(&s, &admin, AWAY.0).await, 0, "the other cabinet was blamed for a forged frame");
}
