//! Limits the link applies to every station message, whatever its protocol.
//! The protocols themselves are plugins (`plugins/station-*`).

/// Largest payload the host reads; anything larger is counted and dropped
/// before a protocol plugin sees it.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// Station serial numbers and device ids: 1-64 of A-Z, a-z, 0-9, `-` and `_`
/// (safe in topics).
pub fn valid_serial(sn: &str) -> bool {
    !sn.is_empty() && sn.len() <= 64 && sn.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
