//! Demo data for `cargo xtask run` and `powerbank seed-demo`: stations in
//! Kathmandu with slots and power banks, rental packages, countries, banners,
//! app versions and an operator account.

use rusqlite::{Transaction, params};

use crate::{
    core::{Db, now_ts},
    stations::{
        banks::BankStatus,
        status::{SlotStatus, StationStatus},
    },
};

pub const DEMO_ADMIN_EMAIL: &str = "admin@powerbank.local";
/// Demo only: printed at start so a newcomer can sign in as an operator.
pub const DEMO_ADMIN_PASSWORD: &str = "powerbank-demo-admin";

/// (serial, name, address, latitude, longitude, slots)
const STATIONS: &[(&str, &str, &str, f64, f64, i64)] = &[
    ("KTM-THAMEL-01", "Thamel Chowk", "Thamel Marg, Kathmandu", 27.7154, 85.3123, 8),
    ("KTM-DURBAR-01", "Basantapur Durbar Square", "Basantapur, Kathmandu", 27.7041, 85.3074, 8),
    ("KTM-NEWRD-01", "New Road Gate", "New Road, Kathmandu", 27.7030, 85.3110, 6),
    ("KTM-BOUDHA-01", "Boudhanath Stupa", "Boudha, Kathmandu", 27.7215, 85.3620, 8),
    ("KTM-AIRPORT-01", "Tribhuvan Airport Arrivals", "Sinamangal, Kathmandu", 27.6966, 85.3591, 12),
    ("LTP-PULCHOWK-01", "Pulchowk Campus", "Pulchowk, Lalitpur", 27.6782, 85.3188, 6),
    ("LTP-JAWALAKHEL-01", "Jawalakhel Chowk", "Jawalakhel, Lalitpur", 27.6727, 85.3137, 8),
];

/// Demo stations that are volinks V1 cabinets (serial, IMEI): they speak the
/// vendor's binary protocol through the `volinks-v1` plugin, and their banks
/// carry volinks SNs (decimal numbers).
const VOLINKS_CABINETS: &[(&str, &str)] = &[("LTP-JAWALAKHEL-01", "864601068412899")];

/// (code, name, description, minutes, paisa)
const PACKAGES: &[(&str, &str, &str, i64, i64)] = &[
    ("HOUR_1", "1 hour", "Quick top-up charge", 60, 5_000),
    ("HOUR_4", "4 hours", "Half a day out", 240, 15_000),
    ("DAY_1", "1 day", "All day, return by the same time tomorrow", 1_440, 30_000),
];

const COUNTRIES: &[(&str, &str, &str)] = &[
    ("Nepal", "NP", "+977"),
    ("India", "IN", "+91"),
    ("Bangladesh", "BD", "+880"),
    ("China", "CN", "+86"),
    ("United Kingdom", "GB", "+44"),
    ("United States", "US", "+1"),
    ("Australia", "AU", "+61"),
];

const AMENITIES: &[(&str, &str)] =
    &[("wifi", "Wi-Fi"), ("cafe", "Café"), ("24h", "Open 24 hours"), ("parking", "Parking")];

/// Loads the demo data unless the database already has stations. Returns
/// whether anything was loaded.
pub fn seed_if_empty(db: &Db) -> anyhow::Result<bool> {
    let seeded = db.blocking_write(|tx| {
        let stations: i64 = tx.query_row("SELECT COUNT(*) FROM stations", [], |r| r.get(0))?;
        if stations > 0 {
            return Ok(false);
        }
        seed(tx)?;
        Ok(true)
    })?;
    if seeded {
        crate::cli::create_admin(db, DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)?;
    }
    Ok(seeded)
}

