//! Station protocol for stations that speak the native powerbank JSON
//! contract (`docs/mqtt.md`): status, heartbeat and events on
//! `{prefix}/stations/{sn}/...`, eject commands on `.../commands`.
//!
//! Config (optional): `topic_prefix`, default `powerbank`.
//!
//! `query-status` is refused as `not-supported`: native stations keep their
//! full status retained on the broker (published on every connection and
//! change), so there is nothing to ask for.

use powerbank_plugin_sdk::station_protocol::{
    DecodeError, DecodedMessage, Guest, MalformedMessage, OutboundMessage, StationCommand,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, plugin_info};
use station_codecs::native;

fn topics() -> Result<native::Topics, CallError> {
    let prefix = config::get("topic_prefix");
    let prefix = prefix.as_deref().map_or(native::DEFAULT_PREFIX, str::trim);
    if !native::valid_prefix(prefix) {
        return Err(config::misconfigured(
            "topic_prefix",
            format!("`{prefix}` must be at most 128 bytes without `+`, `#` or NUL"),
        ));
    }
    Ok(native::Topics::new(prefix))
}

struct NativeProtocol;

impl Guest for NativeProtocol {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::StationProtocol, "Native powerbank stations")
    }

    fn self_check() -> Result<(), CallError> {
        topics().map(|_| ())
    }

    fn topic_filters() -> Result<Vec<String>, CallError> {
        Ok(topics()?.host_filters().to_vec())
    }

    fn decode(topic: String, payload: Vec<u8>) -> Result<DecodedMessage, DecodeError> {
        let topics = topics().map_err(|e| {
            DecodeError::Malformed(MalformedMessage { device_id: None, reason: e.message().to_string() })
        })?;
        station_common::decoded(native::decode(&topics, &topic, &payload))
    }

    fn encode(device_id: String, command: StationCommand) -> Result<Vec<OutboundMessage>, CallError> {
        let topics = topics()?;
        if matches!(command, StationCommand::QueryStatus) {
            return Err(CallError::NotSupported(format!(
                "native stations keep their full status retained on `{}/stations/{{sn}}/status`; \
                 there is no command to ask for it",
                config::get("topic_prefix").unwrap_or_else(|| native::DEFAULT_PREFIX.to_string())
            )));
        }
        let messages =
            native::encode(&topics, &device_id, &station_common::command(command)).map_err(station_common::refused)?;
        station_common::outbound(messages)
    }
}

powerbank_plugin_sdk::export_station_protocol!(NativeProtocol);
