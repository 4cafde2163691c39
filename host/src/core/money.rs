//! Money is integer paisa (1 NPR = 100 paisa) everywhere: in columns, in
//! plugin calls and in the API. This module only formats it for people.

/// `1250` → `"12.50"`.
pub fn format_npr(paisa: i64) -> String {
    let sign = if paisa < 0 { "-" } else { "" };
    let abs = paisa.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_paisa_as_npr() {
        assert_eq!(super::format_npr(0), "0.00");
        assert_eq!(super::format_npr(1250), "12.50");
        assert_eq!(super::format_npr(-5), "-0.05");
        assert_eq!(super::format_npr(i64::MIN), "-92233720368547758.08");
    }
}
