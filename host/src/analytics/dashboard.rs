//! `GET /api/admin/dashboard`: the network today and this month at a glance.

use axum::{
    Json,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use chrono::Datelike;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{day_key, local_date};
use crate::{
    core::{
        ApiError, ApiQuery, Operator,
        csv::{CsvRow, cell, csv_response, wants_csv},
        error::ErrorBody,
        now_ts, ts_to_rfc3339,
    },
    state::AppState,
};

/// What the channels' money comes to over a period, in paisa.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ChannelRevenue {
    /// A gateway's name, `wallet` (paid from the balance), or `total`.
    pub channel: String,
    /// Money in for wallet top-ups.
    pub topups_paisa: i64,
    /// Rental, extension and overdue charges (what points paid is not money).
    pub rental_charges_paisa: i64,
    /// Money given back.
    pub refunds_paisa: i64,
    /// Rental charges less refunds: what the rentals earned (a top-up is
    /// owed to the rider until spent).
    pub net_paisa: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevenueOut {
    /// One entry per channel that moved money, by name.
    pub channels: Vec<ChannelRevenue>,
    pub total: ChannelRevenue,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardOut {
    pub generated_at: String,
    /// Today in Asia/Kathmandu (`YYYY-MM-DD`): "today" and "this month" are its.
    pub today: String,
    pub users_total: i64,
    pub users_new_today: i64,
    pub users_new_this_month: i64,
    /// Rentals out (or being ejected) now.
    pub rentals_active: i64,
    /// Active rentals past their due time.
    pub rentals_overdue: i64,
    pub rentals_completed_today: i64,
    pub revenue_today: RevenueOut,
    pub revenue_this_month: RevenueOut,
    pub stations_online: i64,
    pub stations_offline: i64,
    pub stations_by_status: Vec<StatusCount>,
    pub power_banks_by_status: Vec<StatusCount>,
    /// Station issues not resolved or dismissed.
    pub open_station_issues: i64,
    /// Push and SMS deliveries that failed in the last 24 hours.
    pub failed_deliveries_24h: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// `json` (default) or `csv` (as does `Accept: text/csv`).
    pub format: Option<String>,
}

/// One figure of the dashboard, as a CSV line.
pub struct Figure(String, i64);

impl CsvRow for Figure {
    fn header() -> &'static [&'static str] {
        &["figure", "value"]
    }
    fn cells(&self) -> Vec<String> {
        vec![cell(&self.0), self.1.to_string()]
    }
}

impl DashboardOut {
    fn figures(&self) -> Vec<Figure> {
        let mut out = vec![
            Figure("users_total".into(), self.users_total),
            Figure("users_new_today".into(), self.users_new_today),
            Figure("users_new_this_month".into(), self.users_new_this_month),
            Figure("rentals_active".into(), self.rentals_active),
            Figure("rentals_overdue".into(), self.rentals_overdue),
            Figure("rentals_completed_today".into(), self.rentals_completed_today),
        ];
        for (period, revenue) in [("today", &self.revenue_today), ("this_month", &self.revenue_this_month)] {
            for c in revenue.channels.iter().chain([&revenue.total]) {
                let name = &c.channel;
                out.push(Figure(format!("revenue_{period}.{name}.topups_paisa"), c.topups_paisa));
                out.push(Figure(format!("revenue_{period}.{name}.rental_charges_paisa"), c.rental_charges_paisa));
                out.push(Figure(format!("revenue_{period}.{name}.refunds_paisa"), c.refunds_paisa));
                out.push(Figure(format!("revenue_{period}.{name}.net_paisa"), c.net_paisa));
            }
        }
        out.push(Figure("stations_online".into(), self.stations_online));
        out.push(Figure("stations_offline".into(), self.stations_offline));
        out.extend(self.stations_by_status.iter().map(|s| Figure(format!("stations.{}", s.status), s.count)));
        out.extend(self.power_banks_by_status.iter().map(|s| Figure(format!("power_banks.{}", s.status), s.count)));
        out.push(Figure("open_station_issues".into(), self.open_station_issues));
        out.push(Figure("failed_deliveries_24h".into(), self.failed_deliveries_24h));
        out
    }
}

/// A network-wide rollup summed over `[from, to]` (day buckets).
fn rollup_sum(c: &Connection, metric: &str, from: &str, to: &str) -> Result<i64, ApiError> {
    let mut stmt = c.prepare_cached(
        "SELECT COALESCE(SUM(value), 0) AS total FROM analytics_rollups
         WHERE metric = ?1 AND grain = 'day' AND dim = '' AND bucket BETWEEN ?2 AND ?3",
    )?;
    Ok(stmt.query_row(params![metric, from, to], |r| r.get("total"))?)
}

/// Money per channel over `[from, to]`.
pub fn revenue(c: &Connection, from: &str, to: &str) -> Result<RevenueOut, ApiError> {
    let mut stmt = c.prepare_cached(
        "SELECT metric, substr(dim, 2) AS channel, SUM(value) AS total FROM analytics_rollups
         WHERE metric IN ('topups', 'rental_charges', 'refunds') AND grain = 'day'
           AND dim >= 'g' AND dim < 'h' AND bucket BETWEEN ?1 AND ?2
         GROUP BY metric, dim",
    )?;
    let mut channels: Vec<ChannelRevenue> = Vec::new();
    let mut total = ChannelRevenue { channel: "total".into(), ..Default::default() };
    let rows = stmt.query_map(params![from, to], |r| {
        Ok((r.get::<_, String>("metric")?, r.get::<_, String>("channel")?, r.get::<_, i64>("total")?))
    })?;
    for row in rows {
        let (metric, channel, value) = row?;
        let at = match channels.iter().position(|c| c.channel == channel) {
            Some(i) => i,
            None => {
                channels.push(ChannelRevenue { channel, ..Default::default() });
                channels.len() - 1
            }
        };
        for entry in [&mut channels[at], &mut total] {
            match metric.as_str() {
                "topups" => entry.topups_paisa += value,
                "rental_charges" => entry.rental_charges_paisa += value,
                _ => entry.refunds_paisa += value,
            }
        }
    }
    for entry in channels.iter_mut().chain([&mut total]) {
        entry.net_paisa = entry.rental_charges_paisa - entry.refunds_paisa;
    }
    channels.sort_by(|a, b| a.channel.cmp(&b.channel));
    Ok(RevenueOut { channels, total })
}

fn by_status(c: &Connection, sql: &str) -> Result<Vec<StatusCount>, ApiError> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| Ok(StatusCount { status: r.get("status")?, count: r.get("n")? }))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn load(c: &Connection, now: i64) -> Result<DashboardOut, ApiError> {
    let today_date = local_date(now);
    let today = day_key(today_date);
    let month_start = day_key(today_date.with_day(1).unwrap_or(today_date));
    let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<i64, ApiError> {
        Ok(c.prepare_cached(sql)?.query_row(p, |r| r.get("n"))?)
    };
    let stations_by_status =
        by_status(c, "SELECT status, COUNT(*) AS n FROM stations GROUP BY status ORDER BY status")?;
    let of = |list: &[StatusCount], s: &str| list.iter().find(|x| x.status == s).map_or(0, |x| x.count);
    Ok(DashboardOut {
        generated_at: ts_to_rfc3339(now),
        users_total: rollup_sum(c, "new_users", "0000", "9999")?,
        users_new_today: rollup_sum(c, "new_users", &today, &today)?,
        users_new_this_month: rollup_sum(c, "new_users", &month_start, &today)?,
        rentals_active: count("SELECT COUNT(*) AS n FROM rentals WHERE status IN ('pending_eject', 'active')", &[])?,
        rentals_overdue: count("SELECT COUNT(*) AS n FROM rentals WHERE status = 'active' AND due_at < ?1", &[&now])?,
        rentals_completed_today: rollup_sum(c, "rentals_completed", &today, &today)?,
        revenue_today: revenue(c, &today, &today)?,
        revenue_this_month: revenue(c, &month_start, &today)?,
        stations_online: of(&stations_by_status, "online"),
        stations_offline: of(&stations_by_status, "offline"),
        stations_by_status,
        power_banks_by_status: by_status(
            c,
            "SELECT status, COUNT(*) AS n FROM power_banks GROUP BY status ORDER BY status",
        )?,
        open_station_issues: count(
            "SELECT COUNT(*) AS n FROM station_issues WHERE status NOT IN ('resolved', 'dismissed', 'rejected')",
            &[],
        )?,
        failed_deliveries_24h: count(
            "SELECT COUNT(*) AS n FROM sms_fcm_log WHERE status = 'failed' AND created_at >= ?1",
            &[&(now - 86_400)],
        )?,
        today,
    })
}

/// The network now: users, rentals, money today and this month (Kathmandu
/// days), stations, power banks, open issues, failed deliveries.
#[utoipa::path(
    get, path = "/api/admin/dashboard", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance", "support"]))),
    params(DashboardQuery),
    responses(
        (status = 200, description = "The dashboard; as `figure,value` lines with `text/csv`",
            content((DashboardOut = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Unknown format", body = ErrorBody),
    )
)]
pub async fn dashboard(
    State(state): State<AppState>,
    _operator: Operator,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> Result<Response, ApiError> {
    let csv = wants_csv(&headers, q.format.as_deref())?;
    let out = state.db.read(move |c| load(c, now_ts())).await?;
    Ok(if csv { csv_response("dashboard.csv", out.figures()) } else { Json(out).into_response() })
}
