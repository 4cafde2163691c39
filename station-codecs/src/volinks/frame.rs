//! The binary frames a volinks cabinet publishes.
//!
//! Every frame is `A8 | length (2 bytes, big-endian) | cmd | data... | check`:
//!
//! - the head byte is always `0xA8`;
//! - the length counts the whole frame, head and check byte included (every
//!   example frame and capture says so; two tables of the vendor's docs say
//!   otherwise and contradict their own examples);
//! - the check byte is the two's complement of the 8-bit sum of every byte
//!   before it ("packet complement check"), so all bytes of a valid frame add
//!   up to 0 modulo 256.
//!
//! Layouts after `cmd` (SN = power bank serial, 4 bytes big-endian, shown in
//! decimal by the vendor):
//!
//! | cmd | frame | data |
//! | --- | --- | --- |
//! | `0x10` | check / periodic upload | per control board: index, 2 reserved, temperature, software, hardware (6 bytes), then 15 bytes per hole: index, state, bank current, bank voltage, area, SN (4), SOC, temperature, charge voltage, charge current, software, sensor |
//! | `0x21` | pop-up by hole | board, hole, state, solenoid valve |
//! | `0x31` | pop-up by SN | hole, SN (4), state, solenoid valve |
//! | `0x40` | return | board, hole, area, SN (4), state, bank version, SOC (older firmware: no SOC, 14-byte frame) |
//! | `0x28` | return self-test | board, hole, state, 2 reserved, area, SN (4), SOC, temperature, charge voltage, charge current, software, hardware |
//! | `0x7A` | heartbeat | board, then ASCII `CSQ:27;BP:0` |
//!
//! Holes carry their cabinet-wide number (board 1 holds 1-4, board 2 holds
//! 5-8 in a 2 × 4 cabinet), and a check frame does not say how many holes a
//! board has: [`decode_frame`] finds the board boundaries from those numbers.

use std::fmt;

/// First byte of every frame.
pub const HEAD: u8 = 0xA8;
/// Head, two length bytes and the check byte.
pub const ENVELOPE_BYTES: usize = 5;
/// The length field is 16 bits wide.
pub const MAX_FRAME_BYTES: usize = u16::MAX as usize;
/// A control board's header in a check frame.
pub const BOARD_BYTES: usize = 6;
/// One hole's record in a check frame.
pub const HOLE_BYTES: usize = 15;
/// Holes are numbered by one byte, so a cabinet has at most 255.
pub const MAX_HOLES: usize = 255;

/// Command bytes.
pub mod cmd {
    pub const CHECK: u8 = 0x10;
    pub const POPUP_BY_HOLE: u8 = 0x21;
    pub const RETURN_FIX: u8 = 0x28;
    pub const POPUP_BY_SN: u8 = 0x31;
    pub const RETURN: u8 = 0x40;
    pub const HEARTBEAT: u8 = 0x7A;
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `0x10`: every control board and hole, answering `check` (and the periodic upload).
    Check(CheckFrame),
    /// `0x21`: the answer to `popup` (by hole).
    PopupByHole(PopupByHoleFrame),
    /// `0x31`: the answer to `popup_sn`.
    PopupBySn(PopupBySnFrame),
    /// `0x40`: a customer pushed a bank in (success or failure).
    Return(ReturnFrame),
    /// `0x28`: the self-test report after a return, with charge diagnostics.
    ReturnFix(ReturnFixFrame),
    /// `0x7A`: the periodic heartbeat on the heart topic.
    Heartbeat(HeartbeatFrame),
}

