//! The JSON commands a cabinet reads on `{root}/{imei}/user/get`, exactly as
//! the vendor's SDKs write them: every value is a JSON string.
//!
//! ```text
//! {"cmd":"check"}
//! {"cmd":"popup_sn","data":"85021618","timestamp":"1759941810","ttl":"30"}
//! {"cmd":"popup","data":"16","io":"0","timestamp":"1759941810","ttl":"30"}
//! ```
//!
//! `timestamp` (Unix seconds) and `ttl` (seconds) are optional and go
//! together: a cabinet that honours them refuses a command received after
//! `timestamp + ttl` with state `0x88`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum JsonCommand {
    /// Report every board and hole (answered with a `0x10` frame).
    Check,
    /// Eject the bank with this SN, wherever it is (answered with `0x31`).
    PopupSn {
        #[serde(rename = "data", with = "as_string")]
        sn: u32,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_as_string")]
        timestamp: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_as_string")]
        ttl: Option<u32>,
    },
    /// Eject whatever is in this hole (answered with `0x21`).
    Popup {
        #[serde(rename = "data", with = "as_string")]
        hole: u8,
        /// Main control board serial port, 0 or 1.
        #[serde(default, with = "as_string")]
        io: u8,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_as_string")]
        timestamp: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_as_string")]
        ttl: Option<u32>,
    },
}

impl JsonCommand {
    /// `timestamp + ttl` in Unix seconds, when the command carries both.
    pub fn expires_at(&self) -> Option<u64> {
        match self {
            JsonCommand::Check => None,
            JsonCommand::PopupSn { timestamp, ttl, .. } | JsonCommand::Popup { timestamp, ttl, .. } => {
                Some(timestamp.as_ref()?.saturating_add(u64::from(*ttl.as_ref()?)))
            }
        }
    }
}

/// A number written as a JSON string; reading also accepts a bare number.
mod as_string {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserializer, Serializer, de};

    pub fn serialize<T: Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr + TryFrom<u64>,
        D: Deserializer<'de>,
    {
        deserializer.deserialize_any(NumberVisitor(std::marker::PhantomData))
    }

    pub(super) struct NumberVisitor<T>(pub(super) std::marker::PhantomData<T>);

    impl<T: FromStr + TryFrom<u64>> de::Visitor<'_> for NumberVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number, as a string or a number")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.trim().parse().map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            let v = u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))?;
            self.visit_u64(v)
        }
    }
}

/// An optional number written as a JSON string.
mod opt_as_string {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserializer, Serializer, de};

    use super::as_string::NumberVisitor;

    pub fn serialize<T: Display, S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.collect_str(v),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr + TryFrom<u64>,
        D: Deserializer<'de>,
    {
        deserializer.deserialize_any(OptionVisitor(std::marker::PhantomData))
    }

    struct OptionVisitor<T>(std::marker::PhantomData<T>);

    impl<T: FromStr + TryFrom<u64>> de::Visitor<'_> for OptionVisitor<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("null or a whole number, as a string or a number")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
            de::Visitor::visit_str(NumberVisitor(std::marker::PhantomData), v).map(Some)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<T>, E> {
            de::Visitor::visit_u64(NumberVisitor(std::marker::PhantomData), v).map(Some)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<T>, E> {
            de::Visitor::visit_i64(NumberVisitor(std::marker::PhantomData), v).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_json_the_vendor_sdk_writes() {
        let check = serde_json::to_string(&JsonCommand::Check).unwrap();
        assert_eq!(check, r#"{"cmd":"check"}"#);
        let popup_sn = JsonCommand::PopupSn { sn: 85021618, timestamp: Some(1759941810), ttl: Some(30) };
        assert_eq!(
            serde_json::to_string(&popup_sn).unwrap(),
            r#"{"cmd":"popup_sn","data":"85021618","timestamp":"1759941810","ttl":"30"}"#
        );
        let bare = JsonCommand::PopupSn { sn: 10211856, timestamp: None, ttl: None };
        assert_eq!(serde_json::to_string(&bare).unwrap(), r#"{"cmd":"popup_sn","data":"10211856"}"#);
        let popup = JsonCommand::Popup { hole: 16, io: 0, timestamp: Some(1759941810), ttl: Some(30) };
        assert_eq!(
            serde_json::to_string(&popup).unwrap(),
            r#"{"cmd":"popup","data":"16","io":"0","timestamp":"1759941810","ttl":"30"}"#
        );
        assert_eq!(popup.expires_at(), Some(1759941840));
    }

    #[test]
    fn reads_commands_back_leniently() {
        for (json, expected) in [
            (r#"{"cmd":"check"}"#, JsonCommand::Check),
            (
                r#"{"cmd":"popup","data":"1","io":"0"}"#,
                JsonCommand::Popup { hole: 1, io: 0, timestamp: None, ttl: None },
            ),
            (r#"{"cmd":"popup","data":16}"#, JsonCommand::Popup { hole: 16, io: 0, timestamp: None, ttl: None }),
            (
                r#"{"cmd":"popup_sn","data":"10211856","timestamp":1759941810,"ttl":"30"}"#,
                JsonCommand::PopupSn { sn: 10211856, timestamp: Some(1759941810), ttl: Some(30) },
            ),
        ] {
            assert_eq!(serde_json::from_str::<JsonCommand>(json).unwrap(), expected, "{json}");
        }
        for bad in [
            r#"{"cmd":"reboot"}"#,
            r#"{"cmd":"popup","data":"300"}"#,
            r#"{"cmd":"popup_sn","data":"PB-1"}"#,
            r#"{"cmd":"popup_sn","data":"-1"}"#,
            r#"{"data":"1"}"#,
        ] {
            assert!(serde_json::from_str::<JsonCommand>(bad).is_err(), "{bad}");
        }
    }
}
