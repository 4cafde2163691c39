//! Operator sign-in under attack: parallel guesses each count, lockouts hold
//! one address and account (with backoff), unknown emails take as long as
//! real ones, and a burst of sign-ins does not eat the machine's memory.

use std::{net::IpAddr, time::Duration};

use powerbank::core::Db;
use powerbank_tests::{Reply, TestServer};
use reqwest::StatusCode;
use serde_json::json;

const EMAIL: &str = "ops@powerbank.test";
const PASSWORD: &str = "correct horse battery staple";

/// An HTTP client whose requests come from `ip` (any 127.x.y.z is loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<IpAddr>().ok()).build().unwrap()
}

async fn sign_in(s: &TestServer, client: &reqwest::Client, email: &str, password: &str) -> Reply {
    let sent = client.post(s.url("/api/admin/login")).json(&json!({"email": email, "password": password})).send();
    TestServer::read(sent.await.unwrap()).await
}

fn retry_after(r: &Reply) -> u64 {
    r.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// 39 wrong passwords and the right one, all at once: only the first
/// `free_failures` attempts to be counted get their password checked, so
/// the right one cannot slip in while the wrong ones are still hashing.
#[tokio::test]
async fn parallel_attempts_count_one_each() {
    let s = TestServer::start().await;
    s.admin().await;
    let free = s.config().operator_signin.free_failures as usize;
    let client = client_from("127.0.0.1");
    let attempts = (0..40).map(|i| {
        let (s, client) = (&s, &client);
        let password = if i == 20 { PASSWORD.to_string() } else { format!("guess {i}") };
        async move { sign_in(s, client, EMAIL, &password).await }
    });
    let replies = futures::future::join_all(attempts).await;
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    let checked = statuses.iter().filter(|s| [StatusCode::UNAUTHORIZED, StatusCode::OK].contains(s)).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, limited), (free, 40 - free), "{statuses:?}");
    if statuses[20] == StatusCode::TOO_MANY_REQUESTS {
        // Still locked: the right password does not get in.
        let right = sign_in(&s, &client, EMAIL, PASSWORD).await;
        assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS, "{}", right.body);
        assert_eq!(right.error_code(), "rate_limited");
        assert!(retry_after(&right) > 0);
    }
}

#[tokio::test]
async fn a_lockout_holds_one_address_on_one_account_and_grows() {
    let s = TestServer::start().await;
    s.admin().await;
    let attacker = client_from("127.0.0.2");
    let operator = client_from("127.0.0.1");
    for i in 0..5 {
        assert_eq!(sign_in(&s, &attacker, EMAIL, &format!("guess {i}")).await.status, StatusCode::UNAUTHORIZED);
    }
    let locked = sign_in(&s, &attacker, EMAIL, PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    let first_lock = retry_after(&locked);
    assert!((1..=60).contains(&first_lock), "{first_lock}");

    // The operator, elsewhere, is not locked out by someone else's guesses.
    assert_eq!(sign_in(&s, &operator, EMAIL, PASSWORD).await.status, StatusCode::OK);
    // Nor is another account from the attacker's address.
    assert_eq!(sign_in(&s, &attacker, "other@powerbank.test", "x").await.status, StatusCode::UNAUTHORIZED);

    // Once the lock has passed, the next failure locks twice as long.
    let db = Db::open(&s.db_path(), 1).unwrap();
    db.write(|tx| {
        Ok(tx.execute(
            "UPDATE operator_signin_failures SET locked_until = locked_until - 61 WHERE ip = '127.0.0.2' AND email = ?1",
            [EMAIL],
        )?)
    })
    .await
    .unwrap();
    assert_eq!(sign_in(&s, &attacker, EMAIL, "guess 5").await.status, StatusCode::UNAUTHORIZED);
    let again = sign_in(&s, &attacker, EMAIL, PASSWORD).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&again) > 60, "the second lock is longer: {}", retry_after(&again));
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn unknown_emails_take_as_long_as_real_accounts() {
    let s = TestServer::start_with(|c| {
        c.operator_signin.free_failures = 1000;
        c.operator_signin.failures_per_ip_per_hour = 1000;
    })
    .await;
    s.admin().await;
    let client = client_from("127.0.0.1");
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, so both see the same machine load.
    for i in 0..9 {
        let started = std::time::Instant::now();
        assert_eq!(sign_in(&s, &client, EMAIL, "wrong").await.status, StatusCode::UNAUTHORIZED);
        known.push(started.elapsed());
        let started = std::time::Instant::now();
        let r = sign_in(&s, &client, &format!("nobody{i}@powerbank.test"), "wrong").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        unknown.push(started.elapsed());
    }
    let (known, unknown) = (median(known), median(unknown));
    println!("median sign-in time: existing email {known:?}, unknown email {unknown:?}");
    // Without the dummy hash an unknown email answers ~40x faster.
    assert!(unknown * 3 >= known, "unknown {unknown:?} vs existing {known:?}");
}

/// The process's resident memory, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// 200 sign-ins at once keep the process within a fixed memory bound. The
/// burst runs in a child process of its own, so no other test's server
/// counts in its memory.
#[tokio::test]
async fn a_burst_of_sign_ins_keeps_memory_bounded() {
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["security::operator_signin::burst_of_200_sign_ins", "--exact", "--ignored", "--nocapture"])
        .env("POWERBANK_TEST_CHILD", "1")
        .output()
        .await
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the burst failed:\n{log}");
    assert!(log.contains("1 passed"), "the burst did not run:\n{log}");
    println!("{}", log.lines().filter(|l| l.contains("RSS")).collect::<Vec<_>>().join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in its own process by a_burst_of_sign_ins_keeps_memory_bounded"]
async fn burst_of_200_sign_ins() {
    if std::env::var_os("POWERBANK_TEST_CHILD").is_none() {
        return;
    }
    // Lockouts out of the way, and time to wait for a turn: every attempt is hashed.
    let s = TestServer::start_with(|c| {
        c.operator_signin.free_failures = 10_000;
        c.operator_signin.failures_per_ip_per_hour = 10_000;
        c.operator_signin.hash_queue_wait = Duration::from_secs(120);
    })
    .await;
    s.admin().await;
    let client = client_from("127.0.0.1");
    assert_eq!(sign_in(&s, &client, "nobody@powerbank.test", "x").await.status, StatusCode::UNAUTHORIZED);
    let baseline = rss_bytes();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let attempts = (0..200).map(|i| {
        let (s, client) = (&s, &client);
        async move {
            if i % 2 == 0 {
                sign_in(s, client, EMAIL, PASSWORD).await.status
            } else {
                sign_in(s, client, &format!("nobody{i}@powerbank.test"), "guess").await.status
            }
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    sampler.abort();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed).max(rss_bytes());
    let after = rss_bytes();
    let mib = |b: u64| b / (1024 * 1024);
    println!("RSS: baseline {} MiB, peak {} MiB, after {} MiB", mib(baseline), mib(peak), mib(after));
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 100, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count(), 100, "{statuses:?}");
    assert!(peak - baseline < 150 * 1024 * 1024, "RSS grew by {} MiB", mib(peak - baseline));
}
