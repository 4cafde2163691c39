//! `GET /metrics`: never public by default, and what it reports moves with
//! the traffic (read with a Prometheus text parser, as Prometheus would).

use std::time::Duration;

use powerbank_tests::{
    TestServer,
    mqtt::{Broker, link_config, wait_for},
};
use prometheus_parse::{Scrape, Value};
use reqwest::StatusCode;

use crate::support::renting;

const TOKEN: &str = "metrics-token-0123456789";

async fn scrape_text(s: &TestServer) -> String {
    let r = s.http.get(s.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    r.text().await.unwrap()
}

async fn scrape(s: &TestServer) -> Scrape {
    let text = scrape_text(s).await;
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the sample `name` whose labels include all of `labels`
/// (0 when there is none yet); a histogram gives its count.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_are_not_served_without_a_token() {
    let s = TestServer::start().await;
    let r = s.get("/metrics", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.error_code(), "not_found");
    assert!(!r.body.to_string().contains("powerbank_"), "nothing may leak: {}", r.body);
}

#[tokio::test]
async fn the_token_is_required_and_checked() {
    let s = TestServer::start_with(|c| c.metrics.token = Some(TOKEN.into())).await;
    let r = s.get("/metrics", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.error_code(), "unauthorized");
    let r = s.get("/metrics", Some("metrics-token-0123456788")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(!r.body.to_string().contains("powerbank_"), "nothing may leak: {}", r.body);
    let scraped = scrape(&s).await;
    assert!(value(&scraped, "powerbank_gauges_refreshed_at", &[]) > 0.0, "the gauges were refreshed at start");
}

#[tokio::test]
async fn a_separate_listener_serves_only_metrics() {
    let port = powerbank_tests::mqtt::free_port();
    let s = TestServer::start_with(move |c| {
        c.metrics.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    // The listener opens as the server starts serving, just after the API's.
    let mut served = None;
    for _ in 0..200 {
        if let Ok(r) = s.http.get(format!("{base}/metrics")).send().await {
            served = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = served.expect("the metrics listener answers");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("powerbank_rentals_active"));
    let r = s.http.get(format!("{base}/api/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "only /metrics is served there");
    // The API listener still keeps it to itself: no token is configured.
    assert_eq!(s.get("/metrics", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_rental_moves_the_metrics() {
    let link = link_config(Broker::Embedded, 60);
    let s = TestServer::start_with(move |c| {
        c.link = link;
        c.rentals.eject_timeout = renting::EJECT_TIMEOUT * 5;
        c.metrics.token = Some(TOKEN.into());
        c.metrics.refresh = Duration::from_millis(200);
    })
    .await;
    let db = powerbank::core::Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let admin = s.admin().await;
    assert!(
        wait_for(renting::WAIT, || async {
            s.get("/api/admin/station-link", Some(&admin.access)).await.body["state"] == "connected"
        })
        .await
    );
    let _station = renting::station(&s, renting::SN, |_| {}).await;
    let user = renting::customer(&s, "+9779800000401", 50_000).await;
    assert!(
        wait_for(renting::WAIT, || async {
            value(&scrape(&s).await, "powerbank_stations", &[("status", "online")]) >= 1.0
        })
        .await,
        "the station's heartbeat shows in the stations gauge"
    );

    let before = scrape(&s).await;
    assert_eq!(value(&before, "powerbank_mqtt_connected", &[]), 1.0);
    assert_eq!(value(&before, "powerbank_rentals_active", &[]), 0.0);
    // Route templates, not raw paths: the detail read by the simulator setup.
    // (Checked on the text: prometheus-parse cuts label values at a `}`.)
    let text = scrape_text(&s).await;
    assert!(text.contains(r#"route="/api/stations/{sn}",status="200"}"#), "{text}");
    assert!(!text.contains(renting::SN), "no raw paths: {text}");
    let initiate = [("method", "POST"), ("route", "/api/rentals/initiate"), ("status", "201")];

    let r = renting::initiate(&s, &user, renting::SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let after = scrape(&s).await;
    assert_eq!(
        value(&after, "powerbank_http_requests_total", &initiate),
        value(&before, "powerbank_http_requests_total", &initiate) + 1.0
    );
    assert!(
        value(&after, "powerbank_http_request_duration_seconds", &[("route", "/api/rentals/initiate")]) >= 1.0,
        "the request's latency is in the histogram"
    );
    assert_eq!(
        value(&after, "powerbank_station_command_round_trip_seconds", &[("command", "eject"), ("outcome", "ejected")]),
        1.0
    );
    assert!(
        value(&after, "powerbank_mqtt_messages_sent_total", &[])
            > value(&before, "powerbank_mqtt_messages_sent_total", &[])
    );
    assert!(
        value(&after, "powerbank_mqtt_messages_received_total", &[])
            > value(&before, "powerbank_mqtt_messages_received_total", &[])
    );
    let pricing = [("kind", "pricing")];
    assert!(
        value(&after, "powerbank_plugin_calls_total", &pricing)
            > value(&before, "powerbank_plugin_calls_total", &pricing),
        "the rental was priced by the pricing plugin"
    );
    assert!(
        after.samples.iter().any(|x| x.metric == "powerbank_plugin_calls_total"
            && x.labels.get("version").is_some_and(|v| !v.is_empty())
            && x.labels.get("sha").is_some_and(|v| v.len() == 12)),
        "plugin calls name the release"
    );
    // The table gauges follow within a refresh.
    assert!(
        wait_for(renting::WAIT, || async {
            let now = scrape(&s).await;
            value(&now, "powerbank_rentals_active", &[]) == 1.0
                && value(&now, "powerbank_power_banks", &[("status", "rented")])
                    == value(&before, "powerbank_power_banks", &[("status", "rented")]) + 1.0
        })
        .await,
        "the active rental and the rented bank show in the gauges"
    );
}
