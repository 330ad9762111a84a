//! Overload and hostile input: shedding that keeps Icecast's share, a slow identity backend,
//! and malformed requests that get a clear 4xx while the daemon keeps serving.

use super::*;

/// A server whose identity backend is a MyRadio answering after `delay`, with `limits` added
/// to its `[limits]`, and a public event (made with a token minted directly, not via MyRadio).
async fn behind_slow_myradio(delay: Duration, limits: &str) -> (TestServer, String) {
    let api = crate::support::slow_myradio(delay).await;
    let server = TestServer::start(&format!(
        "[limits]\n{limits}token_per_minute = 1000\ntoken_burst = 1000\n\
         [identity]\nbackend = \"myradio\"\n[identity.myradio]\napi_url = \"{api}\"\napi_key = \"k\"\n"
    ))
    .await;
    let token = server
        .state
        .tokens
        .issue(42, jars::tokens::AccessLevel::Standard, None)
        .unwrap()
        .0;
    let event = server.create_event(&token, "Public", false).await;
    (server, event)
}

#[tokio::test]
async fn overload_is_shed_and_icecast_keeps_its_share() {
    let (server, event) =
        behind_slow_myradio(Duration::from_secs(3), "max_concurrent_requests = 2\n").await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let url = server.url("/jars/token");
        slow.push(tokio::spawn(async move {
            post_form(&url, &[("user", "dj"), ("password", "pw")])
                .await
                .0
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = client()
        .get(server.url("/jars/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503, "the third API request is shed");
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(
        error_name(&resp.text().await.unwrap()),
        "ServiceUnavailable"
    );
    // Shed at once, not queued: answered while the two slow requests are still running.
    assert!(
        slow.iter().all(|s| !s.is_finished()),
        "the 503 waited for a slot"
    );
    // Icecast's callbacks and health checks are not affected.
    let body = format!(
        "action=listener_add&server=x&port=1&client=1&mount=%2f{event}&user=&pass=&ip=1%2e1%2e1%2e1"
    );
    assert!(callback_allows(&server, body).await);
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        slow.iter().all(|s| !s.is_finished()),
        "callbacks waited for the API"
    );
    for s in slow {
        assert_eq!(s.await.unwrap(), 200, "the slow requests complete");
    }
}

/// Sends raw bytes; returns the status (if any) and whether the server closed the connection
/// (rather than our 30 s read timeout ending the wait).
fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> (Option<u16>, bool) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let closed = match s.read_to_end(&mut buf) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    let text = String::from_utf8_lossy(&buf);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok());
    (status, closed)
}

#[tokio::test]
async fn hostile_input_gets_a_clear_4xx_and_the_daemon_keeps_serving() {
    let t = target("").await;
    let url = t.server.url("/jars/create");
    let form = |body: String| {
        let req = client()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    // Duplicate fields: the last one counts (as Tornado did); a bad last token is refused.
    let (status, _) = form(format!(
        "auth={}&auth=garbage&title=t&description=d&private=no",
        t.owner_token
    ))
    .await;
    assert_eq!(status, 401);
    // Thousands of fields within the body limit.
    let (status, body) = form("x=1&".repeat(3000)).await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (400, "MissingArgumentError")
    );
    // Overlong values.
    let (status, body) = form(format!(
        "auth={}&title={}&description=d&private=no",
        t.owner_token,
        "t".repeat(256)
    ))
    .await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (400, "StringDataRightTruncation")
    );
    // Over the body limit.
    let (status, _) = form("x".repeat(20_000)).await;
    assert_eq!(status, 413);
    // Broken percent-encoding and non-UTF-8.
    let (status, _) = form("auth=%zz%&title=%ff".into()).await;
    assert_eq!(status, 400);

    let addr = t.server.addr;
    let blocking = tokio::task::spawn_blocking(move || {
        // Headers too large: refused, not buffered without end.
        let big = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        let (status, closed) = raw_exchange(addr, big.as_bytes());
        assert!(
            closed && status.is_none_or(|s| s == 431 || s == 400),
            "oversized headers answered {status:?}"
        );
        // A client that never finishes its headers is disconnected by the server.
        let (status, closed) = raw_exchange(addr, b"POST /jars/token HTTP/1.1\r\nHost: x\r\n");
        assert!(closed, "a slow client kept its connection");
        assert!(
            status.is_none_or(|s| s == 408),
            "slow client got {status:?}"
        );
        // Garbage instead of HTTP.
        let (status, closed) = raw_exchange(addr, b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
        assert!(
            closed && status.is_none_or(|s| s == 400),
            "garbage answered {status:?}"
        );
    });
    blocking.await.unwrap();
    assert_eq!(
        client()
            .get(t.server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still serving"
    );
}

#[tokio::test]
async fn a_slow_identity_backend_starves_nothing_else() {
    let (server, event) = behind_slow_myradio(Duration::from_secs(2), "").await;
    let mut slow = Vec::new();
    // All but one of what one client may have in progress (`shed::API_MAX_PER_CLIENT`): the
    // same client's `/jars/events` below takes the last.
    for i in 1..jars::http::shed::API_MAX_PER_CLIENT {
        let url = server.url("/jars/token");
        slow.push(tokio::spawn(async move {
            post_form(&url, &[("user", &format!("dj{i}")), ("password", "pw")])
                .await
                .0
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = format!(
        "action=listener_add&server=x&port=1&client=1&mount=%2f{event}&user=&pass=&ip=1%2e1%2e1%2e1"
    );
    assert!(callback_allows(&server, body).await);
    let resp = client()
        .get(server.url("/jars/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Answered while all the slow logins are still waiting for MyRadio.
    assert!(
        slow.iter().all(|s| !s.is_finished()),
        "other endpoints waited behind the slow backend"
    );
    for s in slow {
        assert_eq!(s.await.unwrap(), 200);
    }
}