fn seed(tx: &Transaction<'_>) -> anyhow::Result<()> {
    let now = now_ts();
    for (i, (code, name)) in AMENITIES.iter().enumerate() {
        tx.execute(
            "INSERT INTO station_amenities (id, code, name) VALUES (?1, ?2, ?3)",
            params![i as i64 + 1, code, name],
        )?;
    }
    let mut bank_no = 0;
    for (i, &(sn, name, address, lat, lng, slots)) in STATIONS.iter().enumerate() {
        let city = address.rsplit(", ").next().unwrap_or("Kathmandu");
        let cabinet = VOLINKS_CABINETS.iter().find(|(serial, _)| *serial == sn).map(|(_, imei)| *imei);
        let protocol = if cabinet.is_some() { "volinks-v1" } else { "native" };
        tx.execute(
            "INSERT INTO stations (serial_number, name, address, city, latitude, longitude, status,
                                   firmware_version, opening_hours, last_heartbeat_at, protocol, device_id,
                                   created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?10, '1.0.0', '06:00-22:00', ?7, ?8, ?9, ?7, ?7)",
            params![sn, name, address, city, lat, lng, now, protocol, cabinet, StationStatus::Online],
        )?;
        let station_id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO station_amenity_mappings (station_id, amenity_id) VALUES (?1, ?2), (?1, ?3)",
            params![station_id, (i % AMENITIES.len()) as i64 + 1, ((i + 1) % AMENITIES.len()) as i64 + 1],
        )?;
        tx.execute(
            "INSERT INTO station_media (station_id, url, is_primary, created_at) VALUES (?1, ?2, 1, ?3)",
            params![station_id, format!("https://example.com/stations/{sn}.jpg"), now],
        )?;
        for slot in 1..=slots {
            // Leave two slots empty at each station for returns.
            if slot > slots - 2 {
                tx.execute(
                    "INSERT INTO station_slots (station_id, slot_index, status, updated_at) VALUES (?1, ?2, ?4, ?3)",
                    params![station_id, slot, now, SlotStatus::Empty],
                )?;
                continue;
            }
            bank_no += 1;
            let battery = 35 + (bank_no * 17) % 66;
            tx.execute(
                "INSERT INTO power_banks (serial_number, capacity_mah, status, battery_level, station_id, created_at, updated_at)
                 VALUES (?1, 10000, ?5, ?2, ?3, ?4, ?4)",
                params![
                    if cabinet.is_some() { format!("{}", 85_021_600 + bank_no) } else { format!("PB-{bank_no:05}") },
                    battery,
                    station_id,
                    now,
                    BankStatus::InSlot
                ],
            )?;
            let bank_id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO station_slots (station_id, slot_index, status, power_bank_id, updated_at)
                 VALUES (?1, ?2, ?5, ?3, ?4)",
                params![station_id, slot, bank_id, now, SlotStatus::Occupied],
            )?;
        }
    }
    for &(code, name, description, minutes, paisa) in PACKAGES {
        tx.execute(
            "INSERT INTO rental_packages (code, name, description, duration_minutes, price_paisa, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![code, name, description, minutes, paisa, now],
        )?;
    }
    for &(name, code, dial) in COUNTRIES {
        tx.execute(
            "INSERT INTO countries (name, code, dial_code, flag_url) VALUES (?1, ?2, ?3, ?4)",
            params![name, code, dial, format!("https://flagcdn.com/{}.svg", code.to_ascii_lowercase())],
        )?;
    }
    let year = 365 * 24 * 3600;
    tx.execute(
        "INSERT INTO banners (title, description, image_url, link_url, display_order, valid_from, valid_until, created_at)
         VALUES ('Dashain offer', '20% off your first rental', 'https://example.com/banners/dashain.jpg', NULL, 1, ?1, ?2, ?1),
                ('Refer a friend', '100 points for every friend who joins', 'https://example.com/banners/refer.jpg', NULL, 2, ?1, ?2, ?1)",
        params![now - 3600, now + year],
    )?;
    for platform in ["android", "ios"] {
        tx.execute(
            "INSERT INTO app_versions (platform, version, min_supported_version, download_url, is_mandatory, release_notes, released_at)
             VALUES (?1, '1.2.0', '1.0.0', ?2, 0, 'Faster station map; wallet top-ups with Khalti and eSewa.', ?3)",
            params![
                platform,
                if platform == "android" { "https://play.google.com/store/apps/details?id=np.powerbank" } else { "https://apps.apple.com/app/id0000000000" },
                now
            ],
        )?;
    }
    Ok(())
}
