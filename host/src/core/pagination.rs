//! Cursor pagination shared by every list endpoint.
//!
//! Lists are ordered newest first by primary key, and the cursor is the last
//! id a page returned (opaque to clients). Keyset paging costs the same on
//! page 1 and page 10,000, unlike OFFSET.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` from the previous page; omit for the first page.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::invalid_field("limit", format!("must be between 1 and {MAX_LIMIT}"))),
        }
    }

    /// The id below which the next page starts (`i64::MAX` for the first page).
    pub fn before_id(&self) -> Result<i64, ApiError> {
        match &self.cursor {
            None => Ok(i64::MAX),
            Some(c) => decode_cursor(c).ok_or_else(|| ApiError::invalid_field("cursor", "invalid cursor")),
        }
    }
}

/// A `YYYY-MM-DD` list filter as unix seconds (UTC): the start of the day,
/// or its last second when `end_of_day`.
pub fn date_filter(field: &str, raw: &Option<String>, end_of_day: bool) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let date = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid_field(field, "must be YYYY-MM-DD"))?;
    let time = if end_of_day { date.and_hms_opt(23, 59, 59) } else { date.and_hms_opt(0, 0, 0) };
    Ok(time.map(|t| t.and_utc().timestamp()))
}

fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    text.strip_prefix("v1:")?.parse().ok()
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub results: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in descending id
    /// order: the extra row only tells whether another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, id_of: impl Fn(&T) -> i64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| encode_cursor(id_of(r)))
        } else {
            None
        };
        Page { results: rows, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("v2:1")), None);
    }

    #[test]
    fn page_knows_when_more_exist() {
        let page = Page::from_rows(vec![9, 8, 7], 2, |r| *r);
        assert_eq!(page.results, vec![9, 8]);
        assert_eq!(decode_cursor(page.next_cursor.as_deref().unwrap()), Some(8));
        let last = Page::from_rows(vec![9, 8], 2, |r| *r);
        assert!(last.next_cursor.is_none());
    }
}
