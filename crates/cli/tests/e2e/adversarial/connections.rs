//! Problem 3 of the hardening issue: connections are bounded on every listener — slow
//! heads, silent sockets, idle HTTP/2, slow bodies, too many connections — and running
//! out of descriptors neither stops the servers for good nor floods the log.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::raw_exchange;
use crate::{Launch, Server};

/// Host and port of a base URL.
fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Waits (at most `within`) for the server to close `stream`; true if it did.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slow_heads_silent_sockets_idle_http2_and_slow_bodies_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ["--header-read-timeout-ms", "500", "--idle-connection-timeout-ms", "1000", "--body-read-timeout-ms", "700"];
    let server = Server::start(dir.path(), &limits);
    let listeners = [addr(&server.url), addr(&server.node), addr(&server.metrics)];

    // 30 slow-header clients per listener, a byte every 100 ms: dropped after the 500 ms
    // head timeout, long before they would finish.
    let mut tricklers = Vec::new();
    for listener in &listeners {
        for _ in 0..30 {
            let mut s = TcpStream::connect(listener).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost: a\r\nx-slow: ").await.unwrap();
            tricklers.push(tokio::spawn(async move {
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(4) {
                    if s.write_all(b"a").await.is_err() {
                        return started.elapsed();
                    }
                    let mut buf = [0u8; 64];
                    if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                        return started.elapsed();
                    }
                }
                started.elapsed()
            }));
        }
    }
    // Silent sockets on every listener: closed once idle for 1 s.
    let mut silent = Vec::new();
    for listener in &listeners {
        for _ in 0..10 {
            silent.push(TcpStream::connect(listener).await.unwrap());
        }
    }
    for t in tricklers {
        let lasted = t.await.unwrap();
        assert!(lasted < Duration::from_secs(3), "a slow-header client was served for {lasted:?}");
    }
    for s in &mut silent {
        assert!(closed_within(s, Duration::from_secs(3)).await, "a silent socket stayed open");
    }

    // An HTTP/2 connection with no streams is closed too.
    let mut h2 = TcpStream::connect(&listeners[1]).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    assert!(closed_within(&mut h2, Duration::from_secs(4)).await, "an idle HTTP/2 connection stayed open");

    // A body that does not arrive in time: 408 from the node and from the API.
    for (listener, method, path) in [(&listeners[1], "GET", "/welcome"), (&listeners[0], "POST", "/api/v1/modules?name=x&version=1")] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: a\r\nauthorization: Bearer {}\r\ncontent-type: application/wasm\r\ncontent-length: 1000\r\n\r\n0123456789",
            server.token
        );
        let responses = raw_exchange(listener, head.as_bytes(), 1).await;
        assert_eq!(responses[0].status, 408, "{path}: {}", String::from_utf8_lossy(&responses[0].body));
    }
    // The servers still answer.
    assert_eq!(reqwest::get(format!("{}/welcome", server.node)).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(format!("{}/healthz", server.url)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_connection_over_the_limit_is_refused_with_503_not_left_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-connections", "20"]);
    let node = addr(&server.node);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(&node).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let responses = raw_exchange(&node, b"GET /welcome HTTP/1.1\r\nhost: a\r\n\r\n", 1).await;
    assert_eq!(responses[0].status, 503);
    assert_eq!(responses[0].header("retry-after"), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(2), "the refusal took {:?}", started.elapsed());
    // Once the held connections go, new ones are served again.
    drop(held);
    answers_ok_within(&format!("{}/welcome", server.node), Duration::from_secs(5)).await;
}

/// Waits until `url` answers 200, at most `within`.
async fn answers_ok_within(url: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let status = reqwest::get(url).await.map(|r| r.status().as_u16()).unwrap_or(0);
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "{url} did not recover within {within:?}: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn running_out_of_descriptors_backs_off_logs_once_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("server.log");
    let launch = Launch { log_level: Some("warn"), log_file: Some(log_file.clone()), max_open_files: Some(256), ..Launch::default() };
    // A connection limit above the descriptor limit, so descriptors run out first.
    let server = Server::start_with(&dir.path().join("data"), &["--max-connections", "5000"], &launch);
    let api = addr(&server.url);
    assert_eq!(reqwest::get(format!("{}/healthz", server.url)).await.unwrap().status(), 200);
    // Past the server's descriptors, connections wait in the kernel's backlog; once that
    // is full too, connecting stalls. Connect until the server has run out.
    let ran_out = || std::fs::read_to_string(&log_file).unwrap().contains("accepting connections failed");
    let (mut held, mut stalls) = (Vec::new(), 0);
    while held.len() < 600 && stalls < 10 && !ran_out() {
        match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&api)).await {
            Ok(Ok(s)) => held.push(s),
            _ => stalls += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = std::fs::read_to_string(&log_file).unwrap();
    let warnings = log.lines().filter(|l| l.contains("accepting connections failed")).count();
    assert!((1..=2).contains(&warnings), "{warnings} accept warnings in 3 s after {} connections:\n{log}", held.len());
    assert!(log.len() < 64 * 1024, "the log grew to {} bytes in 3 s", log.len());
    drop(held);
    answers_ok_within(&format!("{}/healthz", server.url), Duration::from_secs(10)).await;
    assert_eq!(reqwest::get(format!("{}/welcome", server.node)).await.unwrap().status(), 200);
}
