//! Money is integer paisa (1 NPR = 100 paisa) everywhere: in columns, in
//! plugin calls and in the API. This module formats it for people, and
//! gives every money input of the API one bounded type, [`Paisa`], checked
//! while the request is read: an amount out of its range never reaches a
//! handler (422 `invalid_amount`), and the OpenAPI document shows the range.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr,
        schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type},
    },
};

/// The largest amount any request may carry: NPR 10,000,000. Far above any
/// real top-up, fare or coupon, and far below where sums of amounts could
/// overflow an `i64`.
pub const MAX_PAISA: i64 = 1_000_000_000;

/// The error code of an amount out of range; the JSON rejection turns a
/// deserialize error carrying it into a 422 with this code.
pub const INVALID_AMOUNT: &str = "invalid_amount";

/// An amount of paisa in `MIN..=MAX`, refused at deserialization otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Paisa<const MIN: i64, const MAX: i64>(i64);

/// A price, payment or discount: at least 1 paisa.
pub type PositivePaisa = Paisa<1, MAX_PAISA>;
/// A threshold that may be zero (a coupon's minimum amount).
pub type NonNegativePaisa = Paisa<0, MAX_PAISA>;

impl<const MIN: i64, const MAX: i64> Paisa<MIN, MAX> {
    /// `None` outside the range.
    pub fn new(paisa: i64) -> Option<Self> {
        (MIN..=MAX).contains(&paisa).then_some(Paisa(paisa))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Paisa<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let paisa = i64::deserialize(deserializer)?;
        Self::new(paisa).ok_or_else(|| {
            serde::de::Error::custom(format!("{INVALID_AMOUNT}: {paisa} is not between {MIN} and {MAX} paisa"))
        })
    }
}

impl<const MIN: i64, const MAX: i64> PartialSchema for Paisa<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(MIN))
            .maximum(Some(MAX))
            .description(Some(format!("Paisa (1 NPR = 100 paisa), {MIN} to {MAX}")))
            .into()
    }
}

impl<const MIN: i64, const MAX: i64> ToSchema for Paisa<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Paisa_{MIN}_to_{MAX}"))
    }
}

/// `1250` → `"12.50"`.
pub fn format_npr(paisa: i64) -> String {
    let sign = if paisa < 0 { "-" } else { "" };
    let abs = paisa.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::{NonNegativePaisa, PositivePaisa};

    #[test]
    fn bounded_paisa_is_checked_when_read() {
        let read = |json: &str| serde_json::from_str::<PositivePaisa>(json).map(|p| p.get()).map_err(|e| e.to_string());
        assert_eq!(read("1"), Ok(1));
        assert_eq!(read("1000000000"), Ok(1_000_000_000));
        for refused in ["0", "-1", "1000000001", "9223372036854775807", "-9223372036854775808"] {
            let e = read(refused).expect_err(refused);
            assert!(e.starts_with("invalid_amount: "), "{refused}: {e}");
        }
        assert!(read("1.5").is_err() && read("\"100\"").is_err());
        assert_eq!(serde_json::from_str::<NonNegativePaisa>("0").map(|p| p.get()).ok(), Some(0));
    }

    #[test]
    fn formats_paisa_as_npr() {
        assert_eq!(super::format_npr(0), "0.00");
        assert_eq!(super::format_npr(1250), "12.50");
        assert_eq!(super::format_npr(-5), "-0.05");
        assert_eq!(super::format_npr(i64::MIN), "-92233720368547758.08");
    }
}
