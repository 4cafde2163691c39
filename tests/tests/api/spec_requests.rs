//! Requests shaped as in the spec: a mobile app written against it works
//! unchanged (field names, trailing slashes, issue types, rental fields,
//! images on rental issue reports).

use std::time::Duration;

use crate::support::{
    PNG,
    renting::{customer, initiate, rental},
};
use powerbank::core::Db;
use powerbank_tests::{
    TestServer,
    mqtt::{Broker, link_config, sim_config, start_sim, wait_for},
};
use reqwest::{StatusCode, multipart};
use serde_json::json;

const SN: &str = "KTM-THAMEL-01";
const WAIT: Duration = Duration::from_secs(10);

async fn rental_server() -> TestServer {
    let link = link_config(Broker::Embedded, 60);
    let s = TestServer::start_with(move |c| {
        c.link = link;
        c.rentals.eject_timeout = Duration::from_secs(2);
    })
    .await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let admin = s.admin().await;
    assert!(
        wait_for(WAIT, || async {
            s.get("/api/admin/station-link", Some(&admin.access)).await.body["state"] == "connected"
        })
        .await
    );
    s
}

/// Uploads a PNG for a report as `token`'s user; returns its URL.
async fn upload_image(s: &TestServer, token: &str) -> String {
    let part = multipart::Part::bytes(PNG.to_vec()).file_name("photo.png").mime_str("image/png").unwrap();
    let form = multipart::Form::new().part("file", part).text("purpose", "rental_issue");
    let r =
        TestServer::read(s.http.post(s.url("/api/upload")).bearer_auth(token).multipart(form).send().await.unwrap())
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "upload: {}", r.body);
    r.body["url"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn otp_takes_email_or_phone_as_the_spec_names_it() {
    let s = TestServer::start().await;
    let r = s.post("/api/auth/get-otp", None, json!({"email_or_phone": "9841500001", "purpose": "register"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let code = s.sms.last_code().unwrap();
    let r = s
        .post(
            "/api/auth/verify-otp",
            None,
            json!({"email_or_phone": "+977 9841500001", "otp": code, "purpose": "register"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let token = r.body["verification_token"].as_str().unwrap().to_string();
    let r = s.post("/api/auth/register", None, json!({"verification_token": token})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["user"]["phone"], "+9779841500001");

    // Both names at once, or neither, is a bad request.
    let r = s
        .post(
            "/api/auth/get-otp",
            None,
            json!({"email_or_phone": "9841500002", "identifier": "9841500002", "purpose": "register"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = s.post("/api/auth/get-otp", None, json!({"purpose": "register"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.error_code(), "validation_failed");
}

#[tokio::test]
async fn trailing_slashes_reach_the_same_routes() {
    let s = TestServer::start().await;
    let user = s.register("9841500003").await;
    let plain = s.get("/api/stations", None).await;
    let slashed = s.get("/api/stations/", None).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    assert_eq!(slashed.status, StatusCode::OK, "{}", slashed.body);
    assert_eq!(plain.body, slashed.body);
    // With a query string, with a token, and for a POST.
    let r = s.get("/api/stations/?limit=1", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s.get("/api/auth/me/", Some(&user.access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], user.user["id"]);
    let r = s.post("/api/auth/get-otp/", None, json!({"identifier": "9841500004", "purpose": "register"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Unknown routes stay unknown, slash or not; the console keeps its own `/console/`.
    let r = s.get("/api/no-such-thing/", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    let r = s.get("/console/", None).await;
    assert_ne!(r.status, StatusCode::NOT_FOUND, "the console's index (or its not-built page)");
}

#[tokio::test]
async fn station_issue_types_include_the_specs() {
    let s = TestServer::start().await;
    let db = Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let user = s.register("9841500005").await;
    for kind in ["dirty", "location_wrong", "slot_stuck"] {
        let r = s
            .post(
                &format!("/api/stations/{SN}/report-issue/"),
                Some(&user.access),
                json!({"issue_type": kind, "description": "Reported from the spec's app"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{kind}: {}", r.body);
        assert_eq!(r.body["issue_type"], kind);
    }
    let r = s
        .post(
            &format!("/api/stations/{SN}/report-issue"),
            Some(&user.access),
            json!({"issue_type": "haunted", "description": "Reported from the spec's app"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

#[tokio::test]
async fn rentals_say_whether_they_came_back_on_time_and_issue_reports_carry_own_uploads() {
    let s = rental_server().await;
    let admin = s.admin().await;
    let home = start_sim(&s, &admin, SN, sim_config(&s)).await;
    let user = customer(&s, "9841500006", 20_000).await;
    let other = s.register("9841500007").await;

    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body["is_returned_on_time"].is_null(), "out, so not yet known: {}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();

    // Up to five of the user's own images.
    let mine: Vec<String> = upload_images(&s, &user.access, 6).await;
    let report = |images: &[String]| json!({"issue_type": "not_charging", "description": "The bank does not charge my phone", "images": images});
    let r = s.post(&format!("/api/rentals/{id}/report-issue"), Some(&user.access), report(&mine[..5])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["images"], json!(mine[..5]));
    let r = s.post(&format!("/api/rentals/{id}/report-issue"), Some(&user.access), report(&mine)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "six images: {}", r.body);
    // Someone else's upload is refused, and nothing is recorded.
    let theirs = upload_image(&s, &other.access).await;
    let r = s
        .post(&format!("/api/rentals/{id}/report-issue"), Some(&user.access), report(&[mine[0].clone(), theirs]))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.error_code(), "upload_not_yours");
    let r = s
        .post(
            &format!("/api/rentals/{id}/report-issue"),
            Some(&user.access),
            report(&["https://evil.example/x.png".to_string()]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let stored = crate::support::renting::rows(&s, "SELECT COUNT(*) FROM rental_issues WHERE rental_id = ?1", [id]);
    assert_eq!(stored[0][0], 1);
    // Someone else's rental is not found.
    let r = s.post(&format!("/api/rentals/{id}/report-issue"), Some(&other.access), report(&[])).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    let free_slot = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free_slot, &bank, 80).await.unwrap();
    assert!(wait_for(WAIT, || async { !rental(&s, &user, id).await["returned_at"].is_null() }).await);
    let done = rental(&s, &user, id).await;
    assert_eq!(done["is_returned_on_time"], true, "{done}");

    // A rental returned after its due time says so.
    crate::support::renting::sql(&s, "UPDATE rentals SET due_at = returned_at - 60 WHERE id = ?1", [id]);
    assert_eq!(rental(&s, &user, id).await["is_returned_on_time"], false);
}

async fn upload_images(s: &TestServer, token: &str, n: usize) -> Vec<String> {
    let mut urls = Vec::new();
    for _ in 0..n {
        urls.push(upload_image(s, token).await);
    }
    urls
}
