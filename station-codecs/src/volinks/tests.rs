//! Byte-exact frames (vendor examples, field captures, and frames written
//! here from the layout tables), the event mapping, and a property test that
//! `decode_frame` never panics and round-trips whatever it accepts.

use super::*;
use crate::station::{EjectCommand, Heartbeat};

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

/// A frame written from the layout table: head, total length, cmd, data and
/// the complement check, computed here rather than by `encode_frame`.
fn spec_frame(cmd: u8, data: &[u8]) -> Vec<u8> {
    let total = data.len() + 5;
    let mut bytes = vec![0xA8, (total >> 8) as u8, (total & 0xFF) as u8, cmd];
    bytes.extend_from_slice(data);
    let sum: u32 = bytes.iter().map(|b| u32::from(*b)).sum();
    bytes.push(((256 - sum % 256) % 256) as u8);
    bytes
}

fn sn_bytes(sn: u32) -> [u8; 4] {
    sn.to_be_bytes()
}

fn hole_record(index: u8, state: u8, sn: u32, soc: u8) -> Vec<u8> {
    let mut r = vec![index, state, 0x00, 0xE2, 0x04];
    r.extend_from_slice(&sn_bytes(sn));
    r.extend_from_slice(&[soc, 0x16, 0x00, 0x00, 0x19, if sn == 0 { 0x80 } else { 0x00 }]);
    r
}

fn board_header(index: u8) -> Vec<u8> {
    vec![index, 0xFF, 0xFF, 0x00, 0x04, 0x16]
}

fn decode_ok(bytes: &[u8]) -> Frame {
    let frame = decode_frame(bytes).unwrap_or_else(|e| panic!("{e}: {bytes:02X?}"));
    assert_eq!(encode_frame(&frame), bytes, "encode_frame must give back the same bytes");
    frame
}

fn events_of(bytes: &[u8]) -> (Vec<Event>, Vec<Note>) {
    let decoded = decode(&Topics::default(), "/powerbank/864601068412899/user/update", bytes)
        .unwrap_or_else(|e| panic!("{e:?}: {bytes:02X?}"));
    assert_eq!(decoded.device_id, "864601068412899");
    (decoded.events, decoded.notes)
}

/// The vendor's 8-port example: two boards of four holes, numbered 1-8.
const DOC_CHECK: &str = "A8 00 89 10 01 FF FF 00 04 16 01 01 00 EC 00 05 11 49 F1 64 1F 32 01 0D 00 02 00 00 00 00 \
    00 00 00 00 00 00 00 00 00 80 03 01 00 E8 00 05 11 46 AC 64 20 32 00 0D 00 04 00 00 00 00 00 00 00 00 00 00 00 00 \
    00 80 02 FF FF 00 04 16 05 01 00 D7 00 04 C6 F0 96 64 1F 32 00 1A 00 06 00 00 00 00 00 00 00 00 00 00 00 00 00 80 \
    07 01 00 E9 00 05 11 49 DB 64 1E 32 00 0D 00 08 00 00 00 00 00 00 00 00 00 00 00 00 00 80 D8";

/// A field capture: one board of four holes, a bank in hole 3.
const FIELD_CHECK: &str = "A8 00 47 10 01 04 00 00 04 0F 01 00 00 00 00 00 00 00 00 00 01 00 00 00 80 02 00 00 00 00 \
    00 00 00 00 00 01 00 00 00 80 03 01 00 E2 49 02 6E D5 84 64 16 00 00 19 00 04 00 00 00 00 00 00 00 00 00 01 00 00 \
    00 80 D4";

