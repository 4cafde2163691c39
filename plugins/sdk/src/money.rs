//! Integer money helpers: amounts are paisa (1 NPR = 100 paisa).

/// `a / b` rounded up, for "per started unit" rules. `b` must be positive.
pub fn div_ceil(a: i64, b: i64) -> i64 {
    if b <= 0 {
        return 0;
    }
    let q = a / b;
    if a % b > 0 { q + 1 } else { q }
}

/// Formats paisa as `NPR 12.50` for explanations shown to users.
pub fn format_npr(paisa: i64) -> String {
    let sign = if paisa < 0 { "-" } else { "" };
    let abs = paisa.unsigned_abs();
    format!("{sign}NPR {}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_started_units() {
        assert_eq!(div_ceil(0, 60), 0);
        assert_eq!(div_ceil(1, 60), 1);
        assert_eq!(div_ceil(60, 60), 1);
        assert_eq!(div_ceil(61, 60), 2);
    }

    #[test]
    fn formats_rupees() {
        assert_eq!(format_npr(500), "NPR 5.00");
        assert_eq!(format_npr(-1205), "-NPR 12.05");
    }
}
