//! Phone numbers and emails that people sign in with, in one canonical form
//! so `98XXXXXXXX`, `+977 98XXXXXXXX` and `+97798XXXXXXXX` are one account.

use crate::core::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    /// E.164, e.g. `+9779812345678`.
    Phone(String),
    /// Lower-cased.
    Email(String),
}

impl Identifier {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let raw = raw.trim();
        if raw.contains('@') {
            return parse_email(raw).map(Identifier::Email);
        }
        parse_phone(raw).map(Identifier::Phone)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Identifier::Phone(s) | Identifier::Email(s) => s,
        }
    }

    pub fn column(&self) -> &'static str {
        match self {
            Identifier::Phone(_) => "phone",
            Identifier::Email(_) => "email",
        }
    }
}

fn parse_phone(raw: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid_field("identifier", "not a valid phone number or email");
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    let (has_plus, digits) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, compact.as_str()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let e164 = if has_plus {
        format!("+{digits}")
    } else if digits.len() == 10 && digits.starts_with('9') {
        // A Nepali mobile number written without the country code.
        format!("+977{digits}")
    } else if digits.len() == 13 && digits.starts_with("977") {
        format!("+{digits}")
    } else {
        return Err(invalid());
    };
    let n = e164.len() - 1;
    if !(8..=15).contains(&n) {
        return Err(invalid());
    }
    if let Some(local) = e164.strip_prefix("+977")
        && !(local.len() == 10 && local.starts_with('9'))
    {
        return Err(ApiError::invalid_field("identifier", "Nepali mobile numbers have 10 digits starting with 9"));
    }
    Ok(e164)
}

fn parse_email(raw: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid_field("identifier", "not a valid email address");
    let email = raw.to_ascii_lowercase();
    if email.len() > 254 || email.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(invalid());
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nepali_numbers_normalise() {
        for raw in ["9812345678", "+977 981-234-5678", "9779812345678", "+9779812345678"] {
            assert_eq!(Identifier::parse(raw).unwrap(), Identifier::Phone("+9779812345678".into()), "{raw}");
        }
    }

    #[test]
    fn bad_phones_are_refused() {
        for raw in ["", "12", "+977123", "98123456789", "abc", "+", "+9771234567890"] {
            assert!(Identifier::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn emails_lowercase_and_validate() {
        assert_eq!(Identifier::parse(" Ram@Example.COM ").unwrap(), Identifier::Email("ram@example.com".into()));
        for raw in ["@x.com", "a@", "a@b", "a@.com", "a b@c.com", "a@b..com"] {
            assert!(Identifier::parse(raw).is_err(), "{raw}");
        }
    }
}
