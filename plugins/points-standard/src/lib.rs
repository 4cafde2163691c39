//! Seed loyalty rules: signup +50, referral +100 to the referrer and +50 to
//! the referee, +10 points per NPR 100 topped up, +5 per completed rental;
//! 10 points are worth NPR 1 and expire after 365 days.
//!
//! Config keys (all optional, integers): `signup_points`, `referrer_points`,
//! `referee_points`, `topup_points_per_unit`, `topup_unit_paisa`,
//! `rental_completed_points`, `points_per_npr`, `expiry_days`, and for the
//! events of contract 0.3 (off unless set): `profile_completed_points`,
//! `kyc_approved_points`, `on_time_return_points`.
//! A points value of 0 turns that award off.
//!
//! `referral_payout` chooses when a referral pays both sides: `signup` (the
//! default: when the referee signs up with the code) or `first_rental` (when
//! the referee completes their first rental).

use powerbank_plugin_sdk::points::{Award, AwardRole, CallContext, Guest, PointsEvent};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, config, plugin_info};

struct Rules {
    signup_points: i64,
    referrer_points: i64,
    referee_points: i64,
    topup_points_per_unit: i64,
    topup_unit_paisa: i64,
    rental_completed_points: i64,
    points_per_npr: i64,
    expiry_days: u32,
    profile_completed_points: i64,
    kyc_approved_points: i64,
    on_time_return_points: i64,
    referral_payout: ReferralPayout,
}

/// When a referral pays out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReferralPayout {
    Signup,
    FirstRental,
}

impl Rules {
    fn from_config() -> Result<Self, CallError> {
        let rules = Rules {
            signup_points: config::parse_or("signup_points", 50)?,
            referrer_points: config::parse_or("referrer_points", 100)?,
            referee_points: config::parse_or("referee_points", 50)?,
            topup_points_per_unit: config::parse_or("topup_points_per_unit", 10)?,
            topup_unit_paisa: config::parse_or("topup_unit_paisa", 10_000)?,
            rental_completed_points: config::parse_or("rental_completed_points", 5)?,
            points_per_npr: config::parse_or("points_per_npr", 10)?,
            expiry_days: config::parse_or("expiry_days", 365)?,
            profile_completed_points: config::parse_or("profile_completed_points", 0)?,
            kyc_approved_points: config::parse_or("kyc_approved_points", 0)?,
            on_time_return_points: config::parse_or("on_time_return_points", 0)?,
            referral_payout: match config::get("referral_payout").as_deref().map(str::trim) {
                None | Some("signup") => ReferralPayout::Signup,
                Some("first_rental") => ReferralPayout::FirstRental,
                Some(other) => {
                    return Err(config::misconfigured(
                        "referral_payout",
                        format!("`{other}` is not one of signup, first_rental"),
                    ));
                }
            },
        };
        let awards = [
            rules.signup_points,
            rules.referrer_points,
            rules.referee_points,
            rules.topup_points_per_unit,
            rules.rental_completed_points,
            rules.profile_completed_points,
            rules.kyc_approved_points,
            rules.on_time_return_points,
        ];
        if awards.iter().any(|p| *p < 0) {
            return Err(CallError::Misconfigured("points config values must not be negative".to_string()));
        }
        // Both are divisors below.
        if rules.topup_unit_paisa <= 0 || rules.points_per_npr <= 0 {
            return Err(CallError::Misconfigured("topup_unit_paisa and points_per_npr must be positive".to_string()));
        }
        Ok(rules)
    }
}

fn award(role: AwardRole, user_id: &str, points: i64, reason: &str) -> Option<Award> {
    (points > 0).then(|| Award { role, user_id: user_id.to_string(), points, reason: reason.to_string() })
}

struct StandardPoints;

impl Guest for StandardPoints {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PointsRules, "Standard points")
    }

    fn self_check() -> Result<(), CallError> {
        Rules::from_config().map(|_| ())
    }

    fn award(event: PointsEvent, _context: CallContext) -> Result<Vec<Award>, CallError> {
        let rules = Rules::from_config()?;
        let awards = match event {
            PointsEvent::Signup(e) => {
                vec![award(AwardRole::Subject, &e.user_id, rules.signup_points, "signup")]
            }
            PointsEvent::Referral(e) => {
                if e.referrer_id == e.referee_id {
                    return Err(CallError::InvalidInput("a user cannot refer themselves".to_string()));
                }
                if rules.referral_payout != ReferralPayout::Signup {
                    return Ok(Vec::new());
                }
                vec![
                    award(AwardRole::Referrer, &e.referrer_id, rules.referrer_points, "referral"),
                    award(AwardRole::Referee, &e.referee_id, rules.referee_points, "referred signup"),
                ]
            }
            PointsEvent::RefereeFirstRental(e) => {
                if e.referrer_id == e.referee_id {
                    return Err(CallError::InvalidInput("a user cannot refer themselves".to_string()));
                }
                if rules.referral_payout != ReferralPayout::FirstRental {
                    return Ok(Vec::new());
                }
                vec![
                    award(AwardRole::Referrer, &e.referrer_id, rules.referrer_points, "referral"),
                    award(AwardRole::Referee, &e.referee_id, rules.referee_points, "referred first rental"),
                ]
            }
            PointsEvent::ProfileCompleted(e) => {
                vec![award(AwardRole::Subject, &e.user_id, rules.profile_completed_points, "profile completed")]
            }
            PointsEvent::KycApproved(e) => {
                vec![award(AwardRole::Subject, &e.user_id, rules.kyc_approved_points, "KYC approved")]
            }
            PointsEvent::OnTimeReturn(e) => {
                vec![award(AwardRole::Subject, &e.user_id, rules.on_time_return_points, "on-time return")]
            }
            PointsEvent::TopUp(e) => {
                // Only whole units count: NPR 199 earns the same as NPR 100.
                let units = e.amount_paisa.max(0) / rules.topup_unit_paisa;
                let points = units.saturating_mul(rules.topup_points_per_unit);
                vec![award(AwardRole::Subject, &e.user_id, points, "top-up")]
            }
            PointsEvent::RentalCompleted(e) => {
                vec![award(AwardRole::Subject, &e.user_id, rules.rental_completed_points, "rental completed")]
            }
        };
        Ok(awards.into_iter().flatten().collect())
    }

    fn points_to_paisa(points: i64) -> Result<i64, CallError> {
        let rules = Rules::from_config()?;
        if points < 0 {
            return Err(CallError::InvalidInput("points must not be negative".to_string()));
        }
        // Floor: a fraction of a paisa is never paid out.
        Ok(points.saturating_mul(100) / rules.points_per_npr)
    }

    fn expiry_days() -> Result<u32, CallError> {
        Ok(Rules::from_config()?.expiry_days)
    }
}

powerbank_plugin_sdk::export_points_rules!(StandardPoints);