#[test]
fn check_byte_is_the_complement_of_the_sum() {
    for frame in [DOC_CHECK, FIELD_CHECK, "A8 00 0C 31 01 02 6E D5 80 01 02 52", "A8 00 09 21 10 01 01 02 1A"] {
        let bytes = hex(frame);
        let (last, body) = bytes.split_last().unwrap();
        assert_eq!(check_byte(body), *last, "{frame}");
        assert_eq!(bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
    }
    assert_eq!(spec_frame(0x21, &[0x10, 0x01, 0x01, 0x02]), hex("A8 00 09 21 10 01 01 02 1A"));
}

#[test]
fn vendor_check_example_has_two_boards_of_four_holes() {
    let Frame::Check(check) = decode_ok(&hex(DOC_CHECK)) else { panic!("not a check frame") };
    assert_eq!(check.boards.len(), 2);
    assert_eq!(check.boards.iter().map(|b| b.holes.len()).collect::<Vec<_>>(), [4, 4]);
    let b1 = &check.boards[0];
    assert_eq!((b1.index, b1.reserved, b1.soft_version, b1.hard_version), (1, [0xFF, 0xFF], 4, 0x16));
    let h1 = b1.holes[0];
    assert_eq!((h1.index, h1.state, h1.sn, h1.soc, h1.temperature, h1.sensor), (1, 1, 85019121, 100, 0x1F, 0));
    assert_eq!(check.holes().map(|h| h.index).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(check.boards[1].holes[0].sn, 80146582);

    let (events, _) = events_of(&hex(DOC_CHECK));
    let Event::Status(status) = &events[0] else { panic!("{events:?}") };
    assert!(status.online);
    let slots = status.slots.as_ref().unwrap();
    let occupied = |index, bank: &str| SlotReport {
        index,
        state: SlotState::Occupied,
        power_bank: Some(bank.to_string()),
        battery: Some(100),
    };
    let empty = |index| SlotReport { index, state: SlotState::Empty, power_bank: None, battery: None };
    assert_eq!(
        slots,
        &vec![
            occupied(1, "85019121"),
            empty(2),
            occupied(3, "85018284"),
            empty(4),
            occupied(5, "80146582"),
            empty(6),
            occupied(7, "85019099"),
            empty(8),
        ]
    );
}

#[test]
fn field_check_capture_has_one_board() {
    let Frame::Check(check) = decode_ok(&hex(FIELD_CHECK)) else { panic!("not a check frame") };
    assert_eq!(check.boards.len(), 1);
    assert_eq!(check.boards[0].reserved, [0x04, 0x00]);
    let (events, _) = events_of(&hex(FIELD_CHECK));
    let Event::Status(status) = &events[0] else { panic!() };
    let states: Vec<_> = status.slots.as_ref().unwrap().iter().map(|s| (s.index, s.state)).collect();
    assert_eq!(states, [(1, SlotState::Empty), (2, SlotState::Empty), (3, SlotState::Occupied), (4, SlotState::Empty)]);
    assert_eq!(status.slots.as_ref().unwrap()[2].power_bank.as_deref(), Some("40818052"));
}

#[test]
fn check_frames_of_many_shapes() {
    // 3 boards x 2 holes, with fault states and an unreadable SN.
    let mut data = Vec::new();
    let holes = [(0x01, 11111111, 55), (0x00, 0, 0), (0x02, 22222222, 40), (0x04, 0, 0), (0x01, 0, 0), (0x0A, 33, 255)];
    for (board, pair) in holes.chunks(2).enumerate() {
        data.extend(board_header(board as u8 + 1));
        for (i, (state, sn, soc)) in pair.iter().enumerate() {
            data.extend(hole_record((board * 2 + i + 1) as u8, *state, *sn, *soc));
        }
    }
    let bytes = spec_frame(0x10, &data);
    let Frame::Check(check) = decode_ok(&bytes) else { panic!() };
    assert_eq!(check.boards.iter().map(|b| b.holes.len()).collect::<Vec<_>>(), [2, 2, 2]);
    let (events, _) = events_of(&bytes);
    let Event::Status(status) = &events[0] else { panic!() };
    let got: Vec<_> =
        status.slots.as_ref().unwrap().iter().map(|s| (s.index, s.state, s.power_bank.clone(), s.battery)).collect();
    assert_eq!(
        got,
        [
            (1, SlotState::Occupied, Some("11111111".to_string()), Some(55)),
            (2, SlotState::Empty, None, None),
            (3, SlotState::Fault, Some("22222222".to_string()), Some(40)),
            (4, SlotState::Fault, None, None),
            (5, SlotState::Fault, None, None),
            (6, SlotState::Fault, Some("33".to_string()), None),
        ]
    );

    // Boards of different sizes (8 + 4), found through the hole numbers.
    let mut data = board_header(1);
    for i in 1..=8 {
        data.extend(hole_record(i, 0x01, 1000 + u32::from(i), 90));
    }
    data.extend(board_header(2));
    for i in 9..=12 {
        data.extend(hole_record(i, 0x00, 0, 0));
    }
    let Frame::Check(check) = decode_ok(&spec_frame(0x10, &data)) else { panic!() };
    assert_eq!(check.boards.iter().map(|b| b.holes.len()).collect::<Vec<_>>(), [8, 4]);

    // Six boards of four: the same length also fits one board of 26 holes.
    let mut data = Vec::new();
    for board in 0..6u8 {
        data.extend(board_header(board + 1));
        for i in 0..4u8 {
            data.extend(hole_record(board * 4 + i + 1, 0x00, 0, 0));
        }
    }
    let Frame::Check(check) = decode_ok(&spec_frame(0x10, &data)) else { panic!() };
    assert_eq!(check.boards.len(), 6);

    // Holes numbered 0 keep their position as slot number.
    let mut data = board_header(1);
    data.extend(hole_record(0, 0x00, 0, 0));
    data.extend(hole_record(0, 0x01, 42, 80));
    let (events, _) = events_of(&spec_frame(0x10, &data));
    let Event::Status(status) = &events[0] else { panic!() };
    assert_eq!(status.slots.as_ref().unwrap().iter().map(|s| s.index).collect::<Vec<_>>(), [1, 2]);

    // The same hole twice cannot be a slot picture.
    let mut data = board_header(1);
    data.extend(hole_record(3, 0x00, 0, 0));
    data.extend(hole_record(3, 0x00, 0, 0));
    let twice = decode(&Topics::default(), "/powerbank/X1/user/update", &spec_frame(0x10, &data));
    assert!(matches!(twice, Err(DecodeError::Malformed { device_id: Some(ref d), .. }) if d == "X1"), "{twice:?}");

    // Data that split into no boards at all.
    for data_len in [0usize, 6, 20, 22] {
        let bytes = spec_frame(0x10, &vec![1; data_len]);
        assert_eq!(decode_frame(&bytes), Err(FrameError::BadLayout { data_len }));
    }
}

#[test]
fn pop_up_by_sn_success_and_every_failure_code() {
    // A field capture: hole 1, SN 40818048, success, solenoid 0x02.
    let capture = hex("A8 00 0C 31 01 02 6E D5 80 01 02 52");
    assert_eq!(
        decode_ok(&capture),
        Frame::PopupBySn(PopupBySnFrame { hole: 1, sn: 40818048, state: 0x01, solenoid: 0x02 })
    );
    let (events, _) = events_of(&capture);
    assert_eq!(events, vec![Event::Ejected { request_id: None, slot: 1, power_bank: Some("40818048".into()) }]);

    let literal = hex("A8 00 0C 31 03 05 11 53 B2 FC 00 01");
    assert_eq!(literal, spec_frame(0x31, &[3, 0x05, 0x11, 0x53, 0xB2, 0xFC, 0x00]));
    for (code, description) in codes::POPUP_STATES.iter().filter(|(c, _)| *c != codes::SUCCESS) {
        let mut data = vec![3];
        data.extend(sn_bytes(85021618));
        data.extend([*code, 0x00]);
        let bytes = spec_frame(0x31, &data);
        let (events, _) = events_of(&bytes);
        assert_eq!(
            events,
            vec![Event::EjectFailed {
                request_id: None,
                slot: Some(3),
                power_bank: Some("85021618".into()),
                reason: format!("{description} (0x{code:02X})"),
            }],
            "state 0x{code:02X}"
        );
    }
    // Not found: the cabinet names no hole.
    let (events, _) = events_of(&hex("A8 00 0C 31 00 05 11 53 B2 FC 00 04"));
    assert!(matches!(&events[0], Event::EjectFailed { slot: None, reason, .. }
        if reason == "Target SN not found among the charging power banks (0xFC)"));
    // An unknown code still fails the eject, with the code in the reason.
    let (events, _) = events_of(&spec_frame(0x31, &[3, 0, 0, 0, 9, 0x42, 0]));
    assert!(matches!(&events[0], Event::EjectFailed { reason, .. } if reason == "Unknown error (0x42)"));
}

#[test]
fn pop_up_by_hole_success_and_every_failure_code() {
    let doc = hex("A8 00 09 21 10 01 01 02 1A");
    assert_eq!(decode_ok(&doc), Frame::PopupByHole(PopupByHoleFrame { board: 0x10, hole: 1, state: 1, solenoid: 2 }));
    let (events, _) = events_of(&doc);
    assert_eq!(events, vec![Event::Ejected { request_id: None, slot: 1, power_bank: None }]);
    assert_eq!(hex("A8 00 09 21 10 05 88 00 91"), spec_frame(0x21, &[0x10, 5, 0x88, 0]));
    for code in [0x00, 0x11, 0x12, 0x87, 0x88, 0xFF] {
        let (events, _) = events_of(&spec_frame(0x21, &[0x10, 5, code, 0x00]));
        assert_eq!(
            events,
            vec![Event::EjectFailed {
                request_id: None,
                slot: Some(5),
                power_bank: None,
                reason: codes::reason(codes::popup_state(code), code),
            }]
        );
    }
}

#[test]
fn returns_seat_the_bank_and_failures_only_log() {
    // The vendor's example: board 0x10, hole 1, area 4, SN 93198088, success, version 0xCA, 95 %.
    let doc = hex("A8 00 0F 40 10 01 04 05 8E 17 08 01 CA 5F 18");
    assert_eq!(
        decode_ok(&doc),
        Frame::Return(ReturnFrame {
            board: 0x10,
            hole: 1,
            area: 4,
            sn: 93198088,
            state: 1,
            bank_version: 0xCA,
            soc: Some(95)
        })
    );
    let (events, notes) = events_of(&doc);
    assert_eq!(events, vec![Event::Returned { slot: 1, power_bank: "93198088".into(), battery: Some(95) }]);
    assert!(notes.is_empty());
    // The older 14-byte frame has no SOC.
    let (events, _) = events_of(&hex("A8 00 0E 40 10 02 04 05 8E 17 08 01 CA 77"));
    assert_eq!(events, vec![Event::Returned { slot: 2, power_bank: "93198088".into(), battery: None }]);

    for (code, description) in codes::RETURN_STATES.iter().filter(|(c, _)| *c != codes::SUCCESS) {
        let mut data = vec![0x10, 2, 4];
        data.extend(sn_bytes(93198088));
        data.extend([*code, 0xCA, 0x5F]);
        let (events, notes) = events_of(&spec_frame(0x40, &data));
        assert!(events.is_empty(), "state 0x{code:02X}: {events:?}");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].fields.contains(&("reason".to_string(), description.to_string())));
    }
    let mut anti_theft = vec![0x10, 2, 4];
    anti_theft.extend(sn_bytes(93198088));
    anti_theft.extend([0x24, 0xCA, 0x5F]);
    assert_eq!(spec_frame(0x40, &anti_theft), hex("A8 00 0F 40 10 02 04 05 8E 17 08 24 CA 5F F4"));
}

