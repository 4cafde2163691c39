//! `GET /api/admin/analytics/series`: one metric over time, by Kathmandu day
//! or hour, read from the rollups.

use std::collections::HashMap;

use axum::{
    Json,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{DayRange, Granularity, MAX_DAYS, MAX_HOURLY_DAYS, day_key};
use crate::{
    core::{
        ApiError, ApiQuery, Operator,
        csv::{csv_table, wants_csv},
        error::ErrorBody,
        now_ts,
        text_enum::text_enum,
    },
    state::AppState,
};

text_enum! {
    /// What a series counts.
    pub enum SeriesMetric {
        /// Rentals started, completed, failed (by the station the bank left).
        Rentals = "rentals",
        /// Paisa: top-ups, rental charges, refunds, net (charges less refunds).
        Revenue = "revenue",
        /// App accounts registered.
        NewUsers = "new_users",
        /// Points issued, spent, expired.
        Points = "points",
    }
}

impl SeriesMetric {
    /// The columns of the answer, and the rollup metric each one reads
    /// (`net` is computed).
    fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Rentals => {
                &[("started", "rentals"), ("completed", "rentals_completed"), ("failed", "rentals_failed")]
            }
            Self::Revenue => &[
                ("topups_paisa", "topups"),
                ("rental_charges_paisa", "rental_charges"),
                ("refunds_paisa", "refunds"),
                ("net_paisa", ""),
            ],
            Self::NewUsers => &[("new_users", "new_users")],
            Self::Points => &[("issued", "points_issued"), ("spent", "points_spent"), ("expired", "points_expired")],
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// `rentals`, `revenue`, `new_users` or `points`.
    pub metric: String,
    /// First day, `YYYY-MM-DD` in Asia/Kathmandu (default: 29 days before `to`).
    pub from: Option<String>,
    /// Last day, included (default: today). At most 366 days, 7 by hour.
    pub to: Option<String>,
    /// `day` (default) or `hour`.
    pub granularity: Option<String>,
    /// A station's serial number (rentals, and the charges and refunds of
    /// revenue: top-ups belong to no station).
    pub station: Option<String>,
    /// `wallet` or a gateway's name (revenue only).
    pub gateway: Option<String>,
    /// `json` (default) or `csv` (as does `Accept: text/csv`).
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// `YYYY-MM-DD`, or `YYYY-MM-DD HH` by hour (Asia/Kathmandu).
    pub bucket: String,
    /// One value per column, in the order of `columns`.
    pub values: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesOut {
    pub metric: SeriesMetric,
    pub granularity: Granularity,
    pub from: String,
    pub to: String,
    pub station: Option<String>,
    pub gateway: Option<String>,
    /// What each value of a point is, e.g. `["started", "completed", "failed"]`.
    pub columns: Vec<String>,
    /// Every bucket of the range, oldest first (zeros included).
    pub points: Vec<SeriesPoint>,
    /// The sums over the range, per column.
    pub totals: Vec<i64>,
}

/// A metric by day (or hour, for ranges up to 7 days), with totals.
#[utoipa::path(
    get, path = "/api/admin/analytics/series", tag = "admin",
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "finance"]))),
    params(SeriesQuery),
    responses(
        (status = 200, description = "The series; `bucket` then the columns with `text/csv`",
            content((SeriesOut = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Unknown metric, bad range (hourly: 7 days at most) or filter", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
    )
)]
pub async fn series(
    State(state): State<AppState>,
    _operator: Operator,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> Result<Response, ApiError> {
    let csv = wants_csv(&headers, q.format.as_deref())?;
    let metric: SeriesMetric = q.metric.parse().map_err(|e| ApiError::invalid_field("metric", e))?;
    let granularity: Granularity = match q.granularity.as_deref() {
        None => Granularity::Day,
        Some(g) => g.parse().map_err(|e| ApiError::invalid_field("granularity", e))?,
    };
    let max = if granularity == Granularity::Hour { MAX_HOURLY_DAYS } else { MAX_DAYS };
    let range = DayRange::parse(q.from.as_deref(), q.to.as_deref(), now_ts(), max)?;
    if q.station.is_some() && !matches!(metric, SeriesMetric::Rentals | SeriesMetric::Revenue) {
        return Err(ApiError::invalid_field("station", "only for rentals and revenue"));
    }
    if q.gateway.is_some() && metric != SeriesMetric::Revenue {
        return Err(ApiError::invalid_field("gateway", "only for revenue"));
    }
    if q.station.is_some() && q.gateway.is_some() {
        return Err(ApiError::invalid_field("gateway", "one of station and gateway"));
    }
    let gateway = match q.gateway.as_deref().map(str::trim) {
        Some(g) if g.is_empty() || g.len() > 64 => {
            return Err(ApiError::invalid_field("gateway", "a gateway's name or wallet"));
        }
        g => g.map(str::to_string),
    };
    let station = q.station.clone();
    let out = state
        .db
        .read(move |c| {
            let dim = match (&station, &gateway) {
                (Some(sn), _) => {
                    let id: i64 = c
                        .query_row("SELECT id FROM stations WHERE serial_number = ?1", [sn], |r| r.get("id"))
                        .optional()?
                        .ok_or_else(|| ApiError::not_found("station"))?;
                    format!("s{id}")
                }
                (None, Some(g)) => format!("g{g}"),
                (None, None) => String::new(),
            };
            let (first, last) = range.bucket_bounds(granularity);
            let mut stmt = c.prepare_cached(
                "SELECT bucket, value FROM analytics_rollups
                 WHERE metric = ?1 AND grain = ?2 AND dim = ?3 AND bucket BETWEEN ?4 AND ?5",
            )?;
            let columns = metric.columns();
            let mut found: Vec<HashMap<String, i64>> = Vec::with_capacity(columns.len());
            for (_, source) in columns {
                let mut values = HashMap::new();
                if !source.is_empty() {
                    let rows = stmt.query_map(params![source, granularity, dim, first, last], |r| {
                        Ok((r.get::<_, String>("bucket")?, r.get::<_, i64>("value")?))
                    })?;
                    for row in rows {
                        let (bucket, value) = row?;
                        values.insert(bucket, value);
                    }
                }
                found.push(values);
            }
            let points: Vec<SeriesPoint> = range
                .buckets(granularity)
                .into_iter()
                .map(|bucket| {
                    let mut values: Vec<i64> = found.iter().map(|m| m.get(&bucket).copied().unwrap_or(0)).collect();
                    if metric == SeriesMetric::Revenue {
                        values[3] = values[1] - values[2];
                    }
                    SeriesPoint { bucket, values }
                })
                .collect();
            let totals = (0..columns.len()).map(|i| points.iter().map(|p| p.values[i]).sum()).collect::<Vec<i64>>();
            Ok(SeriesOut {
                metric,
                granularity,
                from: day_key(range.from),
                to: day_key(range.to),
                station,
                gateway,
                columns: columns.iter().map(|(name, _)| name.to_string()).collect(),
                points,
                totals,
            })
        })
        .await?;
    if !csv {
        return Ok(Json(out).into_response());
    }
    let header = std::iter::once("bucket".to_string()).chain(out.columns.iter().cloned()).collect();
    let filename = format!("{}-{}-{}.csv", out.metric.as_str(), out.from, out.to);
    let rows = out
        .points
        .into_iter()
        .map(|p| std::iter::once(p.bucket).chain(p.values.into_iter().map(|v| v.to_string())).collect::<Vec<_>>());
    Ok(csv_table(&filename, header, rows))
}
