//! Station protocol for volinks Powerbank Protocol V1 cabinets (Besiter):
//! binary frames on `{root}/{imei}/user/update` and `.../heart`, JSON
//! commands on `.../get`. The mapping is described in
//! `docs/station-protocols.md`; the codec is `station_codecs::volinks`.
//!
//! Config (optional):
//! - `topic_root`, default `/powerbank`;
//! - `ttl_secs`, default 30: the `ttl` sent with an eject whose command
//!   carries none (1-86400).

use powerbank_plugin_sdk::station_protocol::{
    DecodeError, DecodedMessage, Guest, MalformedMessage, OutboundMessage, StationCommand,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, plugin_info};
use station_codecs::volinks;

struct Settings {
    topics: volinks::Topics,
    ttl_secs: u32,
}

fn settings() -> Result<Settings, CallError> {
    let root = config::get("topic_root");
    let root = root.as_deref().map_or(volinks::DEFAULT_ROOT, str::trim);
    if !volinks::topics::valid_root(root) {
        return Err(config::misconfigured(
            "topic_root",
            format!("`{root}` must be at most 128 bytes without `+`, `#` or NUL"),
        ));
    }
    let ttl_secs: u32 = config::parse_or("ttl_secs", volinks::DEFAULT_TTL_SECS)?;
    if !(1..=86_400).contains(&ttl_secs) {
        return Err(config::misconfigured("ttl_secs", format!("{ttl_secs} is outside 1-86400")));
    }
    Ok(Settings { topics: volinks::Topics::new(root), ttl_secs })
}

struct VolinksV1;

impl Guest for VolinksV1 {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::StationProtocol, "volinks V1 cabinets")
    }

    fn self_check() -> Result<(), CallError> {
        settings().map(|_| ())
    }

    fn topic_filters() -> Result<Vec<String>, CallError> {
        Ok(settings()?.topics.host_filters().to_vec())
    }

    fn decode(topic: String, payload: Vec<u8>) -> Result<DecodedMessage, DecodeError> {
        let settings = settings().map_err(|e| {
            DecodeError::Malformed(MalformedMessage { device_id: None, reason: e.message().to_string() })
        })?;
        station_common::decoded(volinks::decode(&settings.topics, &topic, &payload))
    }

    fn encode(device_id: String, command: StationCommand) -> Result<Vec<OutboundMessage>, CallError> {
        let settings = settings()?;
        let messages =
            volinks::encode(&settings.topics, &device_id, &station_common::command(command), settings.ttl_secs)
                .map_err(station_common::refused)?;
        station_common::outbound(messages)
    }
}

powerbank_plugin_sdk::export_station_protocol!(VolinksV1);