#[test]
fn return_fix_seats_the_bank_on_success_only() {
    let ok = hex("A8 00 15 28 10 07 01 00 00 04 05 11 53 B2 50 1F 32 01 04 16 28");
    let Frame::ReturnFix(fix) = decode_ok(&ok) else { panic!() };
    assert_eq!((fix.hole, fix.sn, fix.soc, fix.temperature, fix.charge_voltage), (7, 85021618, 80, 0x1F, 0x32));
    let (events, _) = events_of(&ok);
    assert_eq!(events, vec![Event::Returned { slot: 7, power_bank: "85021618".into(), battery: Some(80) }]);
    let failed = hex("A8 00 15 28 10 07 24 00 00 04 05 11 53 B2 50 1F 32 01 04 16 05");
    let (events, notes) = events_of(&failed);
    assert!(events.is_empty());
    assert_eq!(notes.len(), 1);
}

#[test]
fn heartbeat_reports_the_signal() {
    let doc = hex("A8 00 11 7A 10 43 53 51 3A 32 37 3B 42 50 3A 30 FC");
    let Frame::Heartbeat(hb) = decode_ok(&doc) else { panic!() };
    assert_eq!(
        (hb.board, hb.signal.as_slice(), hb.csq(), hb.backup_power()),
        (0x10, &b"CSQ:27;BP:0"[..], Some(27), Some(0))
    );
    let decoded = decode(&Topics::default(), "/powerbank/864601068412899/user/heart", &doc).unwrap();
    assert_eq!(decoded.events, vec![Event::Heartbeat(Heartbeat { uptime_secs: None, signal: Some(27) })]);
    let no_network = hex("A8 00 11 7A 10 43 53 51 3A 39 39 3B 42 50 3A 33 F0");
    let (events, _) = events_of(&no_network);
    assert_eq!(events, vec![Event::Heartbeat(Heartbeat { uptime_secs: None, signal: Some(99) })]);
    for (signal, csq) in [(&b"26"[..], Some(26)), (b"CSQ:40;BP:0", None), (b"", None), (b"\xff\xfe", None)] {
        let mut data = vec![0x10];
        data.extend_from_slice(signal);
        let Frame::Heartbeat(hb) = decode_ok(&spec_frame(0x7A, &data)) else { panic!() };
        assert_eq!(hb.csq(), csq, "{signal:?}");
    }
}

