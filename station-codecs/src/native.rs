//! The JSON contract between stations and the host over MQTT (see
//! `docs/mqtt.md`). Shared by the host, the `station-native` plugin and the
//! station simulator, so every side speaks exactly the same messages.

use serde::{Deserialize, Serialize};

use crate::station::{self, DecodeError, Decoded, Event, Outbound};

/// Largest payload the host reads; anything larger is counted and dropped.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// The topic prefix when the operator configures none.
pub const DEFAULT_PREFIX: &str = "powerbank";

/// Longest `firmware` text the host keeps, in characters; longer text is cut.
pub const MAX_FIRMWARE_CHARS: usize = 64;

/// Topic names under a prefix (`powerbank` in production).
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

/// What a station publishes on, parsed from an incoming topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Status,
    Events,
    Heartbeat,
}

impl Default for Topics {
    fn default() -> Self {
        Topics::new(DEFAULT_PREFIX)
    }
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.trim_end_matches('/').to_string() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn status(&self, sn: &str) -> String {
        format!("{}/stations/{sn}/status", self.prefix)
    }

    pub fn events(&self, sn: &str) -> String {
        format!("{}/stations/{sn}/events", self.prefix)
    }

    pub fn heartbeat(&self, sn: &str) -> String {
        format!("{}/stations/{sn}/heartbeat", self.prefix)
    }

    pub fn commands(&self, sn: &str) -> String {
        format!("{}/stations/{sn}/commands", self.prefix)
    }

    /// The filters the host subscribes to.
    pub fn host_filters(&self) -> [String; 3] {
        [
            format!("{}/stations/+/status", self.prefix),
            format!("{}/stations/+/events", self.prefix),
            format!("{}/stations/+/heartbeat", self.prefix),
        ]
    }

    /// `prefix/stations/{sn}/{channel}` → (sn, channel).
    pub fn parse<'t>(&self, topic: &'t str) -> Option<(&'t str, Channel)> {
        let rest = topic.strip_prefix(self.prefix.as_str())?.strip_prefix("/stations/")?;
        let (sn, channel) = rest.split_once('/')?;
        if !valid_serial(sn) {
            return None;
        }
        let channel = match channel {
            "status" => Channel::Status,
            "events" => Channel::Events,
            "heartbeat" => Channel::Heartbeat,
            _ => return None,
        };
        Some((sn, channel))
    }
}

/// Whether `prefix` can stand in front of the topics: no wildcards, no NUL,
/// at most 128 bytes (empty is allowed and gives topics starting with `/`).
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= 128 && !prefix.contains(['+', '#', '\0'])
}

/// Station serial numbers: 1-64 of A-Z, a-z, 0-9, `-` and `_` (safe in topics).
pub fn valid_serial(sn: &str) -> bool {
    !sn.is_empty() && sn.len() <= 64 && sn.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Retained on `.../status`; the station's last will is `{"online": false}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusMessage {
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Omitted in the last will; when present, the full slot picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<SlotReport>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotReport {
    /// 1-based slot number.
    pub index: u16,
    pub state: SlotState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_bank: Option<String>,
    /// Percent, 0-100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    Empty,
    Occupied,
    Fault,
}

/// Published on `.../heartbeat` every few seconds while the station runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
}

/// Published on `.../events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StationEvent {
    /// The bank left the slot, answering an eject command.
    Ejected { request_id: String, slot: u16, power_bank: String },
    /// The eject command could not be carried out.
    EjectFailed { request_id: String, slot: u16, reason: String },
    /// A bank was pushed into a slot.
    Returned {
        slot: u16,
        power_bank: String,
        #[serde(default)]
        battery: Option<u8>,
    },
    /// The slot reports a hardware fault.
    SlotFault { slot: u16, reason: String },
}

/// Sent by the host on `.../commands` with QoS 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    Eject { request_id: String, slot: u16 },
}

