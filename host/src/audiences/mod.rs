//! Audiences: who a broadcast or a campaign reaches.
//!
//! An audience is a rule over riders (all, active or new or inactive within N
//! days, KYC approved, users of a coupon, an explicit list), stored as JSON
//! with the thing that uses it and evaluated when it runs, so a scheduled
//! broadcast reaches the riders who match at send time. It sits above the
//! domains it reads (users, rentals, KYC, coupons) and below the features
//! that use it (admin broadcast, campaigns). Only active riders ever match:
//! deleted, suspended and operator accounts are never in an audience.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::ApiError;

const DAY_SECS: i64 = 86_400;
/// Longest look-back a day-based audience accepts (ten years).
pub const MAX_DAYS: i64 = 3_650;
/// Most riders an explicit list may name.
pub const MAX_LISTED_USERS: usize = 10_000;

/// Who to reach. JSON: `{"kind": "active", "days": 30}`, `{"kind": "users", "user_ids": [1, 2]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Audience {
    /// Every active rider.
    All,
    /// Riders who started a rental within the last `days` days.
    Active {
        #[schema(minimum = 1, maximum = 3650)]
        days: i64,
    },
    /// Riders who signed up within the last `days` days.
    New {
        #[schema(minimum = 1, maximum = 3650)]
        days: i64,
    },
    /// Riders older than `days` days who have not started a rental within them.
    Inactive {
        #[schema(minimum = 1, maximum = 3650)]
        days: i64,
    },
    /// Riders whose KYC is approved.
    KycApproved,
    /// Riders who redeemed the coupon `code` (a redemption that was given back does not count).
    CouponUsers { code: String },
    /// The riders listed (at most 10,000); ids that are not active riders are skipped.
    Users { user_ids: Vec<i64> },
}

impl Audience {
    /// Refuses a rule that can never be evaluated sensibly (422 `invalid_audience`).
    pub fn validate(&self) -> Result<(), ApiError> {
        let invalid = |message: String| {
            Err(ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid_audience", message))
        };
        match self {
            Self::Active { days } | Self::New { days } | Self::Inactive { days } if !(1..=MAX_DAYS).contains(days) => {
                invalid(format!("days must be between 1 and {MAX_DAYS}"))
            }
            Self::CouponUsers { code } if code.trim().is_empty() || code.len() > 64 => {
                invalid("coupon code must be 1 to 64 characters".into())
            }
            Self::Users { user_ids } if user_ids.is_empty() || user_ids.len() > MAX_LISTED_USERS => {
                invalid(format!("user_ids must list 1 to {MAX_LISTED_USERS} riders"))
            }
            Self::Users { user_ids } if user_ids.iter().any(|id| *id <= 0) => {
                invalid("user_ids must be positive".into())
            }
            _ => Ok(()),
        }
    }

    /// The rule's SQL condition over `users u` and the value bound to `?1`.
    fn condition(&self, now: i64) -> (&'static str, rusqlite::types::Value) {
        use rusqlite::types::Value;
        let since = |days: &i64| Value::Integer(now - days * DAY_SECS);
        match self {
            Self::All => ("", Value::Null),
            Self::Active { days } => {
                ("AND EXISTS (SELECT 1 FROM rentals r WHERE r.user_id = u.id AND r.created_at >= ?1)", since(days))
            }
            Self::New { days } => ("AND u.created_at >= ?1", since(days)),
            Self::Inactive { days } => (
                "AND u.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM rentals r WHERE r.user_id = u.id AND r.created_at >= ?1)",
                since(days),
            ),
            Self::KycApproved => {
                ("AND EXISTS (SELECT 1 FROM user_kyc k WHERE k.user_id = u.id AND k.status = 'approved')", Value::Null)
            }
            Self::CouponUsers { code } => (
                "AND EXISTS (SELECT 1 FROM coupon_usages cu JOIN coupons c ON c.id = cu.coupon_id
                             WHERE cu.user_id = u.id AND c.code = ?1 AND cu.released_at IS NULL)",
                Value::Text(code.trim().to_string()),
            ),
            Self::Users { user_ids } => (
                "AND u.id IN (SELECT value FROM json_each(?1))",
                Value::Text(serde_json::Value::from(user_ids.clone()).to_string()),
            ),
        }
    }

