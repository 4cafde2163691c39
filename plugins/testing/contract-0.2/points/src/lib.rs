//! A points plugin built against contract 0.2.0: 11 points at signup, 4 to
//! each side of a referral, 2 per completed rental, nothing for a top-up; a
//! point is worth 20 paisa; points expire after 90 days. It knows none of the
//! events 0.3 added.

use contract_v0_2_bindings::plugin_info;
use contract_v0_2_bindings::points::{
    Award, AwardRole, CallContext, CallError, Guest, PluginInfo, PluginKind, PointsEvent,
};

struct Points;

impl Guest for Points {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PointsRules, "Points (0.2)")
    }

    fn self_check() -> Result<(), CallError> {
        Ok(())
    }

    fn award(event: PointsEvent, _context: CallContext) -> Result<Vec<Award>, CallError> {
        let award =
            |role, user_id: &str, points| Award { role, user_id: user_id.to_string(), points, reason: "0.2".into() };
        Ok(match event {
            PointsEvent::Signup(e) => vec![award(AwardRole::Subject, &e.user_id, 11)],
            PointsEvent::Referral(e) if e.referrer_id == e.referee_id => {
                return Err(CallError::InvalidInput("a user cannot refer themselves".to_string()));
            }
            PointsEvent::Referral(e) => {
                vec![award(AwardRole::Referrer, &e.referrer_id, 4), award(AwardRole::Referee, &e.referee_id, 4)]
            }
            PointsEvent::RentalCompleted(e) => vec![award(AwardRole::Subject, &e.user_id, 2)],
            PointsEvent::TopUp(_) => Vec::new(),
        })
    }

    fn points_to_paisa(points: i64) -> Result<i64, CallError> {
        Ok(points * 20)
    }

    fn expiry_days() -> Result<u32, CallError> {
        Ok(90)
    }
}

contract_v0_2_bindings::export_points_rules!(Points);
