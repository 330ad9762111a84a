//! `jars ban`, `jars ticket revoke`, `jars ticket --source` and `jars event end`: what they
//! print and refuse, and that a running jars on the same SQLite file notices their writes
//! within 2 s (it drops the live sessions they hit).

use std::time::Duration;

use base64::Engine;

use super::{assert_usage_error, jars, stderr, stdout};
use crate::hooks::revoke::{within, Recorder};
use crate::support::TestServer;

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    stdout(o)
}

/// The claims of the ticket in `jars ticket`'s `ticket` row.
fn claims(printed: &str) -> serde_json::Value {
    let token = row(printed, "ticket");
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The value of `name`'s row in `jars ticket`'s output.
fn row(printed: &str, name: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.strip_prefix(name).filter(|v| v.starts_with(' ')))
        .unwrap_or_else(|| panic!("no {name} row in {printed}"))
        .trim()
        .to_string()
}

/// A `listener_add` from `ip` as client `id` on a public event; whether it was allowed.
async fn listen(server: &TestServer, event: &str, id: &str, ip: &str) -> bool {
    crate::hooks::listener_add(server, id, &format!("/{event}"), "", ip, None)
        .await
        .allowed
}

// Multi-threaded: the CLI runs as a blocking child process, and meanwhile the daemon in this
// process must go on (its session writer finishing a transaction on the same SQLite file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_notices_the_clis_bans_revocations_and_ends() {
    let server = TestServer::start("").await;
    let kicks = Recorder::on(&server);
    let dir = server.dir.path().to_str().unwrap().to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["--data-dir", dir.as_str()];
        all.extend_from_slice(args);
        jars(server.dir.path(), &all)
    };
    server.add_user("alice", "password1", false);
    let alice = server.login("alice", "password1").await;
    let event = server.create_event(&alice, "Drive time", false).await;
    assert!(listen(&server, &event, "1", "203.0.113.7").await);
    assert!(listen(&server, &event, "2", "192.0.2.2").await);

    // A ban.
    let out = ok(&cli(&[
        "ban",
        "add",
        "--ip",
        "203.0.113.0/24",
        "--for",
        "24h",
        "--reason",
        "ripping",
    ]));
    assert!(
        out.starts_with("added ban 1: ip 203.0.113.0/24 from every mount, until "),
        "{out}"
    );
    assert!(
        within(Duration::from_secs(2), || kicks.listeners()
            == [("1".to_string(), "banned")])
        .await,
        "{:?}",
        kicks.listeners()
    );
    assert!(!listen(&server, &event, "3", "203.0.113.8").await);
    let list = ok(&cli(&["ban", "list"]));
    assert!(
        list.contains("ip 203.0.113.0/24") && list.contains("ripping"),
        "{list}"
    );
    assert!(ok(&cli(&[
        "ban", "add", "--member", "alice", "--event", &event
    ]))
    .contains("member 1 (alice) from event"));
    ok(&cli(&["ban", "remove", "1"]));
    let out = cli(&["ban", "remove", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no ban 1"));
    assert!(
        within(Duration::from_secs(2), || {
            server.state.sanctions.current().version >= 3
        })
        .await
    );
    assert!(listen(&server, &event, "4", "203.0.113.8").await);

    // A source ticket, as the event's owner; then every ticket of the event revoked.
    let guest = ok(&cli(&["ticket", &event, "--source", "--lifetime", "1h"]));
    let c = claims(&guest);
    assert_eq!(
        (c["kind"].as_str(), c["by"].as_i64(), c["sub"].as_str()),
        (Some("source"), Some(1), Some(event.as_str()))
    );
    assert!(ok(&cli(&["ticket", "revoke", "--event", &event])).contains("revoked every ticket"));
    let out = ok(&cli(&["ticket", "revoke", c["jti"].as_str().unwrap()]));
    assert!(out.contains("revoked ticket"), "{out}");
    let out = ok(&cli(&["ticket", "revoke", c["jti"].as_str().unwrap()]));
    assert!(out.contains("already revoked"), "{out}");

    // Ending the event drops its listeners. The CLI ends it on the system clock, which has
    // moved on from where the server's stands: move the server's past it.
    assert_eq!(
        ok(&cli(&["event", "end", &event])).trim(),
        format!("ended event {event}")
    );
    server.clock.advance(Duration::from_secs(600));
    assert!(
        within(Duration::from_secs(2), || {
            kicks
                .listeners()
                .iter()
                .any(|(c, r)| c == "4" && *r == "event_expired")
        })
        .await,
        "{:?}",
        kicks.listeners()
    );
    let missing = uuid::Uuid::new_v4().to_string();
    let out = cli(&["event", "end", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no event"));
    server.stop().await;
}

#[test]
fn argument_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for (args, needle) in [
        (
            &["ban", "add", "--ip", "radio.example"][..],
            "not an address",
        ),
        (
            &["ban", "add", "--ip", "192.0.2.1", "--for", "soon"],
            "--for",
        ),
        (
            &["ban", "add", "--ip", "192.0.2.1", "--event", "nope"],
            "not an event id",
        ),
        (&["event", "end", "nope"], "not an event id"),
        (&["ticket", "revoke", "--event", "nope"], "not an event id"),
    ] {
        assert_usage_error(&jars(p, args), needle);
    }
    // Clap's own: neither --ip nor --member, both, a ticket id and --event, --source with a
    // listener's binding.
    for args in [
        &["ban", "add"][..],
        &["ban", "add", "--ip", "192.0.2.1", "--member", "alice"],
        &["ticket", "revoke", "x", "--event", "y"],
        &["ticket", "revoke"],
        &[
            "ticket",
            "5e0b9230-086c-406f-a26c-13ff3a8d3880",
            "--source",
            "--max-listeners",
            "2",
        ],
    ] {
        let out = jars(p, args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
    }
    // Nothing to act on: no store yet.
    let out = jars(p, &["ban", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// `jars ticket` prints what a listener link needs (issue 29 #11): the ticket, its `jti` (which
/// `jars ticket revoke` takes), when it expires, and the listening URL from `[ui]`; the API's
/// answer carries the `jti` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_says_its_id_expiry_and_listening_url() {
    let server = TestServer::start("[ui]\nicecast_url = \"https://radio.example:8443/\"\n").await;
    let dir = server.dir.path().to_str().unwrap().to_string();
    let config = server.dir.path().join("ui.toml");
    std::fs::write(
        &config,
        "[ui]\nicecast_url = \"https://radio.example:8443/\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["--data-dir", dir.as_str(), "--config", config.as_str()];
        all.extend_from_slice(args);
        jars(server.dir.path(), &all)
    };
    server.add_user("alice", "password1", false);
    let alice = server.login("alice", "password1").await;
    let event = server.create_event(&alice, "Drive time", true).await;

    let before = chrono::Utc::now().timestamp();
    let out = ok(&cli(&["ticket", &event, "--lifetime", "2h"]));
    let c = claims(&out);
    let ticket = row(&out, "ticket");
    let jti = c["jti"].as_str().unwrap();
    assert!(row(&out, "jti").starts_with(jti), "{out}");
    let exp = c["exp"].as_i64().unwrap();
    assert!((before + 7200..=before + 7260).contains(&exp), "{exp}");
    let expires = chrono::DateTime::from_timestamp(exp, 0).unwrap();
    assert!(
        row(&out, "expires").starts_with(&expires.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "{out}"
    );
    assert_eq!(
        row(&out, "listen"),
        format!("https://radio.example:8443/{event}.mp3?token={ticket}")
    );
    // The link works until revoked by the jti printed.
    let url = format!("/{event}.mp3?token={ticket}");
    let admitted = |client: &'static str| {
        let url = url.clone();
        let server = &server;
        async move {
            crate::hooks::listener_add(server, client, &url, "", "192.0.2.9", None)
                .await
                .allowed
        }
    };
    assert!(admitted("21").await);
    assert!(ok(&cli(&["ticket", "revoke", jti])).contains("revoked ticket"));
    assert!(
        within(Duration::from_secs(2), || server
            .state
            .sanctions
            .current()
            .version
            >= 1)
        .await
    );
    assert!(!admitted("22").await);

    // The API's answer names the jti as well.
    let (status, body) = crate::support::post_form(
        &server.url("/jars/ticket"),
        &[("auth", &alice), ("mount", &event)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let minted = claims(&format!("ticket {}", answer["ticket"].as_str().unwrap()));
    assert_eq!(answer["jti"], minted["jti"]);
    assert_eq!(answer["expires"], minted["exp"]);
}