#[test]
fn broken_envelopes_are_refused() {
    let good = hex("A8 00 09 21 10 01 01 02 1A");
    assert_eq!(decode_frame(&[]), Err(FrameError::TooShort { len: 0 }));
    assert_eq!(decode_frame(&good[..4]), Err(FrameError::TooShort { len: 4 }));
    let mut bad_head = good.clone();
    bad_head[0] = 0xA9;
    assert_eq!(decode_frame(&bad_head), Err(FrameError::BadHead { found: 0xA9 }));
    assert_eq!(decode_frame(&good[..8]), Err(FrameError::LengthMismatch { declared: 9, actual: 8 }));
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(decode_frame(&longer), Err(FrameError::LengthMismatch { declared: 9, actual: 10 }));
    let mut bad_check = good.clone();
    bad_check[8] = 0x1B;
    assert_eq!(decode_frame(&bad_check), Err(FrameError::BadCheck { expected: 0x1A, found: 0x1B }));
    // The vendor's pop-up-by-SN example carries a wrong check byte (0x3B for 0x3D).
    assert_eq!(
        decode_frame(&hex("A8 00 0C 31 60 00 9B D2 10 01 00 3B")),
        Err(FrameError::BadCheck { expected: 0x3D, found: 0x3B })
    );
    assert_eq!(decode_frame(&spec_frame(0x55, &[1, 2])), Err(FrameError::UnknownCommand { cmd: 0x55 }));
    assert_eq!(decode_frame(&spec_frame(0x21, &[1, 2, 3])), Err(FrameError::WrongSize { cmd: 0x21, len: 8 }));
    assert_eq!(decode_frame(&spec_frame(0x7A, &[])), Err(FrameError::WrongSize { cmd: 0x7A, len: 5 }));
    assert_eq!(decode_frame(&vec![0xA8; MAX_FRAME_BYTES + 1]), Err(FrameError::TooLong { len: MAX_FRAME_BYTES + 1 }));

    let malformed = decode(&Topics::default(), "/powerbank/864601068412899/user/update", &bad_check);
    assert_eq!(
        malformed,
        Err(DecodeError::Malformed {
            device_id: Some("864601068412899".into()),
            reason: "check byte 0x1B (expected 0x1A)".into()
        })
    );
    assert!(matches!(
        decode(&Topics::default(), "/powerbank/864601068412899/user/get", &good),
        Err(DecodeError::UnknownTopic(_))
    ));
}

