//! The fleet of power banks, for operators: a list with where each bank is
//! (station and slot, or the rental it is out on), a detail with its
//! history (rentals, returns, status changes), and taking a bank out of
//! service or back with a reason.
//!
//! Only `in_slot` banks are offered for rent (`slots::rentable_bank`); the
//! station link keeps `maintenance`, `damaged` and `retired` when it seats or
//! ejects such a bank, so a bank an operator took out of service stays out
//! wherever it sits. Every change is in `power_bank_status_changes`.

use axum::{Json, extract::State};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::banks::{BankStatus, ChangedBy, record_change};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        now_ts, opt_ts,
        text_enum::text_enum,
        ts_to_rfc3339,
    },
    state::AppState,
};

/// The rental a bank is out on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BankRentalOut {
    pub id: i64,
    pub code: String,
    pub user_id: i64,
    /// `pending_eject` or `active`.
    pub status: String,
    pub due_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FleetBankOut {
    pub id: i64,
    pub serial_number: String,
    pub capacity_mah: i64,
    /// `in_slot`, `rented`, `available`, `maintenance`, `damaged`, `lost` or `retired`.
    pub status: BankStatus,
    /// Last reported charge, 0 to 100.
    pub battery_level: i64,
    /// The station it is at (in a slot, or returned there by an operator).
    pub station_sn: Option<String>,
    pub slot_index: Option<i64>,
    /// The rental it is out on.
    pub open_rental: Option<BankRentalOut>,
    /// Charge cycles, when the station reports them (neither protocol in use
    /// does yet: null).
    pub cycles: Option<i64>,
    /// How many times it was rented.
    pub rentals_total: i64,
    pub updated_at: String,
}

const BANK_SELECT: &str = "
    SELECT pb.id, pb.serial_number, pb.capacity_mah, pb.status, pb.battery_level, s.serial_number AS station_sn,
           sl.slot_index, pb.updated_at,
           (SELECT COUNT(*) FROM rentals rr WHERE rr.power_bank_id = pb.id) AS rentals_total,
           o.id AS rental_id, o.code AS rental_code, o.user_id AS rental_user, o.status AS rental_status,
           o.due_at AS rental_due_at
    FROM power_banks pb
    LEFT JOIN stations s ON s.id = pb.station_id
    LEFT JOIN station_slots sl ON sl.power_bank_id = pb.id
    LEFT JOIN rentals o ON o.id = (SELECT id FROM rentals WHERE power_bank_id = pb.id
                                   AND status IN ('pending_eject', 'active') ORDER BY id DESC LIMIT 1)";
// The literals above are the rentals in progress (`RentalStatus::PendingEject`
// and `Active`), as the unique index `rentals_one_open` spells them; the
// stations domain sits below rentals and cannot name its enum.

fn bank_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FleetBankOut> {
    let rental_id: Option<i64> = r.get("rental_id")?;
    let open_rental = match rental_id {
        Some(id) => Some(BankRentalOut {
            id,
            code: r.get("rental_code")?,
            user_id: r.get("rental_user")?,
            status: r.get("rental_status")?,
            due_at: opt_ts(r.get("rental_due_at")?),
        }),
        None => None,
    };
    Ok(FleetBankOut {
        id: r.get("id")?,
        serial_number: r.get("serial_number")?,
        capacity_mah: r.get("capacity_mah")?,
        status: r.get("status")?,
        battery_level: r.get("battery_level")?,
        station_sn: r.get("station_sn")?,
        slot_index: r.get("slot_index")?,
        open_rental,
        cycles: None,
        rentals_total: r.get("rentals_total")?,
        updated_at: ts_to_rfc3339(r.get("updated_at")?),
    })
}

