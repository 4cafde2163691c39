//! The two station-protocol plugins (`station-native`, `station-volinks-v1`)
//! through the runtime: byte-exact volinks frames written here from the
//! protocol's layout tables, the native JSON contract, the commands each one
//! encodes, and thousands of hostile inputs that must never trap.

use crate::common::*;
use powerbank_plugin_runtime::types::*;
use powerbank_plugin_runtime::{Failure, PluginHost, station_limits};

const IMEI: &str = "864601068412899";
const UPDATE: &str = "/powerbank/864601068412899/user/update";
const HEART: &str = "/powerbank/864601068412899/user/heart";

async fn protocols_host() -> (Scratch, PluginHost) {
    let scratch = Scratch::new();
    let config = [
        entry(
            "station-native",
            "station-protocol",
            "station_native.wasm",
            "config = { topic_prefix = \"powerbank\" }\nlimits = { timeout_ms = 2000 }",
        ),
        entry(
            "volinks",
            "station-protocol",
            "station_volinks_v1.wasm",
            "config = { topic_root = \"/powerbank\", ttl_secs = 30 }\nlimits = { timeout_ms = 2000 }",
        ),
    ]
    .concat();
    scratch.write_config(&config);
    let (host, report) = scratch.start().await;
    assert!(report.failed.is_empty(), "load failures: {:?}", report.failed);
    (scratch, host)
}

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace().map(|b| u8::from_str_radix(b, 16).expect("hex byte")).collect()
}

/// A frame from the layout table: `A8`, total length (2 bytes), cmd, data,
/// and the check byte (two's complement of the sum of all bytes before it).
fn spec_frame(cmd: u8, data: &[u8]) -> Vec<u8> {
    let total = data.len() + 5;
    let mut bytes = vec![0xA8, (total >> 8) as u8, (total & 0xFF) as u8, cmd];
    bytes.extend_from_slice(data);
    let sum: u32 = bytes.iter().map(|b| u32::from(*b)).sum();
    bytes.push(((256 - sum % 256) % 256) as u8);
    bytes
}

fn hole(index: u8, state: u8, sn: u32, soc: u8) -> Vec<u8> {
    let mut r = vec![index, state, 0x00, 0xE2, 0x04];
    r.extend_from_slice(&sn.to_be_bytes());
    r.extend_from_slice(&[soc, 0x16, 0x00, 0x00, 0x19, if sn == 0 { 0x80 } else { 0x00 }]);
    r
}

fn board(index: u8) -> Vec<u8> {
    vec![index, 0xFF, 0xFF, 0x00, 0x04, 0x16]
}

async fn events(host: &PluginHost, topic: &str, payload: Vec<u8>) -> Vec<StationEvent> {
    let decoded = host
        .station_protocol("volinks")
        .decode(topic.to_string(), payload.clone())
        .await
        .expect("the plugin answers")
        .unwrap_or_else(|e| panic!("{e:?} for {payload:02X?}"));
    assert_eq!(decoded.device_id, IMEI);
    decoded.events
}

