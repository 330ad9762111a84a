//! Every outcome of `/jars/connect`, `/jars/token` and `/jars/ticket` is on record: exactly one
//! log line with its action, reason and client address (never the token or password sent) and
//! exactly one `jars_auth_decisions_total{action, decision, reason}` sample. The server runs on
//! this test's thread, so the thread-local subscriber of `logs.rs` captures its lines.

use crate::logs::Captured;
use crate::support;

use std::time::Duration;

use support::{client, TestServer};

/// One request and the decision it must be recorded as.
struct Case<'a> {
    what: &'a str,
    path: &'a str,
    /// The body, form-encoded as sent.
    body: String,
    reason: &'a str,
    /// Text the request carries that must never reach the log (a token, a password).
    secret: Option<&'a str>,
}

/// A form body; every value the cases send (JWTs, UUIDs, plain words) is URL-safe as it is.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

async fn post(server: &TestServer, path: &str, body: String) -> reqwest::Response {
    client()
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The value `/metrics` shows for the sample.
async fn scraped(server: &TestServer, action: &str, decision: &str, reason: &str) -> u64 {
    let text = crate::ops::metrics(server).await;
    let series = format!(
        r#"jars_auth_decisions_total{{action="{action}",decision="{decision}",reason="{reason}"}} "#
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("{series} not exported"))
        .parse()
        .unwrap()
}

/// Sends `case` and checks its one sample and its one line.
async fn check(server: &TestServer, log: &Captured, case: &Case<'_>) {
    let action = case.path.trim_start_matches("/jars/");
    let decision = if case.reason == "ok" { "allow" } else { "deny" };
    let before = scraped(server, action, decision, case.reason).await;
    let all_before = server.state.metrics.auth_decisions.collect_total();
    let logged_before = log.text().len();
    let resp = post(server, case.path, case.body.clone()).await;
    assert_eq!(
        resp.status().is_success(),
        decision == "allow",
        "{}: {}",
        case.what,
        resp.status()
    );
    assert_eq!(
        scraped(server, action, decision, case.reason).await,
        before + 1,
        "{}: one sample of {action}/{decision}/{}",
        case.what,
        case.reason
    );
    assert_eq!(
        server.state.metrics.auth_decisions.collect_total(),
        all_before + 1,
        "{}: no other decision sample",
        case.what
    );
    let text = log.text();
    let new = &text[logged_before..];
    let lines: Vec<&str> = new.lines().filter(|l| l.contains("api decision")).collect();
    assert_eq!(lines.len(), 1, "{}: one line\n{new}", case.what);
    let line = lines[0];
    for field in [
        format!("action=\"{action}\""),
        format!("decision=\"{decision}\""),
        format!("reason=\"{}\"", case.reason),
        "client=127.0.0.1".to_string(),
    ] {
        assert!(
            line.split(' ').any(|f| f == field),
            "{}: {field} in {line}",
            case.what
        );
    }
    if let Some(secret) = case.secret {
        assert!(
            !new.contains(secret),
            "{}: a secret logged\n{new}",
            case.what
        );
    }
}

/// Sums every series of the decisions counter.
trait Total {
    fn collect_total(&self) -> u64;
}

impl Total for prometheus::IntCounterVec {
    fn collect_total(&self) -> u64 {
        use prometheus::core::Collector;
        self.collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }
}

#[tokio::test]
async fn every_outcome_is_one_line_and_one_sample() {
    let log = Captured::default();
    let _guard = log.start();
    let server = TestServer::start("").await;
    server.add_user("owner", "owner-pw", false);
    server.add_user("other", "other-pw", false);
    let owner = server.login("owner", "owner-pw").await;
    let other = server.login("other", "other-pw").await;
    let event = server.create_event(&owner, "Show", false).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let forged = {
        // One character of the signature changed: a forgery of the owner's token.
        let mut t = owner.clone().into_bytes();
        let at = t.len() - 10;
        t[at] = if t[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    let ticket_body = |auth: &str| form(&[("auth", auth), ("mount", &event)]);
    let connect_body = |auth: &str| form(&[("auth", auth), ("mount", &event)]);

    let ticket_ok = Case {
        what: "ticket by the owner",
        path: "/jars/ticket",
        body: ticket_body(&owner),
        reason: "ok",
        secret: Some(&owner),
    };
    check(&server, &log, &ticket_ok).await;
    let ticket: String = {
        let resp = post(&server, "/jars/ticket", ticket_body(&owner)).await;
        let body: serde_json::Value = resp.json().await.unwrap();
        body["ticket"].as_str().unwrap().to_string()
    };

    let cases = [
        Case {
            what: "connect without auth",
            path: "/jars/connect",
            body: form(&[("mount", &event)]),
            reason: "missing_argument",
            secret: None,
        },
        Case {
            what: "connect with garbage",
            path: "/jars/connect",
            body: connect_body("not-a-jwt-garbage"),
            reason: "invalid_token",
            secret: Some("not-a-jwt-garbage"),
        },
        Case {
            what: "connect with a forged signature",
            path: "/jars/connect",
            body: connect_body(&forged),
            reason: "invalid_token",
            secret: Some(&forged),
        },
        Case {
            what: "connect with a ticket as auth",
            path: "/jars/connect",
            body: connect_body(&ticket),
            reason: "wrong_token_kind",
            secret: Some(&ticket),
        },
        Case {
            what: "connect to an unknown event",
            path: "/jars/connect",
            body: form(&[("auth", &owner), ("mount", &unknown)]),
            reason: "no_event",
            secret: Some(&owner),
        },
        Case {
            what: "connect by another member",
            path: "/jars/connect",
            body: connect_body(&other),
            reason: "not_owner",
            secret: Some(&other),
        },
        Case {
            what: "connect with a body that is not UTF-8 (refused by the extractor)",
            path: "/jars/connect",
            body: format!("auth={owner}&mount=%ff"),
            reason: "invalid_argument",
            secret: Some(&owner),
        },
        Case {
            what: "connect by the owner",
            path: "/jars/connect",
            body: connect_body(&owner),
            reason: "ok",
            secret: Some(&owner),
        },
        Case {
            what: "token with a bad password",
            path: "/jars/token",
            body: form(&[("user", "owner"), ("password", "wrong-password-x")]),
            reason: "bad_credentials",
            secret: Some("wrong-password-x"),
        },
        Case {
            what: "token for an unknown user",
            path: "/jars/token",
            body: form(&[("user", "nobody"), ("password", "nobody-password-y")]),
            reason: "bad_credentials",
            secret: Some("nobody-password-y"),
        },
        Case {
            what: "token for good credentials",
            path: "/jars/token",
            body: form(&[("user", "owner"), ("password", "owner-pw")]),
            reason: "ok",
            secret: Some("owner-pw"),
        },
        Case {
            what: "ticket with a bad token",
            path: "/jars/ticket",
            body: ticket_body(&forged),
            reason: "invalid_token",
            secret: Some(&forged),
        },
        Case {
            what: "ticket by another member",
            path: "/jars/ticket",
            body: ticket_body(&other),
            reason: "not_owner",
            secret: Some(&other),
        },
    ];
    for case in &cases {
        check(&server, &log, case).await;
    }

    // Past the token's lifetime (24 h), the owner's token is refused as expired.
    server.clock.advance(Duration::from_secs(25 * 3600));
    let expired = Case {
        what: "connect with an expired token",
        path: "/jars/connect",
        body: connect_body(&owner),
        reason: "expired",
        secret: Some(&owner),
    };
    check(&server, &log, &expired).await;
    let text = log.text();
    assert!(
        text.contains(&format!("event={event}")) && text.contains("member="),
        "the event and member are named:\n{text}"
    );
}

#[tokio::test]
async fn the_user_name_is_logged_escaped() {
    let log = Captured::default();
    let _guard = log.start();
    let server = TestServer::start("").await;
    let resp = client()
        .post(server.url("/jars/token"))
        .form(&[("user", "evil\nWARN forged\x7f"), ("password", "pw")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let text = log.text();
    assert!(text.contains(r#"user=evil\nWARN forged\x7f"#), "{text}");
    assert!(!text.contains("\nWARN forged"), "no forged line:\n{text}");
}

#[tokio::test]
async fn api_decisions_start_at_zero() {
    let server = TestServer::start("").await;
    for (action, decision, reason) in [
        ("connect", "allow", "ok"),
        ("connect", "deny", "expired"),
        ("connect", "deny", "missing_argument"),
        ("token", "deny", "bad_credentials"),
        ("ticket", "deny", "not_owner"),
        ("ticket", "deny", "rate_limited"),
    ] {
        assert_eq!(scraped(&server, action, decision, reason).await, 0);
    }
}
