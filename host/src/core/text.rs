//! User-visible text (names, addresses, descriptions, reasons): control
//! characters and the invisible ones that reorder or hide what a reader sees
//! (right-to-left override and the other bidi controls, zero-width spaces,
//! line separators) are refused, so `nitsuJ` cannot display as `Justin` and
//! an issue report cannot hide text from the operator reading it. Joiners
//! (U+200C, U+200D) stay allowed: Devanagari spelling needs them.

use super::error::ApiError;

/// Whether `c` may not appear in user-visible text (`multiline` allows line
/// breaks and tabs).
fn is_forbidden(c: char, multiline: bool) -> bool {
    match c {
        '\n' | '\t' => !multiline,
        '\r' => !multiline,
        // Arabic letter mark, left-to-right and right-to-left marks,
        // embeddings and overrides (U+202A..U+202E), isolates (U+2066..U+2069).
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        // Zero-width space, word joiner and invisible operators, BOM,
        // line and paragraph separators, interlinear annotation.
        '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{2028}' | '\u{2029}' | '\u{FFF9}'..='\u{FFFB}' => true,
        c => c.is_control(),
    }
}

/// Refuses `value` for `field` if it holds a control or text-direction
/// character, naming the first one.
pub fn check_user_text(field: &str, value: &str, multiline: bool) -> Result<(), ApiError> {
    match value.chars().enumerate().find(|(_, c)| is_forbidden(*c, multiline)) {
        None => Ok(()),
        Some((position, c)) => Err(ApiError::invalid_field(
            field,
            format!(
                "must not contain control or text-direction characters (U+{:04X} at character {position})",
                u32::from(c)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check_user_text;

    #[test]
    fn refuses_bidi_and_control_characters_only() {
        for bad in
            ["abc\u{202E}fed", "a\u{2066}b\u{2069}", "x\u{200F}", "zero\u{200B}width", "a\u{0}b", "a\u{7F}", "a\u{85}b"]
        {
            assert!(check_user_text("f", bad, true).is_err(), "{bad:?}");
        }
        assert!(check_user_text("f", "line\nbreak", false).is_err());
        for good in [
            "Ram Bahadur Thapa",
            "राम बहादुर",
            "\u{915}\u{94D}\u{200D}\u{937} \u{915}\u{94D}\u{200C}\u{937}",
            "Jawalakhel-3, Lalitpur",
            "José Ñúñez",
            "line\nbreak\tok",
        ] {
            assert!(check_user_text("f", good, true).is_ok(), "{good:?}");
        }
    }
}