    /// How many riders match now.
    pub fn count(&self, conn: &Connection, now: i64) -> rusqlite::Result<i64> {
        let (condition, value) = self.condition(now);
        // `?2` is always bound, so the statement takes two parameters whether
        // or not the rule uses `?1`.
        let sql = format!("SELECT COUNT(*) FROM users u WHERE {ELIGIBLE} {condition} AND u.id > ?2");
        conn.prepare_cached(&sql)?.query_row(params![value, 0], |row| row.get(0))
    }

    /// The next `limit` matching rider ids after `after_id`, in id order: a
    /// sender walks the audience in batches and can resume after a restart.
    pub fn batch(&self, conn: &Connection, now: i64, after_id: i64, limit: i64) -> rusqlite::Result<Vec<i64>> {
        let (condition, value) = self.condition(now);
        let sql = format!("SELECT u.id FROM users u WHERE {ELIGIBLE} {condition} AND u.id > ?2 ORDER BY u.id LIMIT ?3");
        let mut stmt = conn.prepare_cached(&sql)?;
        let ids = stmt.query_map(params![value, after_id, limit], |row| row.get(0))?;
        ids.collect()
    }

    /// Whether one rider matches now (e.g. a campaign offer at rental time).
    pub fn contains(&self, conn: &Connection, now: i64, user_id: i64) -> rusqlite::Result<bool> {
        Ok(self.batch(conn, now, user_id - 1, 1)?.first() == Some(&user_id))
    }
}

/// Riders an audience may ever include.
const ELIGIBLE: &str = "u.status = 'active' AND u.role = 'user'";

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::core::migrations::apply(&mut conn, crate::schema::MIGRATIONS).unwrap();
        conn
    }

    fn rider(conn: &Connection, id: i64, created_days_ago: i64) {
        conn.execute(
            "INSERT INTO users (id, phone, referral_code, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id, format!("98000000{id:02}"), format!("REF{id}"), NOW - created_days_ago * DAY_SECS],
        )
        .unwrap();
    }

    fn ids(conn: &Connection, audience: &Audience) -> Vec<i64> {
        audience.batch(conn, NOW, 0, 100).unwrap()
    }

    #[test]
    fn rules_select_the_riders_they_name_and_never_inactive_accounts() {
        let conn = db();
        rider(&conn, 1, 400);
        rider(&conn, 2, 3);
        rider(&conn, 3, 100);
        rider(&conn, 4, 1);
        conn.execute("UPDATE users SET status = 'suspended' WHERE id = 4", []).unwrap();

        assert_eq!(ids(&conn, &Audience::All), vec![1, 2, 3]);
        assert_eq!(ids(&conn, &Audience::New { days: 7 }), vec![2]);
        // Nobody has rented: everyone older than 30 days is inactive.
        assert_eq!(ids(&conn, &Audience::Inactive { days: 30 }), vec![1, 3]);
        assert_eq!(ids(&conn, &Audience::Active { days: 30 }), Vec::<i64>::new());
        assert_eq!(ids(&conn, &Audience::Users { user_ids: vec![3, 4, 99] }), vec![3]);
        assert_eq!(Audience::All.count(&conn, NOW).unwrap(), 3);
        assert!(Audience::New { days: 7 }.contains(&conn, NOW, 2).unwrap());
        assert!(!Audience::New { days: 7 }.contains(&conn, NOW, 3).unwrap());
        // Batches resume after the last id sent.
        assert_eq!(Audience::All.batch(&conn, NOW, 1, 1).unwrap(), vec![2]);
    }

    #[test]
    fn invalid_rules_are_refused() {
        for bad in [
            Audience::Active { days: 0 },
            Audience::Inactive { days: MAX_DAYS + 1 },
            Audience::Users { user_ids: vec![] },
            Audience::Users { user_ids: vec![-1] },
            Audience::CouponUsers { code: " ".into() },
        ] {
            assert_eq!(bad.validate().unwrap_err().code, "invalid_audience", "{bad:?}");
        }
        assert!(Audience::KycApproved.validate().is_ok());
        let parsed: Audience = serde_json::from_str(r#"{"kind":"inactive","days":30}"#).unwrap();
        assert_eq!(parsed, Audience::Inactive { days: 30 });
    }
}
