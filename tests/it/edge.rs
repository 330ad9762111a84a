//! Hardening at the HTTP edge (SECURITY.md, "Slow and idle clients"): slow callback and API
//! bodies hold no shared slot, callbacks are shed per peer and in all, connections that send
//! no request are closed, and the connection bound keeps a place for Icecast. Each attack at a
//! small scale against 127.0.0.1 (attackers connect from 127.0.0.2, another loopback address).

use crate::support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use jars::http::edge::Edge;
use jars::http::icecast::CALLBACK_BODY_TIMEOUT;
use jars::http::shed::{API_BODY_TIMEOUT, API_MAX_PER_CLIENT};
use serde_json::Value;
use sqlx::{Connection, Executor};
use support::{client, error_name, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ICECAST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const CREDENTIALS: &str = "[icecast]\nusername = \"icecast\"\npassword = \"s3cret\"\n";

/// A TCP connection to `addr` from the local address `from`.
async fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// An HTTP client whose connections come from `from`.
fn client_from(from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// What the server sent before closing or within `within`: `Some` text (empty when it closed
/// without a word), `None` when it neither answered nor closed in time.
async fn answer_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(String::new()),
        Ok(Err(e)) => panic!("read failed: {e}"),
        Err(_) => None,
    }
}

/// A connection from `from` that sent a request head promising `length` body bytes, and
/// `start` of them.
async fn slow_body(
    from: IpAddr,
    addr: SocketAddr,
    head: &str,
    length: usize,
    start: &str,
) -> TcpStream {
    let mut s = connect_from(from, addr).await;
    let request = format!(
        "{head}Host: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {length}\r\n\r\n{start}"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    s
}

/// Posts a callback with Icecast's credentials (when `basic`) from `from`; (status, whether
/// Icecast would let it through: `icecast-auth-user: 1`).
async fn post_callback(server: &TestServer, from: IpAddr, body: &str, basic: bool) -> (u16, bool) {
    let mut req = client_from(from)
        .post(server.url("/icecast/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if basic {
        req = req.basic_auth("icecast", Some("s3cret"));
    }
    let resp = req.send().await.unwrap();
    let allowed = resp.headers().get("icecast-auth-user").is_some();
    (resp.status().as_u16(), allowed)
}

/// Waits (at most 1 s) until `gauge` reads `n`; asserts that it does.
async fn wait_for(gauge: &prometheus::IntGauge, n: i64, what: &str) {
    for _ in 0..100 {
        if gauge.get() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gauge.get(), n, "{what}");
}

fn count(counter: &prometheus::IntCounterVec, label: &str) -> u64 {
    counter.with_label_values(&[label]).get()
}

/// Item 1: callers that send a head and dawdle over the body used to hold every callback slot.
#[tokio::test]
async fn slow_callback_bodies_hold_no_slot() {
    let server = TestServer::start(&format!(
        "{CREDENTIALS}[limits]\nmax_concurrent_callbacks = 2\n"
    ))
    .await;
    let head = "POST /icecast/auth HTTP/1.1\r\n";
    let authorized = format!("{head}Authorization: Basic aWNlY2FzdDpzM2NyZXQ=\r\n");
    let started = Instant::now();
    // Four times the slots, with and without the credentials, each 16,000 bytes promised.
    let mut strangers = Vec::new();
    let mut insiders = Vec::new();
    for _ in 0..4 {
        strangers.push(slow_body(ATTACKER, server.addr, head, 16_000, "action=").await);
        insiders.push(slow_body(ATTACKER, server.addr, &authorized, 16_000, "action=").await);
    }
    // Icecast's callback is decided at once.
    let body = "action=mount_add&server=x&port=1&mount=%2fnothing";
    assert_eq!(
        post_callback(&server, ICECAST, body, true).await,
        (200, true)
    );
    assert!(started.elapsed() < CALLBACK_BODY_TIMEOUT, "it waited");
    // Without the credentials: denied from the headers, the body never read.
    for s in &mut strangers {
        let answer = answer_within(s, Duration::from_millis(500)).await;
        let answer = answer.expect("a stranger was not answered at once");
        assert!(answer.contains("icecast-auth-message"), "{answer}");
        assert!(!answer.contains("icecast-auth-user"), "{answer}");
    }
    // With them: 408 once the body deadline passes.
    for s in &mut insiders {
        let answer = answer_within(s, Duration::from_secs(3)).await;
        let answer = answer.expect("a slow body was never timed out");
        assert!(answer.starts_with("http/1.1 408"), "{answer}");
    }
    assert!(started.elapsed() >= CALLBACK_BODY_TIMEOUT);
    let m = &server.state.metrics;
    assert_eq!(count(&m.callbacks_shed, "slow_body"), 4);
    assert_eq!(count(&m.callbacks_shed, "busy"), 0);
    assert_eq!(
        post_callback(&server, ICECAST, body, true).await,
        (200, true)
    );
    assert_eq!(
        post_callback(&server, ICECAST, body, false).await,
        (200, false)
    );
}

/// Icecast never speaks HTTP/2; one h2 connection could carry hundreds of callbacks at once.
#[tokio::test]
async fn callbacks_over_http2_are_refused() {
    use tower::ServiceExt;
    let server = TestServer::start("").await;
    let app = jars::http::app(server.state.clone(), false);
    let request = |version| {
        axum::http::Request::post("/icecast/auth")
            .version(version)
            .body(axum::body::Body::from(
                "action=mount_add&server=x&port=1&mount=%2fx",
            ))
            .unwrap()
    };
    let h2 = app.clone().oneshot(request(axum::http::Version::HTTP_2));
    assert_eq!(h2.await.unwrap().status(), 505);
    let h1 = app.oneshot(request(axum::http::Version::HTTP_11));
    assert_eq!(h1.await.unwrap().status(), 200, "the same over HTTP/1.1");
}

/// The callback route does what the router's layers do for the other routes: shed beyond its
/// cap (per peer address and in all), limit the body, allow only POST, count requests.
#[tokio::test]
async fn callbacks_are_shed_limited_and_counted_like_routed_requests() {
    let server = TestServer::start("[limits]\nmax_concurrent_callbacks = 2\n").await;
    let owner = server.add_user("owner", "pw", true);
    let token = server.login("owner", "pw").await;
    let event = server.create_event(&token, "Show", false).await;
    let _ = owner;
    // A held write lock stalls `mount_add` of an event in the store: its callback keeps a slot.
    let db = format!("sqlite:{}", server.data_path("jars.sqlite3").display());
    let mut lock = sqlx::SqliteConnection::connect(&db).await.unwrap();
    lock.execute("BEGIN IMMEDIATE").await.unwrap();
    let stalled = format!("action=mount_add&server=x&port=1&mount=%2f{event}");
    let quick = "action=mount_add&server=x&port=1&mount=%2fnothing";
    let m = server.state.metrics.clone();
    let first = {
        let (url, body) = (server.url("/icecast/auth"), stalled.clone());
        tokio::spawn(async move { client().post(url).body(body).send().await.unwrap().status() })
    };
    wait_for(
        &m.callbacks_in_progress,
        1,
        "the stalled callback never started",
    )
    .await;
    // At most half of the slots per peer address...
    let resp = client_from(ICECAST)
        .post(server.url("/icecast/auth"))
        .body(quick)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(count(&m.callbacks_shed, "peer_busy"), 1);
    // ...and all of them from two: the second peer's stalled callback takes the last one.
    let second = {
        let (url, body) = (server.url("/icecast/auth"), stalled.clone());
        let client = client_from(ATTACKER);
        tokio::spawn(async move { client.post(url).body(body).send().await.unwrap().status() })
    };
    wait_for(
        &m.callbacks_in_progress,
        2,
        "the second stalled callback never started",
    )
    .await;
    let third = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let (status, _) = post_callback(&server, third, quick, false).await;
    assert_eq!(status, 503);
    assert_eq!(count(&m.callbacks_shed, "busy"), 1);
    // /readyz shows the full path (and stays ready: it is load, not a fault).
    let ready = client().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["callbacks"]["in_progress"], 2, "{ready}");
    assert_eq!(ready["callbacks"]["saturated"], true, "{ready}");
    assert_eq!(ready["callbacks"]["shed"], 2, "{ready}");
    // The store frees up; both stalled callbacks complete and give their slots back.
    lock.execute("ROLLBACK").await.unwrap();
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(second.await.unwrap(), 200);
    assert_eq!(m.callbacks_in_progress.get(), 0);
    assert_eq!(
        post_callback(&server, ICECAST, quick, false).await,
        (200, true)
    );

    // Only POST; bodies over the limit are refused.
    let get = client()
        .get(server.url("/icecast/auth"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let big = format!("{quick}&x={}", "y".repeat(20_000));
    assert_eq!(post_callback(&server, ICECAST, &big, false).await.0, 413);

    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (status, at_least) in [("200", 3), ("503", 2), ("405", 1), ("413", 1)] {
        let line =
            format!("jars_http_requests_total{{route=\"/icecast/auth\",status=\"{status}\"}} ");
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .unwrap_or_else(|| panic!("no {line} in metrics"))
            .parse()
            .unwrap();
        assert!(count >= at_least, "{line}{count}");
    }
    assert!(metrics.contains("jars_callbacks_shed_total{reason=\"busy\"} 1"));
}

/// Item 2: connections that never send a request stayed open for ever and, past the open
/// file limit, stopped jars from accepting anybody, Icecast included.
#[tokio::test]
async fn silent_connections_are_closed_and_icecast_keeps_a_place() {
    let server = TestServer::start("").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let timeout = Duration::from_secs(2);
    let edge = Edge {
        header_read_timeout: timeout,
        max_connections: 4,
        reserved_connections: 1,
        reserved_for: |ip| ip == ICECAST,
        metrics: Some(server.state.metrics.clone()),
    };
    let app = jars::http::app(server.state.clone(), true);
    tokio::spawn(jars::http::edge::serve_with(
        listener,
        app,
        std::future::pending(),
        edge,
    ));
    let m = server.state.metrics.clone();
    let started = Instant::now();
    // Four connections fill the bound: two silent, two stuck in the first bytes (which
    // hyper reads to tell HTTP/1 from HTTP/2, outside its own header timeout).
    let mut silent = Vec::new();
    for first in ["", "", "P", "PRI * HTTP/2.0"] {
        let mut s = connect_from(ATTACKER, addr).await;
        s.write_all(first.as_bytes()).await.unwrap();
        silent.push(s);
    }
    wait_for(&m.connections_open, 4, "the server never accepted the four").await;
    // A fifth is closed at once...
    let mut fifth = connect_from(ATTACKER, addr).await;
    let answer = answer_within(&mut fifth, Duration::from_millis(500)).await;
    assert_eq!(
        answer.as_deref(),
        Some(""),
        "the fifth connection stayed open"
    );
    assert_eq!(count(&m.connections_dropped, "over_limit"), 1);
    // ...but Icecast's address still gets in.
    let health = client_from(ICECAST)
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < timeout, "too slow to prove anything");
    // The silent ones are closed after the header timeout, not before.
    for s in &mut silent {
        let answer = answer_within(s, Duration::from_secs(4)).await;
        let answer = answer.expect("a silent connection was never closed");
        assert!(
            answer.is_empty() || answer.starts_with("http/1.1 408"),
            "{answer}"
        );
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout && elapsed < timeout * 2, "{elapsed:?}");
    assert_eq!(count(&m.connections_dropped, "no_request"), 4);
    // With room again, anybody gets in.
    let health = client_from(ATTACKER)
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// Item 5: slow API bodies, reopened as the request timeout closed them, kept every API slot
/// busy: `/jars/connect` answered 503 to everybody.
#[tokio::test]
async fn a_slow_api_client_holds_no_shared_slot() {
    let server = TestServer::start("[limits]\nmax_concurrent_requests = 4\n").await;
    server.add_user("owner", "pw", true);
    let token = server.login("owner", "pw").await;
    let event = server.create_event(&token, "Show", false).await;
    let started = Instant::now();
    // The per-client cap of slow bodies, four times the shared slots.
    let mut slow = Vec::new();
    for _ in 0..API_MAX_PER_CLIENT {
        let head = "POST /jars/connect HTTP/1.1\r\n";
        slow.push(slow_body(ATTACKER, server.addr, head, 1000, "auth=").await);
    }
    // The same client's next request is refused until one of them is done.
    let attacker = client_from(ATTACKER);
    let mut refused = None;
    for _ in 0..50 {
        let resp = attacker
            .get(server.url("/jars/events"))
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            refused = Some(resp);
            break;
        }
        // The slow requests may not all have reached the server yet.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused.expect("no per-client cap");
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        error_name(&refused.text().await.unwrap()),
        "TooManyRequests"
    );
    // Everybody else is served at once.
    let connect = client_from(ICECAST)
        .post(server.url("/jars/connect"))
        .form(&[("auth", token.as_str()), ("mount", event.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(connect.status(), 202);
    assert!(started.elapsed() < API_BODY_TIMEOUT, "it waited");
    // The slow bodies get 408 after the body deadline.
    for s in &mut slow {
        let answer = answer_within(s, Duration::from_secs(3)).await;
        let answer = answer.expect("a slow body was never timed out");
        assert!(answer.starts_with("http/1.1 408"), "{answer}");
        assert!(answer.contains("requesttimeout"), "{answer}");
    }
    let m = &server.state.metrics;
    assert_eq!(count(&m.api_shed, "slow_body"), API_MAX_PER_CLIENT as u64);
    assert!(count(&m.api_shed, "peer_busy") >= 1);
}
