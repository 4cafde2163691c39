//! Operator-tunable settings (the seed's `AppConfig`): typed, bounded, stored
//! in `app_config`, and read by the code that obeys them at the moment it
//! acts, so a change takes effect at once without a restart.
//!
//! Each domain declares its settings next to the code that reads them (a
//! [`SettingDef`] with its bounds, and a typed key), and registers them at
//! start-up in the composition root with a default, which may come from the
//! configuration (flags, environment, file). A value an operator sets in
//! `app_config` overrides the default; deleting it restores the default.
//!
//! Routes: `GET /api/app/config` (the public settings, for the app) and
//! `GET/PUT /api/admin/settings`.

mod routes;

use std::{collections::BTreeMap, sync::Arc};

use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::core::ApiError;

pub use routes::router;

/// What a value measures, so the console and the docs can show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Count,
    Minutes,
    Seconds,
    Hours,
    /// Money: integer paisa (1 NPR = 100 paisa).
    Paisa,
    Flag,
}

/// The type and bounds of a setting's value.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Integer { min: i64, max: i64, unit: Unit },
    Flag,
}

/// One setting: its key, what it does, its type and bounds, and whether the
/// app may read it (`GET /api/app/config`).
#[derive(Debug, Clone, Copy)]
pub struct SettingDef {
    pub key: &'static str,
    pub description: &'static str,
    pub kind: Kind,
    pub public: bool,
}

