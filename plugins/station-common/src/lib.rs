//! Shared by the station-protocol plugins: the mapping between the codec's
//! plain-Rust vocabulary (`station_codecs::station`) and the WIT types.

use powerbank_plugin_sdk::CallError;
use powerbank_plugin_sdk::log;
use powerbank_plugin_sdk::station_protocol::{
    DecodeError, DecodedMessage, EjectCommand, EjectFailedEvent, EjectedEvent, HeartbeatReport, MalformedMessage,
    OutboundMessage, Qos, ReturnedEvent, SlotFaultEvent, SlotReport, SlotState, StationCommand, StationEvent,
    StatusReport,
};
use station_codecs::station;

/// The decoded message for the host; the codec's notes go to the host log.
pub fn decoded(result: Result<station::Decoded, station::DecodeError>) -> Result<DecodedMessage, DecodeError> {
    match result {
        Ok(d) => {
            for note in &d.notes {
                let fields: Vec<(&str, &str)> = note.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                log::warn(&note.message, &fields);
            }
            Ok(DecodedMessage { device_id: d.device_id, events: d.events.into_iter().map(event).collect() })
        }
        Err(station::DecodeError::UnknownTopic(topic)) => Err(DecodeError::UnknownTopic(topic)),
        Err(station::DecodeError::Malformed { device_id, reason }) => {
            Err(DecodeError::Malformed(MalformedMessage { device_id, reason }))
        }
    }
}

fn slot_state(state: station::SlotState) -> SlotState {
    match state {
        station::SlotState::Empty => SlotState::Empty,
        station::SlotState::Occupied => SlotState::Occupied,
        station::SlotState::Fault => SlotState::Fault,
    }
}

fn event(e: station::Event) -> StationEvent {
    match e {
        station::Event::Status(s) => StationEvent::Status(StatusReport {
            online: s.online,
            firmware: s.firmware,
            slots: s.slots.map(|slots| {
                slots
                    .into_iter()
                    .map(|r| SlotReport {
                        index: r.index,
                        state: slot_state(r.state),
                        power_bank: r.power_bank,
                        battery: r.battery,
                    })
                    .collect()
            }),
        }),
        station::Event::Heartbeat(h) => {
            StationEvent::Heartbeat(HeartbeatReport { uptime_secs: h.uptime_secs, signal: h.signal })
        }
        station::Event::Ejected { request_id, slot, power_bank } => {
            StationEvent::Ejected(EjectedEvent { request_id, slot, power_bank })
        }
        station::Event::EjectFailed { request_id, slot, power_bank, reason } => {
            StationEvent::EjectFailed(EjectFailedEvent { request_id, slot, power_bank, reason })
        }
        station::Event::Returned { slot, power_bank, battery } => {
            StationEvent::Returned(ReturnedEvent { slot, power_bank, battery })
        }
        station::Event::SlotFault { slot, reason } => StationEvent::SlotFault(SlotFaultEvent { slot, reason }),
    }
}

/// The codec's refusal of a command (a bad device id or slot) as the host's error.
pub fn refused(reason: String) -> CallError {
    CallError::InvalidInput(reason)
}

pub fn command(c: StationCommand) -> station::Command {
    match c {
        StationCommand::Eject(EjectCommand { request_id, slot, power_bank, issued_at_unix_ms, ttl_secs }) => {
            station::Command::Eject(station::EjectCommand { request_id, slot, power_bank, issued_at_unix_ms, ttl_secs })
        }
        StationCommand::QueryStatus => station::Command::QueryStatus,
    }
}

/// The codec's messages for the host. The codecs speak MQTT's numeric QoS;
/// anything above 2 is a codec bug, refused rather than guessed.
pub fn outbound(messages: Vec<station::Outbound>) -> Result<Vec<OutboundMessage>, CallError> {
    messages
        .into_iter()
        .map(|m| {
            let qos = match m.qos {
                0 => Qos::AtMostOnce,
                1 => Qos::AtLeastOnce,
                2 => Qos::ExactlyOnce,
                other => return Err(CallError::InvalidInput(format!("the codec chose QoS {other}"))),
            };
            Ok(OutboundMessage { topic: m.topic, payload: m.payload, qos, retain: m.retain })
        })
        .collect()
}
