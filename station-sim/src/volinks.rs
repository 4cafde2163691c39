//! A station speaking volinks Protocol V1, as a Besiter cabinet does: a
//! `0x10` check frame at (re)connection and on `check`, `0x7A` heartbeats,
//! `0x31` / `0x21` answers to `popup_sn` / `popup`, and `0x40` on a return.
//! Boards hold four holes each when the slot count allows it (else one board
//! holds them all), and holes are numbered by their slot index.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use rumqttc::{AsyncClient, QoS};
use station_codecs::volinks::{
    Board, CheckFrame, Frame, HeartbeatFrame, Hole, JsonCommand, PopupByHoleFrame, PopupBySnFrame, ReturnFrame, Topics,
    codes, encode_frame, parse_sn,
};

use crate::{Shared, SimSlot};

const HOLES_PER_BOARD: usize = 4;
/// Solenoid valve detection the firmware reports for a normal pop-up.
const SOLENOID_NORMAL_POPUP: u8 = 0x02;

fn topics() -> Topics {
    Topics::default()
}

/// The topic whose last level is `channel`, before the mountpoint.
pub(crate) fn topic(shared: &Shared, channel: &str) -> String {
    format!("{}/{}/user/{channel}", topics().root(), shared.device_id)
}

/// Every bank a volinks cabinet holds must have a volinks SN.
pub(crate) fn check_serials(slots: &[SimSlot]) -> anyhow::Result<()> {
    for slot in slots {
        if let Some((serial, _)) = &slot.bank {
            parse_sn(serial).map_err(|e| anyhow::anyhow!("slot {}: {e}", slot.index))?;
        }
        anyhow::ensure!((1..=255).contains(&slot.index), "slot {}: volinks numbers holes 1-255", slot.index);
    }
    Ok(())
}

fn holes_per_board(count: usize) -> usize {
    if count > 0 && count.is_multiple_of(HOLES_PER_BOARD) { HOLES_PER_BOARD } else { count.max(1) }
}

/// The board holding `slot` (boards are numbered from 1).
fn board_of(slots: &[SimSlot], slot: u16) -> u8 {
    let per_board = holes_per_board(slots.len());
    let position = slots.iter().position(|s| s.index == slot).unwrap_or(0);
    u8::try_from(position / per_board + 1).unwrap_or(u8::MAX)
}

fn sn_of(bank: &Option<(String, u8)>) -> u32 {
    bank.as_ref().and_then(|(serial, _)| parse_sn(serial).ok()).unwrap_or(0)
}

fn check_frame(shared: &Shared) -> Frame {
    let slots = shared.slots();
    let per_board = holes_per_board(slots.len());
    let boards = slots
        .chunks(per_board)
        .enumerate()
        .map(|(b, chunk)| Board {
            index: u8::try_from(b + 1).unwrap_or(u8::MAX),
            reserved: [0xFF, 0xFF],
            temperature: 0,
            soft_version: 4,
            hard_version: 0x16,
            holes: chunk
                .iter()
                .map(|slot| {
                    let occupied = slot.bank.is_some();
                    Hole {
                        index: u8::try_from(slot.index).unwrap_or(0),
                        state: if occupied { codes::HOLE_NORMAL } else { codes::HOLE_EMPTY },
                        bank_current: 0,
                        bank_voltage: if occupied { 0xE2 } else { 0 },
                        area: 0,
                        sn: sn_of(&slot.bank),
                        soc: slot.bank.as_ref().map_or(0, |b| b.1),
                        temperature: 0x1F,
                        charge_voltage: 0,
                        charge_current: 0,
                        soft_version: 0x0D,
                        sensor: if occupied { 0x00 } else { 0x80 },
                    }
                })
                .collect(),
        })
        .collect();
    Frame::Check(CheckFrame { boards })
}

/// The `0x40` frame of a successful return of `sn` into `slot`.
pub(crate) fn returned(shared: &Shared, slot: u16, sn: u32, battery: u8) -> Frame {
    let board = board_of(&shared.slots(), slot);
    Frame::Return(ReturnFrame {
        board,
        hole: u8::try_from(slot).unwrap_or(0),
        area: 0,
        sn,
        state: codes::SUCCESS,
        bank_version: 1,
        soc: Some(battery.min(100)),
    })
}

