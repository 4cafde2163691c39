//! The host's vocabulary for what stations say and what it asks of them: a
//! plain-Rust mirror of the WIT interface `station-types`. Each codec decodes
//! into these types and encodes from them; a station-protocol plugin only
//! converts them to and from its generated bindings.
//!
//! [`check_event`] applies the bounds the host applies to a plugin's answer
//! (`powerbank_plugin_runtime::station_limits`), so a codec reports a station's
//! bad input as a decode error instead of handing the host an answer it would
//! count against the plugin.

pub use crate::native::{SlotReport, SlotState, StatusMessage, valid_serial};

/// Most events one message may produce.
pub const MAX_EVENTS: usize = 64;
/// Most slots in one status report.
pub const MAX_SLOTS: usize = 512;
/// Longest free text (reasons, request ids, firmware) in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// Largest outbound payload in bytes.
pub const MAX_OUTBOUND_BYTES: usize = 64 * 1024;

/// Radio and uptime details of a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    pub uptime_secs: Option<u64>,
    /// Modem signal quality (CSQ 0-31, 99 = no network).
    pub signal: Option<u8>,
}

/// One thing a station reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The full slot picture (or, with `slots: None`, a last will).
    Status(StatusMessage),
    Heartbeat(Heartbeat),
    /// A bank left its slot. `request_id` is `None` when the protocol does not
    /// echo it; `power_bank` is `None` when the answer names only the slot.
    Ejected {
        request_id: Option<String>,
        slot: u16,
        power_bank: Option<String>,
    },
    EjectFailed {
        request_id: Option<String>,
        slot: Option<u16>,
        power_bank: Option<String>,
        reason: String,
    },
    Returned {
        slot: u16,
        power_bank: String,
        battery: Option<u8>,
    },
    SlotFault {
        slot: u16,
        reason: String,
    },
}

/// A log line a codec wants written (through the plugin's host log): a
/// well-formed message that carries no event but should not pass silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// What one message from a station means.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The station as the wire names it (serial number, IMEI...).
    pub device_id: String,
    /// May be empty: a well-formed message the host has nothing to do with.
    pub events: Vec<Event>,
    /// Warnings to log.
    pub notes: Vec<Note>,
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a topic this protocol reads.
    UnknownTopic(String),
    /// The bytes are not a valid message; `device_id` when the topic names the station.
    Malformed { device_id: Option<String>, reason: String },
}

impl DecodeError {
    pub fn malformed(device_id: &str, reason: impl Into<String>) -> Self {
        DecodeError::Malformed { device_id: Some(device_id.to_string()), reason: clip(reason.into()) }
    }
}

/// An eject the host asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EjectCommand {
    pub request_id: String,
    pub slot: u16,
    /// The bank the host expects in the slot.
    pub power_bank: Option<String>,
    pub issued_at_unix_ms: i64,
    /// How long the command stays valid after `issued_at_unix_ms`; 0 = the protocol's default.
    pub ttl_secs: u32,
}

/// What the host asks of a station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Eject(EjectCommand),
    /// Ask for a full status report.
    QueryStatus,
}

/// One MQTT message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub topic: String,
    pub payload: Vec<u8>,
    /// MQTT QoS 0, 1 or 2.
    pub qos: u8,
    pub retain: bool,
}

/// Cuts `text` to at most [`MAX_TEXT_BYTES`] on a character boundary.
pub fn clip(mut text: String) -> String {
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn check_text(what: &str, text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!("{what} of {} bytes (at most {MAX_TEXT_BYTES})", text.len()));
    }
    Ok(())
}

fn check_slot(slot: u16) -> Result<(), String> {
    if slot == 0 {
        return Err("slot 0 (slots are numbered from 1)".to_string());
    }
    Ok(())
}

fn check_bank(serial: &str) -> Result<(), String> {
    if !valid_serial(serial) {
        return Err(format!(
            "power bank serial `{}` (1-64 of A-Z a-z 0-9 - _)",
            clip(serial.escape_debug().to_string())
        ));
    }
    Ok(())
}

fn check_battery(battery: Option<u8>) -> Result<(), String> {
    match battery {
        Some(b) if b > 100 => Err(format!("battery {b} % (0-100)")),
        _ => Ok(()),
    }
}

/// Checks one event against the host's bounds; the error says what is wrong.
pub fn check_event(event: &Event) -> Result<(), String> {
    match event {
        Event::Status(s) => {
            if let Some(fw) = &s.firmware {
                check_text("firmware", fw)?;
            }
            let slots = s.slots.as_deref().unwrap_or_default();
            if slots.len() > MAX_SLOTS {
                return Err(format!("{} slots (at most {MAX_SLOTS})", slots.len()));
            }
            for slot in slots {
                check_slot(slot.index)?;
                check_battery(slot.battery)?;
                if let Some(bank) = &slot.power_bank {
                    check_bank(bank)?;
                }
            }
            Ok(())
        }
        Event::Heartbeat(_) => Ok(()),
        Event::Ejected { request_id, slot, power_bank } => {
            check_slot(*slot)?;
            if let Some(bank) = power_bank {
                check_bank(bank)?;
            }
            if let Some(id) = request_id {
                check_text("request id", id)?;
            }
            Ok(())
        }
        Event::EjectFailed { request_id, slot, power_bank, reason } => {
            if let Some(slot) = slot {
                check_slot(*slot)?;
            }
            if let Some(bank) = power_bank {
                check_bank(bank)?;
            }
            if let Some(id) = request_id {
                check_text("request id", id)?;
            }
            check_text("reason", reason)
        }
        Event::Returned { slot, power_bank, battery } => {
            check_slot(*slot)?;
            check_bank(power_bank)?;
            check_battery(*battery)
        }
        Event::SlotFault { slot, reason } => {
            check_slot(*slot)?;
            check_text("reason", reason)
        }
    }
}

/// Checks every event of a decoded message.
pub fn check_decoded(decoded: &Decoded) -> Result<(), String> {
    if !valid_serial(&decoded.device_id) {
        return Err(format!("device id `{}`", clip(decoded.device_id.escape_debug().to_string())));
    }
    if decoded.events.len() > MAX_EVENTS {
        return Err(format!("{} events from one message (at most {MAX_EVENTS})", decoded.events.len()));
    }
    decoded.events.iter().try_for_each(check_event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_checked_like_the_host_does() {
        let returned = Event::Returned { slot: 3, power_bank: "85021618".into(), battery: Some(80) };
        assert_eq!(check_event(&returned), Ok(()));
        assert!(check_event(&Event::Returned { slot: 0, power_bank: "1".into(), battery: None }).is_err());
        assert!(check_event(&Event::Returned { slot: 1, power_bank: "a/b".into(), battery: None }).is_err());
        assert!(check_event(&Event::Returned { slot: 1, power_bank: "1".into(), battery: Some(101) }).is_err());
        let long = Event::SlotFault { slot: 1, reason: "x".repeat(MAX_TEXT_BYTES + 1) };
        assert!(check_event(&long).is_err());
        let decoded = Decoded { device_id: "a+b".into(), events: vec![], notes: vec![] };
        assert!(check_decoded(&decoded).is_err());
    }

    #[test]
    fn clip_keeps_whole_characters() {
        let text = "é".repeat(200); // 400 bytes
        let clipped = clip(text);
        assert!(clipped.len() <= MAX_TEXT_BYTES);
        assert!(clipped.chars().all(|c| c == 'é'));
    }
}
