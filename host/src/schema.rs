//! The database schema: every domain's migrations in the order they apply.
//!
//! Each feature domain keeps its SQL next to its code; this list only fixes
//! the order. A migration never changes once released: add a new one.

use std::path::Path;

use crate::core::{Db, jobs, migrations::Migration};

pub const MIGRATIONS: &[Migration] = &[
    (1, "users", include_str!("users/schema.sql")),
    (2, "app_core", include_str!("app_core/schema.sql")),
    (3, "stations", include_str!("stations/schema.sql")),
    (4, "rental_packages", include_str!("packages/schema.sql")),
    (5, "jobs", jobs::SCHEMA),
    (6, "notifications", include_str!("notifications/schema.sql")),
    (7, "kyc", include_str!("kyc/schema.sql")),
    (8, "stations_geo_favorites_issues", include_str!("stations/geo_favorites_issues.sql")),
    (9, "payments", include_str!("payments/schema.sql")),
    (10, "points_referrals", include_str!("points/schema.sql")),
    (11, "rentals", include_str!("rentals/lifecycle.sql")),
    (12, "payment_gateways", include_str!("payments/gateways.sql")),
    (13, "rental_reminders", include_str!("rentals/reminders.sql")),
    (
        14,
        "promotions_rental_gateway",
        concat!(include_str!("promotions/schema.sql"), include_str!("rentals/gateway.sql")),
    ),
    (15, "station_protocols", include_str!("stations/link/protocols.sql")),
    (16, "kyc_review_alerts", include_str!("kyc/review_alerts.sql")),
    (17, "operator_signin_failures", include_str!("users/operator_signin.sql")),
    (18, "rentals_lost", include_str!("rentals/lost.sql")),
    (19, "points_events", include_str!("points/events.sql")),
    (20, "operator_roles_audit_log", concat!(include_str!("admin/schema.sql"), include_str!("core/audit.sql"))),
    (
        21,
        "spec_issue_types_images_device_sessions",
        concat!(
            include_str!("stations/issue_types.sql"),
            include_str!("rentals/issue_images.sql"),
            include_str!("notifications/device_sessions.sql")
        ),
    ),
    (22, "rental_swaps_postpaid", include_str!("rentals/swaps_postpaid.sql")),
    (23, "content_pages_faq_support", include_str!("content/schema.sql")),
    (24, "social_rollups_achievements", concat!(include_str!("social/schema.sql"), include_str!("social/rebuild.sql"))),
    (25, "admin_users", include_str!("admin/users.sql")),
    (26, "plugin_releases", include_str!("plugins/releases/schema.sql")),
    (
        27,
        "admin_rentals_issues_fleet",
        concat!(
            include_str!("rentals/admin.sql"),
            include_str!("stations/issues_admin.sql"),
            include_str!("stations/fleet.sql")
        ),
    ),
    (
        28,
        "catalogue_settings_broadcasts",
        concat!(
            include_str!("rentals/max_active.sql"),
            include_str!("notifications/broadcast_template.sql"),
            include_str!("admin/broadcasts.sql")
        ),
    ),
    (29, "analytics_rollups", concat!(include_str!("analytics/schema.sql"), include_str!("analytics/rebuild.sql"))),
    (30, "plugin_release_traces", include_str!("plugins/releases/trace.sql")),
    (
        31,
        "rental_dues_extensions_by_gateway",
        concat!(include_str!("payments/purposes.sql"), include_str!("rentals/due_payments.sql")),
    ),
    (32, "campaigns", include_str!("promotions/campaigns/schema.sql")),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Opens the application's database, applying the migrations it lacks.
pub fn open_db(path: &Path, readers: usize) -> anyhow::Result<Db> {
    Db::open_migrated(path, readers, MIGRATIONS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_are_dense_and_increasing() {
        for (i, m) in super::MIGRATIONS.iter().enumerate() {
            assert_eq!(m.0, i as i64 + 1, "migration {} out of order", m.1);
        }
    }

    /// `rentals_lost` rebuilds `rentals` (a new status in its CHECK): every
    /// row, and every row of another table that names one, survives it.
    #[test]
    fn rebuilding_rentals_keeps_rows_and_references() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        let before = super::MIGRATIONS.iter().position(|m| m.1 == "rentals_lost").unwrap();
        crate::core::migrations::apply(&mut conn, &super::MIGRATIONS[..before]).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, phone, referral_code, created_at, updated_at) VALUES (1, '+9779800000001', 'R1', 0, 0);
             INSERT INTO rental_packages (id, code, name, duration_minutes, price_paisa, created_at)
                 VALUES (901, 'T1', 'Test', 60, 5000, 0);
             INSERT INTO stations (id, serial_number, name, address, city, latitude, longitude, created_at, updated_at)
                 VALUES (1, 'ST-1', 'One', 'Street', 'Kathmandu', 27.7, 85.3, 0, 0);
             INSERT INTO rentals (id, code, user_id, package_id, status, payment_method, station_id, slot_index,
                 amount_paisa, due_minutes, created_at, updated_at, gateway_paisa, failure_code)
                 VALUES (7, 'RNT-7', 1, 901, 'active', 'wallet', 1, 3, 5000, 60, 0, 0, 0, NULL);
             INSERT INTO rental_extensions (rental_id, extra_minutes, amount_paisa, previous_due_at, new_due_at,
                 created_at) VALUES (7, 30, 2500, 0, 1800, 0);",
        )
        .unwrap();
        crate::core::migrations::apply(&mut conn, super::MIGRATIONS).unwrap();
        let (code, extension): (String, i64) = conn
            .query_row(
                "SELECT r.code, e.extra_minutes FROM rentals r JOIN rental_extensions e ON e.rental_id = r.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((code.as_str(), extension), ("RNT-7", 30));
        conn.execute("UPDATE rentals SET status = 'lost' WHERE id = 7", []).unwrap();
        assert!(conn.execute("UPDATE rentals SET status = 'gone' WHERE id = 7", []).is_err(), "the CHECK stays");
        let orphan = "INSERT INTO rental_extensions (rental_id, extra_minutes, amount_paisa, previous_due_at,
                      new_due_at, created_at) VALUES (8, 30, 0, 0, 0, 0)";
        assert!(conn.execute(orphan, []).is_err(), "references to rentals are still enforced");
    }

    /// `rental_dues_extensions_by_gateway` rebuilds `payment_intents` (new
    /// purposes in its CHECK): its rows, the rental orders that name them and
    /// the uniqueness of a gateway's reference survive it.
    #[test]
    fn rebuilding_payment_intents_keeps_rows_and_references() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        let before = super::MIGRATIONS.iter().position(|m| m.1 == "rental_dues_extensions_by_gateway").unwrap();
        crate::core::migrations::apply(&mut conn, &super::MIGRATIONS[..before]).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, phone, referral_code, created_at, updated_at) VALUES (1, '+9779800000001', 'R1', 0, 0);
             INSERT INTO rental_packages (id, code, name, duration_minutes, price_paisa, created_at)
                 VALUES (901, 'T1', 'Test', 60, 5000, 0);
             INSERT INTO stations (id, serial_number, name, address, city, latitude, longitude, created_at, updated_at)
                 VALUES (1, 'ST-1', 'One', 'Street', 'Kathmandu', 27.7, 85.3, 0, 0);
             INSERT INTO payment_intents (id, user_id, purpose, gateway, amount_paisa, status, gateway_reference,
                 expires_at, created_at, updated_at, client_payload)
                 VALUES ('pi-1', 1, 'rental', 'khalti', 5000, 'pending', 'pidx-1', 0, 0, 0, '{}');
             INSERT INTO rental_orders (user_id, package_id, station_id, gateway, payment_intent_id, status,
                 list_amount_paisa, amount_paisa, due_minutes, created_at, updated_at)
                 VALUES (1, 901, 1, 'khalti', 'pi-1', 'awaiting_payment', 5000, 5000, 60, 0, 0);",
        )
        .unwrap();
        crate::core::migrations::apply(&mut conn, super::MIGRATIONS).unwrap();
        let (purpose, reference, payload, order): (String, String, String, i64) = conn
            .query_row(
                "SELECT i.purpose, i.gateway_reference, i.client_payload, o.id FROM payment_intents i
                 JOIN rental_orders o ON o.payment_intent_id = i.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!((purpose.as_str(), reference.as_str(), payload.as_str(), order), ("rental", "pidx-1", "{}", 1));
        conn.execute("UPDATE payment_intents SET purpose = 'rental_due' WHERE id = 'pi-1'", []).unwrap();
        assert!(conn.execute("UPDATE payment_intents SET purpose = 'gone'", []).is_err(), "the CHECK stays");
        let twin = "INSERT INTO payment_intents (id, user_id, purpose, gateway, amount_paisa, status, gateway_reference,
                    expires_at, created_at, updated_at) VALUES ('pi-2', 1, 'topup', 'khalti', 100, 'pending', 'pidx-1', 0, 0, 0)";
        assert!(conn.execute(twin, []).is_err(), "a gateway reference is still unique");
        let orphan = "INSERT INTO rental_orders (user_id, package_id, station_id, gateway, payment_intent_id, status,
                      list_amount_paisa, amount_paisa, due_minutes, created_at, updated_at)
                      VALUES (1, 901, 1, 'khalti', 'pi-none', 'awaiting_payment', 5000, 5000, 60, 0, 0)";
        assert!(conn.execute(orphan, []).is_err(), "references to payment_intents are still enforced");
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'payment_intents'
                 AND name IN ('payment_intents_user', 'payment_intents_pending')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 2);
    }

    #[test]
    fn all_migrations_apply_to_an_empty_database() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        crate::core::migrations::apply(&mut conn, super::MIGRATIONS).unwrap();
        // Idempotent: a second run applies nothing.
        crate::core::migrations::apply(&mut conn, super::MIGRATIONS).unwrap();
        assert_eq!(crate::core::migrations::current_version(&conn).unwrap(), super::MIGRATIONS.len() as i64);
    }

    /// `admin_rentals_issues_fleet` rebuilds `power_banks` (new statuses in
    /// its CHECK) and `station_issues`: rows, ids and the references of
    /// slots and rentals survive, and the new CHECKs hold.
    #[test]
    fn rebuilding_power_banks_and_station_issues_keeps_rows_and_references() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        let before = super::MIGRATIONS.iter().position(|m| m.1 == "admin_rentals_issues_fleet").unwrap();
        crate::core::migrations::apply(&mut conn, &super::MIGRATIONS[..before]).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, phone, referral_code, created_at, updated_at) VALUES (1, '+9779800000001', 'R1', 0, 0);
             INSERT INTO rental_packages (id, code, name, duration_minutes, price_paisa, created_at)
                 VALUES (901, 'T1', 'Test', 60, 5000, 0);
             INSERT INTO stations (id, serial_number, name, address, city, latitude, longitude, created_at, updated_at)
                 VALUES (1, 'ST-1', 'One', 'Street', 'Kathmandu', 27.7, 85.3, 0, 0);
             INSERT INTO power_banks (id, serial_number, capacity_mah, status, battery_level, station_id, created_at,
                 updated_at) VALUES (5, 'PB-5', 10000, 'in_slot', 80, 1, 0, 0);
             INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
                 VALUES (1, 1, 'occupied', 5, 0);
             INSERT INTO rentals (id, code, user_id, package_id, status, payment_method, station_id, slot_index,
                 power_bank_id, amount_paisa, due_minutes, created_at, updated_at)
                 VALUES (7, 'RNT-7', 1, 901, 'completed', 'wallet', 1, 1, 5, 5000, 60, 0, 0);
             INSERT INTO station_issues (id, station_id, reporter_id, issue_type, description, status, created_at,
                 updated_at) VALUES (3, 1, 1, 'dirty', 'the station is dirty', 'acknowledged', 0, 0);",
        )
        .unwrap();
        crate::core::migrations::apply(&mut conn, super::MIGRATIONS).unwrap();
        let (serial, slot, rental): (String, i64, i64) = conn
            .query_row(
                "SELECT pb.serial_number, sl.slot_index, r.id FROM power_banks pb
                 JOIN station_slots sl ON sl.power_bank_id = pb.id JOIN rentals r ON r.power_bank_id = pb.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((serial.as_str(), slot, rental), ("PB-5", 1, 7));
        conn.execute("UPDATE power_banks SET status = 'damaged' WHERE id = 5", []).unwrap();
        assert!(conn.execute("UPDATE power_banks SET status = 'gone' WHERE id = 5", []).is_err(), "the CHECK stays");
        let orphan = "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
                      VALUES (1, 2, 'occupied', 99, 0)";
        assert!(conn.execute(orphan, []).is_err(), "references to power_banks are still enforced");
        let (status, priority): (String, String) = conn
            .query_row("SELECT status, priority FROM station_issues WHERE id = 3", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((status.as_str(), priority.as_str()), ("acknowledged", "normal"));
        conn.execute("UPDATE station_issues SET status = 'rejected' WHERE id = 3", []).unwrap();
    }
}
