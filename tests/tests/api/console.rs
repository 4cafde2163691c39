//! The operator console's live feed (`GET /api/admin/events`) over real HTTP,
//! with a simulated station over real MQTT; and `/console` served by the host.
//! The console itself is tested in a real browser by `cargo xtask test`
//! (console/e2e).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use powerbank_tests::{
    TestServer,
    mqtt::{Broker, link_config, linked_server, sim_config, start_sim},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Generous: the stream looks once a second and CI shares two cores.
const WAIT: Duration = Duration::from_secs(20);

/// A `GET /api/admin/events` response read message by message.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(s: &TestServer, token: &str) -> Self {
        let response = s.http.get(s.url("/api/admin/events")).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        EventStream { response, buffer: String::new() }
    }

    /// The next message as (event name, data), or `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let message: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in message.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some((name, serde_json::from_str(&data).expect("data is JSON")));
            }
            let chunk = self.response.chunk().await.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits for the first message matching `wanted`.
    async fn until(&mut self, what: &str, wanted: impl Fn(&str, &Value) -> bool) -> Value {
        let found = tokio::time::timeout(WAIT, async {
            while let Some((name, data)) = self.next().await {
                assert_eq!(data["type"], name.as_str(), "the event name is the data's type");
                if wanted(&name, &data) {
                    return Some(data);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(data)) => data,
            Ok(None) => panic!("stream ended before {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }
}

#[tokio::test]
async fn the_feed_is_for_operators_only() {
    let s = TestServer::start().await;
    let r = s.get("/api/admin/events", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "unauthorized");
    let user = s.register("9841700001").await;
    let r = s.get("/api/admin/events", Some(&user.access)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "forbidden");
}

#[tokio::test]
async fn snapshot_first_then_slot_and_status_changes_as_they_happen() {
    let s = linked_server(link_config(Broker::Embedded, 60)).await;
    let admin = s.admin().await;
    let sn = "KTM-THAMEL-01";
    let _station = start_sim(&s, &admin, sn, sim_config(&s)).await;
    let mut events = EventStream::open(&s, &admin.access).await;

    let snapshot = events.until("the snapshot", |name, _| name == "snapshot").await;
    let stations = snapshot["stations"].as_array().unwrap();
    let listed = s.get("/api/stations?limit=100", None).await.body["results"].as_array().unwrap().len();
    assert_eq!(stations.len(), listed);
    let before = stations.iter().find(|st| st["serial_number"] == sn).unwrap().clone();
    assert!(snapshot["plugins"].as_array().unwrap().iter().any(|p| p["name"] == "pricing-standard"));
    assert_eq!(snapshot["link"]["state"], "connected");

    // An eject empties a slot: the station's availability changes on the feed.
    let r = s.post(&format!("/api/admin/stations/{sn}/eject"), Some(&admin.access), json!({"slot": 1})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let changed = events
        .until("the eject's station event", |name, d| name == "station" && d["station"]["serial_number"] == sn)
        .await;
    assert_eq!(changed["station"]["empty_slots"], before["empty_slots"].as_i64().unwrap() + 1);
    assert_eq!(changed["station"]["available_power_banks"], before["available_power_banks"].as_i64().unwrap() - 1);

    // An operator takes another station out of service.
    let r = s
        .call(
            reqwest::Method::PATCH,
            "/api/admin/stations/KTM-DURBAR-01",
            Some(&admin.access),
            Some(json!({"status": "maintenance"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let changed = events
        .until("the maintenance event", |name, d| name == "station" && d["station"]["serial_number"] == "KTM-DURBAR-01")
        .await;
    assert_eq!(changed["station"]["status"], "maintenance");
}

fn dist(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist").join(file);
    assert!(path.exists(), "{} missing: run `cargo xtask build-plugins`", path.display());
    path
}

fn manifest(overdue_paisa_per_hour: u32) -> String {
    format!(
        "[plugins.pricing-standard]\nkind = \"pricing\"\npath = \"{}\"\n\
         [plugins.pricing-standard.config]\noverdue_paisa_per_hour = {overdue_paisa_per_hour}\n",
        dist("pricing_standard.wasm").display()
    )
}

#[tokio::test]
async fn a_plugin_reload_is_on_the_feed_and_sign_out_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("plugins.toml");
    std::fs::write(&manifest_path, manifest(500)).unwrap();
    let path = manifest_path.clone();
    let s = TestServer::start_with(move |c| {
        c.plugins_path = path;
        c.watch_plugins = false;
    })
    .await;
    let admin = s.admin().await;
    let mut events = EventStream::open(&s, &admin.access).await;
    let snapshot = events.until("the snapshot", |name, _| name == "snapshot").await;
    let first_load = snapshot["plugins"][0]["loaded_at"].clone();
    assert_eq!(snapshot["plugins"][0]["name"], "pricing-standard");

    // A new config is a new load, even within the same second.
    std::fs::write(&manifest_path, manifest(700)).unwrap();
    let r = s.post("/api/admin/plugins/reload", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["loaded"], json!(["pricing-standard"]));
    let reloaded =
        events.until("the plugin event", |name, d| name == "plugin" && d["plugin"]["name"] == "pricing-standard").await;
    assert_eq!(reloaded["plugin"]["status"], "active");
    assert!(reloaded["plugin"]["loaded_at"].as_str() >= first_load.as_str());

    // Dropped from the manifest: removed from the feed.
    std::fs::write(&manifest_path, "").unwrap();
    let r = s.post("/api/admin/plugins/reload", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let removed = events.until("the removal", |name, _| name == "plugin_removed").await;
    assert_eq!(removed["name"], "pricing-standard");

    // Signing out ends the stream (the console then refreshes or signs in again).
    let r = s.post("/api/auth/logout", Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ended = tokio::time::timeout(WAIT, async { while events.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the stream outlived the session");
}
