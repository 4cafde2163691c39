//! A rental as the API shows it, and the queries that load it.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    core::{ApiError, opt_ts, text_enum::text_enum, ts_to_rfc3339},
    state::AppState,
};

text_enum! {
    /// Where a rental is in its life (`rentals.status`): pending_eject →
    /// active → completed (or cancelled, when returned within the grace
    /// window), and pending_eject → failed. A rental in progress is
    /// `pending_eject` or `active` (one per user, by a unique partial index).
    pub enum RentalStatus {
        /// Paid, eject command sent.
        PendingEject = "pending_eject",
        /// The bank is out.
        Active = "active",
        /// Returned.
        Completed = "completed",
        /// The eject failed or timed out; refunded.
        Failed = "failed",
        /// Returned within the grace window; refunded.
        Cancelled = "cancelled",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RentalOut {
    pub id: i64,
    pub code: String,
    pub status: RentalStatus,
    pub station_sn: String,
    pub station_name: String,
    pub slot: i64,
    pub power_bank: Option<String>,
    pub package_code: String,
    pub package_name: String,
    /// `wallet`, `points`, `wallet_points`, or the gateway that took the payment (`khalti`, ...).
    pub payment_method: String,
    /// What the rental cost, after any coupon.
    pub amount_paisa: i64,
    pub wallet_paisa: i64,
    pub points_used: i64,
    /// Paid through the gateway (given back to the wallet if the rental fails).
    pub gateway_paisa: i64,
    /// Taken off the package price by `coupon_code`.
    pub discount_paisa: i64,
    pub coupon_code: Option<String>,
    pub started_at: Option<String>,
    pub due_at: Option<String>,
    pub returned_at: Option<String>,
    pub return_station_sn: Option<String>,
    pub overdue_paisa: i64,
    /// Overdue charge still to pay; a new rental needs it paid first.
    pub unpaid_due_paisa: i64,
    pub failure_reason: Option<String>,
    pub created_at: String,
}

pub const RENTAL_SELECT: &str = "
    SELECT r.id, r.code, r.status, s.serial_number, s.name, r.slot_index, pb.serial_number, p.code, p.name,
           r.payment_method, r.amount_paisa, r.wallet_paisa, r.points_used, r.started_at, r.due_at,
           r.returned_at, rs.serial_number, r.overdue_paisa, r.unpaid_due_paisa, r.failure_reason, r.created_at,
           r.gateway_paisa, r.discount_paisa, cp.code
    FROM rentals r
    JOIN stations s ON s.id = r.station_id
    JOIN rental_packages p ON p.id = r.package_id
    LEFT JOIN power_banks pb ON pb.id = r.power_bank_id
    LEFT JOIN stations rs ON rs.id = r.return_station_id
    LEFT JOIN coupons cp ON cp.id = r.coupon_id";

pub fn rental_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RentalOut> {
    Ok(RentalOut {
        id: r.get(0)?,
        code: r.get(1)?,
        status: r.get(2)?,
        station_sn: r.get(3)?,
        station_name: r.get(4)?,
        slot: r.get(5)?,
        power_bank: r.get(6)?,
        package_code: r.get(7)?,
        package_name: r.get(8)?,
        payment_method: r.get(9)?,
        amount_paisa: r.get(10)?,
        wallet_paisa: r.get(11)?,
        points_used: r.get(12)?,
        gateway_paisa: r.get(21)?,
        discount_paisa: r.get(22)?,
        coupon_code: r.get(23)?,
        started_at: opt_ts(r.get(13)?),
        due_at: opt_ts(r.get(14)?),
        returned_at: opt_ts(r.get(15)?),
        return_station_sn: r.get(16)?,
        overdue_paisa: r.get(17)?,
        unpaid_due_paisa: r.get(18)?,
        failure_reason: r.get(19)?,
        created_at: ts_to_rfc3339(r.get(20)?),
    })
}

/// The caller's rental by id; someone else's rental is "not found".
pub fn load_own(c: &Connection, user_id: i64, id: i64) -> Result<RentalOut, ApiError> {
    c.query_row(&format!("{RENTAL_SELECT} WHERE r.id = ?1 AND r.user_id = ?2"), [id, user_id], rental_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("rental"))
}

/// Columns the lifecycle code needs, by rental id.
#[derive(Debug, Clone)]
pub struct RentalCore {
    pub id: i64,
    pub user_id: i64,
    pub status: RentalStatus,
    pub package_id: i64,
    pub package_code: String,
    pub package_price: i64,
    pub package_minutes: i64,
    pub started_at: Option<i64>,
    pub due_at: Option<i64>,
    pub unpaid_due_paisa: i64,
}

pub fn load_core(c: &Connection, id: i64) -> Result<Option<RentalCore>, ApiError> {
    Ok(c.query_row(
        "SELECT r.id, r.user_id, r.status, p.id, p.code, p.price_paisa, p.duration_minutes, r.started_at, r.due_at,
                r.unpaid_due_paisa
         FROM rentals r JOIN rental_packages p ON p.id = r.package_id WHERE r.id = ?1",
        [id],
        |r| {
            Ok(RentalCore {
                id: r.get(0)?,
                user_id: r.get(1)?,
                status: r.get(2)?,
                package_id: r.get(3)?,
                package_code: r.get(4)?,
                package_price: r.get(5)?,
                package_minutes: r.get(6)?,
                started_at: r.get(7)?,
                due_at: r.get(8)?,
                unpaid_due_paisa: r.get(9)?,
            })
        },
    )
    .optional()?)
}

/// The caller's rental (its lifecycle columns); someone else's is "not found".
pub async fn own_core(state: &AppState, user: i64, id: i64) -> Result<RentalCore, ApiError> {
    state
        .db
        .read(move |c| load_core(c, id))
        .await?
        .filter(|r| r.user_id == user)
        .ok_or_else(|| ApiError::not_found("rental"))
}

impl RentalCore {
    pub fn package_info(&self) -> powerbank_plugin_runtime::types::PackageInfo {
        powerbank_plugin_runtime::types::PackageInfo {
            id: self.package_id.to_string(),
            code: self.package_code.clone(),
            price_paisa: self.package_price,
            duration_minutes: u32::try_from(self.package_minutes).unwrap_or(u32::MAX),
        }
    }
}

/// A 409 for a transition the state machine does not allow.
pub fn illegal(from: impl std::fmt::Display, action: &str) -> ApiError {
    ApiError::conflict("invalid_rental_state", format!("cannot {action} a rental that is {from}"))
}
