//! `powerbank serve --demo` brings the demo stations to life: one simulated
//! station (the `powerbank-station-sim` library) per demo station, in this
//! process, connected to the embedded broker with the credentials the host
//! derives for it. Without them the demo stations would show online for one
//! heartbeat timeout and every rental would then wait for an eject answer
//! that never comes.

use std::time::Duration;

use rusqlite::params;
use station_sim::{SimConfig, SimProtocol, SimSlot, SimStation};

use crate::{config::MqttMode, state::AppState, stations::status::StationStatus};

/// How long to wait for the embedded broker and the host's link at start-up.
const LINK_WAIT: Duration = Duration::from_secs(60);

struct DemoStation {
    serial: String,
    device_id: String,
    protocol: String,
    slots: Vec<SimSlot>,
}

/// Starts the simulated stations in the background once the station link is
/// connected. Only with the embedded broker: an external broker has its own
/// accounts, which the host cannot hand to a simulator.
pub fn spawn(state: &AppState) {
    let state = state.clone();
    let MqttMode::Embedded { listen } = state.station_link.config().mode.clone() else {
        tracing::info!("demo: no embedded broker, so no simulated stations (run powerbank-station-sim yourself)");
        return;
    };
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + LINK_WAIT;
        while !state.station_link.is_connected() {
            if tokio::time::Instant::now() > deadline {
                tracing::error!("demo: the station link did not connect; no simulated stations");
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let stations = match state.db.read(|c| Ok(demo_stations(c)?)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e.message, "demo: cannot list stations");
                return;
            }
        };
        let mut running = Vec::with_capacity(stations.len());
        for station in stations {
            let mut config = SimConfig::new(&listen.ip().to_string(), listen.port());
            config.mountpoint = state.station_link.config().mountpoint.clone();
            config.protocol = if station.protocol == "volinks-v1" { SimProtocol::Volinks } else { SimProtocol::Native };
            config.heartbeat_interval = Duration::from_secs(15);
            // Long enough to see the rental wait for the station, short enough not to bore.
            config.eject_delay = Duration::from_millis(800);
            let password = state.station_link.credentials().station_password(&station.device_id);
            match SimStation::start(config, &station.device_id, &password, station.slots).await {
                Ok(sim) => running.push(sim),
                Err(e) => tracing::warn!(station = %station.serial, error = %e, "demo: simulated station not started"),
            }
        }
        tracing::info!(stations = running.len(), "demo: simulated stations online");
        // They live as long as the server does.
        std::future::pending::<()>().await;
        drop(running);
    });
}

fn demo_stations(c: &rusqlite::Connection) -> rusqlite::Result<Vec<DemoStation>> {
    let mut stmt = c.prepare(
        "SELECT id, serial_number, COALESCE(device_id, serial_number), protocol FROM stations
          WHERE status != ?1 ORDER BY id LIMIT 100",
    )?;
    let rows: Vec<(i64, String, String, String)> = stmt
        .query_map([StationStatus::Retired], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut slots = c.prepare(
        "SELECT s.slot_index, b.serial_number, b.battery_level FROM station_slots s
           LEFT JOIN power_banks b ON b.id = s.power_bank_id
          WHERE s.station_id = ?1 ORDER BY s.slot_index",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, serial, device_id, protocol) in rows {
        let station_slots = slots
            .query_map(params![id], |r| {
                let index: i64 = r.get(0)?;
                let bank: Option<String> = r.get(1)?;
                let battery: Option<i64> = r.get(2)?;
                Ok(SimSlot {
                    index: u16::try_from(index).unwrap_or(0),
                    bank: bank.map(|b| (b, u8::try_from(battery.unwrap_or(80).clamp(0, 100)).unwrap_or(80))),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        out.push(DemoStation { serial, device_id, protocol, slots: station_slots });
    }
    Ok(out)
}
