//! Analytics for operators (issue 13): the dashboard (`/api/admin/dashboard`),
//! time series (`/api/admin/analytics/series`) and station performance
//! (`/api/admin/analytics/stations`), each also as CSV (`core::csv`).
//!
//! The figures come from rollups kept by SQLite triggers in the transaction
//! of each change (`schema.sql`), never from a recount that could drift;
//! `rebuild.sql` is the recount (for the migration, and for the test that
//! holds the two together). Days and hours are Asia/Kathmandu's, as the
//! leaderboards' periods are (`social::periods`).

pub mod dashboard;
pub mod series;
pub mod stations;

use chrono::{DateTime, Duration, NaiveDate};
use rusqlite::Transaction;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    core::{ApiError, text_enum::text_enum},
    social::periods::KATHMANDU_OFFSET_SECS,
    state::AppState,
};

/// Recounts the analytics rollups from their sources (the migration runs the
/// same SQL).
pub const REBUILD_SQL: &str = include_str!("rebuild.sql");

/// Replaces the analytics rollups with a recount from their sources.
pub fn rebuild_rollups(tx: &Transaction<'_>) -> Result<(), ApiError> {
    tx.execute_batch(REBUILD_SQL)?;
    Ok(())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dashboard::dashboard))
        .routes(routes!(series::series))
        .routes(routes!(stations::station_performance))
}

/// The longest range a daily answer covers.
pub const MAX_DAYS: i64 = 366;
/// The longest range an hourly answer covers.
pub const MAX_HOURLY_DAYS: i64 = 7;
/// The range when none is given: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;

text_enum! {
    /// How fine a series is.
    pub enum Granularity {
        Day = "day",
        Hour = "hour",
    }
}

/// The calendar date in Kathmandu at the instant `ts`.
pub fn local_date(ts: i64) -> NaiveDate {
    DateTime::from_timestamp(ts + i64::from(KATHMANDU_OFFSET_SECS), 0).unwrap_or_default().date_naive()
}

/// When `date` starts in Kathmandu, as unix seconds.
pub fn day_start(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp()) - i64::from(KATHMANDU_OFFSET_SECS)
}

/// A rollup's day bucket.
pub fn day_key(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A range of whole Kathmandu days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DayRange {
    /// `from`/`to` (`YYYY-MM-DD`, Kathmandu) as given, defaulting to the last
    /// [`DEFAULT_DAYS`] days up to today; at most `max_days` long.
    pub fn parse(from: Option<&str>, to: Option<&str>, now: i64, max_days: i64) -> Result<Self, ApiError> {
        let parse = |field: &str, raw: &str| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| ApiError::invalid_field(field, "must be YYYY-MM-DD"))
        };
        let to = match to {
            Some(raw) => parse("to", raw)?,
            None => local_date(now),
        };
        let from = match from {
            Some(raw) => parse("from", raw)?,
            None => to - Duration::days(DEFAULT_DAYS - 1),
        };
        if from > to {
            return Err(ApiError::invalid_field("from", "must not be after `to`"));
        }
        let range = Self { from, to };
        if range.days() > max_days {
            return Err(ApiError::invalid_field("to", format!("the range is at most {max_days} days")));
        }
        Ok(range)
    }

    /// How many days the range covers.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// Its instants: [start of `from`, start of the day after `to`).
    pub fn bounds(&self) -> (i64, i64) {
        (day_start(self.from), day_start(self.to + Duration::days(1)))
    }

    /// Every bucket key in the range, oldest first.
    pub fn buckets(&self, granularity: Granularity) -> Vec<String> {
        let days = (0..self.days()).map(|d| self.from + Duration::days(d));
        match granularity {
            Granularity::Day => days.map(day_key).collect(),
            Granularity::Hour => days.flat_map(|d| (0..24).map(move |h| format!("{} {h:02}", day_key(d)))).collect(),
        }
    }

    /// The first and last bucket key (for a range query on the rollups).
    pub fn bucket_bounds(&self, granularity: Granularity) -> (String, String) {
        match granularity {
            Granularity::Day => (day_key(self.from), day_key(self.to)),
            Granularity::Hour => (format!("{} 00", day_key(self.from)), format!("{} 23", day_key(self.to))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_kathmandu_days_and_bounded() {
        // 2026-06-01 00:00 in Kathmandu is 2026-05-31 18:15 UTC.
        let midnight = 1_780_251_300;
        assert_eq!(local_date(midnight).to_string(), "2026-06-01");
        assert_eq!(local_date(midnight - 1).to_string(), "2026-05-31");
        let r = DayRange::parse(Some("2026-06-01"), Some("2026-06-02"), 0, 7).unwrap();
        assert_eq!(r.bounds(), (midnight, midnight + 2 * 86_400));
        assert_eq!(r.buckets(Granularity::Hour).len(), 48);
        assert_eq!(r.buckets(Granularity::Hour)[25], "2026-06-02 01");
        let default = DayRange::parse(None, None, midnight, MAX_DAYS).unwrap();
        assert_eq!((default.days(), default.to.to_string()), (30, "2026-06-01".to_string()));
        assert!(DayRange::parse(Some("2026-06-02"), Some("2026-06-01"), 0, 7).is_err());
        assert!(DayRange::parse(Some("2026-06-01"), Some("2026-06-08"), 0, 7).is_err());
        assert!(DayRange::parse(Some("2026-6-1"), None, 0, 7).is_err());
    }

    #[test]
    fn sql_buckets_agree_with_rust() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for ts in (1_780_251_300 - 3 * 86_400..1_780_251_300 + 3 * 86_400).step_by(1_799) {
            let (day, hour): (String, String) = conn
                .query_row(
                    "SELECT date(?1 + 20700, 'unixepoch'), strftime('%Y-%m-%d %H', ?1 + 20700, 'unixepoch')",
                    [ts],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(day, day_key(local_date(ts)));
            let r = DayRange { from: local_date(ts), to: local_date(ts) };
            let (start, _) = r.bounds();
            let hour_index = ((ts - start) / 3600) as usize;
            assert_eq!(hour, r.buckets(Granularity::Hour)[hour_index]);
        }
    }
}
