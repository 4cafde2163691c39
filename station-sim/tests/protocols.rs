//! Both kinds of simulated station against a real broker (rumqttd on a free
//! loopback port), seen from a client that plays the host.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use station_codecs::native::{Command, StationEvent, StatusMessage};
use station_codecs::volinks::{Frame, HeartbeatFrame, JsonCommand, decode_frame};
use station_sim::{SimConfig, SimProtocol, SimSlot, SimStation};

fn start_broker() -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let connections = ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: 64 * 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings { name: "test".into(), listen, tls: None, next_connection_delay_ms: 1, connections };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    std::thread::spawn(move || {
        let _ = rumqttd::Broker::new(config).start();
    });
    // Wait until it accepts connections.
    for _ in 0..100 {
        if std::net::TcpStream::connect(listen).is_ok() {
            return port;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("broker did not start");
}

/// A client playing the host, subscribed to `filter`.
async fn host_client(port: u16, filter: &str) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(format!("host-{port}-{}", filter.len()), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 64);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    // Drive the loop until the subscription is acknowledged.
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = events.poll().await.unwrap() {
            return (client, events);
        }
    }
}

/// The next publish, as (topic, payload).
async fn next_publish(events: &mut EventLoop) -> (String, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = events.poll().await.unwrap() {
                return (p.topic.to_string(), p.payload.to_vec());
            }
        }
    })
    .await
    .expect("a message within 5 s")
}

/// The next publish on `topic` that decodes as a frame other than a heartbeat.
async fn next_frame(events: &mut EventLoop, topic: &str) -> Frame {
    loop {
        let (t, payload) = next_publish(events).await;
        if t != topic {
            continue;
        }
        let frame = decode_frame(&payload).expect("a valid frame");
        if !matches!(frame, Frame::Heartbeat(_)) {
            return frame;
        }
    }
}

