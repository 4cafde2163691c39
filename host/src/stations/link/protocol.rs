//! The JSON contract between stations and the host over MQTT (see
//! `docs/mqtt.md`). Shared with the station simulator so both sides speak
//! exactly the same messages.

use serde::{Deserialize, Serialize};

/// Largest payload the host reads; anything larger is counted and dropped.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

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

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.trim_end_matches('/').to_string() }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
