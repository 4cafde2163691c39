//! `GET /api/stations/nearby`: stations within a radius of a point, nearest
//! first.
//!
//! The R*Tree `station_geo` answers "which stations lie in this latitude and
//! longitude box" without reading the rest of the table; the box is the
//! smallest one that holds the whole search circle, so nothing inside the
//! circle is missed. The exact great-circle (haversine) distance is then
//! computed in Rust for the candidates, and availability is loaded for the
//! stations that make the answer only.
//!
//! Stations cluster in cities, so a 5 km circle in central Kathmandu can hold
//! thousands of them while the answer needs twenty. The search therefore
//! grows outwards: it starts with a 500 m circle and widens it fourfold until
//! the circle holds `limit` stations or reaches the requested radius. Once a
//! circle holds `limit` stations, nothing outside it can be nearer. The work
//! follows the answer's size rather than the density, and the statements per
//! request are bounded: at most [`MAX_ROUNDS`] candidate queries, then one
//! for the summaries and one for their amenities.

use axum::{
    extract::{RawQuery, State},
    http::HeaderMap,
    response::Response,
};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    listing::{StationSummary, summaries_by_id},
    status::StationStatus,
};
use crate::{
    core::{ApiError, ApiQuery, error::ErrorBody},
    state::AppState,
};

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;
pub const DEFAULT_RADIUS_M: f64 = 5_000.0;
pub const MAX_RADIUS_M: f64 = 50_000.0;
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
/// The first circle of the growing search, metres.
pub const FIRST_RING_M: f64 = 500.0;
/// How much wider each next circle is.
pub const RING_GROWTH: f64 = 4.0;
/// Candidate queries a search makes at most: 500 m, 2 km, 8 km, 32 km, 50 km.
pub const MAX_ROUNDS: usize = 5;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearbyParams {
    /// Latitude of the centre, decimal degrees, -90 to 90.
    pub lat: f64,
    /// Longitude of the centre, decimal degrees, -180 to 180.
    pub lng: f64,
    /// Search radius in **metres**, above 0 and at most 50000 (default 5000, i.e. 5 km).
    pub radius: Option<f64>,
    /// Most stations to return, nearest first: 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NearbyStation {
    #[serde(flatten)]
    pub station: StationSummary,
    /// Great-circle distance from the search centre, metres (rounded to 0.1 m).
    pub distance_m: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NearbyOut {
    /// Stations within the radius, nearest first (ties by id).
    pub results: Vec<NearbyStation>,
    /// The radius searched, metres.
    pub radius_m: f64,
}

/// A validated search.
#[derive(Debug, Clone, Copy)]
pub struct NearbyQuery {
    pub lat: f64,
    pub lng: f64,
    pub radius_m: f64,
    pub limit: usize,
}

impl NearbyQuery {
    pub fn from_params(p: &NearbyParams) -> Result<Self, ApiError> {
        if !p.lat.is_finite() || !(-90.0..=90.0).contains(&p.lat) {
            return Err(ApiError::invalid_field("lat", "must be a latitude between -90 and 90"));
        }
        if !p.lng.is_finite() || !(-180.0..=180.0).contains(&p.lng) {
            return Err(ApiError::invalid_field("lng", "must be a longitude between -180 and 180"));
        }
        let radius_m = p.radius.unwrap_or(DEFAULT_RADIUS_M);
        if !radius_m.is_finite() || radius_m <= 0.0 || radius_m > MAX_RADIUS_M {
            return Err(ApiError::invalid_field(
                "radius",
                format!("must be metres, above 0 and at most {MAX_RADIUS_M}"),
            ));
        }
        let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_field("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        Ok(Self { lat: p.lat, lng: p.lng, radius_m, limit })
    }
}

/// How candidates are found: the R*Tree, or reading every station (kept for
/// the benchmark that shows what the index buys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RTree,
    FullScan,
}

/// Great-circle distance in metres between two points given in degrees.
pub fn haversine_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = phi2 - phi1;
    let d_lambda = (lng2 - lng1).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Degrees box `(min_lat, max_lat, min_lng, max_lng)` holding every point
/// within `radius_m` of the centre.
///
/// The latitude span is the angular radius either side. The longitude span
/// is widest at the latitude where the circle touches its meridians:
/// `asin(sin(d) / cos(lat))` (J. P. Matuschek, "Finding Points Within a
/// Distance of a Latitude/Longitude Using Bounding Coordinates"). When the
/// circle reaches a pole, or crosses the ±180° meridian, every longitude is
/// searched instead: a wider box costs speed in those rare places, never
/// correctness.
pub fn bounding_box(lat: f64, lng: f64, radius_m: f64) -> (f64, f64, f64, f64) {
    // A centimetre of slack against floating-point rounding at the edges.
    const SLACK_DEG: f64 = 1e-7;
    let d = radius_m / EARTH_RADIUS_M;
    let lat_r = lat.to_radians();
    let min_lat = (lat_r - d).to_degrees() - SLACK_DEG;
    let max_lat = (lat_r + d).to_degrees() + SLACK_DEG;
    let whole = (min_lat.max(-90.0), max_lat.min(90.0), -180.0, 180.0);
    if min_lat <= -90.0 || max_lat >= 90.0 || d.sin() >= lat_r.cos() {
        return whole;
    }
    let d_lng = (d.sin() / lat_r.cos()).asin().to_degrees() + SLACK_DEG;
    let (min_lng, max_lng) = (lng - d_lng, lng + d_lng);
    if min_lng < -180.0 || max_lng > 180.0 {
        return whole;
    }
    (min_lat, max_lat, min_lng, max_lng)
}

/// Ids and distances of the nearest non-retired stations within the radius,
/// nearest first, at most `limit` of them.
pub fn nearest(c: &Connection, q: &NearbyQuery, strategy: Strategy) -> Result<Vec<(i64, f64)>, ApiError> {
    let mut found: Vec<(i64, f64)> = Vec::new();
    match strategy {
        Strategy::RTree => {
            let mut ring = q.radius_m.min(FIRST_RING_M);
            loop {
                found.clear();
                let (min_lat, max_lat, min_lng, max_lng) = bounding_box(q.lat, q.lng, ring);
                // CROSS JOIN pins the join order: the R*Tree drives, stations
                // are looked up by primary key.
                let mut stmt = c.prepare_cached(
                    "SELECT s.id, s.latitude, s.longitude
                     FROM station_geo g CROSS JOIN stations s ON s.id = g.id
                     WHERE g.max_lat >= ?1 AND g.min_lat <= ?2 AND g.max_lng >= ?3 AND g.min_lng <= ?4
                       AND s.status != ?5",
                )?;
                let mut rows = stmt.query(params![min_lat, max_lat, min_lng, max_lng, StationStatus::Retired])?;
                while let Some(r) = rows.next()? {
                    let d = haversine_m(q.lat, q.lng, r.get(1)?, r.get(2)?);
                    if d <= ring {
                        found.push((r.get(0)?, d));
                    }
                }
                if found.len() >= q.limit || ring >= q.radius_m {
                    break;
                }
                ring = (ring * RING_GROWTH).min(q.radius_m);
            }
        }
        Strategy::FullScan => {
            let mut stmt = c.prepare_cached("SELECT id, latitude, longitude FROM stations WHERE status != ?1")?;
            let mut rows = stmt.query([StationStatus::Retired])?;
            while let Some(r) = rows.next()? {
                let d = haversine_m(q.lat, q.lng, r.get(1)?, r.get(2)?);
                if d <= q.radius_m {
                    found.push((r.get(0)?, d));
                }
            }
        }
    }
    found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    found.truncate(q.limit);
    Ok(found)
}

/// The whole search: nearest stations with their availability and amenities.
pub fn search(c: &Connection, q: &NearbyQuery, strategy: Strategy) -> Result<Vec<NearbyStation>, ApiError> {
    let nearest = nearest(c, q, strategy)?;
    let ids: Vec<i64> = nearest.iter().map(|(id, _)| *id).collect();
    let mut summaries = summaries_by_id(c, &ids)?;
    Ok(nearest
        .into_iter()
        .filter_map(|(id, d)| {
            summaries.remove(&id).map(|station| NearbyStation { station, distance_m: (d * 10.0).round() / 10.0 })
        })
        .collect())
}

/// Stations near a point, nearest first, with the distance to each.
#[utoipa::path(
    get, path = "/api/stations/nearby", tag = "stations",
    params(
        NearbyParams,
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of an earlier answer"),
    ),
    responses(
        (status = 200, description = "Stations within the radius, nearest first", body = NearbyOut,
            headers(("ETag" = String, description = "Version of the station state this answer shows"))),
        (status = 304, description = "Nothing changed since the answer whose ETag was sent"),
        (status = 400, description = "Missing or out-of-range coordinates, radius or limit", body = ErrorBody),
    )
)]
pub async fn nearby_stations(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<NearbyParams>,
) -> Result<Response, ApiError> {
    let q = NearbyQuery::from_params(&params)?;
    let pages = state.station_pages.clone();
    let key = format!("nearby?{}", query.unwrap_or_default());
    pages
        .answer(&headers, &key, || async move {
            let results = state.db.read(move |c| search(c, &q, Strategy::RTree)).await?;
            Ok(NearbyOut { results, radius_m: q.radius_m })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        // Thamel to Boudhanath, about 4.9 km.
        let d = haversine_m(27.7154, 85.3123, 27.7215, 85.3620);
        assert!((d - 4_940.0).abs() < 50.0, "{d}");
        // A degree of latitude is about 111.2 km on the mean sphere.
        let d = haversine_m(0.0, 0.0, 1.0, 0.0);
        assert!((d - 111_195.0).abs() < 5.0, "{d}");
        assert!(haversine_m(10.0, 170.0, 10.0, 170.0) < 1e-6);
        // Across the antimeridian the short way round.
        assert!(haversine_m(0.0, 179.9, 0.0, -179.9) < 23_000.0);
    }

    #[test]
    fn bounding_box_contains_the_circle() {
        for &(lat, lng, r) in
            &[(27.7, 85.3, 5_000.0), (-33.9, 151.2, 50_000.0), (60.0, 10.0, 50_000.0), (0.0, 0.0, 1.0)]
        {
            let (min_lat, max_lat, min_lng, max_lng) = bounding_box(lat, lng, r);
            // Points on the circle, every degree of bearing.
            for bearing in 0..360 {
                let b = f64::from(bearing).to_radians();
                let d = r / EARTH_RADIUS_M;
                let (p1, l1) = (lat.to_radians(), lng.to_radians());
                let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * b.cos()).asin();
                let l2 = l1 + (b.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
                let (plat, plng) = (p2.to_degrees(), l2.to_degrees());
                assert!(plat >= min_lat && plat <= max_lat, "lat {plat} outside for {lat},{lng},{r}");
                assert!(plng >= min_lng && plng <= max_lng, "lng {plng} outside for {lat},{lng},{r}");
            }
        }
        // Near a pole or across ±180° every longitude is searched.
        assert_eq!(bounding_box(89.9, 0.0, 50_000.0).2, -180.0);
        assert_eq!(bounding_box(0.0, 179.99, 5_000.0).3, 180.0);
    }

    #[test]
    fn rtree_search_agrees_with_a_full_scan() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut conn = Connection::open_in_memory().unwrap();
        crate::core::migrations::apply(&mut conn, crate::schema::MIGRATIONS).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        // A dense city and a sparse countryside, and a few retired stations.
        for i in 0..3_000 {
            let (lat, lng) = if i % 3 == 0 {
                (rng.random_range(27.68..27.74), rng.random_range(85.28..85.36))
            } else {
                (rng.random_range(26.5..30.0), rng.random_range(80.5..88.0))
            };
            let status = if i % 50 == 0 { StationStatus::Retired } else { StationStatus::Online };
            conn.execute(
                "INSERT INTO stations (serial_number, name, address, city, latitude, longitude, status, created_at, updated_at)
                 VALUES (?1, 'n', 'a', 'c', ?2, ?3, ?4, 0, 0)",
                params![format!("S{i}"), lat, lng, status],
            )
            .unwrap();
        }
        // Moves go through the trigger into the index.
        conn.execute("UPDATE stations SET latitude = latitude + 0.01 WHERE id % 7 = 0", []).unwrap();
        conn.execute("DELETE FROM stations WHERE id % 11 = 0", []).unwrap();
        for i in 0..300 {
            let (lat, lng) = if i % 2 == 0 {
                (rng.random_range(27.68..27.74), rng.random_range(85.28..85.36))
            } else {
                (rng.random_range(26.5..30.0), rng.random_range(80.5..88.0))
            };
            let q = NearbyQuery {
                lat,
                lng,
                radius_m: rng.random_range(100.0..MAX_RADIUS_M),
                limit: rng.random_range(1..=MAX_LIMIT),
            };
            let indexed = nearest(&conn, &q, Strategy::RTree).unwrap();
            let scanned = nearest(&conn, &q, Strategy::FullScan).unwrap();
            assert_eq!(indexed, scanned, "{q:?}");
        }
    }

    #[test]
    fn rounds_are_bounded_by_max_rounds() {
        let (mut ring, mut rounds) = (FIRST_RING_M, 1);
        while ring < MAX_RADIUS_M {
            ring = (ring * RING_GROWTH).min(MAX_RADIUS_M);
            rounds += 1;
        }
        assert_eq!(rounds, MAX_ROUNDS);
    }

    #[test]
    fn parameters_are_validated() {
        let p = |lat, lng, radius, limit| NearbyParams { lat, lng, radius, limit };
        assert!(NearbyQuery::from_params(&p(27.7, 85.3, None, None)).is_ok());
        assert!(NearbyQuery::from_params(&p(91.0, 85.3, None, None)).is_err());
        assert!(NearbyQuery::from_params(&p(27.7, -181.0, None, None)).is_err());
        assert!(NearbyQuery::from_params(&p(f64::NAN, 0.0, None, None)).is_err());
        assert!(NearbyQuery::from_params(&p(0.0, 0.0, Some(0.0), None)).is_err());
        assert!(NearbyQuery::from_params(&p(0.0, 0.0, Some(50_001.0), None)).is_err());
        assert!(NearbyQuery::from_params(&p(0.0, 0.0, None, Some(0))).is_err());
        assert!(NearbyQuery::from_params(&p(0.0, 0.0, None, Some(101))).is_err());
    }
}