fn config(port: u16, protocol: SimProtocol, mountpoint: &str) -> SimConfig {
    let mut c = SimConfig::new("127.0.0.1", port);
    c.protocol = protocol;
    c.mountpoint = mountpoint.to_string();
    c.eject_delay = Duration::from_millis(20);
    c.heartbeat_interval = Duration::from_millis(200);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_station_behind_a_mountpoint() {
    let port = start_broker();
    let (host, mut events) = host_client(port, "m1/powerbank/stations/+/+").await;
    let slots = vec![SimSlot { index: 1, bank: Some(("PB-1".into(), 80)) }, SimSlot { index: 2, bank: None }];
    let sim = SimStation::start(config(port, SimProtocol::Native, "m1/"), "KTM-1", "pw", slots).await.unwrap();

    let (topic, payload) = next_publish(&mut events).await;
    assert_eq!(topic, "m1/powerbank/stations/KTM-1/status");
    let status: StatusMessage = serde_json::from_slice(&payload).unwrap();
    assert_eq!(status.slots.map(|s| s.len()), Some(2));

    let eject = serde_json::to_vec(&Command::Eject { request_id: "r1".into(), slot: 1 }).unwrap();
    host.publish("m1/powerbank/stations/KTM-1/commands", QoS::AtLeastOnce, false, eject).await.unwrap();
    loop {
        let (topic, payload) = next_publish(&mut events).await;
        if topic == "m1/powerbank/stations/KTM-1/events" {
            let event: StationEvent = serde_json::from_slice(&payload).unwrap();
            assert_eq!(event, StationEvent::Ejected { request_id: "r1".into(), slot: 1, power_bank: "PB-1".into() });
            break;
        }
    }
    sim.publish_raw("bogus", b"x".to_vec()).await.unwrap();
    loop {
        if next_publish(&mut events).await.0 == "m1/powerbank/stations/KTM-1/bogus" {
            break;
        }
    }
    let heartbeat = Frame::Heartbeat(HeartbeatFrame { board: 0x10, signal: b"CSQ:20".to_vec() });
    assert!(sim.publish_frame(&heartbeat).await.is_err());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volinks_cabinet_answers_like_the_firmware() {
    let port = start_broker();
    let (host, mut events) = host_client(port, "m2//powerbank/+/user/+").await;
    let imei = "864601068412899";
    let update = format!("m2//powerbank/{imei}/user/update");
    let get = format!("m2//powerbank/{imei}/user/get");
    let slots = (1..=8)
        .map(|i| SimSlot { index: i, bank: (i <= 5).then(|| (format!("{}", 85_021_610 + u32::from(i)), 90)) })
        .collect();
    let sim = SimStation::start(config(port, SimProtocol::Volinks, "m2/"), imei, "pw", slots).await.unwrap();

    // A check frame at start: two boards of four.
    let Frame::Check(check) = next_frame(&mut events, &update).await else { panic!("no check frame") };
    assert_eq!(check.boards.len(), 2);
    assert_eq!(check.holes().filter(|h| h.state == 1).count(), 5);

    // Heartbeats on the heart topic.
    loop {
        let (topic, payload) = next_publish(&mut events).await;
        if topic == format!("m2//powerbank/{imei}/user/heart") {
            let Ok(Frame::Heartbeat(hb)) = decode_frame(&payload) else { panic!("not a heartbeat") };
            assert_eq!(hb.csq(), Some(27));
            break;
        }
    }

    let send = |command: JsonCommand| {
        let host = host.clone();
        let get = get.clone();
        async move {
            let payload = serde_json::to_vec(&command).unwrap();
            host.publish(get, QoS::AtMostOnce, false, payload).await.unwrap();
        }
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    send(JsonCommand::PopupSn { sn: 85_021_613, timestamp: Some(now), ttl: Some(30) }).await;
    let Frame::PopupBySn(p) = next_frame(&mut events, &update).await else { panic!("no 0x31") };
    assert_eq!((p.hole, p.sn, p.state), (3, 85_021_613, 0x01));

    send(JsonCommand::PopupSn { sn: 85_021_613, timestamp: Some(now), ttl: Some(30) }).await;
    let Frame::PopupBySn(p) = next_frame(&mut events, &update).await else { panic!("no 0x31") };
    assert_eq!((p.hole, p.state), (0, 0xFC), "the bank is gone");

    send(JsonCommand::PopupSn { sn: 85_021_611, timestamp: Some(now - 120), ttl: Some(30) }).await;
    let Frame::PopupBySn(p) = next_frame(&mut events, &update).await else { panic!("no 0x31") };
    assert_eq!(p.state, 0x88, "a stale command is refused");

    send(JsonCommand::Popup { hole: 5, io: 0, timestamp: Some(now), ttl: Some(30) }).await;
    let Frame::PopupByHole(p) = next_frame(&mut events, &update).await else { panic!("no 0x21") };
    assert_eq!((p.board, p.hole, p.state), (2, 5, 0x01));

    sim.return_bank(3, "85021613", 64).await.unwrap();
    let Frame::Return(r) = next_frame(&mut events, &update).await else { panic!("no 0x40") };
    assert_eq!((r.hole, r.sn, r.state, r.soc), (3, 85_021_613, 0x01, Some(64)));
    assert!(sim.return_bank(6, "PB-1", 50).await.is_err(), "not a volinks SN");

    send(JsonCommand::Check).await;
    let Frame::Check(check) = next_frame(&mut events, &update).await else { panic!("no check frame") };
    let occupied: Vec<u8> = check.holes().filter(|h| h.state == 1).map(|h| h.index).collect();
    assert_eq!(occupied, [1, 2, 3, 4]);

    sim.publish_raw("update", vec![0xA8, 0x00]).await.unwrap();
    loop {
        let (topic, payload) = next_publish(&mut events).await;
        if topic == update {
            assert_eq!(payload, [0xA8, 0x00]);
            break;
        }
    }
    assert!(sim.publish_event(&StationEvent::SlotFault { slot: 1, reason: "x".into() }).await.is_err());
    sim.stop().await;
}