/// Decodes one message a native station published, checked against the
/// contract and the host's bounds.
pub fn decode(topics: &Topics, topic: &str, payload: &[u8]) -> Result<Decoded, DecodeError> {
    let Some((sn, channel)) = topics.parse(topic) else {
        return Err(DecodeError::UnknownTopic(station::clip(topic.to_string())));
    };
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::malformed(
            sn,
            format!("payload of {} bytes (at most {MAX_PAYLOAD_BYTES})", payload.len()),
        ));
    }
    let event = match channel {
        Channel::Status => {
            let mut status: StatusMessage = parse_json(sn, "status", payload)?;
            // Free text "up to 64 characters": longer is cut, not refused.
            if let Some(fw) = &mut status.firmware
                && let Some((end, _)) = fw.char_indices().nth(MAX_FIRMWARE_CHARS)
            {
                fw.truncate(end);
            }
            Event::Status(status)
        }
        Channel::Heartbeat => {
            // Any JSON object; `uptime_secs` is read when it is a whole number.
            let value: serde_json::Value = parse_json(sn, "heartbeat", payload)?;
            let Some(object) = value.as_object() else {
                return Err(DecodeError::malformed(sn, "heartbeat: expected a JSON object"));
            };
            let uptime_secs = object.get("uptime_secs").and_then(serde_json::Value::as_u64);
            Event::Heartbeat(station::Heartbeat { uptime_secs, signal: None })
        }
        Channel::Events => match parse_json::<StationEvent>(sn, "event", payload)? {
            StationEvent::Ejected { request_id, slot, power_bank } => {
                Event::Ejected { request_id: Some(request_id), slot, power_bank: Some(power_bank) }
            }
            StationEvent::EjectFailed { request_id, slot, reason } => {
                Event::EjectFailed { request_id: Some(request_id), slot: Some(slot), power_bank: None, reason }
            }
            StationEvent::Returned { slot, power_bank, battery } => Event::Returned { slot, power_bank, battery },
            StationEvent::SlotFault { slot, reason } => Event::SlotFault { slot, reason },
        },
    };
    station::check_event(&event).map_err(|reason| DecodeError::malformed(sn, reason))?;
    Ok(Decoded { device_id: sn.to_string(), events: vec![event], notes: Vec::new() })
}

fn parse_json<T: serde::de::DeserializeOwned>(sn: &str, what: &str, payload: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(payload).map_err(|e| DecodeError::malformed(sn, format!("{what}: {e}")))
}

