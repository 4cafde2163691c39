//! Stations through the real HTTP API: listing filters and their SQL cost,
//! nearby search, favourites, issue reports and the operators' endpoints.

use std::time::{SystemTime, UNIX_EPOCH};

use powerbank::core::{Db, db::statements_executed_on, now_ts};
use powerbank_tests::{Reply, Session, TestServer};
use reqwest::{Method, StatusCode, multipart};
use serde_json::{Value, json};
use tokio::sync::{RwLock, RwLockReadGuard};

/// Statements are counted per database file (`statements_executed_on`), so
/// the other servers of this test binary cannot disturb a count. The tests of
/// this file also hold this lock shared and the counting test holds it alone,
/// which keeps the counting test's requests quick on a busy machine.
static QUIET: RwLock<()> = RwLock::const_new(());

async fn start() -> (RwLockReadGuard<'static, ()>, TestServer) {
    let guard = QUIET.read().await;
    (guard, TestServer::start().await)
}

/// Inserts `count` stations numbered from `first`: on a grid around
/// Kathmandu, each with four slots (a charged bank, a flat bank, two
/// empty) and, for even numbers, the `wifi` amenity.
fn seed_bulk(db: &Db, first: usize, count: usize) {
    db.blocking_write(|tx| {
        let now = now_ts();
        tx.execute("INSERT OR IGNORE INTO station_amenities (code, name) VALUES ('wifi', 'Wi-Fi')", [])?;
        let wifi: i64 = tx.query_row("SELECT id FROM station_amenities WHERE code = 'wifi'", [], |r| r.get(0))?;
        for i in first..first + count {
            let (row, col) = ((i / 100) as f64, (i % 100) as f64);
            tx.execute(
                "INSERT INTO stations (serial_number, name, address, city, latitude, longitude, status, created_at, updated_at)
                 VALUES (?1, ?2, 'Somewhere', 'Kathmandu', ?3, ?4, 'online', ?5, ?5)",
                (
                    format!("BULK-{i:05}"),
                    format!("Bulk station {i}"),
                    27.60 + row * 0.001,
                    85.20 + col * 0.001,
                    now,
                ),
            )?;
            let station = tx.last_insert_rowid();
            if i % 2 == 0 {
                tx.execute(
                    "INSERT INTO station_amenity_mappings (station_id, amenity_id) VALUES (?1, ?2)",
                    (station, wifi),
                )?;
            }
            for (slot, battery) in [(1, Some(90)), (2, Some(5)), (3, None), (4, None)] {
                let bank = match battery {
                    Some(level) => {
                        tx.execute(
                            "INSERT INTO power_banks (serial_number, capacity_mah, battery_level, station_id, created_at, updated_at)
                             VALUES (?1, 10000, ?2, ?3, ?4, ?4)",
                            (format!("PB-BULK-{i:05}-{slot}"), level, station, now),
                        )?;
                        Some(tx.last_insert_rowid())
                    }
                    None => None,
                };
                tx.execute(
                    "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    (
                        station,
                        slot,
                        if bank.is_some() { "occupied" } else { "empty" },
                        bank,
                        now,
                    ),
                )?;
            }
        }
        Ok(())
    })
    .expect("seeded");
}

/// Statements one GET costs when it is not answered from the station page
/// cache: the least of a few tries, so a poll of the server's background job
/// worker landing inside one try does not count. Each try first changes an
/// amenity row (through this process's `Db` on the same file, which moves the
/// station-state version as the server's own writes do).
async fn statements_for(s: &TestServer, path: &str) -> u64 {
    let db = Db::open(&s.db_path(), 1).unwrap();
    wait_until_quiet(s).await;
    let mut least = u64::MAX;
    for _ in 0..5 {
        db.blocking_write(|tx| Ok(tx.execute("UPDATE station_amenities SET name = name", [])?)).unwrap();
        let before = statements_executed_on(&s.db_path());
        let r = s.get(path, None).await;
        let after = statements_executed_on(&s.db_path());
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        least = least.min(after - before);
    }
    least
}

/// Waits until the server has run no statement for half a second (at most
/// a minute): a freshly started server's start-up work, slow on a loaded
/// machine, must not land inside every counting window.
async fn wait_until_quiet(s: &TestServer) {
    for _ in 0..120 {
        let before = statements_executed_on(&s.db_path());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if statements_executed_on(&s.db_path()) == before {
            return;
        }
    }
}