/// A typed key for an integer setting: `state.settings.int(conn, KEY)`.
#[derive(Debug, Clone, Copy)]
pub struct IntKey(pub &'static str);

/// A typed key for a flag: `state.settings.flag(conn, KEY)`.
#[derive(Debug, Clone, Copy)]
pub struct FlagKey(pub &'static str);

#[derive(Debug, Clone)]
struct Registered {
    def: SettingDef,
    default: Value,
}

/// Two integer settings that bound a range: the lower may not exceed the upper.
#[derive(Debug, Clone, Copy)]
struct Range {
    low: &'static str,
    high: &'static str,
}

/// Every registered setting, built once at start-up.
#[derive(Clone, Default)]
pub struct Settings {
    registry: Arc<BTreeMap<&'static str, Registered>>,
    ranges: Arc<Vec<Range>>,
}

/// Registration at start-up (`server::build_state`), the way routers and jobs are.
#[derive(Default)]
pub struct SettingsBuilder {
    registry: BTreeMap<&'static str, Registered>,
    ranges: Vec<Range>,
}

impl SettingsBuilder {
    /// An integer setting with its default; a default outside the bounds is
    /// clamped into them (with a warning), so a bad flag cannot break reads.
    pub fn int(mut self, def: SettingDef, default: i64) -> Self {
        let default = match def.kind {
            Kind::Integer { min, max, .. } if !(min..=max).contains(&default) => {
                tracing::warn!(setting = def.key, default, min, max, "default outside the setting's bounds; clamped");
                default.clamp(min, max)
            }
            _ => default,
        };
        self.registry.insert(def.key, Registered { def, default: Value::from(default) });
        self
    }

    pub fn flag(mut self, def: SettingDef, default: bool) -> Self {
        self.registry.insert(def.key, Registered { def, default: Value::from(default) });
        self
    }

    /// Declares that `low` may not exceed `high` (both integer settings).
    pub fn range(mut self, low: IntKey, high: IntKey) -> Self {
        self.ranges.push(Range { low: low.0, high: high.0 });
        self
    }

    pub fn build(self) -> Settings {
        Settings { registry: Arc::new(self.registry), ranges: Arc::new(self.ranges) }
    }
}

/// A setting as operators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettingOut {
    pub key: String,
    pub description: String,
    /// `integer` or `flag`.
    #[serde(rename = "type")]
    pub kind: String,
    pub unit: Unit,
    #[schema(value_type = Object)]
    pub value: Value,
    #[schema(value_type = Object)]
    pub default: Value,
    /// Whether an operator has set it (else the default applies).
    pub overridden: bool,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// Whether the app reads it at `GET /api/app/config`.
    pub public: bool,
    pub updated_at: Option<String>,
}

impl Settings {
    pub fn builder() -> SettingsBuilder {
        SettingsBuilder::default()
    }

    fn registered(&self, key: &str) -> Result<&Registered, ApiError> {
        self.registry.get(key).ok_or_else(|| ApiError::internal(format!("setting `{key}` is not registered")))
    }

    fn stored(c: &Connection, key: &str) -> Result<Option<(Value, i64)>, ApiError> {
        let row: Option<(String, i64)> = c
            .query_row("SELECT value, updated_at FROM app_config WHERE key = ?1", [key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        // A value that no longer parses (hand-edited) falls back to the default.
        Ok(row.and_then(|(v, at)| serde_json::from_str(&v).ok().map(|v| (v, at))))
    }

    /// The current value of `def` as JSON: the stored one when it is valid
    /// for the setting, else its default.
    fn current(&self, c: &Connection, reg: &Registered) -> Result<(Value, Option<i64>), ApiError> {
        Ok(match Self::stored(c, reg.def.key)? {
            Some((v, at)) if check(&reg.def, &v).is_ok() => (v, Some(at)),
            _ => (reg.default.clone(), None),
        })
    }

    /// The value of an integer setting now.
    pub fn int(&self, c: &Connection, key: IntKey) -> Result<i64, ApiError> {
        let reg = self.registered(key.0)?;
        let (v, _) = self.current(c, reg)?;
        v.as_i64().ok_or_else(|| ApiError::internal(format!("setting `{}` is not an integer", key.0)))
    }

    /// The value of a flag now.
    pub fn flag(&self, c: &Connection, key: FlagKey) -> Result<bool, ApiError> {
        let reg = self.registered(key.0)?;
        let (v, _) = self.current(c, reg)?;
        v.as_bool().ok_or_else(|| ApiError::internal(format!("setting `{}` is not a flag", key.0)))
    }

    /// Every setting with its current value, by key.
    pub fn list(&self, c: &Connection) -> Result<Vec<SettingOut>, ApiError> {
        self.registry
            .values()
            .map(|reg| {
                let (value, updated_at) = self.current(c, reg)?;
                let (kind, unit, min, max) = match reg.def.kind {
                    Kind::Integer { min, max, unit } => ("integer", unit, Some(min), Some(max)),
                    Kind::Flag => ("flag", Unit::Flag, None, None),
                };
                Ok(SettingOut {
                    key: reg.def.key.to_string(),
                    description: reg.def.description.to_string(),
                    kind: kind.to_string(),
                    unit,
                    value,
                    default: reg.default.clone(),
                    overridden: updated_at.is_some(),
                    min,
                    max,
                    public: reg.def.public,
                    updated_at: updated_at.map(crate::core::ts_to_rfc3339),
                })
            })
            .collect()
    }

    /// The public settings and their values, for the app.
    pub fn public_values(&self, c: &Connection) -> Result<BTreeMap<String, Value>, ApiError> {
        let mut out = BTreeMap::new();
        for reg in self.registry.values().filter(|r| r.def.public) {
            out.insert(reg.def.key.to_string(), self.current(c, reg)?.0);
        }
        Ok(out)
    }

    /// Sets (or, with `null`, resets to the default) every value of
    /// `changes` in the caller's transaction, after checking them all: one
    /// bad value changes nothing. Returns each changed key with its value
    /// before and after.
    pub fn apply(
        &self,
        tx: &rusqlite::Transaction<'_>,
        changes: &BTreeMap<String, Value>,
        now: i64,
    ) -> Result<Vec<(String, Value, Value)>, ApiError> {
        if changes.is_empty() {
            return Err(ApiError::invalid_field("values", "name at least one setting"));
        }
        let mut after: BTreeMap<&str, Value> = BTreeMap::new();
        for (key, value) in changes {
            let reg = self.registry.get(key.as_str()).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_setting",
                    format!("there is no setting `{key}`"),
                )
                .with_details(serde_json::json!({ "field": key }))
            })?;
            let value = if value.is_null() { reg.default.clone() } else { value.clone() };
            check(&reg.def, &value).map_err(|why| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_setting", format!("`{key}`: {why}"))
                    .with_details(serde_json::json!({ "field": key }))
            })?;
            after.insert(reg.def.key, value);
        }
        for range in self.ranges.iter() {
            let value_of = |key: &str| -> Result<Option<i64>, ApiError> {
                match after.get(key) {
                    Some(v) => Ok(v.as_i64()),
                    None => Ok(self.current(tx, self.registered(key)?)?.0.as_i64()),
                }
            };
            if let (Some(low), Some(high)) = (value_of(range.low)?, value_of(range.high)?)
                && low > high
            {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_setting",
                    format!("`{}` ({low}) may not exceed `{}` ({high})", range.low, range.high),
                ));
            }
        }
        let mut changed = Vec::new();
        for (key, value) in after {
            let reg = self.registered(key)?;
            let (before, _) = self.current(tx, reg)?;
            if changes.get(key).is_some_and(Value::is_null) {
                tx.execute("DELETE FROM app_config WHERE key = ?1", [key])?;
            } else {
                tx.execute(
                    "INSERT INTO app_config (key, value, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    params![key, value.to_string(), now],
                )?;
            }
            if before != value {
                changed.push((key.to_string(), before, value));
            }
        }
        Ok(changed)
    }
}

