//! Points and referrals through the real HTTP API: signup and referral
//! awards, claims, validation, the expiry job, summary and history.

use std::time::Instant;

use powerbank::core::{Db, now_ts};
use powerbank_tests::{Reply, Session, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const JOB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Registers `phone`, giving `code` as the referral code.
async fn register_with_code(s: &TestServer, phone: &str, code: &str) -> Reply {
    let token = s.verification_token(phone, "register").await;
    s.post("/api/auth/register", None, json!({"verification_token": token, "referral_code": code})).await
}

fn user_id(session: &Session) -> i64 {
    session.user["id"].as_i64().expect("user id")
}

fn code_of(session: &Session) -> String {
    session.user["referral_code"].as_str().expect("referral code").to_string()
}

fn db(s: &TestServer) -> Db {
    Db::open(&s.db_path(), 1).expect("open the server's database")
}

/// Every entry of the caller's points history, following the cursor.
async fn full_history(s: &TestServer, token: &str, limit: i64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/points/history?limit={limit}&cursor={c}"),
            None => format!("/api/points/history?limit={limit}"),
        };
        let r = s.get(&path, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "history: {}", r.body);
        let page = r.body["results"].as_array().unwrap().clone();
        assert!(page.len() <= usize::try_from(limit).unwrap());
        all.extend(page);
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

async fn summary(s: &TestServer, token: &str) -> Value {
    let r = s.get("/api/points/summary", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "summary: {}", r.body);
    r.body
}

/// The caller's `points_awarded` notifications' data, newest first.
async fn points_notifications(s: &TestServer, token: &str) -> Vec<Value> {
    let r = s.get("/api/user/notifications", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["template"] == "points_awarded")
        .map(|n| n["data"].clone())
        .collect()
}

fn assert_adds_up(summary: &Value) {
    let n = |k: &str| summary[k].as_i64().unwrap_or_else(|| panic!("{k} in {summary}"));
    assert_eq!(n("balance"), n("total_earned") - n("total_spent") - n("total_expired"), "{summary}");
}

#[tokio::test]
async fn signup_gives_points_with_a_ledger_row() {
    let s = TestServer::start().await;
    let user = s.register("9841100001").await;
    let history = full_history(&s, &user.access, 20).await;
    assert_eq!(history.len(), 1, "{history:?}");
    let row = &history[0];
    assert_eq!((row["direction"].as_str(), row["kind"].as_str()), (Some("credit"), Some("earned")));
    assert_eq!((row["points"].as_i64(), row["balance_after"].as_i64()), (Some(50), Some(50)));
    assert_eq!(row["reason"], "signup");
    assert_eq!(row["remaining"], 50);
    // Points expire after the plugin's 365 days.
    let expires = chrono::DateTime::parse_from_rfc3339(row["expires_at"].as_str().unwrap()).unwrap().timestamp();
    let days = (expires - now_ts()) as f64 / 86_400.0;
    assert!((364.9..=365.1).contains(&days), "expires in {days} days");

    let sum = summary(&s, &user.access).await;
    assert_eq!(sum["balance"], 50);
    assert_eq!(sum["total_earned"], 50);
    assert_eq!(sum["value_paisa"], 500, "10 points = NPR 1");
    assert_eq!(sum["value_npr"], "5.00");
    assert_adds_up(&sum);
    let wallet = s.get("/api/wallet/balance", Some(&user.access)).await;
    assert_eq!(wallet.body["points"], 50, "{}", wallet.body);

    // Registering is the news: the new user gets no notification for it.
    assert!(points_notifications(&s, &user.access).await.is_empty());
}

#[tokio::test]
async fn a_code_given_at_registration_pays_both_sides_and_records_the_chain() {
    let s = TestServer::start().await;
    let referrer = s.register("9841100011").await;
    let code = code_of(&referrer);
    // Codes are case-insensitive and trimmed.
    let r = register_with_code(&s, "9841100012", &format!(" {} ", code.to_lowercase())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let referee = Session::from_body(&r.body);

    let referee_rows = full_history(&s, &referee.access, 20).await;
    let reasons: Vec<(&str, i64)> =
        referee_rows.iter().map(|r| (r["reason"].as_str().unwrap(), r["points"].as_i64().unwrap())).collect();
    assert_eq!(reasons, [("referred signup", 50), ("signup", 50)], "newest first");
    assert_eq!(summary(&s, &referee.access).await["balance"], 100);

    let referrer_rows = full_history(&s, &referrer.access, 20).await;
    assert_eq!(referrer_rows[0]["reason"], "referral");
    assert_eq!(referrer_rows[0]["points"], 100);
    assert_eq!(referrer_rows[0]["balance_after"], 150);
    assert_eq!(summary(&s, &referrer.access).await["balance"], 150);
    // The referrer is told; the referee sees it in the registration itself.
    assert_eq!(
        points_notifications(&s, &referrer.access).await,
        [json!({"points": 100, "reason": "referral", "balance": 150})]
    );
    assert!(points_notifications(&s, &referee.access).await.is_empty());

    let mine = s.get("/api/referral/my-code", Some(&referrer.access)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["code"], code.as_str());
    assert_eq!(mine.body["referred_count"], 1);
    assert_eq!(mine.body["points_earned"], 100);
    assert_eq!(mine.body["referee_bonus_points"], 50);
    assert!(mine.body["share_text"].as_str().unwrap().contains(&code));

    // The chain: who referred whom, with what each side got.
    let (a, b) = (user_id(&referrer), user_id(&referee));
    let row: (i64, i64, String, String, String, i64, i64) = db(&s)
        .read(move |c| {
            Ok(c.query_row(
                "SELECT referrer_id, referee_id, code, status, source, referrer_points, referee_points
                 FROM referrals WHERE referee_id = ?1",
                [b],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(row, (a, b, code.clone(), "completed".into(), "signup".into(), 100, 50));

    // A code settled at registration cannot be claimed again.
    let again = s.post("/api/referral/claim", Some(&referee.access), json!({"code": code})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.error_code(), "already_referred");
}

#[tokio::test]
async fn registration_with_an_unknown_code_is_refused_and_the_token_kept() {
    let s = TestServer::start().await;
    let token = s.verification_token("9841100021", "register").await;
    let r = s.post("/api/auth/register", None, json!({"verification_token": token, "referral_code": "NOSUCH99"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.error_code(), "referral_code_not_found");
    // Nothing was written: the same verification token still registers.
    let r = s.post("/api/auth/register", None, json!({"verification_token": token})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(summary(&s, &Session::from_body(&r.body).access).await["balance"], 50);
}

#[tokio::test]
async fn claim_after_registration_works_once_and_refuses_the_rest() {
    let s = TestServer::start().await;
    let referrer = s.register("9841100031").await;
    let user = s.register("9841100032").await;
    let code = code_of(&referrer);

    let own = s.post("/api/referral/claim", Some(&user.access), json!({"code": code_of(&user)})).await;
    assert_eq!(own.status, StatusCode::BAD_REQUEST, "{}", own.body);
    assert_eq!(own.error_code(), "self_referral");
    let unknown = s.post("/api/referral/claim", Some(&user.access), json!({"code": "NOSUCH99"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(unknown.error_code(), "referral_code_not_found");
    let malformed = s.post("/api/referral/claim", Some(&user.access), json!({"code": "no such!"})).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.error_code(), "validation_failed");
    let anonymous = s.post("/api/referral/claim", None, json!({"code": code})).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    // The older account cannot claim the newer one's code (no referral cycles).
    let backwards = s.post("/api/referral/claim", Some(&referrer.access), json!({"code": code_of(&user)})).await;
    assert_eq!(backwards.status, StatusCode::CONFLICT, "{}", backwards.body);
    assert_eq!(backwards.error_code(), "referral_not_allowed");

    let ok = s.post("/api/referral/claim", Some(&user.access), json!({"code": code})).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body, json!({"code": code, "points_awarded": 50, "balance": 100}));
    assert_eq!(summary(&s, &referrer.access).await["balance"], 150);
    assert_eq!(points_notifications(&s, &referrer.access).await.len(), 1);

    let twice = s.post("/api/referral/claim", Some(&user.access), json!({"code": code})).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    assert_eq!(twice.error_code(), "already_referred");
    assert_eq!(summary(&s, &user.access).await["balance"], 100, "nothing paid twice");

    let (id, a) = (user_id(&user), user_id(&referrer));
    let (source, referrer_id): (String, i64) = db(&s)
        .read(move |c| {
            Ok(c.query_row("SELECT source, referrer_id FROM referrals WHERE referee_id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
        .await
        .unwrap();
    assert_eq!((source.as_str(), referrer_id), ("claim", a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_by_one_user_pay_once() {
    let s = TestServer::start().await;
    let referrer = s.register("9841100041").await;
    let user = s.register("9841100042").await;
    let code = code_of(&referrer);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let request =
                s.http.post(s.url("/api/referral/claim")).bearer_auth(&user.access).json(&json!({"code": code}));
            tokio::spawn(async move { TestServer::read(request.send().await.unwrap()).await })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{:?}", replies.iter().map(|r| &r.body).collect::<Vec<_>>());
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(r.error_code(), "already_referred");
    }
    assert_eq!(summary(&s, &user.access).await["balance"], 100);
    assert_eq!(summary(&s, &referrer.access).await["balance"], 150);
}

#[tokio::test]
async fn claims_close_after_seven_days_and_deleted_referrers_are_unknown() {
    let s = TestServer::start().await;
    let referrer = s.register("9841100051").await;
    let late = s.register("9841100052").await;
    let gone = s.register("9841100053").await;
    let user = s.register("9841100054").await;

    let id = user_id(&late);
    db(&s)
        .write(move |tx| Ok(tx.execute("UPDATE users SET created_at = created_at - 8 * 86400 WHERE id = ?1", [id])?))
        .await
        .unwrap();
    let r = s.post("/api/referral/claim", Some(&late.access), json!({"code": code_of(&referrer)})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.error_code(), "claim_window_closed");

    let gone_code = code_of(&gone);
    let r = s.call(Method::DELETE, "/api/auth/account", Some(&gone.access), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s.post("/api/referral/claim", Some(&user.access), json!({"code": gone_code})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.error_code(), "referral_code_not_found");
    let v = s.get(&format!("/api/referral/validate?code={gone_code}"), None).await;
    assert_eq!(v.body["valid"], false);
}

#[tokio::test]
async fn validate_says_only_whether_a_code_is_usable() {
    let s = TestServer::start().await;
    let referrer = s.register("9841100061").await;
    let code = code_of(&referrer);

    // Public: no token needed.
    let r = s.get(&format!("/api/referral/validate?code={}", code.to_lowercase()), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"code": code, "valid": true, "referee_bonus_points": 50}), "no personal data");

    let r = s.get("/api/referral/validate?code=NOSUCH99", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"code": "NOSUCH99", "valid": false, "referee_bonus_points": null}));
    let r = s.get("/api/referral/validate?code=no%20such!", None).await;
    assert_eq!((r.status, &r.body["valid"]), (StatusCode::OK, &json!(false)));
    let r = s.get("/api/referral/validate", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

#[tokio::test]
async fn the_expiry_job_removes_exactly_the_expired_points() {
    let s = TestServer::start().await;
    let referrer = s.register("9841100071").await;
    let r = register_with_code(&s, "9841100072", &code_of(&referrer)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let referee = Session::from_body(&r.body);
    let a = user_id(&referrer);
    assert_eq!(summary(&s, &referrer.access).await["balance"], 150);

    // The referrer's signup grant (50) is past its date; the referral grant
    // (100) and everything of the referee's are not. Then the waiting expiry
    // run is made due, and the server's own worker runs it.
    let db = db(&s);
    db.write(move |tx| {
        let past = now_ts() - 60;
        let n = tx.execute(
            "UPDATE points_transactions SET expires_at = ?2 WHERE user_id = ?1 AND reason = 'signup'",
            [a, past],
        )?;
        assert_eq!(n, 1);
        Ok(tx.execute("UPDATE jobs SET run_at = 0 WHERE kind = 'points.expire' AND status = 'pending'", [])?)
    })
    .await
    .unwrap();
    let started = Instant::now();
    let expired = loop {
        let rows = full_history(&s, &referrer.access, 100).await;
        if let Some(row) = rows.iter().find(|r| r["kind"] == "expired") {
            break row.clone();
        }
        assert!(started.elapsed() < JOB_TIMEOUT, "the expiry job did not run: {rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(expired["direction"], "debit");
    assert_eq!(expired["points"], 50);
    assert_eq!(expired["balance_after"], 100);

    let sum = summary(&s, &referrer.access).await;
    assert_eq!((sum["balance"].as_i64(), sum["total_expired"].as_i64()), (Some(100), Some(50)));
    assert_adds_up(&sum);
    assert_eq!(summary(&s, &referee.access).await["balance"], 100, "the referee keeps everything");
    let rows = full_history(&s, &referrer.access, 100).await;
    assert_eq!(rows.iter().filter(|r| r["kind"] == "expired").count(), 1, "one expiry row: {rows:?}");

    // The job keeps itself going: the next run waits for the next hour.
    let (pending, next_run): (i64, i64) = db
        .read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*), MIN(run_at) FROM jobs WHERE kind = 'points.expire' AND status = 'pending'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(pending, 1);
    assert!(next_run > now_ts() && next_run <= now_ts() + 3600, "next run at {next_run}");
}

#[tokio::test]
async fn summary_adds_up_and_history_pages_only_the_callers_rows() {
    let s = TestServer::start().await;
    let referrer = s.register("9841100081").await;
    let code = code_of(&referrer);
    for phone in ["9841100082", "9841100083", "9841100084"] {
        let r = register_with_code(&s, phone, &code).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let a = user_id(&referrer);
    // Spend 30 points (the oldest grant, signup, goes first) and bring one
    // referral grant's expiry within 30 days.
    db(&s)
        .write(move |tx| {
            powerbank::ledger::points_spend(tx, a, 30, "spent", "rental payment", None)?;
            tx.execute(
                "UPDATE points_transactions SET expires_at = ?2
                 WHERE id = (SELECT MAX(id) FROM points_transactions WHERE user_id = ?1 AND reason = 'referral')",
                [a, now_ts() + 10 * 86_400],
            )?;
            Ok(())
        })
        .await
        .unwrap();

    let sum = summary(&s, &referrer.access).await;
    assert_eq!(sum["balance"], 320, "{sum}");
    assert_eq!(sum["total_earned"], 350);
    assert_eq!(sum["total_spent"], 30);
    assert_eq!(sum["total_expired"], 0);
    assert_eq!(sum["expiring_soon"], 100);
    assert!(sum["next_expiry_at"].is_string());
    assert_eq!(sum["value_paisa"], 3200);
    assert_eq!(sum["value_npr"], "32.00");
    assert_adds_up(&sum);

    // 5 rows in pages of 2: newest first, no overlap, none of anyone else's.
    let rows = full_history(&s, &referrer.access, 2).await;
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 5, "{rows:?}");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(rows[0]["kind"], "spent");
    assert_eq!(rows[0]["balance_after"], 320);
    let earned: i64 = rows.iter().filter(|r| r["direction"] == "credit").map(|r| r["points"].as_i64().unwrap()).sum();
    assert_eq!(earned, 350);
    let signup = rows.iter().find(|r| r["reason"] == "signup").unwrap();
    assert_eq!(signup["remaining"], 20, "spending took the oldest grant first");

    let other = s.register("9841100085").await;
    let theirs = full_history(&s, &other.access, 2).await;
    assert_eq!(theirs.len(), 1);
    assert!(!ids.contains(&theirs[0]["id"].as_i64().unwrap()));

    let r = s.get("/api/points/history?cursor=garbage", Some(&referrer.access)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = s.get("/api/points/history", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_points_endpoint_is_documented_with_schemas() {
    let s = TestServer::start().await;
    let doc = s.get("/api/openapi.json", None).await.body;
    let expect = [
        ("/api/points/history", "get", false, true),
        ("/api/points/summary", "get", false, true),
        ("/api/referral/my-code", "get", false, true),
        ("/api/referral/validate", "get", false, false),
        ("/api/referral/claim", "post", true, true),
    ];
    for (path, method, has_body, authed) in expect {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing from the OpenAPI document");
        if has_body {
            assert!(op["requestBody"]["content"]["application/json"]["schema"].is_object(), "{method} {path} body");
        }
        let responses = op["responses"].as_object().expect("responses");
        let ok = responses.iter().find(|(code, _)| code.starts_with('2')).expect("a success response");
        assert!(ok.1["content"]["application/json"]["schema"].is_object(), "{method} {path} success schema");
        assert!(
            responses.iter().any(|(code, r)| code.starts_with('4') && r["content"]["application/json"].is_object()),
            "{method} {path} documents its errors"
        );
        assert_eq!(op["security"].is_array(), authed, "{method} {path} security");
    }
    for schema in ["PointsEntry", "PointsSummary", "MyCodeOut", "ValidateOut", "ClaimRequest", "ClaimOut"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema} schema missing");
    }
}