fn slots(events: &[StationEvent]) -> Vec<(u16, SlotState, Option<String>, Option<u8>)> {
    let [StationEvent::Status(status)] = events else { panic!("expected one status: {events:?}") };
    assert!(status.online);
    status.slots.as_ref().expect("slots").iter().map(|s| (s.index, s.state, s.power_bank.clone(), s.battery)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_plugins_load_and_name_their_topics() {
    let (_s, host) = protocols_host().await;
    let native = host.station_protocol("station-native").topic_filters().await.expect("filters");
    assert_eq!(
        native,
        ["powerbank/stations/+/status", "powerbank/stations/+/events", "powerbank/stations/+/heartbeat"]
    );
    let volinks = host.station_protocol("volinks").topic_filters().await.expect("filters");
    assert_eq!(volinks, ["/powerbank/+/user/update", "/powerbank/+/user/heart"]);
    let names: Vec<_> = host.status().into_iter().map(|s| (s.name, s.version)).collect();
    assert!(names.contains(&("station-native".to_string(), Some("0.1.0".to_string()))), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_frames_become_the_full_slot_picture() {
    let (_s, host) = protocols_host().await;
    // The vendor's 8-port example: two boards of four holes, numbered 1-8.
    let doc = hex(
        "A8 00 89 10 01 FF FF 00 04 16 01 01 00 EC 00 05 11 49 F1 64 1F 32 01 0D 00 02 00 00 00 00 00 00 00 00 00 00 \
         00 00 00 80 03 01 00 E8 00 05 11 46 AC 64 20 32 00 0D 00 04 00 00 00 00 00 00 00 00 00 00 00 00 00 80 02 FF \
         FF 00 04 16 05 01 00 D7 00 04 C6 F0 96 64 1F 32 00 1A 00 06 00 00 00 00 00 00 00 00 00 00 00 00 00 80 07 01 \
         00 E9 00 05 11 49 DB 64 1E 32 00 0D 00 08 00 00 00 00 00 00 00 00 00 00 00 00 00 80 D8",
    );
    let occupied = |i, sn: &str| (i, SlotState::Occupied, Some(sn.to_string()), Some(100));
    let empty = |i| (i, SlotState::Empty, None, None);
    assert_eq!(
        slots(&events(&host, UPDATE, doc).await),
        [
            occupied(1, "85019121"),
            empty(2),
            occupied(3, "85018284"),
            empty(4),
            occupied(5, "80146582"),
            empty(6),
            occupied(7, "85019099"),
            empty(8)
        ]
    );

    // Three boards of two holes, with the fault states and an unreadable SN.
    let mut data = Vec::new();
    let holes = [(0x01, 11111111, 55), (0x00, 0, 0), (0x02, 22222222, 40), (0x09, 0, 0), (0x01, 0, 0), (0x0A, 33, 255)];
    for (b, pair) in holes.chunks(2).enumerate() {
        data.extend(board(b as u8 + 1));
        for (i, (state, sn, soc)) in pair.iter().enumerate() {
            data.extend(hole((b * 2 + i + 1) as u8, *state, *sn, *soc));
        }
    }
    assert_eq!(
        slots(&events(&host, UPDATE, spec_frame(0x10, &data)).await),
        [
            (1, SlotState::Occupied, Some("11111111".into()), Some(55)),
            (2, SlotState::Empty, None, None),
            (3, SlotState::Fault, Some("22222222".into()), Some(40)),
            (4, SlotState::Fault, None, None),
            (5, SlotState::Fault, None, None),
            (6, SlotState::Fault, Some("33".into()), None),
        ]
    );

    // Boards of eight and four holes (found through the hole numbers).
    let mut data = board(1);
    for i in 1..=8 {
        data.extend(hole(i, 0x01, 5_000_000 + u32::from(i), 90));
    }
    data.extend(board(2));
    for i in 9..=12 {
        data.extend(hole(i, 0x00, 0, 0));
    }
    let picture = slots(&events(&host, UPDATE, spec_frame(0x10, &data)).await);
    assert_eq!(picture.len(), 12);
    assert_eq!(picture[7], (8, SlotState::Occupied, Some("5000008".into()), Some(90)));
    assert_eq!(picture[11], (12, SlotState::Empty, None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop_up_answers_become_ejected_or_eject_failed() {
    let (_s, host) = protocols_host().await;
    // A field capture: hole 1, SN 40818048, success.
    let capture = hex("A8 00 0C 31 01 02 6E D5 80 01 02 52");
    assert_eq!(
        events(&host, UPDATE, capture).await,
        [StationEvent::Ejected(EjectedEvent { request_id: None, slot: 1, power_bank: Some("40818048".into()) })]
    );
    // Every failure state of the vendor's table, with its description.
    let failures = station_codecs::volinks::codes::POPUP_STATES.iter().copied().filter(|(code, _)| *code != 0x01);
    assert_eq!(failures.clone().count(), 22);
    assert_eq!(hex("A8 00 0C 31 03 05 11 53 B2 88 00 75"), spec_frame(0x31, &[3, 0x05, 0x11, 0x53, 0xB2, 0x88, 0]));
    for (code, text) in failures {
        let frame = spec_frame(0x31, &[3, 0x05, 0x11, 0x53, 0xB2, code, 0x00]); // SN 85021618
        assert_eq!(
            events(&host, UPDATE, frame).await,
            [StationEvent::EjectFailed(EjectFailedEvent {
                request_id: None,
                slot: Some(3),
                power_bank: Some("85021618".into()),
                reason: format!("{text} (0x{code:02X})"),
            })],
            "state 0x{code:02X}"
        );
    }
    // Not found anywhere: no hole named.
    let not_found = events(&host, UPDATE, hex("A8 00 0C 31 00 05 11 53 B2 FC 00 04")).await;
    assert!(matches!(&not_found[..], [StationEvent::EjectFailed(EjectFailedEvent { slot: None, .. })]));

    // By hole: the vendor's example, then each failure code.
    assert_eq!(
        events(&host, UPDATE, hex("A8 00 09 21 10 01 01 02 1A")).await,
        [StationEvent::Ejected(EjectedEvent { request_id: None, slot: 1, power_bank: None })]
    );
    for (code, text) in [
        (0x00, "Pop-up failed"),
        (0x11, "Serial communication timeout"),
        (0x12, "The power bank did not pop out, but its SN is readable"),
        (0x87, "Failed to obtain the timestamp"),
        (0x88, "Exceeded the TTL validity period"),
        (0xFF, "Lease command parsing failed"),
    ] {
        assert_eq!(
            events(&host, UPDATE, spec_frame(0x21, &[0x10, 5, code, 0x00])).await,
            [StationEvent::EjectFailed(EjectFailedEvent {
                request_id: None,
                slot: Some(5),
                power_bank: None,
                reason: format!("{text} (0x{code:02X})"),
            })]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_heartbeats_and_bad_frames() {
    let (_s, host) = protocols_host().await;
    // The vendor's return example: hole 1, SN 93198088, 95 %.
    assert_eq!(
        events(&host, UPDATE, hex("A8 00 0F 40 10 01 04 05 8E 17 08 01 CA 5F 18")).await,
        [StationEvent::Returned(ReturnedEvent { slot: 1, power_bank: "93198088".into(), battery: Some(95) })]
    );
    for code in [0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x21, 0x22, 0x23, 0x24] {
        let frame = spec_frame(0x40, &[0x10, 2, 4, 0x05, 0x8E, 0x17, 0x08, code, 0xCA, 0x5F]);
        assert_eq!(events(&host, UPDATE, frame).await, [], "a failed return (0x{code:02X}) changes nothing");
    }
    // Return self-test: success seats the bank, failure changes nothing.
    assert_eq!(
        events(&host, UPDATE, hex("A8 00 15 28 10 07 01 00 00 04 05 11 53 B2 50 1F 32 01 04 16 28")).await,
        [StationEvent::Returned(ReturnedEvent { slot: 7, power_bank: "85021618".into(), battery: Some(80) })]
    );
    assert_eq!(events(&host, UPDATE, hex("A8 00 15 28 10 07 24 00 00 04 05 11 53 B2 50 1F 32 01 04 16 05")).await, []);
    // Heartbeat: the vendor's example carries CSQ 27.
    assert_eq!(
        events(&host, HEART, hex("A8 00 11 7A 10 43 53 51 3A 32 37 3B 42 50 3A 30 FC")).await,
        [StationEvent::Heartbeat(HeartbeatReport { uptime_secs: None, signal: Some(27) })]
    );

    let volinks = host.station_protocol("volinks");
    let bad_check = hex("A8 00 09 21 10 01 01 02 1B");
    let malformed = volinks.decode(UPDATE.into(), bad_check).await.expect("answers");
    assert_eq!(
        malformed,
        Err(DecodeError::Malformed(MalformedMessage {
            device_id: Some(IMEI.into()),
            reason: "check byte 0x1B (expected 0x1A)".into()
        }))
    );
    let topic = "/powerbank/864601068412899/user/get".to_string();
    let unknown = volinks.decode(topic.clone(), hex("A8 00 09 21 10 01 01 02 1A")).await.expect("answers");
    assert_eq!(unknown, Err(DecodeError::UnknownTopic(topic)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volinks_commands_are_the_sdk_json_on_the_get_topic() {
    let (_s, host) = protocols_host().await;
    let volinks = host.station_protocol("volinks");
    let eject = |power_bank: Option<&str>, ttl_secs| {
        StationCommand::Eject(EjectCommand {
            request_id: "4f0c".into(),
            slot: 16,
            power_bank: power_bank.map(str::to_string),
            issued_at_unix_ms: 1_759_941_810_500,
            ttl_secs,
        })
    };
    let by_sn = volinks.encode(IMEI.into(), eject(Some("85021618"), 45)).await.expect("encodes");
    assert_eq!(
        by_sn,
        [OutboundMessage {
            topic: "/powerbank/864601068412899/user/get".into(),
            payload: br#"{"cmd":"popup_sn","data":"85021618","timestamp":"1759941810","ttl":"45"}"#.to_vec(),
            qos: Qos::AtMostOnce,
            retain: false,
        }]
    );
    // No bank named: eject by hole; no TTL given: the configured 30 s.
    let by_hole = volinks.encode(IMEI.into(), eject(None, 0)).await.expect("encodes");
    assert_eq!(by_hole[0].payload, br#"{"cmd":"popup","data":"16","io":"0","timestamp":"1759941810","ttl":"30"}"#);
    assert_eq!(by_hole[0].qos, Qos::AtMostOnce);
    let check = volinks.encode(IMEI.into(), StationCommand::QueryStatus).await.expect("encodes");
    assert_eq!((check[0].payload.as_slice(), check[0].qos), (&br#"{"cmd":"check"}"#[..], Qos::AtLeastOnce));
    // A bank serial that is not a volinks SN is refused, not sent.
    let refused = volinks.encode(IMEI.into(), eject(Some("PB-00017"), 30)).await.expect_err("refused");
    assert!(matches!(refused.failure, Failure::Rejected(ref m) if m.contains("not a volinks SN")), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_json_both_ways() {
    let (_s, host) = protocols_host().await;
    let native = host.station_protocol("station-native");
    let status = br#"{"online":true,"firmware":"2.4.1","slots":[{"index":1,"state":"occupied","power_bank":"PB-00017","battery":87},{"index":2,"state":"empty"},{"index":3,"state":"fault"}]}"#;
    let decoded = native.decode("powerbank/stations/KTM-1/status".into(), status.to_vec()).await.expect("answers");
    let decoded = decoded.expect("a valid status");
    assert_eq!(decoded.device_id, "KTM-1");
    assert_eq!(
        decoded.events,
        [StationEvent::Status(StatusReport {
            online: true,
            firmware: Some("2.4.1".into()),
            slots: Some(vec![
                SlotReport {
                    index: 1,
                    state: SlotState::Occupied,
                    power_bank: Some("PB-00017".into()),
                    battery: Some(87)
                },
                SlotReport { index: 2, state: SlotState::Empty, power_bank: None, battery: None },
                SlotReport { index: 3, state: SlotState::Fault, power_bank: None, battery: None },
            ]),
        })]
    );
    let will = native.decode("powerbank/stations/KTM-1/status".into(), br#"{"online": false}"#.to_vec()).await;
    assert_eq!(
        will.expect("answers").expect("valid").events,
        [StationEvent::Status(StatusReport { online: false, firmware: None, slots: None })]
    );
    let cases: [(&str, &[u8], StationEvent); 4] = [
        (
            "events",
            br#"{"type":"ejected","request_id":"r1","slot":3,"power_bank":"PB-00017"}"#,
            StationEvent::Ejected(EjectedEvent {
                request_id: Some("r1".into()),
                slot: 3,
                power_bank: Some("PB-00017".into()),
            }),
        ),
        (
            "events",
            br#"{"type":"eject_failed","request_id":"r1","slot":3,"reason":"motor_jam"}"#,
            StationEvent::EjectFailed(EjectFailedEvent {
                request_id: Some("r1".into()),
                slot: Some(3),
                power_bank: None,
                reason: "motor_jam".into(),
            }),
        ),
        (
            "events",
            br#"{"type":"returned","slot":5,"power_bank":"PB-00017","battery":64}"#,
            StationEvent::Returned(ReturnedEvent { slot: 5, power_bank: "PB-00017".into(), battery: Some(64) }),
        ),
        (
            "heartbeat",
            br#"{"uptime_secs":86400}"#,
            StationEvent::Heartbeat(HeartbeatReport { uptime_secs: Some(86400), signal: None }),
        ),
    ];
    for (channel, payload, expected) in cases {
        let topic = format!("powerbank/stations/KTM-1/{channel}");
        let decoded = native.decode(topic, payload.to_vec()).await.expect("answers").expect("valid");
        assert_eq!(decoded.events, [expected]);
    }
    let bad = native.decode("powerbank/stations/KTM-1/heartbeat".into(), b"[1,2,3]".to_vec()).await;
    assert!(
        matches!(bad, Ok(Err(DecodeError::Malformed(MalformedMessage { device_id: Some(ref d), .. }))) if d == "KTM-1")
    );

    let eject = StationCommand::Eject(EjectCommand {
        request_id: "4f0c".into(),
        slot: 3,
        power_bank: Some("PB-00017".into()),
        issued_at_unix_ms: 1_759_941_810_000,
        ttl_secs: 10,
    });
    let out = native.encode("KTM-1".into(), eject).await.expect("encodes");
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].topic.as_str(), out[0].qos, out[0].retain),
        ("powerbank/stations/KTM-1/commands", Qos::AtLeastOnce, false)
    );
    let json: serde_json::Value = serde_json::from_slice(&out[0].payload).expect("json");
    assert_eq!(json, serde_json::json!({"type": "eject", "request_id": "4f0c", "slot": 3}));
    let query = native.encode("KTM-1".into(), StationCommand::QueryStatus).await.expect_err("refused");
    assert!(matches!(query.failure, Failure::NotSupported(ref m) if m.contains("retained")), "{query}");
}

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn random_topic(rng: &mut Rng) -> String {
    const TOPICS: [&str; 10] = [
        UPDATE,
        HEART,
        "/powerbank/864601068412899/user/get",
        "/powerbank/+/user/update",
        "/powerbank//user/update",
        "powerbank/stations/KTM-1/status",
        "powerbank/stations/KTM-1/events",
        "powerbank/stations/KTM-1/heartbeat",
        "powerbank/stations/KTM-1/commands",
        "",
    ];
    match rng.below(12) {
        10 => {
            let len = rng.below(80);
            String::from_utf8_lossy(&rng.bytes(len)).into_owned()
        }
        11 => format!("/powerbank/{}/user/update", "9".repeat(1 + rng.below(100))),
        i => TOPICS[i].to_string(),
    }
}

fn hostile_payload(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(8) {
        0 => {
            let len = rng.below(300);
            rng.bytes(len)
        }
        1 => {
            let seed = &seeds[rng.below(seeds.len())];
            seed[..rng.below(seed.len() + 1)].to_vec()
        }
        2 => {
            // Oversized, up to past the host's 64 KiB payload limit.
            let mut seed = seeds[rng.below(seeds.len())].clone();
            let extra = if rng.below(10) == 0 { station_limits::MAX_PAYLOAD_BYTES } else { rng.below(2048) + 1 };
            seed.extend(rng.bytes(extra));
            seed
        }
        3 => {
            let mut seed = seeds[rng.below(seeds.len())].clone();
            let at = rng.below(seed.len());
            seed[at] ^= 1 + rng.below(255) as u8;
            seed
        }
        4 => {
            // Valid envelope, random data: reaches the layout and mapping code.
            let cmds = [0x10, 0x21, 0x28, 0x31, 0x40, 0x7A, 0x55];
            let cmd = cmds[rng.below(cmds.len())];
            let len = if cmd == 0x10 { rng.below(600) } else { rng.below(20) };
            spec_frame(cmd, &rng.bytes(len))
        }
        5 => {
            // JSON-looking text for the native plugin.
            let texts: [&[u8]; 6] = [
                br#"{"online":true,"slots":[{"index":0,"state":"occupied"}]}"#,
                br#"{"type":"returned","slot":1,"power_bank":"x/y"}"#,
                br#"{"uptime_secs":-1}"#,
                br#"{"online":true,"slots":"#,
                b"null",
                br#"{"type":"ejected","request_id":"r","slot":65536,"power_bank":"a"}"#,
            ];
            texts[rng.below(texts.len())].to_vec()
        }
        6 => {
            let len = rng.below(station_limits::MAX_PAYLOAD_BYTES + 2);
            vec![b'{'; len]
        }
        // Now and then a valid message, so successes are exercised too.
        _ => seeds[rng.below(seeds.len())].clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_never_traps_and_the_plugins_keep_working() {
    let (_s, host) = protocols_host().await;
    let seeds = [
        hex(
            "A8 00 47 10 01 04 00 00 04 0F 01 00 00 00 00 00 00 00 00 00 01 00 00 00 80 02 00 00 00 00 00 00 00 00 00 \
             01 00 00 00 80 03 01 00 E2 49 02 6E D5 84 64 16 00 00 19 00 04 00 00 00 00 00 00 00 00 00 01 00 00 00 80 \
             D4",
        ),
        hex("A8 00 0C 31 01 02 6E D5 80 01 02 52"),
        hex("A8 00 09 21 10 01 01 02 1A"),
        hex("A8 00 0F 40 10 01 04 05 8E 17 08 01 CA 5F 18"),
        hex("A8 00 15 28 10 07 01 00 00 04 05 11 53 B2 50 1F 32 01 04 16 28"),
        hex("A8 00 11 7A 10 43 53 51 3A 32 37 3B 42 50 3A 30 FC"),
        br#"{"online":true,"slots":[{"index":1,"state":"empty"}]}"#.to_vec(),
    ];
    const CASES: usize = 4_000;
    const TASKS: u64 = 4;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let host = host.clone();
        let seeds = seeds.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
            let (mut ok, mut refused) = (0, 0);
            for case in 0..CASES / TASKS as usize {
                let name = if case % 2 == 0 { "volinks" } else { "station-native" };
                // Half the time a topic the plugin reads, so payloads reach its decoder.
                let topic = match (rng.below(2), name) {
                    (0, "volinks") => [UPDATE, HEART][rng.below(2)].to_string(),
                    (0, _) => format!("powerbank/stations/KTM-1/{}", ["status", "events", "heartbeat"][rng.below(3)]),
                    _ => random_topic(&mut rng),
                };
                let payload = hostile_payload(&mut rng, &seeds);
                match host.station_protocol(name).decode(topic.clone(), payload.clone()).await {
                    Ok(Ok(_)) => ok += 1,
                    Ok(Err(_)) => refused += 1,
                    Err(e) => panic!("{name} failed on `{topic}` + {} bytes {:02X?}: {e}", payload.len(), {
                        let n = payload.len().min(64);
                        &payload[..n]
                    }),
                }
            }
            (ok, refused)
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (o, r) = t.await.expect("fuzz task");
        ok += o;
        refused += r;
    }
    assert_eq!(ok + refused, CASES);
    assert!(ok > 100 && refused > 1_000, "ok {ok}, refused {refused}");
    for status in host.status() {
        assert_eq!(status.failures, 0, "{} failed calls", status.name);
    }
    // Both still decode a valid message afterwards.
    let still = events(&host, UPDATE, seeds[3].clone()).await;
    assert!(matches!(&still[..], [StationEvent::Returned(_)]));
    let native = host.station_protocol("station-native");
    let status = native.decode("powerbank/stations/KTM-1/status".into(), seeds[6].clone()).await;
    assert!(matches!(status, Ok(Ok(_))));
}