pub(crate) fn on_connect(shared: &Shared, client: &AsyncClient) -> anyhow::Result<()> {
    let id = &shared.device_id;
    client.try_subscribe(shared.topic(&topics().get(id)), QoS::AtLeastOnce)?;
    let check = encode_frame(&check_frame(shared));
    client.try_publish(shared.topic(&topics().update(id)), QoS::AtLeastOnce, false, check)?;
    Ok(())
}

/// A check frame (every hole's state), as the cabinet sends on `check`.
pub(crate) async fn publish_check(shared: &Shared, client: &AsyncClient) -> anyhow::Result<()> {
    publish_frame(shared, client, &check_frame(shared)).await
}

pub(crate) async fn publish_frame(shared: &Shared, client: &AsyncClient, frame: &Frame) -> anyhow::Result<()> {
    let (topic, qos) = match frame {
        Frame::Heartbeat(_) => (topics().heart(&shared.device_id), QoS::AtMostOnce),
        _ => (topics().update(&shared.device_id), QoS::AtLeastOnce),
    };
    client.publish(shared.topic(&topic), qos, false, encode_frame(frame)).await?;
    Ok(())
}

pub(crate) async fn heartbeat(shared: &Shared, client: &AsyncClient) -> anyhow::Result<()> {
    let signal = format!("CSQ:{};BP:0", shared.config.volinks_signal).into_bytes();
    publish_frame(shared, client, &Frame::Heartbeat(HeartbeatFrame { board: 0x10, signal })).await
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether the command's `timestamp + ttl` is in the past.
fn expired(command: &JsonCommand) -> bool {
    command.expires_at().is_some_and(|at| at < unix_secs())
}

/// `popup_sn`: find the bank by SN (0xFC when absent), refuse a stale command
/// (0x88), fail on the roll (the configured code), else eject it.
fn pop_up_by_sn(shared: &Shared, command: &JsonCommand, sn: u32) -> Frame {
    let mut slots = shared.slots();
    let (hole, state) = match slots.iter_mut().find(|s| sn != 0 && sn_of(&s.bank) == sn) {
        None => (0, codes::POPUP_SN_NOT_FOUND),
        Some(slot) if expired(command) => (slot.index, codes::POPUP_TTL_EXCEEDED),
        Some(slot) if shared.roll_failure() => (slot.index, shared.config.volinks_failure_code),
        Some(slot) => {
            slot.bank = None;
            (slot.index, codes::SUCCESS)
        }
    };
    let solenoid = if state == codes::SUCCESS { SOLENOID_NORMAL_POPUP } else { 0 };
    Frame::PopupBySn(PopupBySnFrame { hole: u8::try_from(hole).unwrap_or(0), sn, state, solenoid })
}

/// `popup` by hole: 0x88 when stale, 0x00 for an empty or unknown hole, the
/// configured code on a failed roll, else eject whatever is there.
fn pop_up_by_hole(shared: &Shared, command: &JsonCommand, hole: u8) -> Frame {
    let board = board_of(&shared.slots(), u16::from(hole));
    let mut slots = shared.slots();
    let state = match slots.iter_mut().find(|s| s.index == u16::from(hole)) {
        _ if expired(command) => codes::POPUP_TTL_EXCEEDED,
        Some(slot) if slot.bank.is_some() => {
            if shared.roll_failure() {
                shared.config.volinks_failure_code
            } else {
                slot.bank = None;
                codes::SUCCESS
            }
        }
        _ => 0x00,
    };
    let solenoid = if state == codes::SUCCESS { SOLENOID_NORMAL_POPUP } else { 0 };
    Frame::PopupByHole(PopupByHoleFrame { board, hole, state, solenoid })
}

/// Answers a JSON command from the get topic after the configured delay.
pub(crate) fn on_command(shared: &Arc<Shared>, client: &AsyncClient, payload: &[u8]) {
    let Ok(command) = serde_json::from_slice::<JsonCommand>(payload) else {
        tracing::warn!(station = %shared.device_id, "sim ignored an unreadable command");
        return;
    };
    let shared = shared.clone();
    let client = client.clone();
    tokio::spawn(async move {
        let answer = match command {
            JsonCommand::Check => check_frame(&shared),
            JsonCommand::PopupSn { sn, .. } => {
                tokio::time::sleep(shared.config.eject_delay).await;
                pop_up_by_sn(&shared, &command, sn)
            }
            JsonCommand::Popup { hole, .. } => {
                tokio::time::sleep(shared.config.eject_delay).await;
                pop_up_by_hole(&shared, &command, hole)
            }
        };
        if let Err(e) = publish_frame(&shared, &client, &answer).await {
            tracing::warn!(station = %shared.device_id, error = %e, "sim answer not sent");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SimConfig, SimProtocol};
    use station_codecs::volinks::decode_frame;

    fn shared(slots: Vec<SimSlot>) -> Shared {
        let mut config = SimConfig::new("127.0.0.1", 1);
        config.protocol = SimProtocol::Volinks;
        Shared {
            device_id: "864601068412899".into(),
            config,
            slots: std::sync::Mutex::new(slots),
            answered: Default::default(),
        }
    }

    fn slots(n: u16) -> Vec<SimSlot> {
        (1..=n)
            .map(|i| SimSlot { index: i, bank: (i % 2 == 1).then(|| (format!("{}", 85_000_000 + u32::from(i)), 80)) })
            .collect()
    }

    #[test]
    fn check_frames_decode_to_the_same_slots() {
        for n in [1, 4, 6, 8, 12] {
            let s = shared(slots(n));
            let bytes = encode_frame(&check_frame(&s));
            let Ok(Frame::Check(check)) = decode_frame(&bytes) else { panic!("{n} slots: {bytes:02X?}") };
            let holes: Vec<_> = check.holes().map(|h| (h.index, h.sn)).collect();
            let expected: Vec<_> = slots(n).iter().map(|s| (s.index as u8, sn_of(&s.bank))).collect();
            assert_eq!(holes, expected, "{n} slots");
            let per_board = if n % 4 == 0 { 4 } else { n as usize };
            assert!(check.boards.iter().all(|b| b.holes.len() == per_board));
        }
    }

    #[test]
    fn pop_ups_follow_the_firmware_rules() {
        let s = shared(slots(4));
        let fresh = |sn| JsonCommand::PopupSn { sn, timestamp: Some(unix_secs()), ttl: Some(30) };
        assert_eq!(
            pop_up_by_sn(&s, &fresh(85_000_003), 85_000_003),
            Frame::PopupBySn(PopupBySnFrame { hole: 3, sn: 85_000_003, state: 0x01, solenoid: 0x02 })
        );
        // Gone now: not found.
        let again = pop_up_by_sn(&s, &fresh(85_000_003), 85_000_003);
        assert!(matches!(again, Frame::PopupBySn(PopupBySnFrame { state: 0xFC, hole: 0, .. })));
        let stale = JsonCommand::PopupSn { sn: 85_000_001, timestamp: Some(unix_secs() - 100), ttl: Some(30) };
        assert!(matches!(pop_up_by_sn(&s, &stale, 85_000_001), Frame::PopupBySn(PopupBySnFrame { state: 0x88, .. })));
        let by_hole = JsonCommand::Popup { hole: 1, io: 0, timestamp: None, ttl: None };
        assert_eq!(
            pop_up_by_hole(&s, &by_hole, 1),
            Frame::PopupByHole(PopupByHoleFrame { board: 1, hole: 1, state: 0x01, solenoid: 0x02 })
        );
        assert!(matches!(pop_up_by_hole(&s, &by_hole, 1), Frame::PopupByHole(PopupByHoleFrame { state: 0x00, .. })));
        assert!(s.slots().iter().all(|slot| slot.bank.is_none()));
    }

    #[test]
    fn failure_rolls_report_the_configured_code() {
        let mut s = shared(slots(2));
        s.config.eject_failure_rate = 1.0;
        s.config.volinks_failure_code = 0x12;
        let command = JsonCommand::PopupSn { sn: 85_000_001, timestamp: None, ttl: None };
        assert!(matches!(
            pop_up_by_sn(&s, &command, 85_000_001),
            Frame::PopupBySn(PopupBySnFrame { hole: 1, state: 0x12, .. })
        ));
        assert!(s.slots()[0].bank.is_some(), "a failed pop-up keeps the bank");
    }
}
