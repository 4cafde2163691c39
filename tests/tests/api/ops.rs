//! Running a site: backups taken while the server serves restore to
//! databases whose balances equal their ledgers, scheduled backups with
//! retention, refusals that change nothing, and the offline API docs page.

use std::{path::Path, time::Duration};

use powerbank::{
    config::Config,
    ops::{backup, restore, verify},
};
use powerbank_tests::{Session, TestServer, fake_gateways::Gateways, mqtt::wait_for};
use reqwest::StatusCode;
use serde_json::json;
use station_sim::SimStation;

use crate::support::renting::{self, OTHER_SN, SN, WAIT, customer, initiate, rental};

/// A Khalti top-up the whole way: intent, payment at the (fake) gateway, verify.
async fn top_up(s: &TestServer, gw: &Gateways, user: &Session, paisa: i64) {
    let r = s
        .post("/api/wallet/topup-intent", Some(&user.access), json!({"amount_paisa": paisa, "gateway": "khalti"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "topup-intent: {}", r.body);
    let (intent, pidx) =
        (r.body["id"].as_str().unwrap().to_string(), r.body["gateway_reference"].as_str().unwrap().to_string());
    gw.khalti.complete(&pidx);
    let r = s.post("/api/payment/verify-topup", Some(&user.access), json!({"intent_id": intent, "pidx": pidx})).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("credited")), "{}", r.body);
}

