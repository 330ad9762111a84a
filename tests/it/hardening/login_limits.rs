//! Issue 28, item 11: guessing limits that stopped the wrong people. Successful logins counted
//! toward the per-address limit (8 good logins in a row: `200 ×5, 429 ×3`; a member who
//! mistyped twice was refused on the correct third try); a studio behind one NAT address, or
//! every member behind a reverse proxy on the same host, shared one budget of 10 a minute;
//! after a restart a password spray answered the real member 429. Now only failures count,
//! per address and per name, a proxy on loopback is believed by default, and the networks
//! members logged in from are kept in the data directory.

use super::*;

/// A login as `user` with `password`, through a proxy on loopback that names `from` (or
/// directly, with `None`); the status.
async fn login(server: &TestServer, user: &str, password: &str, from: Option<&str>) -> u16 {
    let mut req = client()
        .post(server.url("/jars/token"))
        .form(&[("user", user), ("password", password)]);
    if let Some(from) = from {
        req = req.header("x-forwarded-for", from);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn good_logins_never_use_up_an_addresss_budget() {
    let server = TestServer::start("").await;
    server.add_user("alice", "alice-password", false);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(login(&server, "alice", "alice-password", None).await);
    }
    assert_eq!(statuses, [200; 8], "eight good logins in a row");
    // Two typos, then the right password.
    assert_eq!(login(&server, "alice", "typo-1", None).await, 401);
    assert_eq!(login(&server, "alice", "typo-2", None).await, 401);
    assert_eq!(login(&server, "alice", "alice-password", None).await, 200);
}

#[tokio::test]
async fn fifty_members_behind_one_address_all_log_in_within_a_minute() {
    let server = TestServer::start("").await;
    let members: Vec<String> = (0..50).map(|i| format!("member{i}")).collect();
    for m in &members {
        server.add_user(m, "member-password", false);
    }
    let started = std::time::Instant::now();
    for m in &members {
        // The studio's one NAT address, seen through the station's proxy.
        assert_eq!(
            login(&server, m, "member-password", Some("203.0.113.50")).await,
            200,
            "{m}"
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    // Behind the proxy every member has an address of their own: one's failures are not the
    // others' (burst 5 per address).
    for i in 0..6 {
        assert_eq!(
            login(&server, "member0", "wrong", Some("198.51.100.1")).await,
            if i < 5 { 401 } else { 429 }
        );
    }
    assert_eq!(
        login(&server, "member1", "member-password", Some("198.51.100.2")).await,
        200
    );
    assert_eq!(
        login(&server, "member2", "wrong", Some("198.51.100.3")).await,
        401
    );
}

#[tokio::test]
async fn a_spray_against_one_name_stays_limited_yet_never_locks_its_member_out() {
    let server = TestServer::start("").await;
    server.add_user("alice", "alice-password", false);
    let home = Some("198.51.100.7");
    assert_eq!(login(&server, "alice", "alice-password", home).await, 200);
    // Wrong passwords for alice from ever new addresses: the name's limit (burst 5) holds.
    let mut spray = Vec::new();
    for i in 0..8 {
        spray.push(login(&server, "alice", "guess", Some(&format!("203.0.113.{i}"))).await);
    }
    assert_eq!(spray, [401, 401, 401, 401, 401, 429, 429, 429]);
    assert_eq!(login(&server, "alice", "alice-password", home).await, 200);

    // A restart empties every limiter; the spray starts again at once.
    let server = server.restart("").await;
    assert!(server.data_path("known-logins").exists());
    let mut spray = Vec::new();
    for i in 0..8 {
        spray.push(login(&server, "alice", "guess", Some(&format!("192.0.2.{i}"))).await);
    }
    assert_eq!(spray, [401, 401, 401, 401, 401, 429, 429, 429]);
    // Alice, from her network, is not locked out; from a new one she waits like anyone.
    assert_eq!(login(&server, "alice", "alice-password", home).await, 200);
    assert_eq!(
        login(&server, "alice", "alice-password", Some("192.0.2.200")).await,
        429
    );
}

#[tokio::test]
async fn the_per_address_api_cap_is_a_setting() {
    let server = TestServer::start("[limits]\nmax_requests_per_client = 1\n").await;
    let api = server.state.api.load();
    assert_eq!(api.limits.max_requests_per_client, 1);
    // Two slow bodies from one address: the second is turned away at once.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    slow.write_all(
        b"POST /jars/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nuser=",
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let resp = client()
        .get(server.url("/jars/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(error_name(&resp.text().await.unwrap()), "TooManyRequests");
    drop(slow);
}
