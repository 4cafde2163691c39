//! Rentals, as operators see them: a filtered list, one rental with its
//! timeline, and the three things an operator may do to one:
//!
//! - force-complete: the station's `returned` event was lost; the rental is
//!   closed through [`lifecycle::close_returned`], the one path of every
//!   return, so charges, overdue, points and the bank follow as for a real
//!   return;
//! - mark lost: [`lost::declare_lost`], as the periodic sweep does when the
//!   time comes, priced now;
//! - waive a due: the unpaid due goes down (no wallet movement), recorded in
//!   `rental_due_waivers` with who and why.
//!
//! Each writes its audit row in the transaction of the change.

use std::sync::LazyLock;

use axum::{Json, extract::State};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    lifecycle::{self, InReturn},
    lost,
    model::{RENTAL_SELECT, RentalOut, RentalStatus, load_core, rental_from_row},
};
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, Operator, Page, PageParams,
        audit::{self, Target},
        error::ErrorBody,
        money::PositivePaisa,
        now_ts,
        pagination::date_filter,
        ts_to_rfc3339,
    },
    state::AppState,
    stations::{self, banks::ChangedBy},
};

/// A rental with who rented it, for operators.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminRentalOut {
    #[serde(flatten)]
    pub rental: RentalOut,
    pub user_id: i64,
    pub user_phone: Option<String>,
    /// `prepaid` or `postpaid`.
    pub payment_model: String,
    /// Active and past its due time.
    pub overdue: bool,
}

/// [`RENTAL_SELECT`] with the renter's columns: one mapping of a rental row
/// for the app and for operators.
static ADMIN_SELECT: LazyLock<String> = LazyLock::new(|| {
    RENTAL_SELECT.replacen(
        "FROM rentals r",
        ", r.user_id, u.phone AS user_phone, r.payment_model FROM rentals r JOIN users u ON u.id = r.user_id",
        1,
    )
});