/// The messages that carry `command` to the native station `sn`.
///
/// `query-status` is refused: a native station publishes its full status,
/// retained, on every (re)connection and whenever a slot changes, so the
/// broker always holds the current picture and the contract has no command
/// to ask for it.
pub fn encode(topics: &Topics, sn: &str, command: &station::Command) -> Result<Vec<Outbound>, String> {
    if !valid_serial(sn) {
        return Err(format!("device id `{}` is not a station serial", station::clip(sn.escape_debug().to_string())));
    }
    match command {
        station::Command::Eject(eject) => {
            if eject.slot == 0 {
                return Err("slot 0 (slots are numbered from 1)".to_string());
            }
            let json = Command::Eject { request_id: eject.request_id.clone(), slot: eject.slot };
            let payload = serde_json::to_vec(&json).map_err(|e| format!("cannot write the command: {e}"))?;
            // QoS 1: the contract makes stations answer a repeated request id
            // with the first answer instead of ejecting twice.
            Ok(vec![Outbound { topic: topics.commands(sn), payload, qos: 1, retain: false }])
        }
        station::Command::QueryStatus => Err("native stations keep their full status retained on \
             `{prefix}/stations/{sn}/status`; there is no command to ask for it"
            .to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::station::EjectCommand;

    #[test]
    fn topics_round_trip_and_reject_odd_serials() {
        let t = Topics::new("powerbank");
        assert_eq!(t.parse(&t.status("KTM-1")), Some(("KTM-1", Channel::Status)));
        assert_eq!(t.parse(&t.events("KTM-1")), Some(("KTM-1", Channel::Events)));
        assert_eq!(t.parse("powerbank/stations/KTM-1/commands"), None);
        assert_eq!(t.parse("powerbank/stations/a+b/status"), None);
        assert_eq!(t.parse("other/stations/KTM-1/status"), None);
        assert_eq!(t.parse("powerbank/stations//status"), None);
    }

    #[test]
    fn events_use_the_documented_json() {
        let e: StationEvent =
            serde_json::from_str(r#"{"type":"ejected","request_id":"r1","slot":3,"power_bank":"PB-1"}"#).unwrap();
        assert_eq!(e, StationEvent::Ejected { request_id: "r1".into(), slot: 3, power_bank: "PB-1".into() });
        let c = serde_json::to_value(Command::Eject { request_id: "r2".into(), slot: 4 }).unwrap();
        assert_eq!(c, serde_json::json!({"type": "eject", "request_id": "r2", "slot": 4}));
        let will: StatusMessage = serde_json::from_str(r#"{"online": false}"#).unwrap();
        assert!(!will.online && will.slots.is_none());
    }

    #[test]
    fn decodes_each_channel_into_host_events() {
        let t = Topics::default();
        let status = br#"{"online":true,"firmware":"2.4.1","slots":[
            {"index":1,"state":"occupied","power_bank":"PB-00017","battery":87},{"index":2,"state":"empty"}]}"#;
        let d = decode(&t, "powerbank/stations/KTM-1/status", status).unwrap();
        assert_eq!(d.device_id, "KTM-1");
        let Event::Status(s) = &d.events[0] else { panic!("{d:?}") };
        assert_eq!(s.slots.as_ref().map(Vec::len), Some(2));

        let will = decode(&t, "powerbank/stations/KTM-1/status", br#"{"online":false}"#).unwrap();
        assert_eq!(will.events, vec![Event::Status(StatusMessage { online: false, firmware: None, slots: None })]);

        let long_firmware = format!(r#"{{"online":true,"firmware":"{}","slots":[]}}"#, "v".repeat(100));
        let d = decode(&t, "powerbank/stations/KTM-1/status", long_firmware.as_bytes()).unwrap();
        let Event::Status(s) = &d.events[0] else { panic!("{d:?}") };
        assert_eq!(s.firmware.as_ref().map(String::len), Some(MAX_FIRMWARE_CHARS));

        let hb = decode(&t, "powerbank/stations/KTM-1/heartbeat", br#"{"uptime_secs":86400,"x":1}"#).unwrap();
        assert_eq!(hb.events, vec![Event::Heartbeat(station::Heartbeat { uptime_secs: Some(86400), signal: None })]);

        let failed = decode(
            &t,
            "powerbank/stations/KTM-1/events",
            br#"{"type":"eject_failed","request_id":"r1","slot":3,"reason":"motor_jam"}"#,
        )
        .unwrap();
        assert_eq!(
            failed.events,
            vec![Event::EjectFailed {
                request_id: Some("r1".into()),
                slot: Some(3),
                power_bank: None,
                reason: "motor_jam".into()
            }]
        );
    }

    #[test]
    fn refuses_what_the_contract_or_the_host_forbid() {
        let t = Topics::default();
        let malformed = |topic: &str, payload: &[u8]| match decode(&t, topic, payload) {
            Err(DecodeError::Malformed { device_id, .. }) => device_id,
            other => panic!("{topic} {:?}: {other:?}", String::from_utf8_lossy(payload)),
        };
        let sn = Some("KTM-1".to_string());
        assert_eq!(malformed("powerbank/stations/KTM-1/status", b"\xff\xfe not json"), sn);
        assert_eq!(malformed("powerbank/stations/KTM-1/events", br#"{"type":"teleported","slot":1}"#), sn);
        assert_eq!(
            malformed("powerbank/stations/KTM-1/events", br#"{"type":"returned","slot":-4,"power_bank":7}"#),
            sn
        );
        assert_eq!(malformed("powerbank/stations/KTM-1/heartbeat", b"[1,2,3]"), sn);
        assert_eq!(malformed("powerbank/stations/KTM-1/status", &vec![b'{'; 20 * 1024]), sn);
        assert_eq!(malformed("powerbank/stations/KTM-1/events", br#"{"type":"slot_fault","slot":0,"reason":"x"}"#), sn);
        let battery = br#"{"online":true,"slots":[{"index":1,"state":"occupied","power_bank":"P","battery":101}]}"#;
        assert_eq!(malformed("powerbank/stations/KTM-1/status", battery), sn);
        assert!(matches!(decode(&t, "powerbank/stations/KTM-1/commands", b"{}"), Err(DecodeError::UnknownTopic(_))));
    }

    #[test]
    fn encodes_eject_and_refuses_query_status() {
        let t = Topics::new("pb-test/");
        let eject = station::Command::Eject(EjectCommand {
            request_id: "4f0c".into(),
            slot: 3,
            power_bank: Some("PB-1".into()),
            issued_at_unix_ms: 1_759_941_810_000,
            ttl_secs: 30,
        });
        let out = encode(&t, "KTM-1", &eject).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].topic, "pb-test/stations/KTM-1/commands");
        assert_eq!((out[0].qos, out[0].retain), (1, false));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out[0].payload).unwrap(),
            serde_json::json!({"type": "eject", "request_id": "4f0c", "slot": 3})
        );
        assert!(encode(&t, "KTM-1", &station::Command::QueryStatus).is_err());
        assert!(encode(&t, "a/b", &eject).is_err());
    }
}
