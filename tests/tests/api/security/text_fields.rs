//! Text other people read (names, addresses, issue reports) cannot carry a
//! right-to-left override or other invisible reordering characters.

use powerbank::core::Db;
use powerbank_tests::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

const RLO: &str = "\u{202E}";

#[tokio::test]
async fn bidi_overrides_are_refused_in_names_addresses_and_reports() {
    let s = TestServer::start().await;
    powerbank::demo::seed_if_empty(&Db::open(&s.db_path(), 1).unwrap()).unwrap();

    let token = s.verification_token("9841000301", "register").await;
    let r = s
        .post("/api/auth/register", None, json!({"verification_token": token, "full_name": format!("Ram {RLO}apahT")}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.error_code(), "validation_failed");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("U+202E"), "{}", r.body);

    let user = s.register("9841000302").await;
    for field in ["full_name", "address"] {
        let body = json!({ field: format!("Jawalakhel{RLO}3 ,rupitlaL") });
        let r = s.call(Method::PUT, "/api/profile", Some(&user.access), Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
    }
    for hidden in ["\u{2066}isolated\u{2069}", "zero\u{200B}width", "nul\u{0}"] {
        let body = json!({"full_name": format!("Ram {hidden}")});
        let r = s.call(Method::PUT, "/api/profile", Some(&user.access), Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{hidden:?}: {}", r.body);
    }
    // Nepali names keep their joiners.
    let nepali = "\u{915}\u{94D}\u{200D}\u{937}\u{947}\u{924}\u{94D}\u{930}";
    let r = s.call(Method::PUT, "/api/profile", Some(&user.access), Some(json!({"full_name": nepali}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let report =
        json!({"issue_type": "damaged", "description": format!("The slot is fine {RLO}yllaer ton"), "images": []});
    let r = s.post("/api/stations/KTM-THAMEL-01/report-issue", Some(&user.access), report).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let report = json!({"issue_type": "damaged", "description": "Slot 3 latch is broken\nand sparks", "images": []});
    let r = s.post("/api/stations/KTM-THAMEL-01/report-issue", Some(&user.access), report).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}
