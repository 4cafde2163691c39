//! Accounts and devices: signing out stops the pushes of that session's
//! device, devices deregister, account deletion is refused while it would
//! lose a rental, a due or money, and pushes carry their platform's block.

use crate::support::{
    JOB_TIMEOUT, notifications,
    renting::{SN, WAIT, balance, customer, initiate, rental, rows, server, sql, station},
    submit_and_reject,
};
use powerbank_tests::{FakeFcm, Session, TestServer, fake_fcm::eventually, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOKEN_A: &str = "fcm-token-session-a-aaaaaaaaaa";
const TOKEN_B: &str = "fcm-token-session-b-bbbbbbbbbb";
const TOKEN_C: &str = "fcm-token-session-b-cccccccccc";

async fn device(s: &TestServer, token: &str, device_id: &str, fcm: &str, platform: &str) {
    let r = s
        .post("/api/user/device", Some(token), json!({"device_id": device_id, "fcm_token": fcm, "platform": platform}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn devices(s: &TestServer, token: &str) -> Vec<Value> {
    let r = s.get("/api/user/devices", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().cloned().unwrap()
}

fn active(list: &[Value], device_id: &str) -> bool {
    list.iter().find(|d| d["device_id"] == device_id).unwrap_or_else(|| panic!("no {device_id}"))["is_active"]
        .as_bool()
        .unwrap()
}

async fn sign_in_again(s: &TestServer, phone: &str) -> Session {
    let token = s.verification_token(phone, "login").await;
    let r = s.post("/api/auth/login", None, json!({"verification_token": token})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    Session::from_body(&r.body)
}

#[tokio::test]
async fn logout_silences_its_device_and_devices_deregister_and_pushes_carry_platform_blocks() {
    let fcm = FakeFcm::start().await;
    let s = TestServer::start_with_fcm(&fcm).await;
    let admin = s.admin().await;
    let phone = "9841800001";
    let a = s.register(phone).await;
    let b = sign_in_again(&s, phone).await;
    let stranger = s.register("9841800002").await;
    device(&s, &a.access, "phone-a", TOKEN_A, "android").await;
    device(&s, &b.access, "ipad-b", TOKEN_B, "ios").await;
    device(&s, &b.access, "pixel-c", TOKEN_C, "android").await;

    // Signing out of session A silences phone-a only.
    let r = s.post("/api/auth/logout", Some(&a.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = devices(&s, &b.access).await;
    assert!(!active(&list, "phone-a"));
    assert!(active(&list, "ipad-b") && active(&list, "pixel-c"));

    // Deregistering: someone else's device is not found, one's own goes.
    let r = s.call(Method::DELETE, "/api/user/device/pixel-c", Some(&stranger.access), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = s.call(Method::DELETE, "/api/user/device/pixel-c", Some(&b.access), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = s.call(Method::DELETE, "/api/user/device/pixel-c", Some(&b.access), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(devices(&s, &b.access).await.len(), 2);
    let r = s.call(Method::DELETE, "/api/user/device/ipad-b", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A push now reaches the iPad only, with its APNs block.
    submit_and_reject(&s, &b.access, &admin.access, "photo unreadable").await;
    eventually("a push", JOB_TIMEOUT, || async { (!fcm.messages().is_empty()).then_some(()) }).await;
    // Give a push to a silenced device the time to show up, if it were sent.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pushed = fcm.messages();
    let tokens: Vec<&str> = pushed.iter().map(|m| m.token.as_str()).collect();
    assert!(tokens.iter().all(|t| *t == TOKEN_B), "pushes went to {tokens:?}");
    let ios = &pushed[0];
    assert!(ios.android.is_none());
    let apns = ios.apns.as_ref().expect("an apns block");
    assert_eq!(apns["headers"]["apns-priority"], "5", "a KYC answer is not urgent");
    assert_eq!(apns["payload"]["aps"]["sound"], "default");
    let unread = notifications(&s, &b.access, "").await.iter().filter(|n| n["is_read"] == false).count();
    assert!(unread >= 1);
    assert_eq!(
        apns["payload"]["aps"]["badge"].as_u64().unwrap() as usize,
        unread,
        "the badge counts unread notifications"
    );

    // An Android install gets the android block: priority and channel.
    device(&s, &b.access, "pixel-d", TOKEN_C, "android").await;
    let r = s.call(Method::DELETE, "/api/user/device/ipad-b", Some(&b.access), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let before = fcm.messages().len();
    submit_and_reject(&s, &b.access, &admin.access, "photo unreadable again").await;
    let android = eventually("an android push", JOB_TIMEOUT, || async {
        fcm.messages().into_iter().skip(before).find(|m| m.token == TOKEN_C)
    })
    .await;
    assert!(android.apns.is_none());
    let block = android.android.expect("an android block");
    assert_eq!(block["priority"], "NORMAL");
    assert_eq!(block["notification"]["channel_id"], "general");
}

async fn delete_account(s: &TestServer, token: &str, query: &str) -> powerbank_tests::Reply {
    s.call(Method::DELETE, &format!("/api/auth/account{query}"), Some(token), None).await
}

#[tokio::test]
async fn account_deletion_waits_for_rentals_dues_and_money() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841800011", 10_000).await;
    let uid = user.user["id"].as_i64().unwrap();
    let still_there = || async { s.get("/api/auth/me", Some(&user.access)).await.status == StatusCode::OK };

    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    let r = delete_account(&s, &user.access, "?forfeit_wallet_balance=true").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "active_rental"), "{}", r.body);
    assert!(still_there().await);

    // Returned an hour late with an empty wallet: a due.
    sql(&s, "UPDATE rentals SET started_at = started_at - 7200, due_at = due_at - 5400 WHERE id = ?1", [id]);
    crate::support::renting::wallet_add(&s, &user, -5_000).await;
    let free = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free, &bank, 70).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "completed" }).await);
    let due = rental(&s, &user, id).await["unpaid_due_paisa"].as_i64().unwrap();
    assert!(due > 0, "a due is recorded");
    let r = delete_account(&s, &user.access, "?forfeit_wallet_balance=true").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "unpaid_due"), "{}", r.body);
    assert_eq!(r.body["error"]["details"]["unpaid_due_paisa"], due);
    assert!(still_there().await);

    // Due paid, money left: refused unless it is given up.
    crate::support::renting::wallet_add(&s, &user, due + 2_500).await;
    let r =
        s.post(&format!("/api/rentals/{id}/pay-due"), Some(&user.access), json!({"payment_method": "wallet"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(balance(&s, &user).await, 2_500);
    let r = delete_account(&s, &user.access, "").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "wallet_balance"), "{}", r.body);
    assert_eq!(r.body["error"]["details"]["balance_paisa"], 2_500);
    let r = delete_account(&s, &user.access, "?forfeit_wallet_balance=maybe").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(still_there().await);
    assert_eq!(balance(&s, &user).await, 2_500, "nothing moved on a refusal");

    let r = delete_account(&s, &user.access, "?forfeit_wallet_balance=true").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(rows(&s, "SELECT balance_paisa FROM wallets WHERE user_id = ?1", [uid])[0][0], 0);
    let forfeited = rows(
        &s,
        "SELECT direction, amount_paisa FROM wallet_transactions WHERE user_id = ?1 AND kind = 'adjustment'
         ORDER BY id DESC LIMIT 1",
        [uid],
    );
    assert_eq!(forfeited[0], vec![json!("debit"), json!(2_500)], "the forfeit is a ledger row");
    assert!(!still_there().await);
}

#[tokio::test]
async fn a_pending_refund_lets_an_account_with_money_go() {
    let gw = Gateways::start().await;
    let s = server(&gw).await;
    let home = station(&s, SN, |_| {}).await;
    let user = customer(&s, "9841800021", 10_000).await;
    let r = initiate(&s, &user, SN, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    sql(&s, "UPDATE rentals SET started_at = started_at - 1800 WHERE id = ?1", [id]);
    let free = home.slots().iter().find(|slot| slot.bank.is_none()).map(|slot| slot.index).unwrap();
    home.return_bank(free, &bank, 70).await.unwrap();
    assert!(wait_for(WAIT, || async { rental(&s, &user, id).await["status"] == "completed" }).await);
    let txs = s.get("/api/transactions?kind=rental", Some(&user.access)).await;
    let tid = txs.body["results"][0]["id"].as_i64().unwrap();
    let r = s
        .post(&format!("/api/payment/refund/{tid}"), Some(&user.access), json!({"reason": "closing my account"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(balance(&s, &user).await, 5_000);
    let r = delete_account(&s, &user.access, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
