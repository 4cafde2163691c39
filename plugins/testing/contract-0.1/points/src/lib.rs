//! A points plugin built against contract 0.1.0: 7 points at signup, 3 to
//! each side of a referral, none otherwise; a point is worth 10 paisa; points
//! expire after `expiry_days` (config, default 30). A self-referral is
//! refused with a message.

use contract_v0_1_bindings::plugin_info;
use contract_v0_1_bindings::points::{Award, AwardRole, CallContext, Guest, PluginInfo, PluginKind, PointsEvent};

struct Points;

impl Guest for Points {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::PointsRules)
    }

    fn self_check() -> Result<(), String> {
        Ok(())
    }

    fn award(event: PointsEvent, _context: CallContext) -> Result<Vec<Award>, String> {
        let award =
            |role, user_id: &str, points| Award { role, user_id: user_id.to_string(), points, reason: "0.1".into() };
        Ok(match event {
            PointsEvent::Signup(e) => vec![award(AwardRole::Subject, &e.user_id, 7)],
            PointsEvent::Referral(e) if e.referrer_id == e.referee_id => {
                return Err("a user cannot refer themselves".to_string());
            }
            PointsEvent::Referral(e) => {
                vec![award(AwardRole::Referrer, &e.referrer_id, 3), award(AwardRole::Referee, &e.referee_id, 3)]
            }
            PointsEvent::TopUp(_) | PointsEvent::RentalCompleted(_) => Vec::new(),
        })
    }

    fn points_to_paisa(points: i64) -> Result<i64, String> {
        Ok(points * 10)
    }

    fn expiry_days() -> u32 {
        contract_v0_1_bindings::host::config_get("expiry_days").and_then(|d| d.parse().ok()).unwrap_or(30)
    }
}

contract_v0_1_bindings::export_points_rules!(Points);
