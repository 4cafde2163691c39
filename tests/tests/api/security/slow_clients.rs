//! Slow clients cannot lock everyone out: stalled connections are closed
//! after the header read timeout while others are served, connections are
//! capped, and a shutdown serves the connections still waiting to be
//! accepted instead of dropping them.

use std::time::{Duration, Instant};

use powerbank_tests::TestServer;
use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const HEALTH: &[u8] = b"GET /api/health HTTP/1.1\r\nHost: powerbank\r\nConnection: close\r\n\r\n";

fn address(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// A connection that sent half a request's headers and then nothing.
async fn stall(addr: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /api/health HTTP/1.1\r\nHost: powerbank\r\n").await.unwrap();
    c
}

/// Whether the server closed `c` (end of stream or reset) before `deadline`.
async fn closed_by(c: &mut TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before closing is fine too.
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads a whole response from a connection that asked for `Connection: close`.
async fn response(c: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut out)).await.expect("a response").unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_closed_and_others_served() {
    let s = TestServer::start_with(|c| c.http.header_read_timeout = Duration::from_secs(2)).await;
    let addr = address(&s);
    let mut stalled = Vec::new();
    for _ in 0..1500 {
        stalled.push(stall(&addr).await);
    }
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), s.get("/api/health", None)).await.expect("served in time");
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    println!("a normal request beside 1500 stalled connections took {:?}", started.elapsed());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (i, c) in stalled.iter_mut().enumerate() {
        assert!(closed_by(c, deadline).await, "stalled connection {i} is still open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_serves_connections_waiting_to_be_accepted() {
    // One connection at a time: a stalled one holds it, so the next ones
    // wait in the accept queue.
    let mut s = TestServer::start_with(|c| {
        c.http.max_connections = 1;
        c.http.header_read_timeout = Duration::from_secs(3);
    })
    .await;
    let addr = address(&s);
    let mut holder = stall(&addr).await;
    let mut queued = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(HEALTH).await.unwrap();
        queued.push(c);
    }
    // The cap holds: nothing answers them while the slot is taken.
    let mut peek = [0u8; 1];
    assert!(tokio::time::timeout(Duration::from_millis(500), queued[0].read(&mut peek)).await.is_err());

    s.stop().await;
    for c in &mut queued {
        let answer = response(c).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "a queued connection was dropped: {answer:?}");
    }
    assert!(closed_by(&mut holder, tokio::time::Instant::now() + Duration::from_secs(30)).await);
}