impl Frame {
    pub fn cmd(&self) -> u8 {
        match self {
            Frame::Check(_) => cmd::CHECK,
            Frame::PopupByHole(_) => cmd::POPUP_BY_HOLE,
            Frame::PopupBySn(_) => cmd::POPUP_BY_SN,
            Frame::Return(_) => cmd::RETURN,
            Frame::ReturnFix(_) => cmd::RETURN_FIX,
            Frame::Heartbeat(_) => cmd::HEARTBEAT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFrame {
    pub boards: Vec<Board>,
}

impl CheckFrame {
    /// Every hole of every board, in frame order.
    pub fn holes(&self) -> impl Iterator<Item = &Hole> {
        self.boards.iter().flat_map(|b| b.holes.iter())
    }
}

/// A control board ("movement board") and its holes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    pub index: u8,
    /// `FF FF` in the vendor's example, `04 00` in a field capture.
    pub reserved: [u8; 2],
    pub temperature: u8,
    pub soft_version: u8,
    pub hard_version: u8,
    pub holes: Vec<Hole>,
}

/// One hole (slot) as a check frame reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    /// Cabinet-wide hole number, from 1.
    pub index: u8,
    /// See [`super::codes::HOLE_STATES`].
    pub state: u8,
    /// Tenths of an ampere.
    pub bank_current: u8,
    /// Tenths of a volt.
    pub bank_voltage: u8,
    pub area: u8,
    /// Power bank serial; 0 when the hole is empty.
    pub sn: u32,
    /// Battery percent; 255 when unknown.
    pub soc: u8,
    /// Degrees Celsius.
    pub temperature: u8,
    /// Tenths of a volt.
    pub charge_voltage: u8,
    /// Tenths of an ampere.
    pub charge_current: u8,
    pub soft_version: u8,
    /// Position detection bits (`0x80` on an empty hole).
    pub sensor: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopupByHoleFrame {
    pub board: u8,
    pub hole: u8,
    /// See [`super::codes::POPUP_STATES`].
    pub state: u8,
    /// Solenoid valve detection, for the vendor's debugging (`0x02` = normal pop-up).
    pub solenoid: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopupBySnFrame {
    /// The hole the bank was in; 0 when the cabinet did not find it.
    pub hole: u8,
    pub sn: u32,
    /// See [`super::codes::POPUP_STATES`].
    pub state: u8,
    /// Solenoid valve detection (`0x02` = normal pop-up).
    pub solenoid: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnFrame {
    pub board: u8,
    pub hole: u8,
    pub area: u8,
    pub sn: u32,
    /// See [`super::codes::RETURN_STATES`].
    pub state: u8,
    /// Power bank firmware version (`0x00` = no bank).
    pub bank_version: u8,
    /// Battery percent; `None` in the older 14-byte frame that has no SOC.
    pub soc: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnFixFrame {
    pub board: u8,
    pub hole: u8,
    /// See [`super::codes::RETURN_STATES`].
    pub state: u8,
    pub reserved: [u8; 2],
    pub area: u8,
    pub sn: u32,
    pub soc: u8,
    pub temperature: u8,
    /// Tenths of a volt.
    pub charge_voltage: u8,
    /// Tenths of an ampere.
    pub charge_current: u8,
    pub soft_version: u8,
    pub hard_version: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatFrame {
    pub board: u8,
    /// ASCII, e.g. `CSQ:27;BP:0`; kept as bytes so any frame round-trips.
    pub signal: Vec<u8>,
}

impl HeartbeatFrame {
    /// Modem signal quality: `CSQ:n` (or a bare number), 0-31 or 99 (no network).
    pub fn csq(&self) -> Option<u8> {
        let text = std::str::from_utf8(&self.signal).ok()?;
        let value = match text.split(';').find_map(|part| part.trim().strip_prefix("CSQ:")) {
            Some(v) => v,
            None => text,
        };
        let csq: u8 = value.trim().parse().ok()?;
        (csq <= 31 || csq == 99).then_some(csq)
    }

    /// Backup power bits from `BP:n` (bit 0: supported, bit 1: running).
    pub fn backup_power(&self) -> Option<u8> {
        let text = std::str::from_utf8(&self.signal).ok()?;
        text.split(';').find_map(|part| part.trim().strip_prefix("BP:")).and_then(|v| v.trim().parse().ok())
    }
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than head, length, cmd and check byte.
    TooShort {
        len: usize,
    },
    /// More bytes than a 16-bit length can count.
    TooLong {
        len: usize,
    },
    BadHead {
        found: u8,
    },
    /// The length field does not count the bytes received.
    LengthMismatch {
        declared: usize,
        actual: usize,
    },
    BadCheck {
        expected: u8,
        found: u8,
    },
    UnknownCommand {
        cmd: u8,
    },
    /// A fixed-size frame of the wrong size.
    WrongSize {
        cmd: u8,
        len: usize,
    },
    /// A check frame whose data do not split into boards and holes.
    BadLayout {
        data_len: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort { len } => write!(f, "frame of {len} bytes (at least {ENVELOPE_BYTES})"),
            FrameError::TooLong { len } => write!(f, "frame of {len} bytes (at most {MAX_FRAME_BYTES})"),
            FrameError::BadHead { found } => write!(f, "head byte 0x{found:02X} (expected 0x{HEAD:02X})"),
            FrameError::LengthMismatch { declared, actual } => {
                write!(f, "length field says {declared} bytes, frame has {actual}")
            }
            FrameError::BadCheck { expected, found } => {
                write!(f, "check byte 0x{found:02X} (expected 0x{expected:02X})")
            }
            FrameError::UnknownCommand { cmd } => write!(f, "unknown command 0x{cmd:02X}"),
            FrameError::WrongSize { cmd, len } => write!(f, "0x{cmd:02X} frame of {len} bytes"),
            FrameError::BadLayout { data_len } => {
                write!(f, "check frame data of {data_len} bytes do not split into boards and holes")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// The check byte for `bytes` (everything before it): the two's complement of
/// their sum modulo 256.
pub fn check_byte(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)).wrapping_neg()
}

fn sn_of(bytes: [u8; 4]) -> u32 {
    u32::from_be_bytes(bytes)
}

/// Decodes one frame. Never panics: any input either is a frame or gets a
/// [`FrameError`].
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, FrameError> {
    let len = bytes.len();
    if len < ENVELOPE_BYTES {
        return Err(FrameError::TooShort { len });
    }
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLong { len });
    }
    let Some((&check, body)) = bytes.split_last() else {
        return Err(FrameError::TooShort { len });
    };
    let Some((&[head, len_hi, len_lo, cmd], data)) = body.split_first_chunk::<4>() else {
        return Err(FrameError::TooShort { len });
    };
    if head != HEAD {
        return Err(FrameError::BadHead { found: head });
    }
    let declared = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if declared != len {
        return Err(FrameError::LengthMismatch { declared, actual: len });
    }
    let expected = check_byte(body);
    if expected != check {
        return Err(FrameError::BadCheck { expected, found: check });
    }
    let wrong_size = || FrameError::WrongSize { cmd, len };
    match cmd {
        cmd::CHECK => decode_check(data).map(Frame::Check),
        cmd::POPUP_BY_HOLE => {
            let [board, hole, state, solenoid] = *<&[u8; 4]>::try_from(data).map_err(|_| wrong_size())?;
            Ok(Frame::PopupByHole(PopupByHoleFrame { board, hole, state, solenoid }))
        }
        cmd::POPUP_BY_SN => {
            let [hole, s0, s1, s2, s3, state, solenoid] = *<&[u8; 7]>::try_from(data).map_err(|_| wrong_size())?;
            Ok(Frame::PopupBySn(PopupBySnFrame { hole, sn: sn_of([s0, s1, s2, s3]), state, solenoid }))
        }
        cmd::RETURN => match *data {
            [board, hole, area, s0, s1, s2, s3, state, bank_version, soc] => Ok(Frame::Return(ReturnFrame {
                board,
                hole,
                area,
                sn: sn_of([s0, s1, s2, s3]),
                state,
                bank_version,
                soc: Some(soc),
            })),
            [board, hole, area, s0, s1, s2, s3, state, bank_version] => Ok(Frame::Return(ReturnFrame {
                board,
                hole,
                area,
                sn: sn_of([s0, s1, s2, s3]),
                state,
                bank_version,
                soc: None,
            })),
            _ => Err(wrong_size()),
        },
        cmd::RETURN_FIX => {
            let [board, hole, state, r0, r1, area, s0, s1, s2, s3, soc, temperature, cv, cc, soft, hard] =
                *<&[u8; 16]>::try_from(data).map_err(|_| wrong_size())?;
            Ok(Frame::ReturnFix(ReturnFixFrame {
                board,
                hole,
                state,
                reserved: [r0, r1],
                area,
                sn: sn_of([s0, s1, s2, s3]),
                soc,
                temperature,
                charge_voltage: cv,
                charge_current: cc,
                soft_version: soft,
                hard_version: hard,
            }))
        }
        cmd::HEARTBEAT => {
            let Some((&board, signal)) = data.split_first() else {
                return Err(wrong_size());
            };
            Ok(Frame::Heartbeat(HeartbeatFrame { board, signal: signal.to_vec() }))
        }
        other => Err(FrameError::UnknownCommand { cmd: other }),
    }
}

/// Splits a check frame's data into boards. Holes carry their cabinet-wide
/// number, which locates the boards: first a uniform layout (every board with
/// the same number of holes) whose holes are numbered 1, 2, 3... in order;
/// else boards of any size found by following that numbering; else the
/// uniform layout whose numbering fits best (ties: fewer, larger boards).
fn decode_check(data: &[u8]) -> Result<CheckFrame, FrameError> {
    let bad_layout = || FrameError::BadLayout { data_len: data.len() };
    let mut best: Option<(usize, usize)> = None; // (score, holes per board)
    for per_board in 1..=MAX_HOLES {
        let board_len = BOARD_BYTES + HOLE_BYTES * per_board;
        if board_len > data.len() {
            break;
        }
        if !data.len().is_multiple_of(board_len) || (data.len() / board_len) * per_board > MAX_HOLES {
            continue;
        }
        let score = numbering_score(data, per_board);
        if score == (data.len() / board_len) * per_board {
            return parse_uniform(data, per_board).ok_or_else(bad_layout);
        }
        // `>=` so a tie goes to the larger boards, found later in this loop.
        if best.is_none_or(|(s, _)| score >= s) {
            best = Some((score, per_board));
        }
    }
    if let Some(frame) = parse_by_numbering(data) {
        return Ok(frame);
    }
    let (_, per_board) = best.ok_or_else(bad_layout)?;
    parse_uniform(data, per_board).ok_or_else(bad_layout)
}

/// How many holes of a uniform layout carry their expected cabinet-wide number.
fn numbering_score(data: &[u8], per_board: usize) -> usize {
    let board_len = BOARD_BYTES + HOLE_BYTES * per_board;
    let mut score = 0;
    for board in 0..data.len() / board_len {
        for hole in 0..per_board {
            let number = board * per_board + hole + 1;
            let at = board * board_len + BOARD_BYTES + hole * HOLE_BYTES;
            if data.get(at).is_some_and(|&b| usize::from(b) == number) {
                score += 1;
            }
        }
    }
    score
}

fn parse_uniform(data: &[u8], per_board: usize) -> Option<CheckFrame> {
    let board_len = BOARD_BYTES + HOLE_BYTES * per_board;
    let boards = data
        .chunks_exact(board_len)
        .map(|chunk| {
            let (header, holes) = chunk.split_first_chunk::<BOARD_BYTES>()?;
            let holes = holes.chunks_exact(HOLE_BYTES).map(parse_hole).collect::<Option<Vec<_>>>()?;
            Some(board_of(header, holes))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(CheckFrame { boards })
}

/// Boards of any size: after a board header, holes follow while the next
/// record starts with the next hole number.
fn parse_by_numbering(data: &[u8]) -> Option<CheckFrame> {
    let mut boards = Vec::new();
    let mut rest = data;
    let mut next_number = 1usize;
    while !rest.is_empty() {
        let (header, after) = rest.split_first_chunk::<BOARD_BYTES>()?;
        rest = after;
        let mut holes = Vec::new();
        while let Some((record, after)) = rest.split_first_chunk::<HOLE_BYTES>() {
            if usize::from(record[0]) != next_number || next_number > MAX_HOLES {
                break;
            }
            holes.push(parse_hole(record)?);
            next_number += 1;
            rest = after;
        }
        if holes.is_empty() {
            return None;
        }
        boards.push(board_of(header, holes));
    }
    (!boards.is_empty()).then_some(CheckFrame { boards })
}

fn board_of(header: &[u8; BOARD_BYTES], holes: Vec<Hole>) -> Board {
    let [index, r0, r1, temperature, soft_version, hard_version] = *header;
    Board { index, reserved: [r0, r1], temperature, soft_version, hard_version, holes }
}

fn parse_hole(record: &[u8]) -> Option<Hole> {
    let [index, state, cur, volt, area, s0, s1, s2, s3, soc, temperature, cv, cc, soft, sensor] =
        *<&[u8; HOLE_BYTES]>::try_from(record).ok()?;
    Some(Hole {
        index,
        state,
        bank_current: cur,
        bank_voltage: volt,
        area,
        sn: sn_of([s0, s1, s2, s3]),
        soc,
        temperature,
        charge_voltage: cv,
        charge_current: cc,
        soft_version: soft,
        sensor,
    })
}

/// Writes `frame` with its length and check byte. `decode_frame` reads back
/// exactly this frame, for check frames whenever the holes are numbered
/// 1, 2, 3... across the boards or every board has as many holes. A frame
/// above [`MAX_FRAME_BYTES`] (only a huge heartbeat signal can make one) gets
/// a saturated length field, which `decode_frame` refuses.
pub fn encode_frame(frame: &Frame) -> Vec<u8> {
    let mut out = vec![HEAD, 0, 0, frame.cmd()];
    match frame {
        Frame::Check(check) => {
            for board in &check.boards {
                out.extend_from_slice(&[
                    board.index,
                    board.reserved[0],
                    board.reserved[1],
                    board.temperature,
                    board.soft_version,
                    board.hard_version,
                ]);
                for h in &board.holes {
                    out.extend_from_slice(&[h.index, h.state, h.bank_current, h.bank_voltage, h.area]);
                    out.extend_from_slice(&h.sn.to_be_bytes());
                    out.extend_from_slice(&[
                        h.soc,
                        h.temperature,
                        h.charge_voltage,
                        h.charge_current,
                        h.soft_version,
                        h.sensor,
                    ]);
                }
            }
        }
        Frame::PopupByHole(p) => out.extend_from_slice(&[p.board, p.hole, p.state, p.solenoid]),
        Frame::PopupBySn(p) => {
            out.push(p.hole);
            out.extend_from_slice(&p.sn.to_be_bytes());
            out.extend_from_slice(&[p.state, p.solenoid]);
        }
        Frame::Return(r) => {
            out.extend_from_slice(&[r.board, r.hole, r.area]);
            out.extend_from_slice(&r.sn.to_be_bytes());
            out.extend_from_slice(&[r.state, r.bank_version]);
            out.extend(r.soc);
        }
        Frame::ReturnFix(r) => {
            out.extend_from_slice(&[r.board, r.hole, r.state, r.reserved[0], r.reserved[1], r.area]);
            out.extend_from_slice(&r.sn.to_be_bytes());
            out.extend_from_slice(&[
                r.soc,
                r.temperature,
                r.charge_voltage,
                r.charge_current,
                r.soft_version,
                r.hard_version,
            ]);
        }
        Frame::Heartbeat(h) => {
            out.push(h.board);
            out.extend_from_slice(&h.signal);
        }
    }
    let total = u16::try_from(out.len() + 1).unwrap_or(u16::MAX);
    let [hi, lo] = total.to_be_bytes();
    out[1] = hi;
    out[2] = lo;
    out.push(check_byte(&out));
    out
}