fn load(c: &Connection, id: i64) -> Result<FleetBankOut, ApiError> {
    c.query_row(&format!("{BANK_SELECT} WHERE pb.id = ?1"), [id], bank_from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("power bank"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FleetFilter {
    /// `in_slot`, `rented`, `available`, `maintenance`, `damaged`, `lost` or `retired`.
    pub status: Option<String>,
    /// At this station (serial number).
    pub station: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Power banks, newest first, with where each one is.
#[utoipa::path(
    get, path = "/api/admin/power-banks", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(FleetFilter),
    responses(
        (status = 200, description = "A page of power banks", body = Page<FleetBankOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn list_power_banks(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<FleetFilter>,
) -> Result<Json<Page<FleetBankOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = f
        .status
        .as_deref()
        .map(str::parse::<BankStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let station = f.station.clone();
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{BANK_SELECT} WHERE pb.id < ?1 AND (?2 IS NULL OR pb.status = ?2)
                   AND (?3 IS NULL OR pb.station_id = (SELECT id FROM stations WHERE serial_number = ?3))
                 ORDER BY pb.id DESC LIMIT ?4"
            ))?;
            let rows = stmt.query_map(params![before, status, station, limit + 1], bank_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |b| b.id)))
}

/// One thing in a bank's life.
#[derive(Debug, Serialize, ToSchema)]
pub struct BankHistoryEvent {
    pub at: String,
    /// `rented`, `returned`, `swapped_in` (seated during a swap),
    /// `swapped_out` (handed out during a swap) or `status_changed`.
    pub kind: String,
    pub rental_id: Option<i64>,
    pub station_sn: Option<String>,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub reason: Option<String>,
    /// The operator who changed its status (none: the system).
    pub operator_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FleetBankDetailOut {
    #[serde(flatten)]
    pub bank: FleetBankOut,
    /// Oldest first: its last 100 rentals and swaps, and every status change.
    pub history: Vec<BankHistoryEvent>,
}

fn event(at: i64, kind: &str) -> (i64, BankHistoryEvent) {
    (
        at,
        BankHistoryEvent {
            at: ts_to_rfc3339(at),
            kind: kind.to_string(),
            rental_id: None,
            station_sn: None,
            from_status: None,
            to_status: None,
            reason: None,
            operator_id: None,
        },
    )
}

fn history(c: &Connection, id: i64) -> Result<Vec<BankHistoryEvent>, ApiError> {
    let mut out: Vec<(i64, BankHistoryEvent)> = Vec::new();
    let mut stmt = c.prepare_cached(
        "SELECT r.id, r.started_at, r.returned_at, s.serial_number AS station_sn, rs.serial_number AS return_sn
         FROM rentals r JOIN stations s ON s.id = r.station_id LEFT JOIN stations rs ON rs.id = r.return_station_id
         WHERE r.power_bank_id = ?1 AND r.started_at IS NOT NULL ORDER BY r.id DESC LIMIT 100",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>("id")?,
            r.get::<_, i64>("started_at")?,
            r.get::<_, Option<i64>>("returned_at")?,
            r.get::<_, String>("station_sn")?,
            r.get::<_, Option<String>>("return_sn")?,
        ))
    })?;
    for row in rows {
        let (rental, started, returned, sn, return_sn) = row?;
        let (at, mut e) = event(started, "rented");
        e.rental_id = Some(rental);
        e.station_sn = Some(sn);
        out.push((at, e));
        if let Some(returned) = returned {
            let (at, mut e) = event(returned, "returned");
            e.rental_id = Some(rental);
            e.station_sn = return_sn;
            out.push((at, e));
        }
    }
    let mut stmt = c.prepare_cached(
        "SELECT sw.rental_id, sw.returned_at, sw.finished_at, sw.old_power_bank_id = ?1 AS was_old,
                s.serial_number AS station_sn
         FROM rental_swaps sw JOIN stations s ON s.id = sw.station_id
         WHERE sw.old_power_bank_id = ?1 OR sw.new_power_bank_id = ?1 ORDER BY sw.id DESC LIMIT 100",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>("rental_id")?,
            r.get::<_, Option<i64>>("returned_at")?,
            r.get::<_, Option<i64>>("finished_at")?,
            r.get::<_, bool>("was_old")?,
            r.get::<_, String>("station_sn")?,
        ))
    })?;
    for row in rows {
        let (rental, returned, finished, was_old, sn) = row?;
        let (when, kind) = if was_old { (returned, "swapped_in") } else { (finished, "swapped_out") };
        if let Some(when) = when {
            let (at, mut e) = event(when, kind);
            e.rental_id = Some(rental);
            e.station_sn = Some(sn);
            out.push((at, e));
        }
    }
    let mut stmt = c.prepare_cached(
        "SELECT created_at, from_status, to_status, reason, operator_id, rental_id FROM power_bank_status_changes
         WHERE power_bank_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>("created_at")?,
            r.get::<_, String>("from_status")?,
            r.get::<_, String>("to_status")?,
            r.get::<_, String>("reason")?,
            r.get::<_, Option<i64>>("operator_id")?,
            r.get::<_, Option<i64>>("rental_id")?,
        ))
    })?;
    for row in rows {
        let (when, from, to, reason, operator, rental) = row?;
        let (at, mut e) = event(when, "status_changed");
        e.from_status = Some(from);
        e.to_status = Some(to);
        e.reason = Some(reason);
        e.operator_id = operator;
        e.rental_id = rental;
        out.push((at, e));
    }
    // Stable: same-second events keep the order above (rentals, swaps, changes).
    out.sort_by_key(|(at, _)| *at);
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

