//! The operator side of the network: operator accounts and their roles
//! (`/api/admin/operators`, `/api/admin/me`), the audit log
//! (`/api/admin/audit`), app users (`/api/admin/users`) and broadcasts
//! (`/api/admin/broadcasts`, sent through the job queue). Roles and the
//! audit mechanism itself live in core (`core::access`, `core::audit`)
//! because every domain's admin routes use them; this domain owns the
//! `operators`, `user_restrictions`, `user_notes`, `balance_adjustments` and
//! `broadcasts` tables. See docs/admin.md.

pub mod audit_log;
pub mod broadcasts;
pub mod operators;
pub mod users;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{core::jobs::JobsBuilder, state::AppState};

/// The background jobs of the admin domain (`server::job_handlers`).
pub fn jobs(jobs: JobsBuilder<AppState>) -> JobsBuilder<AppState> {
    broadcasts::register_jobs(jobs)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(operators::me))
        .routes(routes!(operators::list_operators, operators::create_operator))
        .routes(routes!(operators::change_role))
        .routes(routes!(operators::disable_operator))
        .routes(routes!(operators::enable_operator))
        .routes(routes!(audit_log::list_audit))
        .routes(routes!(audit_log::verify_audit))
        .routes(routes!(users::search_users))
        .routes(routes!(users::user_detail))
        .routes(routes!(users::suspend_user))
        .routes(routes!(users::ban_user))
        .routes(routes!(users::reactivate_user))
        .routes(routes!(users::adjust_wallet))
        .routes(routes!(users::adjust_points))
        .routes(routes!(users::list_notes, users::add_note))
        .routes(routes!(broadcasts::list_broadcasts, broadcasts::create_broadcast))
        .routes(routes!(broadcasts::get_broadcast))
        .routes(routes!(broadcasts::cancel_broadcast))
}

#[cfg(test)]
mod tests {
    #[test]
    fn operators_from_before_roles_become_admins_and_riders_stay_users() {
        let list = crate::schema::MIGRATIONS;
        let at = list.iter().position(|m| m.1 == "operator_roles_audit_log").unwrap();
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::core::migrations::apply(&mut conn, &list[..at]).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, email, role, referral_code, created_at, updated_at)
             VALUES (1, 'ops@example.test', 'admin', 'AAAA2222', 1, 1);
             INSERT INTO users (id, phone, role, referral_code, created_at, updated_at)
             VALUES (2, '+9779841000001', 'user', 'BBBB3333', 1, 1);",
        )
        .unwrap();
        crate::core::migrations::apply(&mut conn, list).unwrap();
        let mut stmt = conn.prepare("SELECT user_id, role, disabled_at FROM operators").unwrap();
        let rows: Vec<(i64, String, Option<i64>)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows, [(1, "admin".to_string(), None)]);
    }
}
