//! Who may send Icecast callbacks: without `[icecast] username/password` only loopback and
//! `[icecast] allowed_from` (`rules::may_send_callbacks`). A real socket shows loopback is
//! obeyed; other peers are handed to the callback route in process (`tower::ServiceExt::oneshot`
//! with a `ConnectInfo`), as no test can connect from 192.0.2.x.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tower::ServiceExt;

use crate::support::{bad_callers, client, TestServer};

/// A public static mount: a listener there is allowed whenever the callback is decided at all.
const OPEN_MOUNT: &str = "[[icecast.mounts]]\nname = \"/open\"\naccess = \"public\"\n";
const JOIN: &str = "action=listener_add&mount=%2fopen&ip=10.0.0.1&server=x&port=1&client=1";

/// Whether a callback from `peer`, with `headers`, was allowed; through the whole app.
async fn allowed_from(server: &TestServer, peer: &str, headers: &[(&str, &str)]) -> bool {
    let mut req =
        Request::post("/icecast/auth").header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::from(JOIN)).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let app = jars::http::app(server.state.clone(), false);
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let allowed = resp.headers().get("icecast-auth-user").is_some();
    if !allowed {
        let message = resp.headers()["icecast-auth-message"].to_str().unwrap();
        assert!(message.contains("callback"), "{message}");
    }
    allowed
}

#[tokio::test]
async fn without_credentials_a_loopback_callback_is_decided() {
    let server = TestServer::start(OPEN_MOUNT).await;
    let resp = client()
        .post(server.url("/icecast/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(JOIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["icecast-auth-user"], "1");
    assert_eq!(bad_callers(&server), 0);
}

#[tokio::test]
async fn without_credentials_other_addresses_are_refused_and_counted() {
    let server = TestServer::start(OPEN_MOUNT).await;
    assert!(allowed_from(&server, "127.0.0.1:5000", &[]).await);
    assert!(allowed_from(&server, "[::1]:5000", &[]).await);
    assert_eq!(bad_callers(&server), 0);
    assert!(!allowed_from(&server, "192.0.2.7:5000", &[]).await);
    assert_eq!(bad_callers(&server), 1);
    // A proxy on loopback that is not trusted does not make its callers local.
    let via_proxy = [("x-forwarded-for", "192.0.2.7")];
    assert!(!allowed_from(&server, "127.0.0.1:5000", &via_proxy).await);
    assert!(!allowed_from(&server, "127.0.0.1:5000", &[("forwarded", "for=192.0.2.7")]).await);
    assert_eq!(bad_callers(&server), 3);
}

#[tokio::test]
async fn allowed_from_admits_its_ranges_and_a_trusted_proxys_clients() {
    let server = TestServer::start(&format!(
        "{OPEN_MOUNT}[icecast]\nallowed_from = [\"192.0.2.0/24\"]\n\
         [limits]\ntrusted_proxies = [\"10.9.9.9\"]\n"
    ))
    .await;
    assert!(allowed_from(&server, "192.0.2.7:5000", &[]).await);
    assert!(!allowed_from(&server, "198.51.100.1:5000", &[]).await);
    // Behind the trusted proxy, the forwarded client decides, not the proxy.
    assert!(
        allowed_from(
            &server,
            "10.9.9.9:5000",
            &[("x-forwarded-for", "192.0.2.8")]
        )
        .await
    );
    assert!(
        !allowed_from(
            &server,
            "10.9.9.9:5000",
            &[("x-forwarded-for", "198.51.100.1")]
        )
        .await
    );
    // An untrusted peer cannot claim an allowed address.
    assert!(
        !allowed_from(
            &server,
            "198.51.100.1:5000",
            &[("x-forwarded-for", "192.0.2.8")]
        )
        .await
    );
    assert_eq!(bad_callers(&server), 3);
}

#[tokio::test]
async fn with_credentials_they_decide_and_allowed_from_narrows() {
    let basic = format!("Basic {}", STANDARD.encode("icecast:cb-secret"));
    let right = [("authorization", basic.as_str())];
    let creds = "[icecast]\nusername = \"icecast\"\npassword = \"cb-secret\"\n";
    let server = TestServer::start(&format!("{OPEN_MOUNT}{creds}")).await;
    assert!(allowed_from(&server, "198.51.100.1:5000", &right).await);
    assert!(!allowed_from(&server, "127.0.0.1:5000", &[]).await);
    assert_eq!(bad_callers(&server), 1);

    let server = TestServer::start(&format!(
        "{OPEN_MOUNT}{creds}allowed_from = [\"192.0.2.0/24\"]\n"
    ))
    .await;
    assert!(allowed_from(&server, "192.0.2.7:5000", &right).await);
    assert!(allowed_from(&server, "127.0.0.1:5000", &right).await);
    assert!(!allowed_from(&server, "198.51.100.1:5000", &right).await);
    assert_eq!(bad_callers(&server), 1);
}
