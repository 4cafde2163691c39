//! volinks Powerbank Protocol V1, as spoken by Besiter cabinets: binary
//! frames from the cabinet ([`frame`]), JSON commands to it ([`command`]),
//! and their translation into the host's vocabulary ([`decode`], [`encode`]).
//! `docs/station-protocols.md` describes the mapping and its reasons.

pub mod codes;
pub mod command;
pub mod frame;
pub mod topics;

pub use command::JsonCommand;
pub use frame::{
    Board, CheckFrame, Frame, FrameError, HEAD, HeartbeatFrame, Hole, MAX_FRAME_BYTES, PopupByHoleFrame,
    PopupBySnFrame, ReturnFixFrame, ReturnFrame, check_byte, cmd, decode_frame, encode_frame,
};
pub use topics::{Channel, DEFAULT_ROOT, Topics};

use crate::station::{
    self, Command, DecodeError, Decoded, Event, Note, Outbound, SlotReport, SlotState, StatusMessage,
};

/// Command validity when the host's command carries no TTL (the vendor SDK's default).
pub const DEFAULT_TTL_SECS: u32 = 30;

/// QoS of `popup` / `popup_sn`: 0, at most once. An eject is not idempotent
/// and the firmware neither de-duplicates nor (as field tests of the vendor
/// SDK found) honours `timestamp + ttl`, so a QoS 1 redelivery after a lost
/// PUBACK would eject a second bank. A lost command instead goes unanswered,
/// and the host's eject timeout refunds the customer.
pub const EJECT_QOS: u8 = 0;
/// QoS of `check`: 1, at least once. A repeated `check` only repeats the report.
pub const CHECK_QOS: u8 = 1;

/// Decodes one frame a cabinet published on `topic` into host events.
///
/// The device id is the IMEI in the topic. Any valid frame is accepted on
/// either the update or the heart topic (the command byte says what it is).
pub fn decode(topics: &Topics, topic: &str, payload: &[u8]) -> Result<Decoded, DecodeError> {
    let imei = match topics.parse(topic) {
        Some((imei, Channel::Update | Channel::Heart)) => imei,
        _ => return Err(DecodeError::UnknownTopic(station::clip(topic.to_string()))),
    };
    let frame = decode_frame(payload).map_err(|e| DecodeError::malformed(imei, e.to_string()))?;
    let mut notes = Vec::new();
    let events = frame_events(&frame, &mut notes).map_err(|reason| DecodeError::malformed(imei, reason))?;
    let decoded = Decoded { device_id: imei.to_string(), events, notes };
    station::check_decoded(&decoded).map_err(|reason| DecodeError::malformed(imei, reason))?;
    Ok(decoded)
}

fn note(message: &str, fields: &[(&str, String)]) -> Note {
    Note { message: message.to_string(), fields: fields.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect() }
}

/// Decimal SN, or `None` for 0 (no bank / not read).
fn bank(sn: u32) -> Option<String> {
    (sn != 0).then(|| sn.to_string())
}

fn slot_of(hole: u8) -> Option<u16> {
    (hole != 0).then_some(u16::from(hole))
}

fn battery_of(soc: u8) -> Option<u8> {
    (soc <= 100).then_some(soc)
}

/// The host events a frame stands for. `Err` is a reason to report the frame
/// as malformed: it is well-formed bytes whose content cannot be true.
pub fn frame_events(frame: &Frame, notes: &mut Vec<Note>) -> Result<Vec<Event>, String> {
    match frame {
        Frame::Check(check) => Ok(vec![Event::Status(status_of(check)?)]),
        Frame::Heartbeat(hb) => Ok(vec![Event::Heartbeat(station::Heartbeat { uptime_secs: None, signal: hb.csq() })]),
        Frame::PopupBySn(p) if p.state == codes::SUCCESS => {
            let slot = slot_of(p.hole).ok_or("pop-up by SN succeeded in hole 0")?;
            let power_bank = bank(p.sn).ok_or("pop-up by SN succeeded for SN 0")?;
            Ok(vec![Event::Ejected { request_id: None, slot, power_bank: Some(power_bank) }])
        }
        Frame::PopupBySn(p) => Ok(vec![Event::EjectFailed {
            request_id: None,
            slot: slot_of(p.hole),
            power_bank: bank(p.sn),
            reason: codes::reason(codes::popup_state(p.state), p.state),
        }]),
        Frame::PopupByHole(p) if p.state == codes::SUCCESS => {
            let slot = slot_of(p.hole).ok_or("pop-up by hole succeeded in hole 0")?;
            Ok(vec![Event::Ejected { request_id: None, slot, power_bank: None }])
        }
        Frame::PopupByHole(p) => Ok(vec![Event::EjectFailed {
            request_id: None,
            slot: slot_of(p.hole),
            power_bank: None,
            reason: codes::reason(codes::popup_state(p.state), p.state),
        }]),
        Frame::Return(r) => returned(r.hole, r.sn, r.soc.and_then(battery_of), r.state, "return", notes),
        Frame::ReturnFix(r) => returned(r.hole, r.sn, battery_of(r.soc), r.state, "return self-test", notes),
    }
}