/// Rents at `from` (paid from the wallet) and returns the bank to `to`, which
/// must have a free slot.
async fn rent_and_return(s: &TestServer, user: &Session, from: &str, to: &SimStation) {
    let r = initiate(s, user, from, "wallet", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "initiate: {}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let bank = r.body["power_bank"].as_str().unwrap().to_string();
    let slot = to.slots().iter().find(|slot| slot.bank.is_none()).expect("an empty slot to return to").index;
    to.return_bank(slot, &bank, 60).await.unwrap();
    // Returned within the free window, so cancelled and refunded: a third ledger row.
    assert!(
        wait_for(WAIT, || async {
            matches!(rental(s, user, id).await["status"].as_str(), Some("completed" | "cancelled"))
        })
        .await,
        "{}",
        rental(s, user, id).await
    );
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test]
async fn backups_taken_during_top_ups_and_rentals_restore_to_balanced_ledgers() {
    let gw = Gateways::start().await;
    let s = renting::server(&gw).await;
    let thamel = renting::station(&s, SN, |_| {}).await;
    let durbar = renting::station(&s, OTHER_SN, |_| {}).await;
    let mut customers = Vec::new();
    for phone in ["9841700001", "9841700002", "9841700003"] {
        customers.push(customer(&s, phone, 0).await);
    }

    // The stream: every customer tops up, rents at one station and returns at
    // the other, round after round, while backups are taken beside it.
    let (done_tx, mut done) = tokio::sync::oneshot::channel::<()>();
    let stream = {
        let s = &s;
        let gw = &gw;
        let customers = &customers;
        async move {
            for round in 0..2 {
                for user in customers {
                    top_up(s, gw, user, 20_000).await;
                    // The bank goes back into a free slot of the station it came from.
                    if round % 2 == 0 {
                        rent_and_return(s, user, SN, &thamel).await;
                    } else {
                        rent_and_return(s, user, OTHER_SN, &durbar).await;
                    }
                }
            }
            let _ = done_tx.send(());
        }
    };
    let backups_dir = tempfile::tempdir().unwrap();
    let config = s.config().clone();
    let taking = async {
        let mut taken = Vec::new();
        loop {
            let (config, dir) = (config.clone(), backups_dir.path().to_path_buf());
            let outcome = tokio::task::spawn_blocking(move || backup::backup(&config, &dir, 0)).await.unwrap().unwrap();
            taken.push(outcome);
            if done.try_recv().is_ok() || taken.len() >= 8 {
                return taken;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    };
    let ((), mut taken) = tokio::join!(stream, taking);
    // And one of the quiet state after the stream.
    let (config2, dir) = (config.clone(), backups_dir.path().to_path_buf());
    taken.push(tokio::task::spawn_blocking(move || backup::backup(&config2, &dir, 0)).await.unwrap().unwrap());

    let ledger_rows: Vec<i64> = taken.iter().map(|b| b.manifest.counts["wallet_transactions"]).collect();
    assert!(ledger_rows.windows(2).all(|w| w[0] <= w[1]), "backups follow the stream: {ledger_rows:?}");
    assert!(ledger_rows.first() < ledger_rows.last(), "the backups were taken while money moved: {ledger_rows:?}");
    // The backup after the stream holds exactly what the live database holds.
    let live = rusqlite::Connection::open_with_flags(s.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    assert_eq!(taken.last().unwrap().manifest.counts, backup::table_counts(&live).unwrap());
    // 3 customers x 2 rounds: a top-up, a rental charge and its refund each.
    assert_eq!(*ledger_rows.last().unwrap(), 18);
    assert_eq!(backup::list(backups_dir.path()).unwrap().len(), taken.len());

    for outcome in &taken {
        let m = &outcome.manifest;
        assert_eq!(m.integrity_check, "ok");
        assert!(m.files.iter().any(|f| f.path.starts_with("private-media/")), "KYC uploads are in the backup");
        let target = tempfile::tempdir().unwrap();
        let restored_config = Config::for_tests(target.path());
        let restored = restore::restore(&restored_config, &outcome.dir).unwrap();
        assert!(restored.report.is_clean(), "{:?}: {:?}", outcome.dir, restored.report);
        assert!(restored.set_aside.is_none(), "nothing was there to set aside");
        let conn = rusqlite::Connection::open(&restored_config.db_path).unwrap();
        assert_eq!(backup::table_counts(&conn).unwrap(), m.counts, "counts equal the manifest");
        let wallets: i64 = conn.query_row("SELECT SUM(balance_paisa) FROM wallets", [], |r| r.get(0)).unwrap();
        assert_eq!(wallets, m.wallet_total_paisa);
        let ledger: i64 = conn
            .query_row(
                "SELECT SUM(CASE direction WHEN 'credit' THEN amount_paisa ELSE -amount_paisa END) FROM wallet_transactions",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        assert_eq!(wallets, ledger, "balances equal their ledger");
        for file in m.files.iter().skip(1) {
            let (dir, name) = file.path.split_once('/').unwrap();
            let base = if dir == "media" { restored_config.media_dir() } else { restored_config.private_media_dir() };
            assert_eq!(sha256_of(&base.join(name)), file.sha256, "{} restored", file.path);
        }
    }
    // The final state: what the customers see in their wallets.
    let mut wallets = 0;
    for user in &customers {
        wallets += renting::balance(&s, user).await;
    }
    assert_eq!(taken.last().unwrap().manifest.wallet_total_paisa, wallets);
    assert_eq!(wallets, 3 * 2 * 20_000, "free returns refunded every rental");
}

#[tokio::test]
async fn a_restore_over_a_live_database_or_from_a_tampered_backup_changes_nothing() {
    let s = TestServer::start().await;
    let user = s.register("9841700010").await;
    crate::support::upload_png(&s, &user.access).await;
    let backups = tempfile::tempdir().unwrap();
    let taken = backup::backup(s.config(), backups.path(), 0).unwrap();

    // The server has the database open: refused, and the file is untouched.
    let before = sha256_of(&s.db_path());
    let err = restore::restore(s.config(), &taken.dir).unwrap_err();
    assert!(format!("{err:#}").contains("in use"), "{err:#}");
    assert_eq!(sha256_of(&s.db_path()), before);
    assert!(s.get("/api/auth/me", Some(&user.access)).await.status.is_success(), "the server still serves");

    // A backup whose files do not match the manifest: refused before anything moves.
    let target = tempfile::tempdir().unwrap();
    let config = Config::for_tests(target.path());
    std::fs::create_dir_all(&config.data_dir).unwrap();
    std::fs::write(&config.db_path, b"the current database").unwrap();
    let upload = taken.manifest.files.iter().find(|f| f.path.starts_with("private-media/")).unwrap();
    std::fs::write(taken.dir.join(&upload.path), b"not the uploaded bytes").unwrap();
    let err = restore::restore(&config, &taken.dir).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("does not match its manifest") && text.contains(&upload.path), "{text}");
    assert_eq!(std::fs::read(&config.db_path).unwrap(), b"the current database");
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 1, "nothing set aside or copied");

    std::fs::remove_file(taken.dir.join(backup::MANIFEST)).unwrap();
    let err = restore::restore(&config, &taken.dir).unwrap_err();
    assert!(format!("{err:#}").contains("not a powerbank backup"), "{err:#}");
}

#[tokio::test]
async fn a_backup_into_an_unusable_directory_fails_clearly_and_leaves_nothing() {
    let s = TestServer::start().await;
    let parent = tempfile::tempdir().unwrap();
    // A path under a regular file cannot be a directory, even for root.
    let file = parent.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = backup::backup(s.config(), &file.join("backups"), 7).unwrap_err();
    assert!(format!("{err:#}").contains("cannot be created"), "{err:#}");
    let err = backup::backup(s.config(), &file, 7).unwrap_err();
    assert!(format!("{err:#}").contains("not-a-dir"), "{err:#}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn the_server_takes_scheduled_backups_and_keeps_the_newest() {
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().to_path_buf();
    let s = TestServer::start_with(move |c| {
        c.backup = Some(powerbank::ops::BackupSchedule { dir, every: Duration::from_secs(1), keep: 2 })
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    let mut most = 0;
    let enough = wait_for(Duration::from_secs(30), || {
        let list = backup::list(backups.path()).unwrap();
        most = most.max(list.len());
        seen.extend(list);
        std::future::ready(seen.len() >= 4)
    })
    .await;
    assert!(enough, "scheduled backups: {seen:?}");
    assert!(most <= 2, "retention keeps two, saw {most}");
    let newest = backup::list(backups.path()).unwrap().pop().unwrap();
    assert!(restore::check_backup(&newest).is_ok());
    let report = verify::verify_file(&s.db_path()).unwrap();
    assert!(report.is_clean());
}

#[tokio::test]
async fn the_docs_page_loads_nothing_from_outside() {
    let s = TestServer::start().await;
    let page = s.http.get(s.url("/api/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
    let script = html.split("<script src=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    assert!(script.starts_with("/api/docs/"), "{script}");
    let js = s.http.get(s.url(script)).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(js.text().await.unwrap().contains("createApiReference"));
}

/// `serve --demo` alone has live stations: the simulated ones answer ejects.
#[tokio::test]
async fn demo_stations_run_in_the_server_and_answer_ejects() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.link = powerbank_tests::mqtt::link_config(powerbank_tests::mqtt::Broker::Embedded, 60);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = powerbank::server::build_state(config).await.unwrap();
    powerbank::demo::seed_if_empty(&state.db).unwrap();
    powerbank::cli::create_admin(&state.db, "ops@powerbank.test", "correct horse battery staple").unwrap();
    powerbank::demo_stations::spawn(&state);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(powerbank::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/admin/login"))
        .json(&json!({"email": "ops@powerbank.test", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();
    let slot_with_bank = |station: &serde_json::Value| {
        station["slots"].as_array().unwrap().iter().find(|s| s["power_bank_serial"].is_string()).cloned()
    };
    let station: serde_json::Value =
        http.get(format!("{base}/api/stations/{SN}")).send().await.unwrap().json().await.unwrap();
    let slot = slot_with_bank(&station).expect("a demo bank")["slot_index"].as_u64().unwrap();
    // The stations connect once the link is up: poll until one answers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (ejected, answer) = loop {
        let r = http
            .post(format!("{base}/api/admin/stations/{SN}/eject"))
            .bearer_auth(&token)
            .json(&json!({"slot": slot, "timeout_secs": 5}))
            .send()
            .await
            .unwrap();
        let ok = r.status() == StatusCode::OK;
        let answer: serde_json::Value = r.json().await.unwrap_or_default();
        if ok || tokio::time::Instant::now() > deadline {
            break (ok, answer);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(ejected, "the simulated demo station did not eject: {answer}");
    assert_eq!(answer["outcome"], "ejected");
    let _ = stop.send(());
    let _ = server.await;
}
