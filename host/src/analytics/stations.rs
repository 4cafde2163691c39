//! `GET /api/admin/analytics/stations`: how each station did over a range of
//! Kathmandu days: rentals, revenue, utilisation, uptime, eject failures.
//!
//! Utilisation is the hours banks were out on rentals that started here and
//! ended in the range, over the station's bank hours (its slots times the
//! hours of the range it existed). Uptime is the share of the range the
//! station was `online`, from `station_status_events` (every status change
//! the link or an operator made); time before a station's first recorded
//! status does not count either way.

use std::collections::HashMap;

use axum::{
    Json,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{DayRange, MAX_DAYS, day_key};
use crate::{
    core::{
        ApiError, ApiQuery, Operator,
        csv::{CsvRow, cell, csv_response, wants_csv},
        error::ErrorBody,
        now_ts,
        text_enum::text_enum,
    },
    state::AppState,
};

text_enum! {
    /// What station performance is ordered by.
    pub enum StationSort {
        Rentals = "rentals",
        Revenue = "revenue",
        Utilisation = "utilisation",
        Uptime = "uptime",
        EjectFailureRate = "eject_failure_rate",
        Station = "station",
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StationPerformanceQuery {
    /// First day, `YYYY-MM-DD` in Asia/Kathmandu (default: 29 days before `to`).
    pub from: Option<String>,
    /// Last day, included (default: today). At most 366 days.
    pub to: Option<String>,
    /// `rentals` (default), `revenue`, `utilisation`, `uptime`,
    /// `eject_failure_rate` or `station` (serial number).
    pub sort: Option<String>,
    /// `desc` (default; `asc` for `station`) or `asc`.
    pub order: Option<String>,
    /// `json` (default) or `csv` (as does `Accept: text/csv`).
    pub format: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StationPerformanceOut {
    pub station_sn: String,
    pub name: String,
    pub city: String,
    /// The station's status now.
    pub status: String,
    /// Rentals started here (initiated, whatever became of them).
    pub rentals: i64,
    pub rentals_completed: i64,
    /// Rentals whose eject failed or timed out.
    pub rentals_failed: i64,
    /// Rental charges less refunds of rentals started here, paisa.
    pub revenue_paisa: i64,
    pub rented_hours: f64,
    pub bank_hours: f64,
    /// `rented_hours / bank_hours`; null without bank hours.
    pub utilisation: Option<f64>,
    /// The share of the range the station was online; null when its status
    /// was never recorded in the range.
    pub uptime: Option<f64>,
    /// `rentals_failed / rentals`; null without rentals.
    pub eject_failure_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationPerformanceList {
    pub from: String,
    pub to: String,
    pub sort: StationSort,
    /// Every station of the network (one answer: a network has hundreds to a
    /// few thousand stations), in the order asked for.
    pub results: Vec<StationPerformanceOut>,
}

fn ratio(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_default()
}

impl CsvRow for StationPerformanceOut {
    fn header() -> &'static [&'static str] {
        &[
            "station_sn",
            "name",
            "city",
            "status",
            "rentals",
            "rentals_completed",
            "rentals_failed",
            "revenue_paisa",
            "rented_hours",
            "bank_hours",
            "utilisation",
            "uptime",
            "eject_failure_rate",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            cell(&self.station_sn),
            cell(&self.name),
            cell(&self.city),
            cell(&self.status),
            self.rentals.to_string(),
            self.rentals_completed.to_string(),
            self.rentals_failed.to_string(),
            self.revenue_paisa.to_string(),
            format!("{:.2}", self.rented_hours),
            format!("{:.2}", self.bank_hours),
            ratio(self.utilisation),
            ratio(self.uptime),
            ratio(self.eject_failure_rate),
        ]
    }
}

#[derive(Default)]
struct Sums {
    rentals: i64,
    completed: i64,
    failed: i64,
    rented_seconds: i64,
    revenue: i64,
}

/// Per station, the seconds online and the seconds with a known status
/// within `[start, end)`: the status before `start` carries into the range.
fn uptime_seconds(c: &Connection, start: i64, end: i64) -> Result<HashMap<i64, (i64, i64)>, ApiError> {
    let mut stmt = c.prepare_cached(
        "SELECT s.id, (SELECT e.status FROM station_status_events e WHERE e.station_id = s.id AND e.at < ?1
                       ORDER BY e.at DESC, e.id DESC LIMIT 1) AS status
         FROM stations s",
    )?;
    let mut at_start: HashMap<i64, Option<String>> =
        stmt.query_map([start], |r| Ok((r.get("id")?, r.get("status")?)))?.collect::<Result<_, _>>()?;
    let mut stmt = c.prepare_cached(
        "SELECT station_id, status, at FROM station_status_events WHERE at >= ?1 AND at < ?2
         ORDER BY station_id, at, id",
    )?;
    let changes = stmt
        .query_map(params![start, end], |r| {
            Ok((r.get::<_, i64>("station_id")?, r.get::<_, String>("status")?, r.get::<_, i64>("at")?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // (status, since, online, known) per station while walking its changes.
    let mut walk: HashMap<i64, (Option<String>, i64, i64, i64)> = HashMap::new();
    let account = |w: &mut (Option<String>, i64, i64, i64), to: i64| {
        if let Some(s) = &w.0 {
            w.3 += to - w.1;
            if s == "online" {
                w.2 += to - w.1;
            }
        }
        w.1 = to;
    };
    for (station, status, at) in changes {
        let w = walk.entry(station).or_insert_with(|| (at_start.remove(&station).flatten(), start, 0, 0));
        account(w, at);
        w.0 = Some(status);
    }
    for (station, status) in at_start {
        walk.insert(station, (status, start, 0, 0));
    }
    Ok(walk
        .into_iter()
        .map(|(station, mut w)| {
            account(&mut w, end);
            (station, (w.2, w.3))
        })
        .collect())
}

pub fn load(c: &Connection, range: DayRange, now: i64) -> Result<Vec<StationPerformanceOut>, ApiError> {
    let (first, last) = (day_key(range.from), day_key(range.to));
    let mut stmt = c.prepare_cached(
        "SELECT station_id, SUM(rentals) AS rentals, SUM(rentals_completed) AS completed,
                SUM(rentals_failed) AS failed, SUM(rented_seconds) AS rented_seconds,
                SUM(rental_charges) - SUM(refunds) AS revenue
         FROM analytics_station_days WHERE day BETWEEN ?1 AND ?2 GROUP BY station_id",
    )?;
    let mut sums: HashMap<i64, Sums> = HashMap::new();
    let rows = stmt.query_map(params![first, last], |r| {
        Ok((
            r.get::<_, i64>("station_id")?,
            Sums {
                rentals: r.get("rentals")?,
                completed: r.get("completed")?,
                failed: r.get("failed")?,
                rented_seconds: r.get("rented_seconds")?,
                revenue: r.get("revenue")?,
            },
        ))
    })?;
    for row in rows {
        let (id, s) = row?;
        sums.insert(id, s);
    }
    let mut stmt = c.prepare_cached("SELECT station_id, COUNT(*) AS n FROM station_slots GROUP BY station_id")?;
    let slots: HashMap<i64, i64> =
        stmt.query_map([], |r| Ok((r.get("station_id")?, r.get("n")?)))?.collect::<Result<_, _>>()?;
    let (start, end) = range.bounds();
    let end = end.min(now);
    let mut stmt = c.prepare_cached("SELECT id, serial_number, name, city, status, created_at FROM stations")?;
    let stations = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>("id")?,
                r.get::<_, String>("serial_number")?,
                r.get::<_, String>("name")?,
                r.get::<_, String>("city")?,
                r.get::<_, String>("status")?,
                r.get::<_, i64>("created_at")?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let uptime = if end > start { uptime_seconds(c, start, end)? } else { HashMap::new() };
    let mut out = Vec::with_capacity(stations.len());
    for (id, station_sn, name, city, status, created_at) in stations {
        let s = sums.remove(&id).unwrap_or_default();
        let existed = (end - start.max(created_at)).max(0);
        let bank_hours = (slots.get(&id).copied().unwrap_or(0) * existed) as f64 / 3600.0;
        let rented_hours = s.rented_seconds as f64 / 3600.0;
        let (online, known) = uptime.get(&id).copied().unwrap_or((0, 0));
        out.push(StationPerformanceOut {
            station_sn,
            name,
            city,
            status,
            rentals: s.rentals,
            rentals_completed: s.completed,
            rentals_failed: s.failed,
            revenue_paisa: s.revenue,
            rented_hours,
            bank_hours,
            utilisation: (bank_hours > 0.0).then(|| rented_hours / bank_hours),
            uptime: (known > 0).then(|| online as f64 / known as f64),
            eject_failure_rate: (s.rentals > 0).then(|| s.failed as f64 / s.rentals as f64),
        });
    }
    Ok(out)
}

fn sort(rows: &mut [StationPerformanceOut], by: StationSort, descending: bool) {
    fn float(x: Option<f64>) -> f64 {
        x.unwrap_or(-1.0)
    }
    rows.sort_by(|a, b| {
        let order = match by {
            StationSort::Rentals => a.rentals.cmp(&b.rentals),
            StationSort::Revenue => a.revenue_paisa.cmp(&b.revenue_paisa),
            StationSort::Utilisation => float(a.utilisation).total_cmp(&float(b.utilisation)),
            StationSort::Uptime => float(a.uptime).total_cmp(&float(b.uptime)),
            StationSort::EjectFailureRate => float(a.eject_failure_rate).total_cmp(&float(b.eject_failure_rate)),
            StationSort::Station => std::cmp::Ordering::Equal,
        };
        let order = if descending { order.reverse() } else { order };
        order.then_with(|| a.station_sn.cmp(&b.station_sn))
    });
    if by == StationSort::Station && descending {
        rows.reverse();
    }
}

/// Every station's rentals, revenue, utilisation, uptime and eject failure
/// rate over a range of days, sorted.
#[utoipa::path(
    get, path = "/api/admin/analytics/stations", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    params(StationPerformanceQuery),
    responses(
        (status = 200, description = "Station performance; one line per station with `text/csv`",
            content((StationPerformanceList = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Bad range, sort or order", body = ErrorBody),
    )
)]
pub async fn station_performance(
    State(state): State<AppState>,
    _operator: Operator,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StationPerformanceQuery>,
) -> Result<Response, ApiError> {
    let csv = wants_csv(&headers, q.format.as_deref())?;
    let now = now_ts();
    let range = DayRange::parse(q.from.as_deref(), q.to.as_deref(), now, MAX_DAYS)?;
    let by: StationSort = match q.sort.as_deref() {
        None => StationSort::Rentals,
        Some(s) => s.parse().map_err(|e| ApiError::invalid_field("sort", e))?,
    };
    let descending = match q.order.as_deref() {
        None => by != StationSort::Station,
        Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::invalid_field("order", "must be asc or desc")),
    };
    let mut rows = state.db.read(move |c| load(c, range, now)).await?;
    sort(&mut rows, by, descending);
    if csv {
        let filename = format!("stations-{}-{}.csv", day_key(range.from), day_key(range.to));
        return Ok(csv_response(&filename, rows));
    }
    Ok(Json(StationPerformanceList { from: day_key(range.from), to: day_key(range.to), sort: by, results: rows })
        .into_response())
}