fn results(r: &Reply) -> &Vec<Value> {
    r.body["results"].as_array().unwrap_or_else(|| panic!("no results: {}", r.body))
}

fn serials(r: &Reply) -> Vec<String> {
    let mut out: Vec<String> = results(r).iter().map(|s| s["serial_number"].as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn station_list_costs_a_constant_number_of_statements() {
    let _alone = QUIET.write().await;
    // The idle job worker's poll (3 statements) would land inside every
    // counting window on a machine slow enough; nothing here enqueues jobs.
    let s = TestServer::start_with(|c| c.job_idle_poll = std::time::Duration::from_secs(3600)).await;
    let db = Db::open(&s.db_path(), 1).unwrap();

    seed_bulk(&db, 0, 10);
    let small = statements_for(&s, "/api/stations?limit=20").await;
    let small_filtered =
        statements_for(&s, "/api/stations?amenities=wifi&has_power_bank=true&has_free_slot=true").await;
    let small_nearby = statements_for(&s, "/api/stations/nearby?lat=27.6&lng=85.2&radius=50000&limit=100").await;

    seed_bulk(&db, 10, 990);
    let page_20 = statements_for(&s, "/api/stations?limit=20").await;
    let page_100 = statements_for(&s, "/api/stations?limit=100").await;
    let big_filtered = statements_for(&s, "/api/stations?amenities=wifi&has_power_bank=true&has_free_slot=true").await;
    let big_nearby = statements_for(&s, "/api/stations/nearby?lat=27.6&lng=85.2&radius=50000&limit=100").await;

    println!("statements: 10 stations {small}, 1000 stations page 20 {page_20}, page 100 {page_100}");
    // One aggregate query for the page, one for its amenities.
    assert_eq!(page_20, 2);
    assert_eq!(page_100, page_20);
    assert_eq!(small, page_20);
    assert_eq!(small_filtered, big_filtered);
    assert_eq!(big_filtered, 2);
    // Candidates from the R*Tree in growing circles (a bounded number, fewer
    // where stations are dense), then summaries and amenities of the answer.
    let most = 2 + powerbank::stations::nearby::MAX_ROUNDS as u64;
    println!("nearby statements: 10 stations {small_nearby}, 1000 stations {big_nearby} (at most {most})");
    assert!((3..=most).contains(&small_nearby), "{small_nearby}");
    assert!((3..=small_nearby).contains(&big_nearby), "{big_nearby}");

    // Asked again with nothing changed, a page comes from the cache.
    let before = statements_executed_on(&s.db_path());
    for _ in 0..3 {
        assert_eq!(s.get("/api/stations?limit=20", None).await.status, StatusCode::OK);
    }
    assert!(statements_executed_on(&s.db_path()) - before < 3, "repeated pages are served from the cache");

    // And the pages hold what they claim.
    let r = s.get("/api/stations?limit=100&amenities=wifi", None).await;
    assert_eq!(results(&r).len(), 100);
    for st in results(&r) {
        assert_eq!(st["amenities"][0]["code"], "wifi");
        assert_eq!(st["total_slots"], 4);
        assert_eq!(st["available_power_banks"], 1);
        assert_eq!(st["empty_slots"], 2);
    }
    let r = s.get("/api/stations/nearby?lat=27.6&lng=85.2&radius=50000&limit=100", None).await;
    assert_eq!(results(&r).len(), 100);
}

/// Creates a station through the admin API.
async fn create_station(s: &TestServer, admin: &Session, body: Value) -> Reply {
    let r = s.post("/api/admin/stations", Some(&admin.access), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r
}

async fn add_bank(s: &TestServer, admin: &Session, sn: &str, station: &str, slot: i64, battery: i64) {
    let r = s
        .post(
            "/api/admin/power-banks",
            Some(&admin.access),
            json!({"serial_number": sn, "capacity_mah": 10000, "battery_level": battery,
                   "station_sn": station, "slot_index": slot}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn list_filters_by_city_status_amenities_and_availability() {
    let (_q, s) = start().await;
    let admin = s.admin().await;
    for (code, name) in [("wifi", "Wi-Fi"), ("parking", "Parking")] {
        let r = s.post("/api/admin/amenities", Some(&admin.access), json!({"code": code, "name": name})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let station = |sn: &str, city: &str, status: &str, slots: i64, amenities: Value| {
        json!({"serial_number": sn, "name": format!("Station {sn}"), "address": "Main road", "city": city,
               "latitude": 28.2, "longitude": 83.98, "status": status, "total_slots": slots, "amenities": amenities})
    };
    // A: a charged bank and a free slot, wifi and parking.
    create_station(&s, &admin, station("PKR-A", "Pokhara", "online", 2, json!(["wifi", "parking"]))).await;
    add_bank(&s, &admin, "PB-A1", "PKR-A", 1, 90).await;
    // B: full, and its only bank is flat.
    create_station(&s, &admin, station("PKR-B", "Pokhara", "online", 1, json!(["wifi"]))).await;
    add_bank(&s, &admin, "PB-B1", "PKR-B", 1, 10).await;
    // C: under maintenance in Kathmandu, empty.
    create_station(&s, &admin, station("KTM-C", "Kathmandu", "maintenance", 1, json!(["parking"]))).await;
    // D: retired, never listed.
    create_station(&s, &admin, station("KTM-D", "Kathmandu", "online", 1, json!(["wifi", "parking"]))).await;
    let r = s.call(Method::DELETE, "/api/admin/stations/KTM-D", Some(&admin.access), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "retired");

    let list = |q: &'static str| {
        let s = &s;
        async move {
            let r = s.get(&format!("/api/stations{q}"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            serials(&r)
        }
    };
    assert_eq!(list("").await, ["KTM-C", "PKR-A", "PKR-B"]);
    assert_eq!(list("?city=POKHARA").await, ["PKR-A", "PKR-B"]);
    assert_eq!(list("?status=maintenance").await, ["KTM-C"]);
    assert_eq!(list("?amenities=wifi").await, ["PKR-A", "PKR-B"]);
    assert_eq!(list("?amenities=parking,wifi").await, ["PKR-A"]);
    assert_eq!(list("?amenities=parking").await, ["KTM-C", "PKR-A"]);
    assert!(list("?amenities=sauna").await.is_empty());
    assert_eq!(list("?has_power_bank=true").await, ["PKR-A"]);
    assert_eq!(list("?has_free_slot=true").await, ["KTM-C", "PKR-A"]);
    assert_eq!(list("?has_power_bank=false").await.len(), 3);
    assert_eq!(list("?city=pokhara&has_free_slot=true&amenities=wifi").await, ["PKR-A"]);

    let r = s.get("/api/stations?city=Pokhara&limit=1", None).await;
    let a = &results(&r)[0];
    assert_eq!(a["serial_number"], "PKR-B", "newest first");
    let r = s.get("/api/stations?has_power_bank=true", None).await;
    let a = &results(&r)[0];
    assert_eq!(
        (a["total_slots"].as_i64(), a["available_power_banks"].as_i64(), a["empty_slots"].as_i64()),
        (Some(2), Some(1), Some(1))
    );
    let codes: Vec<&str> = a["amenities"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["parking", "wifi"]);

    for bad in ["?amenities=wi%20fi", "?has_power_bank=yes", "?status=retired", "?limit=0"] {
        let r = s.get(&format!("/api/stations{bad}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        r.error_code();
    }
    // Retired stations are gone from the public detail too.
    assert_eq!(s.get("/api/stations/KTM-D", None).await.status, StatusCode::NOT_FOUND);
}

/// A point `metres` north of (lat, lng) on the mean-radius sphere.
fn north_of(lat: f64, metres: f64) -> f64 {
    lat + (metres / powerbank::stations::nearby::EARTH_RADIUS_M).to_degrees()
}

#[tokio::test]
async fn nearby_is_sorted_by_distance_within_the_radius() {
    let (_q, s) = start().await;
    let admin = s.admin().await;
    let (lat, lng) = (27.7172, 85.3240);
    for (sn, metres) in [
        ("N-4000", 4_000.0),
        ("N-0500", 500.0),
        ("N-6000", 6_000.0),
        ("N-1000", 1_000.0),
        ("N-20K", 20_000.0),
        ("N-2000", 2_000.0),
    ] {
        create_station(
            &s,
            &admin,
            json!({"serial_number": sn, "name": sn, "address": "Somewhere", "city": "Kathmandu",
                   "latitude": north_of(lat, metres), "longitude": lng, "status": "online"}),
        )
        .await;
    }
    // Due east, 3 km: distance along a parallel differs from a degree-box guess.
    let east = lng + (3_000.0 / powerbank::stations::nearby::EARTH_RADIUS_M / lat.to_radians().cos()).to_degrees();
    create_station(
        &s,
        &admin,
        json!({"serial_number": "E-3000", "name": "East", "address": "Somewhere", "city": "Kathmandu",
               "latitude": lat, "longitude": east, "status": "online"}),
    )
    .await;

    let near = |q: String| {
        let s = &s;
        async move {
            let r = s.get(&format!("/api/stations/nearby?lat={lat}&lng={lng}{q}"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            r
        }
    };
    let r = near(String::new()).await;
    assert_eq!(r.body["radius_m"], 5000.0);
    let order: Vec<&str> = results(&r).iter().map(|x| x["serial_number"].as_str().unwrap()).collect();
    assert_eq!(order, ["N-0500", "N-1000", "N-2000", "E-3000", "N-4000"]);
    let distances: Vec<f64> = results(&r).iter().map(|x| x["distance_m"].as_f64().unwrap()).collect();
    for (d, want) in distances.iter().zip([500.0, 1_000.0, 2_000.0, 3_000.0, 4_000.0]) {
        assert!((d - want).abs() < 1.0, "{d} vs {want}");
    }
    assert!(distances.windows(2).all(|w| w[0] <= w[1]));
    assert!(results(&r)[0]["available_power_banks"].is_i64());

    assert_eq!(results(&near("&radius=1500".into()).await).len(), 2);
    assert_eq!(results(&near("&radius=10000".into()).await).len(), 6);
    assert_eq!(results(&near("&radius=50000".into()).await).len(), 7);
    let two = near("&radius=50000&limit=2".into()).await;
    let order: Vec<&str> = results(&two).iter().map(|x| x["serial_number"].as_str().unwrap()).collect();
    assert_eq!(order, ["N-0500", "N-1000"]);

    // Moving a station moves it in the index; retiring takes it out.
    let r = s
        .call(
            Method::PATCH,
            "/api/admin/stations/N-20K",
            Some(&admin.access),
            Some(json!({"latitude": north_of(lat, 100.0)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s.call(Method::DELETE, "/api/admin/stations/N-0500", Some(&admin.access), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = near("&limit=2".into()).await;
    let order: Vec<&str> = results(&r).iter().map(|x| x["serial_number"].as_str().unwrap()).collect();
    assert_eq!(order, ["N-20K", "N-1000"]);

    // Nothing near the middle of the ocean.
    let r = s.get("/api/stations/nearby?lat=-40&lng=-120", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(results(&r).is_empty());

    for bad in [
        "lat=91&lng=85",
        "lat=-90.5&lng=85",
        "lat=27&lng=180.01",
        "lat=27&lng=-200",
        "lat=abc&lng=85",
        "lat=NaN&lng=85",
        "lat=27",
        "",
        "lat=27&lng=85&radius=0",
        "lat=27&lng=85&radius=-5",
        "lat=27&lng=85&radius=50001",
        "lat=27&lng=85&limit=0",
        "lat=27&lng=85&limit=101",
    ] {
        let r = s.get(&format!("/api/stations/nearby?{bad}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        r.error_code();
    }
}

#[tokio::test]
async fn favorites_are_idempotent_private_and_paged() {
    let (_q, s) = start().await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    seed_bulk(&db, 0, 4);
    let alice = s.register("9841000201").await;
    let bob = s.register("9841000202").await;
    let a = Some(alice.access.as_str());

    let r = s.post("/api/stations/BULK-00001/favorite", a, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["is_favorite"], true);
    let r = s.post("/api/stations/BULK-00001/favorite", a, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "a second add changes nothing");
    let r = s.get("/api/stations/favorites", a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(results(&r).len(), 1);
    assert_eq!(results(&r)[0]["station"]["serial_number"], "BULK-00001");
    assert_eq!(results(&r)[0]["station"]["available_power_banks"], 1);
    assert!(results(&r)[0]["favorited_at"].is_string());

    // Bob sees only his own.
    let r = s.get("/api/stations/favorites", Some(&bob.access)).await;
    assert!(results(&r).is_empty());

    for sn in ["BULK-00002", "BULK-00003"] {
        assert_eq!(s.post(&format!("/api/stations/{sn}/favorite"), a, json!({})).await.status, StatusCode::CREATED);
    }
    let first = s.get("/api/stations/favorites?limit=2", a).await;
    assert_eq!(serials_of_favorites(&first), ["BULK-00003", "BULK-00002"]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = s.get(&format!("/api/stations/favorites?limit=2&cursor={cursor}"), a).await;
    assert_eq!(serials_of_favorites(&second), ["BULK-00001"]);
    assert!(second.body["next_cursor"].is_null());

    let r = s.call(Method::DELETE, "/api/stations/BULK-00002/favorite", a, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["is_favorite"], false);
    let r = s.call(Method::DELETE, "/api/stations/BULK-00002/favorite", a, None).await;
    assert_eq!(r.status, StatusCode::OK, "removing a non-favourite is fine");
    assert_eq!(serials_of_favorites(&s.get("/api/stations/favorites", a).await), ["BULK-00003", "BULK-00001"]);

    let r = s.post("/api/stations/NOPE-404/favorite", a, json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    let r = s.call(Method::DELETE, "/api/stations/NOPE-404/favorite", a, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(s.post("/api/stations/BULK-00001/favorite", None, json!({})).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/api/stations/favorites", None).await.status, StatusCode::UNAUTHORIZED);
}

fn serials_of_favorites(r: &Reply) -> Vec<String> {
    results(r).iter().map(|f| f["station"]["serial_number"].as_str().unwrap().to_string()).collect()
}

/// A minimal valid PNG (1x1 pixel).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

async fn upload_png(s: &TestServer, token: &str) -> String {
    let part = multipart::Part::bytes(PNG.to_vec()).file_name("issue.png").mime_str("image/png").unwrap();
    let form = multipart::Form::new().part("file", part).text("purpose", "station_issue");
    let resp = s.http.post(s.url("/api/upload")).bearer_auth(token).multipart(form).send().await.unwrap();
    let r = TestServer::read(resp).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["url"].as_str().unwrap().to_string()
}

/// The rate limit counts in fixed hour windows; stay clear of a window edge
/// so eleven quick reports fall in one window.
async fn away_from_hour_edge() {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let into_hour = secs % 3600;
    if into_hour > 3600 - 30 {
        tokio::time::sleep(std::time::Duration::from_secs(3600 - into_hour + 1)).await;
    }
}

#[tokio::test]
async fn issue_reports_check_images_limit_rate_and_stay_private() {
    let (_q, s) = start().await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    seed_bulk(&db, 0, 2);
    let alice = s.register("9841000301").await;
    let bob = s.register("9841000302").await;
    let a = Some(alice.access.as_str());
    let alice_img = upload_png(&s, &alice.access).await;
    let bob_img = upload_png(&s, &bob.access).await;

    let report =
        |desc: &str, images: Vec<&str>| json!({"issue_type": "slot_stuck", "description": desc, "images": images});
    let r = s
        .post(
            "/api/stations/BULK-00000/report-issue",
            a,
            report("Slot 3 will not release the bank", vec![alice_img.as_str()]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "open");
    assert_eq!(r.body["issue_type"], "slot_stuck");
    assert_eq!(r.body["station"]["serial_number"], "BULK-00000");
    assert_eq!(r.body["images"], json!([alice_img]));

    // Someone else's upload, or any other URL, is refused.
    let r = s
        .post(
            "/api/stations/BULK-00000/report-issue",
            a,
            report("Slot 3 will not release the bank", vec![bob_img.as_str()]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.error_code(), "validation_failed");
    let r = s
        .post(
            "/api/stations/BULK-00000/report-issue",
            a,
            report("Slot 3 will not release the bank", vec!["https://evil.example/x.png"]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let six = vec![alice_img.as_str(); 6];
    assert_eq!(
        s.post("/api/stations/BULK-00000/report-issue", a, report("Too many pictures here", six)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.post("/api/stations/BULK-00000/report-issue", a, report("short", vec![])).await.status,
        StatusCode::BAD_REQUEST
    );
    let long = "x".repeat(1001);
    assert_eq!(
        s.post("/api/stations/BULK-00000/report-issue", a, report(&long, vec![])).await.status,
        StatusCode::BAD_REQUEST
    );
    let r = s
        .post(
            "/api/stations/BULK-00000/report-issue",
            a,
            json!({"issue_type": "alien_invasion", "description": "Something odd is happening"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    r.error_code();
    let r = s.post("/api/stations/NOPE-404/report-issue", a, report("No such station at all", vec![])).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.post("/api/stations/BULK-00000/report-issue", None, report("Not signed in at all", vec![])).await.status,
        StatusCode::UNAUTHORIZED
    );

    let r = s
        .post(
            "/api/stations/BULK-00001/report-issue",
            Some(&bob.access),
            json!({"issue_type": "damaged", "description": "The screen is cracked badly", "images": [bob_img]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // my-reports shows each caller only their own.
    let mine = s.get("/api/stations/my-reports", a).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(results(&mine).len(), 1);
    assert_eq!(results(&mine)[0]["description"], "Slot 3 will not release the bank");
    let bobs = s.get("/api/stations/my-reports", Some(&bob.access)).await;
    assert_eq!(results(&bobs).len(), 1);
    assert_eq!(results(&bobs)[0]["issue_type"], "damaged");
    assert_eq!(s.get("/api/stations/my-reports", None).await.status, StatusCode::UNAUTHORIZED);

    // The public list has the issue but nothing about who reported it.
    let public = s.get("/api/stations/BULK-00000/issues", None).await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.body);
    assert_eq!(results(&public).len(), 1);
    let issue = results(&public)[0].as_object().unwrap();
    let mut keys: Vec<&str> = issue.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["description", "id", "issue_type", "reported_at", "status"]);
    assert!(!public.body.to_string().contains("9841000301"));
    assert_eq!(s.get("/api/stations/NOPE-404/issues", None).await.status, StatusCode::NOT_FOUND);

    // Ten reports an hour; the eleventh waits.
    away_from_hour_edge().await;
    let carol = s.register("9841000303").await;
    for i in 0..10 {
        let r = s
            .post(
                "/api/stations/BULK-00001/report-issue",
                Some(&carol.access),
                report(&format!("Report number {i} of ten"), vec![]),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "report {i}: {}", r.body);
    }
    let r = s
        .post("/api/stations/BULK-00001/report-issue", Some(&carol.access), report("The eleventh report", vec![]))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.error_code(), "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));
    // Other users are not affected.
    let r = s.post("/api/stations/BULK-00001/report-issue", a, report("Another user still reports", vec![])).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let carols = s.get("/api/stations/my-reports?limit=100", Some(&carol.access)).await;
    assert_eq!(results(&carols).len(), 10);
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_role_and_validate() {
    let (_q, s) = start().await;
    let user = s.register("9841000401").await;
    let admin = s.admin().await;
    let station = json!({"serial_number": "ADM-001", "name": "Admin made", "address": "Lakeside", "city": "Pokhara",
                         "latitude": 28.21, "longitude": 83.96, "total_slots": 2});
    let calls: Vec<(Method, &str, Value)> = vec![
        (Method::POST, "/api/admin/stations", station.clone()),
        (Method::PATCH, "/api/admin/stations/ADM-001", json!({"name": "Renamed"})),
        (Method::DELETE, "/api/admin/stations/ADM-001", Value::Null),
        (Method::POST, "/api/admin/stations/ADM-001/slots", json!({"add": 1})),
        (Method::POST, "/api/admin/amenities", json!({"code": "wifi", "name": "Wi-Fi"})),
        (Method::PUT, "/api/admin/stations/ADM-001/amenities", json!({"codes": []})),
        (Method::POST, "/api/admin/stations/ADM-001/media", json!({"url": "https://example.com/a.jpg"})),
        (
            Method::POST,
            "/api/admin/power-banks",
            json!({"serial_number": "PB-1", "capacity_mah": 10000, "station_sn": "ADM-001", "slot_index": 1}),
        ),
    ];
    for (method, path, body) in &calls {
        let body = (!body.is_null()).then(|| body.clone());
        let r = s.call(method.clone(), path, Some(&user.access), body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {}", r.body);
        assert_eq!(r.error_code(), "forbidden");
        let r = s.call(method.clone(), path, None, body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }

    let t = Some(admin.access.as_str());
    let r = s.post("/api/admin/stations", t, station.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "offline");
    assert_eq!(r.body["slots"].as_array().unwrap().len(), 2);
    let r = s.post("/api/admin/stations", t, station.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "duplicate_serial");
    for (field, value) in [
        ("latitude", json!(95.0)),
        ("longitude", json!(-190.0)),
        ("serial_number", json!("x")),
        ("name", json!("")),
        ("status", json!("exploded")),
        ("total_slots", json!(65)),
        ("opening_hours", json!("9-5")),
    ] {
        let mut body = station.clone();
        body[field] = value;
        body["serial_number"] = if field == "serial_number" { body[field].clone() } else { json!("ADM-002") };
        let r = s.post("/api/admin/stations", t, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
    }
    let r = s.post("/api/admin/stations", t, json!({"serial_number": "ADM-003", "name": "No coordinates"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = s
        .call(
            Method::PATCH,
            "/api/admin/stations/ADM-001",
            t,
            Some(json!({"name": "Lakeside Gate", "status": "online", "opening_hours": "06:00-22:00"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Lakeside Gate");
    assert_eq!(r.body["opening_hours"], "06:00-22:00");
    assert_eq!(
        s.call(Method::PATCH, "/api/admin/stations/ADM-001", t, Some(json!({}))).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.call(Method::PATCH, "/api/admin/stations/NOPE-404", t, Some(json!({"name": "Ghost"}))).await.status,
        StatusCode::NOT_FOUND
    );

    // Slots: add, set, and shrinking past an occupied slot is refused.
    let r = s.post("/api/admin/stations/ADM-001/slots", t, json!({"add": 2})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total_slots"], 4);
    let r = s.post("/api/admin/stations/ADM-001/slots", t, json!({"total_slots": 3})).await;
    assert_eq!(r.body["total_slots"], 3);
    let indexes: Vec<i64> =
        r.body["slots"].as_array().unwrap().iter().map(|x| x["slot_index"].as_i64().unwrap()).collect();
    assert_eq!(indexes, [1, 2, 3]);
    assert_eq!(
        s.post("/api/admin/stations/ADM-001/slots", t, json!({"add": 1, "total_slots": 3})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(s.post("/api/admin/stations/ADM-001/slots", t, json!({})).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.post("/api/admin/stations/ADM-001/slots", t, json!({"add": 64})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(s.post("/api/admin/stations/NOPE-404/slots", t, json!({"add": 1})).await.status, StatusCode::NOT_FOUND);

    // Power banks go into empty slots; serials are unique.
    let bank = |sn: &str, slot: i64| json!({"serial_number": sn, "capacity_mah": 10000, "battery_level": 80, "station_sn": "ADM-001", "slot_index": slot});
    let r = s.post("/api/admin/power-banks", t, bank("PB-ADM-1", 3)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "in_slot");
    let r = s.post("/api/admin/power-banks", t, bank("PB-ADM-1", 2)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "duplicate_serial");
    let r = s.post("/api/admin/power-banks", t, bank("PB-ADM-2", 3)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "slot_not_empty");
    assert_eq!(s.post("/api/admin/power-banks", t, bank("PB-ADM-2", 9)).await.status, StatusCode::NOT_FOUND);
    let mut bad = bank("PB-ADM-2", 2);
    bad["battery_level"] = json!(101);
    assert_eq!(s.post("/api/admin/power-banks", t, bad).await.status, StatusCode::BAD_REQUEST);
    let mut unknown = bank("PB-ADM-2", 2);
    unknown["station_sn"] = json!("NOPE-404");
    assert_eq!(s.post("/api/admin/power-banks", t, unknown).await.status, StatusCode::NOT_FOUND);
    let r = s.post("/api/admin/stations/ADM-001/slots", t, json!({"total_slots": 2})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "slot 3 holds a bank: {}", r.body);
    let detail = s.get("/api/stations/ADM-001", None).await;
    assert_eq!(detail.body["available_power_banks"], 1);
    assert_eq!(detail.body["slots"][2]["power_bank_serial"], "PB-ADM-1");

    // Amenities: catalogue, then the station's set.
    assert_eq!(
        s.post("/api/admin/amenities", t, json!({"code": "wifi", "name": "Wi-Fi"})).await.status,
        StatusCode::CREATED
    );
    let r = s.post("/api/admin/amenities", t, json!({"code": "WIFI", "name": "Wi-Fi again"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        s.post("/api/admin/amenities", t, json!({"code": "wi fi", "name": "Bad"})).await.status,
        StatusCode::BAD_REQUEST
    );
    let r = s.call(Method::PUT, "/api/admin/stations/ADM-001/amenities", t, Some(json!({"codes": ["wifi"]}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["amenities"], json!([{"code": "wifi", "name": "Wi-Fi"}]));
    let r = s.call(Method::PUT, "/api/admin/stations/ADM-001/amenities", t, Some(json!({"codes": ["sauna"]}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.call(Method::PUT, "/api/admin/stations/NOPE-404/amenities", t, Some(json!({"codes": []}))).await.status,
        StatusCode::NOT_FOUND
    );

    // Media.
    let r = s
        .post(
            "/api/admin/stations/ADM-001/media",
            t,
            json!({"url": "https://example.com/front.jpg", "is_primary": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = s
        .post(
            "/api/admin/stations/ADM-001/media",
            t,
            json!({"url": "https://example.com/plan.png", "media_type": "floor_plan", "is_primary": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let detail = s.get("/api/stations/ADM-001", None).await;
    let media = detail.body["media"].as_array().unwrap();
    assert_eq!(media.len(), 2);
    assert_eq!(media[0]["url"], "https://example.com/plan.png", "one primary, listed first");
    assert_eq!(media[1]["is_primary"], false);
    assert_eq!(
        s.post("/api/admin/stations/ADM-001/media", t, json!({"url": "ftp://example.com/a"})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.post("/api/admin/stations/ADM-001/media", t, json!({"url": "https://example.com/a", "media_type": "gif"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.post("/api/admin/stations/NOPE-404/media", t, json!({"url": "https://example.com/a"})).await.status,
        StatusCode::NOT_FOUND
    );

    // Retiring is idempotent, hides the station and freezes it.
    let r = s.call(Method::DELETE, "/api/admin/stations/ADM-001", t, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "retired");
    assert_eq!(s.call(Method::DELETE, "/api/admin/stations/ADM-001", t, None).await.status, StatusCode::OK);
    assert_eq!(s.call(Method::DELETE, "/api/admin/stations/NOPE-404", t, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/api/stations/ADM-001", None).await.status, StatusCode::NOT_FOUND);
    assert!(results(&s.get("/api/stations", None).await).is_empty());
    let r = s.call(Method::PATCH, "/api/admin/stations/ADM-001", t, Some(json!({"name": "Back again"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "station_retired");
}

#[tokio::test]
async fn fixed_routes_are_not_taken_for_serial_numbers() {
    let (_q, s) = start().await;
    let user = s.register("9841000501").await;
    // Were these routed to `/api/stations/{sn}` they would answer 404.
    assert_eq!(s.get("/api/stations/nearby", None).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.get("/api/stations/favorites", Some(&user.access)).await.status, StatusCode::OK);
    assert_eq!(s.get("/api/stations/my-reports", Some(&user.access)).await.status, StatusCode::OK);
    assert_eq!(s.get("/api/stations/favorites", None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn openapi_documents_every_station_endpoint_with_schemas() {
    let (_q, s) = start().await;
    let r = s.get("/api/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    // (path, method, has a JSON request body, success status)
    let endpoints = [
        ("/api/stations", "get", false, "200"),
        ("/api/stations/{sn}", "get", false, "200"),
        ("/api/stations/nearby", "get", false, "200"),
        ("/api/stations/favorites", "get", false, "200"),
        ("/api/stations/{sn}/favorite", "post", false, "201"),
        ("/api/stations/{sn}/favorite", "delete", false, "200"),
        ("/api/stations/{sn}/report-issue", "post", true, "201"),
        ("/api/stations/my-reports", "get", false, "200"),
        ("/api/stations/{sn}/issues", "get", false, "200"),
        ("/api/admin/stations", "post", true, "201"),
        ("/api/admin/stations/{sn}", "patch", true, "200"),
        ("/api/admin/stations/{sn}", "delete", false, "200"),
        ("/api/admin/stations/{sn}/slots", "post", true, "200"),
        ("/api/admin/amenities", "post", true, "201"),
        ("/api/admin/stations/{sn}/amenities", "put", true, "200"),
        ("/api/admin/stations/{sn}/media", "post", true, "201"),
        ("/api/admin/power-banks", "post", true, "201"),
    ];
    for (path, method, has_body, ok) in endpoints {
        let op = &paths.get(path).unwrap_or_else(|| panic!("{path} missing from OpenAPI"))[method];
        assert!(op.is_object(), "{method} {path} missing");
        if has_body {
            assert!(
                op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                "{method} {path}: no request schema"
            );
        }
        assert!(
            op["responses"][ok]["content"]["application/json"]["schema"].is_object(),
            "{method} {path}: no {ok} response schema"
        );
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') {
                assert!(response["content"]["application/json"]["schema"].is_object(), "{method} {path} {status}");
            }
        }
    }
    let schemas = &r.body["components"]["schemas"];
    let favorite = schemas["FavoriteStation"]["properties"].as_object().unwrap();
    assert!(favorite.contains_key("station") && !favorite.contains_key("favorite_id"));
    assert!(schemas["IssueType"]["enum"].as_array().unwrap().iter().any(|v| v == "no_power_bank"));
    let nearby_params: Vec<&str> = paths["/api/stations/nearby"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // The query, then the conditional-request header of the cached answers.
    assert_eq!(nearby_params, ["lat", "lng", "radius", "limit", "If-None-Match"]);
}
