//! Operations through real servers on 127.0.0.1:0: metrics present and moving with traffic,
//! readiness, reload with a rotated key while requests are in flight, and a verify-only node
//! fed by another jars' `/jars/jwks.json` (unknown-`kid` refetch, issuer down, fail closed).

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::{client, error_name, post_form, TestServer};

pub(crate) async fn metrics(server: &TestServer) -> String {
    let resp = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The value of the first sample line that starts with `prefix`.
pub(crate) fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metric_families_are_present_and_move_with_traffic() {
    let server = TestServer::start("").await;
    server.add_user("dj", "pw", false);
    let token = server.login("dj", "pw").await;
    let event = server.create_event(&token, "Show", true).await;

    // A denied and an allowed listener, a connect, an unknown path.
    let listener_add = |uri: String| {
        let body = format!(
            "action=listener_add&server=s&port=1&client=1&mount={}&user=&pass=&ip=1.1.1.1",
            uri.replace('/', "%2f")
                .replace('?', "%3f")
                .replace('=', "%3d")
        );
        let req = client()
            .post(server.url("/icecast/auth"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        async move { req.send().await.unwrap() }
    };
    listener_add(format!("/{event}")).await;
    listener_add(format!("/{event}?token={token}")).await;
    post_form(
        &server.url("/jars/connect"),
        &[("auth", token.as_str()), ("mount", event.as_str())],
    )
    .await;
    client()
        .get(server.url(&format!("/jars/events/{event}")))
        .send()
        .await
        .unwrap();
    client()
        .get(server.url("/nope/secret-path"))
        .send()
        .await
        .unwrap();

    let text = metrics(&server).await;
    for family in [
        "jars_http_requests_total",
        "jars_http_request_duration_seconds_bucket",
        "jars_auth_decisions_total",
        "jars_token_cache_requests_total",
        "jars_key_set_age_seconds",
        "jars_live_mounts",
        "jars_listeners",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            r#"jars_auth_decisions_total{action="listener_add",decision="deny",reason="ticket_required"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"jars_auth_decisions_total{action="listener_add",decision="allow",reason="ok"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"jars_auth_decisions_total{action="connect",decision="allow",reason="ok"}"#
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, "jars_listeners "), Some(1.0));
    // Routes are the matched patterns, never raw paths (which could carry ids or tokens).
    assert!(text.contains(r#"route="/jars/events/{id}""#));
    assert!(text.contains(r#"route="unmatched""#));
    assert!(!text.contains("secret-path"));
    assert!(!text.contains(&event));
    assert!(!text.contains(&token));
    let misses = sample(&text, r#"jars_token_cache_requests_total{result="miss"}"#).unwrap();
    let hits = sample(&text, r#"jars_token_cache_requests_total{result="hit"}"#).unwrap();
    assert!(misses >= 1.0 && hits >= 1.0, "hits {hits} misses {misses}");

    // Counters move.
    listener_add(format!("/{event}")).await;
    let again = metrics(&server).await;
    assert_eq!(
        sample(
            &again,
            r#"jars_auth_decisions_total{action="listener_add",decision="deny",reason="ticket_required"}"#
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn metrics_listen_serves_metrics_alone_on_its_own_address() {
    let server = TestServer::start_with_metrics_listener("").await;
    let metrics_addr = server.metrics_addr.expect("a metrics listener");
    let on_main = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(on_main.status(), 404, "/metrics moved off the main address");
    let alone = format!("http://{metrics_addr}");
    let resp = client()
        .get(format!("{alone}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("jars_ready "));
    let api = client()
        .get(format!("{alone}/jars/pubkey"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404, "only /metrics on the metrics address");
    // Both listeners stop on shutdown.
    server.stop().await;
    assert!(tokio::net::TcpStream::connect(metrics_addr).await.is_err());
}

#[tokio::test]
async fn readiness() {
    let server = TestServer::start("").await;
    let resp = client().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(sample(&metrics(&server).await, "jars_ready "), Some(1.0));
    // A verify-only node whose issuer cannot be reached has no keys: not ready.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let orphan = TestServer::start(&format!(
        "[tokens]\njwks_url = \"http://127.0.0.1:{port}/jars/jwks.json\"\n"
    ))
    .await;
    let resp = client().get(orphan.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "no keys loaded");
}

fn no_log_level(_: &str) -> Result<(), String> {
    Ok(())
}

#[tokio::test]
async fn reload_with_a_rotated_key_while_requests_are_in_flight() {
    let server = TestServer::start("").await;
    server.add_user("dj", "pw", false);
    let old = server.login("dj", "pw").await;
    let event = server.create_event(&old, "Show", false).await;

    // Keep requests going while the key is rotated and the config reloaded.
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, old, event) = (server.url("/jars/connect"), old.clone(), event.clone());
        let (failures, done) = (failures.clone(), done.clone());
        load.push(tokio::spawn(async move {
            for _ in 0..50 {
                let (status, _) =
                    post_form(&url, &[("auth", old.as_str()), ("mount", event.as_str())]).await;
                if status != 202 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let (retired, new_kid) = jars::keys::rotate_pair(server.dir.path()).unwrap();
    let overrides = jars::config::Overrides {
        data_dir: Some(server.dir.path().to_path_buf()),
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    jars::setup::reload(&server.state, &server.config, &overrides, &no_log_level).unwrap();
    for t in load {
        t.await.unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 200);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "a request failed during reload"
    );

    let new = server.login("dj", "pw").await;
    let kid = |t: &str| {
        use base64::Engine;
        let head = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.split('.').next().unwrap())
            .unwrap();
        serde_json::from_slice::<Value>(&head).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(kid(&old), retired);
    assert_eq!(kid(&new), new_kid);
    for t in [&old, &new] {
        let (status, _) = post_form(
            &server.url("/jars/connect"),
            &[("auth", t.as_str()), ("mount", event.as_str())],
        )
        .await;
        assert_eq!(status, 202);
    }
    let jwks: Value = client()
        .get(server.url("/jars/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str(), retired.as_str()]);
}

#[tokio::test]
async fn a_broken_config_on_reload_keeps_the_old_one() {
    let server = TestServer::start("").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jars.toml");
    std::fs::write(&path, "[tokens]\nlifetime = \"whenever\"\n").unwrap();
    let overrides = jars::config::Overrides {
        config: Some(path.clone()),
        data_dir: Some(server.dir.path().to_path_buf()),
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let err =
        jars::setup::reload(&server.state, &server.config, &overrides, &no_log_level).unwrap_err();
    assert!(
        err.contains("tokens.lifetime") || err.contains("line 2"),
        "{err}"
    );
    assert_eq!(
        server.state.tokens.policy().lifetime,
        Duration::from_secs(86400)
    );

    // A valid change takes effect.
    std::fs::write(&path, "[tokens]\nlifetime = \"1h\"\n").unwrap();
    jars::setup::reload(&server.state, &server.config, &overrides, &no_log_level).unwrap();
    server.add_user("dj", "pw", false);
    let token = server.login("dj", "pw").await;
    let claims = server.state.tokens.verify(&token).await.unwrap();
    assert_eq!(claims.exp - claims.iat, 3600);
}

#[tokio::test]
async fn verify_only_node_follows_the_issuer() {
    let issuer = TestServer::start("").await;
    let id = issuer.add_user("dj", "pw", false);
    let token = issuer.login("dj", "pw").await;
    let relay = TestServer::start(&format!(
        "[tokens]\njwks_url = \"{}\"\nrefetch_min_interval = \"100ms\"\n",
        issuer.url("/jars/jwks.json")
    ))
    .await;
    assert!(
        !relay.data_path("jwt-private.pem").exists(),
        "no private key on a verify-only node"
    );
    let event = relay.create_event(&token, "On the relay", false).await;

    // It cannot mint tokens.
    let (status, body) = post_form(
        &relay.url("/jars/token"),
        &[("user", "dj"), ("password", "pw")],
    )
    .await;
    assert_eq!(status, 501);
    assert_eq!(error_name(&body), "VerifyOnlyNode");

    // The issuer rotates; a token with the new kid is accepted after one refetch.
    jars::keys::rotate_pair(issuer.dir.path()).unwrap();
    let overrides = jars::config::Overrides {
        data_dir: Some(issuer.dir.path().to_path_buf()),
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    jars::setup::reload(&issuer.state, &issuer.config, &overrides, &no_log_level).unwrap();
    let rotated = issuer.login("dj", "pw").await;
    relay.clock.advance(Duration::from_millis(150));
    let (status, body) = post_form(
        &relay.url("/jars/connect"),
        &[("auth", rotated.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let text = metrics(&relay).await;
    assert!(sample(&text, r#"jars_key_set_refreshes_total{result="ok"}"#).unwrap() >= 2.0);

    // The issuer goes away: the relay keeps accepting with the last good set.
    issuer.stop().await;
    for t in [&token, &rotated] {
        let (status, _) = post_form(
            &relay.url("/jars/connect"),
            &[("auth", t.as_str()), ("mount", event.as_str())],
        )
        .await;
        assert_eq!(status, 202);
    }
    let e: Value = client()
        .get(relay.url(&format!("/jars/events/{event}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["connected_by"], id);
    // An unknown kid now triggers a refetch that fails: counted, and the token is refused.
    let stranger = TestServer::start("").await;
    stranger.add_user("x", "pw", false);
    let foreign = stranger.login("x", "pw").await;
    relay.clock.advance(Duration::from_millis(150));
    let (status, body) = post_form(
        &relay.url("/jars/connect"),
        &[("auth", foreign.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(error_name(&body), "InvalidSignatureError");
    let text = metrics(&relay).await;
    assert!(sample(&text, r#"jars_key_set_refreshes_total{result="error"}"#).unwrap() >= 1.0);
}

#[tokio::test]
async fn a_stale_key_set_fails_closed() {
    let issuer = TestServer::start("").await;
    issuer.add_user("dj", "pw", false);
    let token = issuer.login("dj", "pw").await;
    let relay = TestServer::start(&format!(
        "[tokens]\njwks_url = \"{}\"\nrefresh = \"1h\"\nmax_stale = \"1s\"\n",
        issuer.url("/jars/jwks.json")
    ))
    .await;
    let event = relay.create_event(&token, "Show", false).await;
    issuer.stop().await;
    relay.clock.advance(Duration::from_millis(1001));
    let (status, body) = post_form(
        &relay.url("/jars/connect"),
        &[("auth", token.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(error_name(&body), "ServiceUnavailable");
    let resp = client().get(relay.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let text = metrics(&relay).await;
    assert!(sample(&text, "jars_key_set_age_seconds ").unwrap() >= 1.0);
}

/// A running server verifies RS256 with `ring` (`jars::crypto`), not RustCrypto: the provider
/// is installed before anything in the process signs or verifies. (This test binary never
/// calls `jsonwebtoken` itself, which could fix the default provider first.)
#[tokio::test]
async fn rs256_is_verified_by_ring() {
    let server = TestServer::start("").await;
    server.add_user("dj", "pw", false);
    let token = server.login("dj", "pw").await;
    let resp = client()
        .get(server.url(&format!("/jars/events?auth={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(jars::crypto::ring_verifies_rs256());
}
