//! A station protocol built against contract 0.1.0, where an outbound
//! message's QoS was a plain number (`qos` config, default 1, sent as is so
//! the host's check of it can be shown).
//!
//! Stations publish `compat/{id}/up` with `returned:{slot}:{bank}`; ejects go
//! to `compat/{id}/down` as `eject:{slot}`. Status queries are refused.

use contract_v0_1_bindings::host;
use contract_v0_1_bindings::plugin_info;
use contract_v0_1_bindings::station_protocol::{
    DecodeError, DecodedMessage, Guest, MalformedMessage, OutboundMessage, PluginInfo, PluginKind, ReturnedEvent,
    StationCommand, StationEvent,
};

struct Station01;

impl Guest for Station01 {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::StationProtocol)
    }

    fn self_check() -> Result<(), String> {
        Ok(())
    }

    fn topic_filters() -> Vec<String> {
        vec!["compat/+/up".to_string()]
    }

    fn decode(topic: String, payload: Vec<u8>) -> Result<DecodedMessage, DecodeError> {
        let device_id = match topic.split('/').collect::<Vec<_>>().as_slice() {
            ["compat", id, "up"] => id.to_string(),
            _ => return Err(DecodeError::UnknownTopic(topic)),
        };
        let text = String::from_utf8_lossy(&payload).into_owned();
        let malformed = |reason: &str| {
            DecodeError::Malformed(MalformedMessage { device_id: Some(device_id.clone()), reason: reason.to_string() })
        };
        let mut parts = text.split(':');
        let (Some("returned"), Some(slot), Some(bank)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("expected returned:{slot}:{bank}"));
        };
        let slot = slot.parse().map_err(|_| malformed("bad slot"))?;
        Ok(DecodedMessage {
            device_id: device_id.clone(),
            events: vec![StationEvent::Returned(ReturnedEvent { slot, power_bank: bank.to_string(), battery: None })],
        })
    }

    fn encode(device_id: String, command: StationCommand) -> Result<Vec<OutboundMessage>, String> {
        let StationCommand::Eject(eject) = command else {
            return Err("this protocol has no status query".to_string());
        };
        let qos = host::config_get("qos").and_then(|q| q.parse().ok()).unwrap_or(1);
        Ok(vec![OutboundMessage {
            topic: format!("compat/{device_id}/down"),
            payload: format!("eject:{}", eject.slot).into_bytes(),
            qos,
            retain: false,
        }])
    }
}

contract_v0_1_bindings::export_station_protocol!(Station01);