/// One power bank with its history.
#[utoipa::path(
    get, path = "/api/admin/power-banks/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("id" = i64, Path, description = "Power bank id")),
    responses(
        (status = 200, description = "The power bank and its history", body = FleetBankDetailOut),
        (status = 404, description = "No such power bank", body = ErrorBody),
    )
)]
pub async fn power_bank_detail(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<FleetBankDetailOut>, ApiError> {
    let out = state.db.read(move |c| Ok(FleetBankDetailOut { bank: load(c, id)?, history: history(c, id)? })).await?;
    Ok(Json(out))
}

text_enum! {
    /// What an operator may set a bank to.
    pub enum BankStatusChange {
        /// Back in service: `in_slot` if it sits in a slot, `available` otherwise.
        Available = "available",
        Maintenance = "maintenance",
        Damaged = "damaged",
        /// Missing (not in a slot, not out on a rental).
        Lost = "lost",
        /// Out of the fleet for good: final.
        Retired = "retired",
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankStatusIn {
    pub status: BankStatusChange,
    /// Required: why (kept in the bank's history and the audit log).
    pub reason: Option<String>,
}

/// Takes a bank out of service (maintenance, damaged, lost, retired) or
/// puts it back (available). A bank out on a rental is changed through the
/// rental (force-complete, mark-lost).
#[utoipa::path(
    post, path = "/api/admin/power-banks/{id}/status", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "field_tech"]))),
    params(("id" = i64, Path, description = "Power bank id")),
    request_body = BankStatusIn,
    responses(
        (status = 200, description = "The power bank", body = FleetBankOut),
        (status = 400, description = "No reason (`reason_required`)", body = ErrorBody),
        (status = 404, description = "No such power bank", body = ErrorBody),
        (status = 409, description = "Out on a rental (`bank_rented`), already so (`status_unchanged`), retired (`bank_retired`), or lost while in a slot (`bank_in_slot`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn set_power_bank_status(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<BankStatusIn>,
) -> Result<Json<FleetBankOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    let out = state
        .db
        .write(move |tx| {
            let before = load(tx, id)?;
            if let Some(rental) = &before.open_rental {
                return Err(ApiError::conflict(
                    "bank_rented",
                    format!("the bank is out on rental {}: use the rental's force-complete or mark-lost", rental.code),
                ));
            }
            if before.status == BankStatus::Retired {
                return Err(ApiError::conflict("bank_retired", "a retired bank stays retired"));
            }
            let seated = before.slot_index.is_some();
            let to = match body.status {
                BankStatusChange::Available if seated => BankStatus::InSlot,
                BankStatusChange::Available => BankStatus::Available,
                BankStatusChange::Maintenance => BankStatus::Maintenance,
                BankStatusChange::Damaged => BankStatus::Damaged,
                BankStatusChange::Lost if seated => {
                    return Err(ApiError::conflict("bank_in_slot", "the bank sits in a station slot"));
                }
                BankStatusChange::Lost => BankStatus::Lost,
                BankStatusChange::Retired => BankStatus::Retired,
            };
            if to == before.status {
                return Err(ApiError::conflict("status_unchanged", format!("the bank is {to} already")));
            }
            let now = now_ts();
            tx.execute(
                "UPDATE power_banks SET status = ?2, updated_at = ?3,
                    station_id = CASE WHEN ?2 = ?4 THEN NULL ELSE station_id END
                 WHERE id = ?1",
                params![id, to, now, BankStatus::Lost],
            )?;
            let by = ChangedBy { operator_id: Some(operator.id), reason: &reason, rental_id: None };
            record_change(tx, id, before.status, to, by, now)?;
            let after = load(tx, id)?;
            audit::record(
                tx,
                &operator,
                "power_bank.status",
                Target::new("power_bank", &after.serial_number),
                &before,
                &after,
                Some(&reason),
            )?;
            Ok(after)
        })
        .await?;
    Ok(Json(out))
}
