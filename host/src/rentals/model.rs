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
    /// window, or lost, when never returned), and pending_eject → failed. A
    /// rental in progress is `pending_eject` or `active` (one per user, by a
    /// unique partial index).
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
        /// Not returned `lost-after-minutes` after its due time: closed by
        /// the sweep, penalty charged. Seated again later, it is reconciled
        /// and `completed`.
        Lost = "lost",
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
    /// Returned by its due time (the spec's field); null while the bank is out.
    pub is_returned_on_time: Option<bool>,
    pub return_station_sn: Option<String>,
    pub overdue_paisa: i64,
    /// Overdue charge still to pay; a new rental needs it paid first.
    pub unpaid_due_paisa: i64,
    pub failure_reason: Option<String>,
    /// When the bank was declared lost (it may have come back since).
    pub lost_at: Option<String>,
    /// Penalty charged when the bank was declared lost; given back, less the
    /// overdue charge, if it came back.
    pub lost_penalty_paisa: i64,
    pub created_at: String,
}

/// The columns of [`RentalOut`], named as [`rental_from_row`] reads them.
pub const RENTAL_SELECT: &str = "
    SELECT r.id, r.code, r.status, s.serial_number AS station_sn, s.name AS station_name, r.slot_index,
           pb.serial_number AS power_bank, p.code AS package_code, p.name AS package_name, r.payment_method,
           r.amount_paisa, r.wallet_paisa, r.points_used, r.started_at, r.due_at, r.returned_at,
           rs.serial_number AS return_station_sn, r.overdue_paisa, r.unpaid_due_paisa, r.failure_reason,
           r.created_at, r.gateway_paisa, r.discount_paisa, cp.code AS coupon_code, r.lost_at,
           r.lost_penalty_paisa
    FROM rentals r
    JOIN stations s ON s.id = r.station_id
    JOIN rental_packages p ON p.id = r.package_id
    LEFT JOIN power_banks pb ON pb.id = r.power_bank_id
    LEFT JOIN stations rs ON rs.id = r.return_station_id
    LEFT JOIN coupons cp ON cp.id = r.coupon_id";

/// The one mapping of a [`RENTAL_SELECT`] row, by column name.
pub fn rental_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RentalOut> {
    Ok(RentalOut {
        id: r.get("id")?,
        code: r.get("code")?,
        status: r.get("status")?,
        station_sn: r.get("station_sn")?,
        station_name: r.get("station_name")?,
        slot: r.get("slot_index")?,
        power_bank: r.get("power_bank")?,
        package_code: r.get("package_code")?,
        package_name: r.get("package_name")?,
        payment_method: r.get("payment_method")?,
        amount_paisa: r.get("amount_paisa")?,
        wallet_paisa: r.get("wallet_paisa")?,
        points_used: r.get("points_used")?,
        gateway_paisa: r.get("gateway_paisa")?,
        discount_paisa: r.get("discount_paisa")?,
        coupon_code: r.get("coupon_code")?,
        started_at: opt_ts(r.get("started_at")?),
        due_at: opt_ts(r.get("due_at")?),
        returned_at: opt_ts(r.get("returned_at")?),
        is_returned_on_time: returned_on_time(r.get("returned_at")?, r.get("due_at")?),
        return_station_sn: r.get("return_station_sn")?,
        overdue_paisa: r.get("overdue_paisa")?,
        unpaid_due_paisa: r.get("unpaid_due_paisa")?,
        failure_reason: r.get("failure_reason")?,
        lost_at: opt_ts(r.get("lost_at")?),
        lost_penalty_paisa: r.get("lost_penalty_paisa")?,
        created_at: ts_to_rfc3339(r.get("created_at")?),
    })
}

/// Whether a returned rental came back by its due time (`None` until it is
/// returned).
fn returned_on_time(returned_at: Option<i64>, due_at: Option<i64>) -> Option<bool> {
    let returned = returned_at?;
    Some(due_at.is_none_or(|due| returned <= due))
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
        "SELECT r.id, r.user_id, r.status, p.id AS package_id, p.code AS package_code,
                p.price_paisa AS package_price, p.duration_minutes AS package_minutes, r.started_at, r.due_at,
                r.unpaid_due_paisa
         FROM rentals r JOIN rental_packages p ON p.id = r.package_id WHERE r.id = ?1",
        [id],
        |r| {
            Ok(RentalCore {
                id: r.get("id")?,
                user_id: r.get("user_id")?,
                status: r.get("status")?,
                package_id: r.get("package_id")?,
                package_code: r.get("package_code")?,
                package_price: r.get("package_price")?,
                package_minutes: r.get("package_minutes")?,
                started_at: r.get("started_at")?,
                due_at: r.get("due_at")?,
                unpaid_due_paisa: r.get("unpaid_due_paisa")?,
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
