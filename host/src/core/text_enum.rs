//! Enums stored as text: the statuses and kinds that SQLite keeps in
//! CHECK-constrained TEXT columns.
//!
//! `text_enum!` declares such an enum once, with each variant's text, and
//! derives everything that converts it: `as_str`/`FromStr`, serde (the API
//! shows the same text), the OpenAPI schema, and rusqlite's `ToSql`/`FromSql`
//! so queries bind and read the enum itself. The text lives in one place; a
//! value the column holds that the enum does not know fails the read instead
//! of travelling on as a string.

/// Declares a text-mapped enum. See the module docs.
///
/// ```ignore
/// text_enum! {
///     /// Where a rental is in its life.
///     pub enum RentalStatus {
///         PendingEject = "pending_eject",
///         Active = "active",
///     }
/// }
/// ```
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and shown by the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }

            /// The value for `text`, if it is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// `"a, b, c"`: the accepted texts, for error messages.
            pub fn one_of() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        // Written out rather than derived: utoipa's derive does not see a
        // `serde(rename = $text)` whose text comes through a macro fragment,
        // and would document the Rust variant names instead of the texts.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::parse(text).ok_or_else(|| format!("must be one of {}", Self::one_of()))
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                Self::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("{text:?} is not a {}", stringify!($name)).into(),
                    )
                })
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    text_enum! {
        enum Colour {
            Red = "red",
            DarkBlue = "dark_blue",
        }
    }

    #[test]
    fn round_trips_through_text_serde_and_sqlite() {
        assert_eq!(Colour::DarkBlue.as_str(), "dark_blue");
        assert_eq!("red".parse::<Colour>(), Ok(Colour::Red));
        assert_eq!("blue".parse::<Colour>().unwrap_err(), "must be one of red, dark_blue");
        assert_eq!(serde_json::to_value(Colour::DarkBlue).unwrap(), "dark_blue");
        // The OpenAPI schema lists the texts the API shows, not the variant names.
        let schema = serde_json::to_value(<Colour as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["enum"], serde_json::json!(["red", "dark_blue"]), "{schema}");
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let back: Colour = conn.query_row("SELECT ?1", [Colour::DarkBlue], |r| r.get(0)).unwrap();
        assert_eq!(back, Colour::DarkBlue);
        let unknown = conn.query_row("SELECT 'green'", [], |r| r.get::<_, Colour>(0));
        assert!(unknown.is_err());
    }
}