/// A successful return seats the bank; a failed one changes nothing the host
/// tracks (the bank stays with the customer), so it is only logged.
fn returned(
    hole: u8,
    sn: u32,
    battery: Option<u8>,
    state: u8,
    what: &str,
    notes: &mut Vec<Note>,
) -> Result<Vec<Event>, String> {
    if state != codes::SUCCESS {
        notes.push(note(
            &format!("volinks {what} failed; no event"),
            &[
                ("hole", hole.to_string()),
                ("power_bank", sn.to_string()),
                ("state", format!("0x{state:02X}")),
                ("reason", codes::return_state(state).to_string()),
            ],
        ));
        return Ok(Vec::new());
    }
    let slot = slot_of(hole).ok_or_else(|| format!("{what} succeeded in hole 0"))?;
    let power_bank = bank(sn).ok_or_else(|| format!("{what} succeeded for SN 0"))?;
    Ok(vec![Event::Returned { slot, power_bank, battery }])
}

/// The full slot picture of a check frame. A hole's slot is its cabinet-wide
/// number (its position in the frame when the number is 0).
fn status_of(check: &CheckFrame) -> Result<StatusMessage, String> {
    let mut seen = [false; frame::MAX_HOLES + 1];
    let mut slots = Vec::new();
    for (position, hole) in check.holes().enumerate() {
        let index = if hole.index != 0 { usize::from(hole.index) } else { position + 1 };
        match seen.get_mut(index) {
            Some(taken) if !*taken => *taken = true,
            Some(_) => return Err(format!("check frame names hole {index} twice")),
            None => return Err(format!("check frame has more than {} holes", frame::MAX_HOLES)),
        }
        let state = match hole.state {
            codes::HOLE_EMPTY => SlotState::Empty,
            codes::HOLE_NORMAL if hole.sn != 0 => SlotState::Occupied,
            // Every other code is a fault (0x07 and unknown codes too: a slot
            // in a state the host cannot read is neither rentable nor free),
            // as is "normal" with no readable SN.
            _ => SlotState::Fault,
        };
        let power_bank = if state == SlotState::Empty { None } else { bank(hole.sn) };
        let battery = power_bank.as_ref().and_then(|_| battery_of(hole.soc));
        // `index` is at most MAX_HOLES (255) here.
        let index = u16::try_from(index).map_err(|_| format!("hole {index}"))?;
        slots.push(SlotReport { index, state, power_bank, battery });
    }
    Ok(StatusMessage { online: true, firmware: None, slots: Some(slots) })
}

/// The JSON command and its QoS for a host command.
///
/// - `eject` with a power bank → `popup_sn` (the cabinet finds the bank
///   wherever it is); without one → `popup` by hole (`io` 0);
/// - both carry `timestamp` = issued-at in Unix seconds and `ttl` = the
///   command's TTL (`fallback_ttl_secs` when it is 0);
/// - `query-status` → `check`.
pub fn command_for(command: &Command, fallback_ttl_secs: u32) -> Result<(JsonCommand, u8), String> {
    match command {
        Command::QueryStatus => Ok((JsonCommand::Check, CHECK_QOS)),
        Command::Eject(eject) => {
            let timestamp = u64::try_from(eject.issued_at_unix_ms.div_euclid(1000))
                .map_err(|_| format!("issued-at {} ms is before 1970", eject.issued_at_unix_ms))?;
            let ttl = if eject.ttl_secs > 0 { eject.ttl_secs } else { fallback_ttl_secs };
            let json = match &eject.power_bank {
                Some(serial) => {
                    JsonCommand::PopupSn { sn: parse_sn(serial)?, timestamp: Some(timestamp), ttl: Some(ttl) }
                }
                None => JsonCommand::Popup {
                    hole: u8::try_from(eject.slot)
                        .ok()
                        .filter(|h| *h != 0)
                        .ok_or_else(|| format!("slot {} is not a volinks hole (1-255)", eject.slot))?,
                    io: 0,
                    timestamp: Some(timestamp),
                    ttl: Some(ttl),
                },
            };
            Ok((json, EJECT_QOS))
        }
    }
}

/// A volinks SN is a non-zero 32-bit number written in decimal.
pub fn parse_sn(serial: &str) -> Result<u32, String> {
    let digits = !serial.is_empty() && serial.bytes().all(|b| b.is_ascii_digit());
    match serial.parse::<u32>() {
        Ok(sn) if digits && sn != 0 => Ok(sn),
        _ => Err(format!(
            "power bank `{}` is not a volinks SN (a decimal number 1-4294967295)",
            station::clip(serial.escape_debug().to_string())
        )),
    }
}

/// The messages that carry `command` to the cabinet `imei`.
pub fn encode(topics: &Topics, imei: &str, command: &Command, fallback_ttl_secs: u32) -> Result<Vec<Outbound>, String> {
    if !crate::native::valid_serial(imei) {
        return Err(format!("device id `{}` is not an IMEI", station::clip(imei.escape_debug().to_string())));
    }
    let (json, qos) = command_for(command, fallback_ttl_secs)?;
    let payload = serde_json::to_vec(&json).map_err(|e| format!("cannot write the command: {e}"))?;
    // Never retained: a retained eject would fire again at every reconnect.
    Ok(vec![Outbound { topic: topics.get(imei), payload, qos, retain: false }])
}

#[cfg(test)]
mod tests;
