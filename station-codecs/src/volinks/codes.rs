//! Status codes of the volinks frames, with the vendor's descriptions.

/// A hole's `state` in a check frame (`0x10`).
pub const HOLE_STATES: &[(u8, &str)] = &[
    (0x00, "No power bank"),
    (0x01, "Power bank is normal"),
    (0x02, "Charging abnormality"),
    (0x03, "Communication exception (first return failed)"),
    (0x04, "Stuck or damaged: the hole cannot eject the power bank"),
    (0x05, "The latch was forcibly released"),
    (0x06, "The solenoid valve did not return when the bank was returned"),
    (0x07, "Reserved"),
    (0x08, "Anti-theft protocol communication failed"),
    (0x09, "Type-C short circuit"),
    (0x0A, "Return failed, the power bank does not pop out"),
];

/// The `state` of a pop-up answer, by SN (`0x31`) and by hole (`0x21`). The
/// current vendor table (0x11, 0x12, 0x87, 0x88, 0xFB-0xFF) plus the codes
/// only an older revision lists, which do not clash with it.
pub const POPUP_STATES: &[(u8, &str)] = &[
    (0x00, "Pop-up failed"),
    (0x01, "Pop-up successful"),
    (0x02, "The power bank is charging abnormally"),
    (0x03, "Power bank communication abnormality (first return failed)"),
    (0x04, "The hole cannot pop out the power bank"),
    (0x05, "The latch of this hole was forcibly released"),
    (0x06, "The solenoid valve did not return"),
    (0x08, "Anti-theft protocol communication failed"),
    (0x11, "Serial communication timeout"),
    (0x12, "The power bank did not pop out, but its SN is readable"),
    (0x13, "Failed to obtain traceback information"),
    (0x14, "Battery lock command failed"),
    (0x21, "Failed to obtain the SN, and the motor action failed"),
    (0x22, "Failed to obtain the bank's information, and the motor action failed"),
    (0x23, "Battery lock command failed, and the motor action failed"),
    (0x24, "Anti-theft switch detection failed"),
    (0x87, "Failed to obtain the timestamp"),
    (0x88, "Exceeded the TTL validity period"),
    (0xFB, "No power bank meets the rental requirements"),
    (0xFC, "Target SN not found among the charging power banks"),
    (0xFD, "Failed to add the task to the thread pool"),
    (0xFE, "The previous rental is not complete; a new one cannot start"),
    (0xFF, "Lease command parsing failed"),
];

/// The `state` of a return (`0x40`) and of a return self-test (`0x28`).
pub const RETURN_STATES: &[(u8, &str)] = &[
    (0x00, "Return failed"),
    (0x01, "Return successful"),
    (0x10, "Region code error"),
    (0x11, "Failed to obtain the SN"),
    (0x12, "Failed to obtain voltage, temperature or other information"),
    (0x13, "Failed to obtain software and hardware version information"),
    (0x14, "Battery lock command failed"),
    (0x21, "Failed to obtain the SN, and the motor action failed"),
    (0x22, "Failed to obtain voltage, temperature or other information, and the motor action failed"),
    (0x23, "Battery lock command failed, and the motor action failed"),
    (0x24, "Anti-theft switch detection failed (a 0x28 self-test report follows within 5 minutes)"),
];

/// `state` of a successful pop-up or return.
pub const SUCCESS: u8 = 0x01;
/// Hole state: no bank.
pub const HOLE_EMPTY: u8 = 0x00;
/// Hole state: a working bank.
pub const HOLE_NORMAL: u8 = 0x01;
/// Pop-up state: the command's `timestamp + ttl` had passed.
pub const POPUP_TTL_EXCEEDED: u8 = 0x88;
/// Pop-up state: no bank with that SN.
pub const POPUP_SN_NOT_FOUND: u8 = 0xFC;

fn describe(table: &[(u8, &'static str)], code: u8, unknown: &'static str) -> &'static str {
    table.iter().find(|(c, _)| *c == code).map_or(unknown, |(_, text)| text)
}

pub fn hole_state(code: u8) -> &'static str {
    describe(HOLE_STATES, code, "Reserved")
}

pub fn popup_state(code: u8) -> &'static str {
    describe(POPUP_STATES, code, "Unknown error")
}

pub fn return_state(code: u8) -> &'static str {
    describe(RETURN_STATES, code, "Unknown error")
}

/// `"<description> (0xNN)"`, the reason text the plugin reports.
pub fn reason(description: &str, code: u8) -> String {
    format!("{description} (0x{code:02X})")
}
