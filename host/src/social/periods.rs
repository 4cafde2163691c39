//! Leaderboard periods. Weeks start on Monday and months on the 1st in
//! Asia/Kathmandu (UTC+5:45, no daylight saving), as riders in Nepal live
//! them. The keys match the ones the triggers in `schema.sql` compute in SQL
//! (`'w' || <Monday>`, `'m' || <YYYY-MM>`); a unit test holds them together.

use chrono::{DateTime, Datelike, Duration, NaiveDate};

use crate::core::text_enum::text_enum;

/// UTC+5:45 in seconds.
pub const KATHMANDU_OFFSET_SECS: i32 = 5 * 3600 + 45 * 60;

text_enum! {
    /// Which stretch of time a leaderboard counts.
    pub enum Period {
        Week = "week",
        Month = "month",
        AllTime = "all_time",
    }
}

/// The calendar date in Kathmandu at the instant `ts`.
fn local_date(ts: i64) -> NaiveDate {
    DateTime::from_timestamp(ts + i64::from(KATHMANDU_OFFSET_SECS), 0).unwrap_or_default().date_naive()
}

/// The rollup key of `period` containing the instant `ts`, and when that
/// period started (unix seconds; `None` for all time).
pub fn key_at(period: Period, ts: i64) -> (String, Option<i64>) {
    let date = local_date(ts);
    let start = match period {
        Period::AllTime => return ("all".to_string(), None),
        Period::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        Period::Month => date.with_day(1).unwrap_or(date),
    };
    let starts_at = start.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp() - i64::from(KATHMANDU_OFFSET_SECS));
    let key = match period {
        Period::Week => format!("w{}", start.format("%Y-%m-%d")),
        _ => format!("m{}", start.format("%Y-%m")),
    };
    (key, starts_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_and_sql_agree_on_kathmandu_weeks_and_months() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        // Monday 2026-06-01 00:00 in Kathmandu is Sunday 2026-05-31 18:15 UTC.
        let monday_npt = 1_780_251_300;
        assert_eq!(key_at(Period::Week, monday_npt).0, "w2026-06-01");
        assert_eq!(key_at(Period::Week, monday_npt - 1).0, "w2026-05-25");
        assert_eq!(key_at(Period::Month, monday_npt).0, "m2026-06");
        assert_eq!(key_at(Period::Month, monday_npt - 1).0, "m2026-05");
        assert_eq!(key_at(Period::Week, monday_npt).1, Some(monday_npt));
        for ts in (monday_npt - 40 * 86_400..monday_npt + 40 * 86_400).step_by(3_607) {
            let (week, month): (String, String) = conn
                .query_row(
                    "SELECT 'w' || date(?1 + 20700, 'unixepoch', '-6 days', 'weekday 1'),
                            'm' || strftime('%Y-%m', ?1 + 20700, 'unixepoch')",
                    [ts],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(week, key_at(Period::Week, ts).0, "week of {ts}");
            assert_eq!(month, key_at(Period::Month, ts).0, "month of {ts}");
        }
    }
}