/// Whether `value` is a valid value of `def`.
fn check(def: &SettingDef, value: &Value) -> Result<(), String> {
    match def.kind {
        Kind::Integer { min, max, .. } => match value.as_i64() {
            Some(v) if (min..=max).contains(&v) => Ok(()),
            Some(_) => Err(format!("must be between {min} and {max}")),
            None => Err("must be a whole number".into()),
        },
        Kind::Flag => value.as_bool().map(|_| ()).ok_or_else(|| "must be true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SettingDef = SettingDef {
        key: "a.low",
        description: "low",
        kind: Kind::Integer { min: 0, max: 100, unit: Unit::Count },
        public: true,
    };
    const B: SettingDef = SettingDef {
        key: "a.high",
        description: "high",
        kind: Kind::Integer { min: 0, max: 100, unit: Unit::Count },
        public: false,
    };
    const F: SettingDef = SettingDef { key: "a.flag", description: "flag", kind: Kind::Flag, public: true };

    fn db() -> (tempfile::TempDir, crate::core::Db, Settings) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::schema::open_db(&dir.path().join("s.db"), 1).unwrap();
        let settings =
            Settings::builder().int(A, 10).int(B, 500).flag(F, false).range(IntKey("a.low"), IntKey("a.high")).build();
        (dir, db, settings)
    }

    #[test]
    fn defaults_overrides_bounds_and_ranges() {
        let (_dir, db, s) = db();
        db.blocking_write(|tx| {
            // A default outside the bounds was clamped.
            assert_eq!(s.int(tx, IntKey("a.high")).unwrap(), 100);
            assert_eq!(s.int(tx, IntKey("a.low")).unwrap(), 10);
            assert!(!s.flag(tx, FlagKey("a.flag")).unwrap());

            let set = |pairs: &[(&str, Value)]| -> BTreeMap<String, Value> {
                pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
            };
            let changed = s.apply(tx, &set(&[("a.low", 20.into()), ("a.flag", true.into())]), 1).unwrap();
            assert_eq!(changed.len(), 2);
            assert_eq!(s.int(tx, IntKey("a.low")).unwrap(), 20);
            assert!(s.flag(tx, FlagKey("a.flag")).unwrap());

            // Out of bounds, wrong type, unknown key, low above high: refused whole.
            for bad in [
                set(&[("a.low", 101.into())]),
                set(&[("a.low", "5".into())]),
                set(&[("a.flag", 1.into())]),
                set(&[("nope", 1.into())]),
                set(&[("a.low", 50.into()), ("a.high", 40.into())]),
            ] {
                let e = s.apply(tx, &bad, 2).unwrap_err();
                assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
            }
            assert_eq!(s.int(tx, IntKey("a.low")).unwrap(), 20);

            // null resets to the default.
            s.apply(tx, &set(&[("a.low", Value::Null)]), 3).unwrap();
            assert_eq!(s.int(tx, IntKey("a.low")).unwrap(), 10);
            let public = s.public_values(tx).unwrap();
            assert_eq!(public.keys().collect::<Vec<_>>(), ["a.flag", "a.low"]);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn an_unregistered_key_is_an_internal_error_not_a_default() {
        let (_dir, db, s) = db();
        db.blocking_write(|tx| {
            assert!(s.int(tx, IntKey("missing")).is_err());
            Ok(())
        })
        .unwrap();
    }
}