fn admin_rental_from_row(r: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<AdminRentalOut> {
    let rental = rental_from_row(r)?;
    let due: Option<i64> = r.get("due_at")?;
    Ok(AdminRentalOut {
        overdue: rental.status == RentalStatus::Active && due.is_some_and(|d| d < now),
        rental,
        user_id: r.get("user_id")?,
        user_phone: r.get("user_phone")?,
        payment_model: r.get("payment_model")?,
    })
}

/// One rental for operators; 404 when unknown.
pub fn load_admin(c: &Connection, id: i64) -> Result<AdminRentalOut, ApiError> {
    let now = now_ts();
    c.query_row(&format!("{} WHERE r.id = ?1", *ADMIN_SELECT), [id], |r| admin_rental_from_row(r, now))
        .optional()?
        .ok_or_else(|| ApiError::not_found("rental"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RentalFilter {
    /// `pending_eject`, `active`, `completed`, `failed`, `cancelled` or `lost`.
    pub status: Option<String>,
    /// `true`: only active rentals past their due time.
    pub overdue: Option<bool>,
    /// Started at this station (serial number).
    pub station: Option<String>,
    pub user_id: Option<i64>,
    pub package_id: Option<i64>,
    /// Created from this day (`YYYY-MM-DD`, UTC).
    pub from: Option<String>,
    /// Created up to this day, inclusive.
    pub to: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Rentals, newest first, filtered.
#[utoipa::path(
    get, path = "/api/admin/rentals", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance"]))),
    params(RentalFilter),
    responses(
        (status = 200, description = "A page of rentals", body = Page<AdminRentalOut>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    )
)]
pub async fn list_rentals(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(f): ApiQuery<RentalFilter>,
) -> Result<Json<Page<AdminRentalOut>>, ApiError> {
    let paging = PageParams { cursor: f.cursor.clone(), limit: f.limit };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = f
        .status
        .as_deref()
        .map(str::parse::<RentalStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let from = date_filter("from", &f.from, false)?;
    let to = date_filter("to", &f.to, true)?;
    let overdue = f.overdue.unwrap_or(false);
    let (station, user, package) = (f.station.clone(), f.user_id, f.package_id);
    let now = now_ts();
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{} WHERE r.id < ?1
                   AND (?2 IS NULL OR r.status = ?2)
                   AND (NOT ?3 OR (r.status = ?4 AND r.due_at < ?5))
                   AND (?6 IS NULL OR r.station_id = (SELECT id FROM stations WHERE serial_number = ?6))
                   AND (?7 IS NULL OR r.user_id = ?7)
                   AND (?8 IS NULL OR r.package_id = ?8)
                   AND (?9 IS NULL OR r.created_at >= ?9)
                   AND (?10 IS NULL OR r.created_at <= ?10)
                 ORDER BY r.id DESC LIMIT ?11",
                *ADMIN_SELECT
            ))?;
            let rows = stmt.query_map(
                params![
                    before,
                    status,
                    overdue,
                    RentalStatus::Active,
                    now,
                    station,
                    user,
                    package,
                    from,
                    to,
                    limit + 1
                ],
                |r| admin_rental_from_row(r, now),
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.rental.id)))
}

/// One thing that happened to a rental.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEvent {
    pub at: String,
    /// `initiated`, `eject_requested`, `ejected`, `eject_failed`, `started`,
    /// `extended`, `swap_requested`, `swap_completed`, `swap_failed`,
    /// `swap_expired`, `returned`, `cancelled`, `lost`, `found`, `charge`,
    /// `refund`, `due_waived`, `issue_reported`, `issue_updated`,
    /// `operator_action`.
    pub kind: String,
    /// Money the event moved or concerned, in paisa.
    pub amount_paisa: Option<i64>,
    /// A station's serial number, where one is involved.
    pub station_sn: Option<String>,
    /// What else is known: a failure reason, a transaction's kind and
    /// status, an issue's type, an operator action and its reason.
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RentalDetailOut {
    #[serde(flatten)]
    pub rental: AdminRentalOut,
    pub eject_request_id: Option<String>,
    /// Everything the database holds about the rental, oldest first.
    pub timeline: Vec<TimelineEvent>,
}

struct Event {
    at: i64,
    kind: &'static str,
    amount_paisa: Option<i64>,
    station_sn: Option<String>,
    detail: Option<String>,
}

fn ev(at: i64, kind: &'static str) -> Event {
    Event { at, kind, amount_paisa: None, station_sn: None, detail: None }
}

/// The rental's timeline from its own row, its extensions and swaps, the
/// ledger, waivers, issue reports and the audit log.
fn timeline(c: &Connection, id: i64) -> Result<Vec<TimelineEvent>, ApiError> {
    struct Row {
        created_at: i64,
        updated_at: i64,
        status: RentalStatus,
        started_at: Option<i64>,
        returned_at: Option<i64>,
        lost_at: Option<i64>,
        lost_penalty_paisa: i64,
        amount_paisa: i64,
        payment_method: String,
        station_sn: String,
        return_sn: Option<String>,
        eject_request_id: Option<String>,
        failure_code: Option<String>,
        failure_reason: Option<String>,
        user_id: i64,
    }
    let r = c.query_row(
        "SELECT r.created_at, r.updated_at, r.status, r.started_at, r.returned_at, r.lost_at, r.lost_penalty_paisa,
                r.amount_paisa, r.payment_method, s.serial_number AS station_sn, rs.serial_number AS return_sn,
                r.eject_request_id, r.failure_code, r.failure_reason, r.user_id
         FROM rentals r JOIN stations s ON s.id = r.station_id LEFT JOIN stations rs ON rs.id = r.return_station_id
         WHERE r.id = ?1",
        [id],
        |r| {
            Ok(Row {
                created_at: r.get("created_at")?,
                updated_at: r.get("updated_at")?,
                status: r.get("status")?,
                started_at: r.get("started_at")?,
                returned_at: r.get("returned_at")?,
                lost_at: r.get("lost_at")?,
                lost_penalty_paisa: r.get("lost_penalty_paisa")?,
                amount_paisa: r.get("amount_paisa")?,
                payment_method: r.get("payment_method")?,
                station_sn: r.get("station_sn")?,
                return_sn: r.get("return_sn")?,
                eject_request_id: r.get("eject_request_id")?,
                failure_code: r.get("failure_code")?,
                failure_reason: r.get("failure_reason")?,
                user_id: r.get("user_id")?,
            })
        },
    )?;
    let mut events = vec![Event {
        amount_paisa: Some(r.amount_paisa),
        station_sn: Some(r.station_sn.clone()),
        detail: Some(format!("paid by {}", r.payment_method)),
        ..ev(r.created_at, "initiated")
    }];
    if let Some(request) = &r.eject_request_id {
        events.push(Event {
            station_sn: Some(r.station_sn.clone()),
            detail: Some(format!("request {request}")),
            ..ev(r.created_at, "eject_requested")
        });
    }
    if let Some(started) = r.started_at {
        events.push(Event { station_sn: Some(r.station_sn.clone()), ..ev(started, "ejected") });
        events.push(ev(started, "started"));
    }
    if r.status == RentalStatus::Failed {
        let detail = [r.failure_code.clone(), r.failure_reason.clone()].into_iter().flatten().collect::<Vec<_>>();
        events.push(Event {
            station_sn: Some(r.station_sn.clone()),
            detail: Some(detail.join(": ")),
            ..ev(r.updated_at, "eject_failed")
        });
    }
    let mut stmt = c.prepare_cached(
        "SELECT created_at, extra_minutes, amount_paisa FROM rental_extensions WHERE rental_id = ?1 ORDER BY id",
    )?;
    for row in stmt.query_map([id], |x| {
        Ok((x.get::<_, i64>("created_at")?, x.get::<_, i64>("extra_minutes")?, x.get::<_, i64>("amount_paisa")?))
    })? {
        let (at, minutes, amount) = row?;
        events.push(Event {
            amount_paisa: Some(amount),
            detail: Some(format!("{minutes} minutes")),
            ..ev(at, "extended")
        });
    }
    let mut stmt = c.prepare_cached(
        "SELECT sw.requested_at, sw.finished_at, sw.status, sw.failure_reason, s.serial_number
         FROM rental_swaps sw JOIN stations s ON s.id = sw.station_id WHERE sw.rental_id = ?1 ORDER BY sw.id",
    )?;
    for row in stmt.query_map([id], |x| {
        Ok((
            x.get::<_, i64>("requested_at")?,
            x.get::<_, Option<i64>>("finished_at")?,
            x.get::<_, String>("status")?,
            x.get::<_, Option<String>>("failure_reason")?,
            x.get::<_, String>("serial_number")?,
        ))
    })? {
        let (requested, finished, status, failure, sn) = row?;
        events.push(Event { station_sn: Some(sn.clone()), ..ev(requested, "swap_requested") });
        if let Some(at) = finished {
            let kind = match status.as_str() {
                "completed" => "swap_completed",
                "expired" => "swap_expired",
                _ => "swap_failed",
            };
            events.push(Event { station_sn: Some(sn), detail: failure, ..ev(at, kind) });
        }
    }
    if let Some(lost) = r.lost_at {
        events.push(Event {
            amount_paisa: Some(r.lost_penalty_paisa),
            detail: Some("penalty".into()),
            ..ev(lost, "lost")
        });
    }
    if let Some(returned) = r.returned_at {
        let kind = match (r.status, r.lost_at) {
            (RentalStatus::Cancelled, _) => "cancelled",
            (_, Some(_)) => "found",
            _ => "returned",
        };
        events.push(Event { station_sn: r.return_sn.clone(), ..ev(returned, kind) });
    }
    // Charges: the payment records of the rental, its extensions and dues.
    let mut stmt = c.prepare_cached(
        "SELECT id, created_at, kind, status, amount_paisa, gateway FROM transactions WHERE rental_id = ?1 ORDER BY id",
    )?;
    let mut charged = Vec::new();
    for row in stmt.query_map([id], |x| {
        Ok((
            x.get::<_, i64>("id")?,
            x.get::<_, i64>("created_at")?,
            x.get::<_, String>("kind")?,
            x.get::<_, String>("status")?,
            x.get::<_, i64>("amount_paisa")?,
            x.get::<_, Option<String>>("gateway")?,
        ))
    })? {
        let (tid, at, kind, status, amount, gateway) = row?;
        charged.push(tid);
        let via = gateway.map(|g| format!(" via {g}")).unwrap_or_default();
        events.push(Event {
            amount_paisa: Some(amount),
            detail: Some(format!("{kind} ({status}){via}")),
            ..ev(at, "charge")
        });
    }
    // Refunds: wallet credits that name one of those payment records.
    let mut stmt = c.prepare_cached(
        "SELECT w.created_at, w.amount_paisa, w.description FROM wallet_transactions w
         WHERE w.user_id = ?1 AND w.direction = 'credit' AND w.transaction_id IN
               (SELECT id FROM transactions WHERE rental_id = ?2)
         ORDER BY w.id",
    )?;
    for row in stmt.query_map(params![r.user_id, id], |x| {
        Ok((x.get::<_, i64>("created_at")?, x.get::<_, i64>("amount_paisa")?, x.get::<_, String>("description")?))
    })? {
        let (at, amount, description) = row?;
        events.push(Event { amount_paisa: Some(amount), detail: Some(description), ..ev(at, "refund") });
    }
    let mut stmt = c.prepare_cached(
        "SELECT created_at, amount_paisa, due_after_paisa, reason FROM rental_due_waivers WHERE rental_id = ?1
         ORDER BY id",
    )?;
    for row in stmt.query_map([id], |x| {
        Ok((
            x.get::<_, i64>("created_at")?,
            x.get::<_, i64>("amount_paisa")?,
            x.get::<_, i64>("due_after_paisa")?,
            x.get::<_, String>("reason")?,
        ))
    })? {
        let (at, amount, after, reason) = row?;
        events.push(Event {
            amount_paisa: Some(amount),
            detail: Some(format!("{reason} (due left: {after} paisa)")),
            ..ev(at, "due_waived")
        });
    }
    let mut stmt = c.prepare_cached(
        "SELECT created_at, issue_type, status, resolved_at, updated_at FROM rental_issues WHERE rental_id = ?1
         ORDER BY id",
    )?;
    for row in stmt.query_map([id], |x| {
        Ok((
            x.get::<_, i64>("created_at")?,
            x.get::<_, String>("issue_type")?,
            x.get::<_, String>("status")?,
            x.get::<_, Option<i64>>("resolved_at")?,
            x.get::<_, Option<i64>>("updated_at")?,
        ))
    })? {
        let (at, kind, status, resolved, updated) = row?;
        events.push(Event { detail: Some(kind.clone()), ..ev(at, "issue_reported") });
        if let Some(moved) = resolved.or(updated) {
            events.push(Event { detail: Some(format!("{kind}: {status}")), ..ev(moved, "issue_updated") });
        }
    }
    let mut stmt = c.prepare_cached(
        "SELECT created_at, action, reason FROM admin_audit_log WHERE target_type = 'rental' AND target_id = ?1
         ORDER BY id",
    )?;
    for row in stmt.query_map([id.to_string()], |x| {
        Ok((x.get::<_, i64>("created_at")?, x.get::<_, String>("action")?, x.get::<_, Option<String>>("reason")?))
    })? {
        let (at, action, reason) = row?;
        let detail = match reason {
            Some(reason) => format!("{action}: {reason}"),
            None => action,
        };
        events.push(Event { detail: Some(detail), ..ev(at, "operator_action") });
    }
    // Same second: the order they were pushed in (the life cycle's order).
    events.sort_by_key(|e| e.at);
    Ok(events
        .into_iter()
        .map(|e| TimelineEvent {
            at: ts_to_rfc3339(e.at),
            kind: e.kind.to_string(),
            amount_paisa: e.amount_paisa,
            station_sn: e.station_sn,
            detail: e.detail,
        })
        .collect())
}

/// One rental with its timeline.
#[utoipa::path(
    get, path = "/api/admin/rentals/{id}", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "support", "finance"]))),
    params(("id" = i64, Path, description = "Rental id")),
    responses(
        (status = 200, description = "The rental and its timeline", body = RentalDetailOut),
        (status = 404, description = "No such rental", body = ErrorBody),
    )
)]
pub async fn rental_detail(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RentalDetailOut>, ApiError> {
    let out = state
        .db
        .read(move |c| {
            let rental = load_admin(c, id)?;
            let eject_request_id: Option<String> =
                c.query_row("SELECT eject_request_id FROM rentals WHERE id = ?1", [id], |r| r.get(0))?;
            Ok(RentalDetailOut { rental, eject_request_id, timeline: timeline(c, id)? })
        })
        .await?;
    Ok(Json(out))
}

fn not_active(status: RentalStatus) -> ApiError {
    ApiError::conflict("not_active", format!("the rental is {status}, not active"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForceCompleteIn {
    /// The station the bank was returned to (serial number).
    pub station_sn: String,
    /// Required: why (kept in the audit log).
    pub reason: Option<String>,
}

/// Closes an active rental whose bank came back but whose `returned` event
/// was lost: the same path as a real return at `station_sn` now (overdue
/// charged or recorded as a due, points, notification). The bank shows at
/// that station, in service, until the station reports its slot.
#[utoipa::path(
    post, path = "/api/admin/rentals/{id}/force-complete", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = ForceCompleteIn,
    responses(
        (status = 200, description = "The closed rental", body = AdminRentalOut),
        (status = 400, description = "No reason (`reason_required`) or no station", body = ErrorBody),
        (status = 404, description = "No such rental or station", body = ErrorBody),
        (status = 409, description = "The rental is not active (`not_active`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn force_complete(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ForceCompleteIn>,
) -> Result<Json<AdminRentalOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    let sn = body.station_sn.trim().to_string();
    if sn.is_empty() || sn.len() > 64 {
        return Err(ApiError::invalid_field("station_sn", "a station's serial number"));
    }
    let (before, station_id, bank) = state
        .db
        .read(move |c| {
            let before = load_admin(c, id)?;
            if before.rental.status != RentalStatus::Active {
                return Err(not_active(before.rental.status));
            }
            let station = stations::favorites::station_id(c, &sn, false)?;
            let bank = before.rental.power_bank.clone().ok_or_else(|| not_active(before.rental.status))?;
            Ok((before, station, bank))
        })
        .await?;
    let now = now_ts();
    let also: InReturn = Box::new(move |tx, rental_id| {
        if rental_id != id {
            return Err(ApiError::conflict("not_active", "the bank's active rental is another one"));
        }
        let bank_id: i64 = tx.query_row("SELECT power_bank_id FROM rentals WHERE id = ?1", [id], |r| r.get(0))?;
        let by = ChangedBy { operator_id: Some(operator.id), reason: &reason, rental_id: Some(id) };
        stations::banks::returned_by_operator(tx, bank_id, station_id, by, now)?;
        let after = load_admin(tx, id)?;
        audit::record(
            tx,
            &operator,
            "rental.force_complete",
            Target::new("rental", id),
            &before,
            &after,
            Some(&reason),
        )?;
        Ok(())
    });
    if !lifecycle::close_returned(&state, station_id, &bank, now, Some(also)).await? {
        let status = state.db.read(move |c| load_admin(c, id)).await?.rental.status;
        return Err(not_active(status));
    }
    Ok(Json(state.db.read(move |c| load_admin(c, id)).await?))
}

/// Declares an active rental's bank lost now, through the same path as the
/// periodic sweep: the pricing plugin's penalty and the overdue charge so
/// far are taken from the wallet, the rest becomes a due; the bank is
/// `lost`. If it is seated again later, the rental is reconciled as usual.
#[utoipa::path(
    post, path = "/api/admin/rentals/{id}/mark-lost", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "The lost rental", body = AdminRentalOut),
        (status = 400, description = "No reason (`reason_required`)", body = ErrorBody),
        (status = 404, description = "No such rental", body = ErrorBody),
        (status = 409, description = "The rental is not active (`not_active`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn mark_lost(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<AdminRentalOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    let (core, before) = state
        .db
        .read(move |c| {
            let before = load_admin(c, id)?;
            let core = load_core(c, id)?.ok_or_else(|| ApiError::not_found("rental"))?;
            Ok((core, before))
        })
        .await?;
    if core.status != RentalStatus::Active {
        return Err(not_active(core.status));
    }
    let now = now_ts();
    let declared = lost::price_loss(&state, &core, now).await?;
    let bank = before.rental.power_bank.clone().unwrap_or_default();
    let out = state
        .db
        .write(move |tx| {
            let by = ChangedBy { operator_id: Some(operator.id), reason: &reason, rental_id: Some(id) };
            if !lost::declare_lost(tx, &core, &bank, declared, by, now)? {
                let status = load_admin(tx, id)?.rental.status;
                return Err(not_active(status));
            }
            let after = load_admin(tx, id)?;
            audit::record(
                tx,
                &operator,
                "rental.mark_lost",
                Target::new("rental", id),
                &before,
                &after,
                Some(&reason),
            )?;
            Ok(after)
        })
        .await?;
    state.jobs.wake();
    Ok(Json(out))
}

/// A body with only a reason (required by the route).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Required: why (kept in the audit log).
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiveDueIn {
    /// How much of the unpaid due to forgive, at most all of it; omitted:
    /// all of it.
    pub amount_paisa: Option<PositivePaisa>,
    /// Required: why (kept with the waiver and in the audit log).
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WaiverOut {
    pub id: i64,
    pub rental_id: i64,
    pub amount_paisa: i64,
    pub due_before_paisa: i64,
    pub due_after_paisa: i64,
    pub reason: String,
    pub operator_id: i64,
    pub created_at: String,
}

/// Reduces or forgives a rental's unpaid due, with who and why. No money
/// moves; a due brought to zero no longer blocks the user's next rental.
#[utoipa::path(
    post, path = "/api/admin/rentals/{id}/waive-due", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    params(("id" = i64, Path, description = "Rental id")),
    request_body = WaiveDueIn,
    responses(
        (status = 200, description = "The waiver", body = WaiverOut),
        (status = 400, description = "No reason (`reason_required`), or more than the due", body = ErrorBody),
        (status = 404, description = "No such rental", body = ErrorBody),
        (status = 409, description = "Nothing is due (`no_due`)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Amount out of range (`invalid_amount`)", body = ErrorBody),
    )
)]
pub async fn waive_due(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<WaiveDueIn>,
) -> Result<Json<WaiverOut>, ApiError> {
    let reason = audit::required_reason(body.reason.as_deref())?;
    let asked = body.amount_paisa.map(PositivePaisa::get);
    let out = state
        .db
        .write(move |tx| {
            let before = load_admin(tx, id)?;
            let due = before.rental.unpaid_due_paisa;
            if due == 0 {
                return Err(ApiError::conflict("no_due", "this rental has no unpaid due"));
            }
            let amount = asked.unwrap_or(due);
            if amount > due {
                return Err(ApiError::invalid_field("amount_paisa", format!("at most the unpaid due, {due} paisa")));
            }
            let now = now_ts();
            tx.execute(
                "UPDATE rentals SET unpaid_due_paisa = unpaid_due_paisa - ?2, updated_at = ?3 WHERE id = ?1",
                params![id, amount, now],
            )?;
            tx.execute(
                "INSERT INTO rental_due_waivers (rental_id, amount_paisa, due_before_paisa, due_after_paisa, reason,
                                                 operator_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, amount, due, due - amount, reason, operator.id, now],
            )?;
            let out = WaiverOut {
                id: tx.last_insert_rowid(),
                rental_id: id,
                amount_paisa: amount,
                due_before_paisa: due,
                due_after_paisa: due - amount,
                reason: reason.clone(),
                operator_id: operator.id,
                created_at: ts_to_rfc3339(now),
            };
            let after = load_admin(tx, id)?;
            audit::record(
                tx,
                &operator,
                "rental.waive_due",
                Target::new("rental", id),
                &before,
                &after,
                Some(&reason),
            )?;
            Ok(out)
        })
        .await?;
    Ok(Json(out))
}
