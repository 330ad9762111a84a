//! Issue 28, item 2: unbounded answers from upstreams. The Icecast admin API's 4 MiB limit was
//! checked against `Content-Length` alone, so a chunked answer was read to gigabytes; the
//! verify-only node's key set fetch and MyRadio's answers had no limit at all. A hostile
//! server on 127.0.0.1 now streams chunked data (up to 1 GiB, until the client goes away) to
//! each: the read stops at its limit, the server gets to write no more than that plus what the
//! sockets buffer, and this process's memory stays small.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// The most any hostile answer could be: a bound on the test's time, far above every limit.
const CAP: u64 = 1 << 30;
/// What the two sockets may hold beyond the reader's limit before the server notices.
const SLACK: u64 = 16 << 20;

/// An HTTP/1.1 server on 127.0.0.1 that answers every request 200 with an endless chunked
/// body of `x` (up to [`CAP`] per connection) until the client closes. Returns its base URL
/// and the body bytes written over all connections.
async fn hostile_upstream() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(AtomicU64::new(0));
    let total = written.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let total = total.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 16 * 1024];
                let _ = socket.read(&mut head).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                            Transfer-Encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let data = [b'x'; 64 * 1024];
                let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
                frame.extend_from_slice(&data);
                frame.extend_from_slice(b"\r\n");
                let mut sent = 0;
                while sent < CAP {
                    if socket.write_all(&frame).await.is_err() {
                        return;
                    }
                    sent += data.len() as u64;
                    total.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (url, written)
}

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// What a bounded read may cost this process, with room for other tests running beside it;
/// an unbounded one cost gigabytes.
const RSS_GROWTH: u64 = 256 << 20;

/// Waits until the hostile server stops writing (the client went away), then checks it wrote
/// no more than `limit` plus the sockets' buffers per connection.
async fn stopped_near(written: &AtomicU64, connections: u64, limit: usize) -> u64 {
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let now = written.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(
        last <= connections * (limit as u64 + SLACK),
        "{last} bytes sent over {connections} connection(s) for a {limit}-byte limit"
    );
    last
}

#[tokio::test]
async fn a_verify_only_node_reads_no_more_of_its_key_set_than_the_limit() {
    let (url, written) = hostile_upstream().await;
    let before = rss();
    let node = TestServer::start(&format!(
        "[tokens]\njwks_url = \"{url}/jars/jwks.json\"\nrefresh = \"1h\"\nrefetch_min_interval = \"1h\"\n"
    ))
    .await;
    // The fetch failed: no keys, not ready.
    assert!(node.state.tokens.keys().verifying.is_empty());
    let resp = client().get(node.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let sent = stopped_near(&written, 1, jars::keys::remote::MAX_KEY_SET_BYTES).await;
    let grown = rss().saturating_sub(before);
    eprintln!("key set: {sent} bytes sent, RSS +{grown}");
    assert!(grown < RSS_GROWTH, "RSS grew by {grown} bytes");
}

#[tokio::test]
async fn myradio_answers_are_read_no_further_than_the_limit() {
    let (url, written) = hostile_upstream().await;
    let before = rss();
    let server = TestServer::start(&format!(
        "[identity]\nbackend = \"myradio\"\n[identity.myradio]\napi_url = \"{url}\"\napi_key = \"k\"\n"
    ))
    .await;
    let (status, body) = post_form(
        &server.url("/jars/token"),
        &[("user", "dj"), ("password", "pw")],
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(error_name(&body), "MyRadioServiceFailureException");
    let sent = stopped_near(&written, 1, jars::identity::myradio::MAX_ANSWER_BYTES).await;
    let grown = rss().saturating_sub(before);
    eprintln!("MyRadio: {sent} bytes sent, RSS +{grown}");
    assert!(grown < RSS_GROWTH, "RSS grew by {grown} bytes");
}

#[tokio::test]
async fn icecast_admin_answers_are_read_no_further_than_the_limit() {
    let (url, written) = hostile_upstream().await;
    let before = rss();
    let http = reqwest::Client::new();
    let server = jars::config::IcecastServer {
        server: "localhost".into(),
        port: 8000,
        admin_url: url,
        admin_user: "admin".into(),
        admin_password: "hackme".into(),
        max_listeners: 100,
        public_url: None,
        weight: 1,
        region: None,
    };
    let api = jars::icecast::admin::AdminApi {
        http: &http,
        server: &server,
    };
    // A listing (every resync) and a kill (every kick), three times each.
    for _ in 0..3 {
        let err = api.list_mounts().await.unwrap_err();
        assert!(
            matches!(
                err,
                jars::icecast::admin::AdminError::Body(jars::upstream::ReadError::TooLarge(_))
            ),
            "{err}"
        );
        let err = api.kill_client("/live", "7").await.unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }
    let sent = stopped_near(&written, 6, 4 << 20).await;
    let grown = rss().saturating_sub(before);
    eprintln!("Icecast admin: {sent} bytes sent over 6 requests, RSS +{grown}");
    assert!(grown < RSS_GROWTH, "RSS grew by {grown} bytes");
}

#[tokio::test]
async fn an_endless_listclients_answer_is_refused_within_one_element() {
    let (url, written) = hostile_upstream().await;
    let http = reqwest::Client::new();
    let server = jars::config::IcecastServer {
        server: "localhost".into(),
        port: 8000,
        admin_url: url,
        admin_user: "admin".into(),
        admin_password: "hackme".into(),
        max_listeners: 100,
        public_url: None,
        weight: 1,
        region: None,
    };
    let api = jars::icecast::admin::AdminApi {
        http: &http,
        server: &server,
    };
    // The listing every resync reads, as a stream: refused once it cannot be an answer.
    let err = api.list_clients("/live", 100).await.unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");
    let sent = stopped_near(&written, 1, 4 << 20).await;
    eprintln!("Icecast listclients: {sent} bytes sent before jars hung up");
}