#[test]
fn encodes_ejects_and_checks_as_the_sdk_does() {
    let topics = Topics::default();
    let eject = |power_bank: Option<&str>, ttl_secs| {
        Command::Eject(EjectCommand {
            request_id: "r1".into(),
            slot: 16,
            power_bank: power_bank.map(str::to_string),
            issued_at_unix_ms: 1_759_941_810_999,
            ttl_secs,
        })
    };
    let out = encode(&topics, "864601068412899", &eject(Some("85021618"), 45), DEFAULT_TTL_SECS).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "/powerbank/864601068412899/user/get");
    assert_eq!((out[0].qos, out[0].retain), (0, false));
    assert_eq!(
        String::from_utf8(out[0].payload.clone()).unwrap(),
        r#"{"cmd":"popup_sn","data":"85021618","timestamp":"1759941810","ttl":"45"}"#
    );
    let by_hole = encode(&topics, "864601068412899", &eject(None, 0), 20).unwrap();
    assert_eq!(
        String::from_utf8(by_hole[0].payload.clone()).unwrap(),
        r#"{"cmd":"popup","data":"16","io":"0","timestamp":"1759941810","ttl":"20"}"#
    );
    let check = encode(&topics, "864601068412899", &Command::QueryStatus, DEFAULT_TTL_SECS).unwrap();
    assert_eq!(check[0].payload, br#"{"cmd":"check"}"#);
    assert_eq!(check[0].qos, 1);

    assert!(encode(&topics, "864601068412899", &eject(Some("PB-00017"), 30), 30).is_err());
    assert!(encode(&topics, "864601068412899", &eject(Some("0"), 30), 30).is_err());
    assert!(encode(&topics, "864601068412899", &eject(Some("4294967296"), 30), 30).is_err());
    assert!(encode(&topics, "bad/imei", &Command::QueryStatus, 30).is_err());
    let mut far = eject(None, 30);
    if let Command::Eject(e) = &mut far {
        e.slot = 300;
    }
    assert!(encode(&topics, "864601068412899", &far, 30).is_err());
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

/// Frames with a valid envelope around random data, so the checks after the
/// envelope (sizes, layouts, mapping) are exercised too.
fn random_frame(rng: &mut Rng) -> Vec<u8> {
    const CMDS: [u8; 7] = [0x10, 0x21, 0x28, 0x31, 0x40, 0x7A, 0x99];
    let cmd = CMDS[rng.below(CMDS.len())];
    let data_len = match cmd {
        0x10 => {
            if rng.below(2) == 0 {
                let per_board = 1 + rng.below(8);
                (1 + rng.below(4)) * (6 + 15 * per_board)
            } else {
                rng.below(400)
            }
        }
        // Half the time the size the command needs, else any size.
        0x21 if rng.below(2) == 0 => 4,
        0x31 if rng.below(2) == 0 => 7,
        0x40 if rng.below(2) == 0 => 9 + rng.below(2),
        0x28 if rng.below(2) == 0 => 16,
        _ => rng.below(24),
    };
    let mut data = rng.bytes(data_len);
    if cmd == 0x10 && rng.below(2) == 0 {
        // Plausible hole numbers for the layout search to find.
        let per_board = 1 + rng.below(8);
        let board_len = 6 + 15 * per_board;
        for (i, chunk) in data.chunks_mut(board_len).enumerate() {
            for h in 0..per_board {
                if let Some(b) = chunk.get_mut(6 + 15 * h) {
                    *b = (i * per_board + h + 1) as u8;
                }
            }
        }
    }
    spec_frame(cmd, &data)
}

#[test]
fn decode_never_panics_and_round_trips_what_it_accepts() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = [
        hex(DOC_CHECK),
        hex(FIELD_CHECK),
        hex("A8 00 0C 31 01 02 6E D5 80 01 02 52"),
        hex("A8 00 09 21 10 01 01 02 1A"),
        hex("A8 00 0F 40 10 01 04 05 8E 17 08 01 CA 5F 18"),
        hex("A8 00 15 28 10 07 01 00 00 04 05 11 53 B2 50 1F 32 01 04 16 28"),
        hex("A8 00 11 7A 10 43 53 51 3A 32 37 3B 42 50 3A 30 FC"),
    ];
    let topics = Topics::default();
    let mut accepted = 0;
    for case in 0..20_000 {
        let bytes = match case % 6 {
            // Random bytes of random length.
            0 => {
                let len = rng.below(300);
                rng.bytes(len)
            }
            // A truncated valid frame.
            1 => {
                let seed = &seeds[rng.below(seeds.len())];
                seed[..rng.below(seed.len() + 1)].to_vec()
            }
            // A valid frame with bytes appended (oversized), up to past the 16-bit length.
            2 => {
                let mut seed = seeds[rng.below(seeds.len())].clone();
                let extra = if rng.below(50) == 0 { MAX_FRAME_BYTES } else { rng.below(64) + 1 };
                seed.extend(rng.bytes(extra));
                seed
            }
            // A valid frame with one byte changed.
            3 => {
                let mut seed = seeds[rng.below(seeds.len())].clone();
                let at = rng.below(seed.len());
                seed[at] ^= 1 + rng.below(255) as u8;
                seed
            }
            // A random frame with a valid envelope.
            _ => random_frame(&mut rng),
        };
        if let Ok(frame) = decode_frame(&bytes) {
            accepted += 1;
            assert_eq!(encode_frame(&frame), bytes, "round trip of {bytes:02X?}");
        }
        // The whole translation never panics either, on any topic.
        let topic = if rng.below(8) == 0 { "/powerbank/+/user/update" } else { "/powerbank/X1/user/update" };
        if let Ok(decoded) = decode(&topics, topic, &bytes) {
            assert_eq!(station::check_decoded(&decoded), Ok(()));
        }
    }
    assert!(accepted > 3_000, "only {accepted} generated frames were valid: the generator is too weak");
    // Still decodes a valid frame afterwards (no hidden state).
    assert!(decode_frame(&seeds[0]).is_ok());
}
