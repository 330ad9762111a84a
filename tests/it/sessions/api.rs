//! Sessions through a real jars: callbacks shaped as Icecast 2.4.4 sends them, rows written
//! by the writer off the callback path, `GET /jars/events/{id}/stats` and who may read it, a
//! `listener_remove` after a restart, and a store outage that drops rows but no decision.

use crate::support;

use chrono::{DateTime, DurationRound, Utc};
use jars::clock::Clock;
use jars::domain::EndReason;
use jars::store::sessions::{SessionFilter, SessionRecord};
use serde_json::Value;
use support::{client, error_name, TestServer};

pub(super) const CONFIG: &str = r#"
[icecast]
username = "icecast"
password = "cb-secret"

[[icecast.mounts]]
name = "/studio"
access = "public"
"#;

/// Sends a callback; whether Icecast would let the client in.
async fn send(server: &TestServer, fields: &[(&str, &str)]) -> bool {
    let resp = client()
        .post(server.url("/icecast/auth"))
        .basic_auth("icecast", Some("cb-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(support::callback_body(fields))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.headers()
        .get("icecast-auth-user")
        .is_some_and(|v| v == "1")
}

pub(super) async fn join(server: &TestServer, client_id: &str, mount: &str, ip: &str) -> bool {
    send(
        server,
        &[
            ("action", "listener_add"),
            ("server", "ice.example"),
            ("port", "8000"),
            ("client", client_id),
            ("mount", mount),
            ("user", ""),
            ("pass", ""),
            ("ip", ip),
            ("agent", "VLC/3.0.18 LibVLC/3.0.18"),
            ("ClientHeader.referer", "https://radio.example/player"),
        ],
    )
    .await
}

pub(super) async fn leave(server: &TestServer, client_id: &str, mount: &str, duration: u64) {
    let duration = duration.to_string();
    send(
        server,
        &[
            ("action", "listener_remove"),
            ("server", "ice.example"),
            ("port", "8000"),
            ("client", client_id),
            ("mount", mount),
            ("user", ""),
            ("pass", ""),
            ("duration", &duration),
            ("ip", "127.0.0.1"),
        ],
    )
    .await;
}

async fn rows(server: &TestServer) -> Vec<SessionRecord> {
    server.state.hooks.sessions.flush().await;
    let store = server
        .state
        .hooks
        .sessions
        .store()
        .expect("sessions stored");
    store
        .sessions(SessionFilter::default(), 1_000)
        .await
        .unwrap()
}

/// Runs the daemon's session maintenance of `server` at `at`, with `live` as its live state.
async fn maintain(
    server: &TestServer,
    live: &jars::live::LiveState,
    at: DateTime<Utc>,
) -> (u64, u64) {
    server
        .state
        .hooks
        .sessions
        .maintain(live, at)
        .await
        .unwrap()
}

async fn stats(server: &TestServer, token: Option<&str>, event: &str) -> (u16, Value) {
    let mut req = client().get(server.url(&format!("/jars/events/{event}/stats")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn stats_count_sessions_peak_hours_and_a_point_a_minute() {
    let server = TestServer::start(CONFIG).await;
    server.add_user("alice", "alice-password", false);
    server.add_user("bob", "bob-password", false);
    server.add_user("root", "root-password", true);
    let alice = server.login("alice", "alice-password").await;
    let bob = server.login("bob", "bob-password").await;
    let root = server.login("root", "root-password").await;
    let event = server.create_event(&alice, "Drive time", false).await;
    let mount = format!("/{event}.mp3");
    // Stored to the microsecond.
    let t0 = server
        .clock
        .now()
        .duration_trunc(chrono::Duration::microseconds(1))
        .unwrap();
    server.clock.set(t0);

    assert!(join(&server, "1", &format!("{mount}?x=1"), "203.0.113.77").await);
    server.clock.advance(std::time::Duration::from_secs(30));
    assert!(join(&server, "2", &mount, "2001:db8:abcd:12::9").await);
    server.clock.advance(std::time::Duration::from_secs(60));
    leave(&server, "1", &mount, 90).await;
    server.clock.advance(std::time::Duration::from_secs(30));
    leave(&server, "2", &mount, 90).await;
    // A third listener, after both left.
    assert!(join(&server, "3", &mount, "203.0.113.5").await);
    server.clock.advance(std::time::Duration::from_secs(100));
    leave(&server, "3", &mount, 100).await;

    let stored = rows(&server).await;
    assert_eq!(stored.len(), 3);
    let first = &stored[0];
    assert_eq!(first.session.ip, "203.0.113.0", "truncated by default");
    assert_eq!(stored[1].session.ip, "2001:db8:abcd::");
    assert_eq!(
        first.session.agent.as_deref(),
        Some("VLC/3.0.18 LibVLC/3.0.18")
    );
    assert_eq!(
        first.session.referer.as_deref(),
        Some("https://radio.example/player")
    );
    assert_eq!(first.session.mount, mount, "without the query string");
    assert_eq!(first.end_reason, Some(EndReason::Left));
    assert_eq!(first.session.started, t0);

    let (status, s) = stats(&server, Some(&alice), &event).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["event"], event.as_str());
    assert_eq!(s["sessions"], 3);
    // 203.0.113.0 twice (the /24), 2001:db8:abcd:: once.
    assert_eq!(s["unique_listeners"], 2);
    assert_eq!(s["peak_listeners"], 2);
    let hours = s["listening_hours"].as_f64().unwrap();
    assert!((hours - 280.0 / 3600.0).abs() < 1e-9, "{hours}");
    assert!((s["mean_session_seconds"].as_f64().unwrap() - 280.0 / 3.0).abs() < 1e-9);
    assert_eq!(time(&s["first_start"]), t0);
    assert_eq!(time(&s["last_end"]), t0 + chrono::Duration::seconds(220));
    let series = s["series"].as_array().unwrap();
    // One point a minute from t0's minute to the last end's.
    let minutes = (t0 + chrono::Duration::seconds(220)).timestamp() / 60 - t0.timestamp() / 60;
    assert_eq!(series.len() as i64, minutes + 1, "{series:?}");
    for pair in series.windows(2) {
        assert_eq!(
            (time(&pair[1]["t"]) - time(&pair[0]["t"])).num_seconds(),
            60
        );
    }
    let most = series
        .iter()
        .map(|p| p["listeners"].as_u64().unwrap())
        .max();
    assert_eq!(most, Some(2));
    assert_eq!(time(&series[0]["t"]).timestamp() % 60, 0);

    // The owner and admins only; the caller's input is never an outage.
    assert_eq!(stats(&server, Some(&root), &event).await.0, 200);
    let (status, body) = stats(&server, Some(&bob), &event).await;
    assert_eq!(status, 403);
    assert_eq!(
        error_name(&body.to_string()),
        "UnauthorizedConnectionException"
    );
    let (status, body) = stats(&server, None, &event).await;
    assert_eq!(
        (status, error_name(&body.to_string())),
        (400, "MissingArgumentError".into())
    );
    let other = uuid::Uuid::new_v4().to_string();
    assert_eq!(stats(&server, Some(&root), &other).await.0, 404);
    assert_eq!(stats(&server, Some(&root), "nope").await.0, 400);

    let metrics = server.state.metrics.render();
    assert!(
        metrics.contains("jars_listening_seconds_total 280"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"jars_sessions_dropped_total{reason="queue_full"} 0"#));
}

#[tokio::test]
async fn a_remove_after_a_restart_closes_the_row_and_reused_ids_are_lost() {
    let first = TestServer::start(CONFIG).await;
    assert!(join(&first, "5", "/studio", "198.51.100.20").await);
    assert!(join(&first, "6", "/studio", "198.51.100.21").await);
    first.state.hooks.sessions.flush().await;
    // A second jars on the same store, knowing nothing live: a restart.
    let path = first.data_path("jars.sqlite3");
    let second = TestServer::start(&format!(
        "{CONFIG}\n[store]\nurl = \"sqlite:{}\"\n",
        path.display()
    ))
    .await;
    second
        .clock
        .set(first.clock.now() + chrono::Duration::seconds(42));
    leave(&second, "5", "/studio", 42).await;
    // Icecast restarted too: client id 6 is somebody new.
    assert!(join(&second, "6", "/studio", "198.51.100.99").await);
    let stored = rows(&second).await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(stored[0].end_reason, Some(EndReason::Left));
    assert_eq!(stored[0].duration, Some(42));
    assert_eq!(stored[0].session.event(), None);
    assert_eq!(stored[0].session.mount, "/studio");
    assert_eq!(stored[1].end_reason, Some(EndReason::Lost));
    assert_eq!(stored[2].end_reason, None, "open");
    assert_eq!(stored[2].session.ip, "198.51.100.0");

    // Maintenance: the open row is live here, so it stays; once it is not (this node never
    // saw it) and older than lost_after, it is closed as lost.
    let now = second.clock.now();
    let nothing_live = jars::live::LiveState::new();
    let days = chrono::Duration::days;
    let (_, lost) = maintain(&second, &second.state.hooks.live, now + days(2)).await;
    assert_eq!(lost, 0, "still live on this node");
    let (_, lost) = maintain(&first, &nothing_live, now + chrono::Duration::hours(2)).await;
    assert_eq!(lost, 0, "younger than lost_after (24h)");
    let (purged, lost) = maintain(&first, &nothing_live, now + days(2)).await;
    assert_eq!((purged, lost), (0, 1));
    // Past retention (400 days), every row goes.
    let (purged, _) = maintain(&first, &nothing_live, now + days(401)).await;
    assert_eq!(purged, 3);
}

#[tokio::test]
async fn ip_modes_store_what_they_say() {
    for (mode, want) in [
        ("full", "203.0.113.77"),
        ("none", ""),
        ("truncated", "203.0.113.0"),
    ] {
        let server = TestServer::start(&format!("{CONFIG}\n[sessions]\nip = \"{mode}\"\n")).await;
        assert!(join(&server, "1", "/studio", "203.0.113.77").await);
        let stored = rows(&server).await;
        assert_eq!(stored[0].session.ip, want, "{mode}");
    }
}

#[tokio::test]
async fn disabled_sessions_store_nothing_and_stats_read_none() {
    let server = TestServer::start(&format!("{CONFIG}\n[sessions]\nenabled = false\n")).await;
    server.add_user("alice", "alice-password", false);
    let alice = server.login("alice", "alice-password").await;
    let event = server.create_event(&alice, "Quiet", false).await;
    let mount = format!("/{event}");
    assert!(join(&server, "1", &mount, "192.0.2.1").await);
    server.clock.advance(std::time::Duration::from_secs(5));
    leave(&server, "1", &mount, 5).await;
    assert!(server.state.hooks.sessions.store().is_none());
    let (status, s) = stats(&server, Some(&alice), &event).await;
    assert_eq!(status, 200);
    assert_eq!(
        (s["sessions"].as_u64(), s["peak_listeners"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(s["series"].as_array().unwrap().is_empty());
    assert!(s["first_start"].is_null());
    // Listening is still counted for Prometheus.
    assert!(server
        .state
        .metrics
        .render()
        .contains("jars_listening_seconds_total 5"));
}

#[tokio::test]
async fn a_store_outage_drops_rows_counted_and_never_a_decision() {
    // Nothing listens on port 1: every batch fails. The static mount needs no event row.
    let server = TestServer::start(&format!(
        "{CONFIG}\n[store]\nurl = \"postgres://jars:pw@127.0.0.1:1/none\"\nacquire_timeout = \"200ms\"\n"
    ))
    .await;
    let started = std::time::Instant::now();
    for client_id in ["1", "2", "3"] {
        assert!(join(&server, client_id, "/studio", "192.0.2.1").await);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "a decision waited"
    );
    server.state.hooks.sessions.flush().await;
    let dropped = server
        .state
        .metrics
        .sessions_dropped
        .with_label_values(&["store_error"])
        .get();
    assert_eq!(dropped, 3);
}

#[tokio::test]
async fn long_agents_and_referers_are_cut_and_marked() {
    let server = TestServer::start(CONFIG).await;
    // 12 KB of agent, and a referer cut inside multi-byte characters: the callback stays
    // under its 16 KiB body limit.
    let agent = "A".repeat(12_000);
    let referer = format!(
        "https://radio.example/{}{}",
        "é".repeat(300),
        "b".repeat(1_000)
    );
    assert!(
        send(
            &server,
            &[
                ("action", "listener_add"),
                ("server", "ice.example"),
                ("port", "8000"),
                ("client", "1"),
                ("mount", "/studio"),
                ("user", ""),
                ("pass", ""),
                ("ip", "192.0.2.1"),
                ("agent", &agent),
                ("ClientHeader.referer", &referer),
            ],
        )
        .await
    );
    let stored = rows(&server).await;
    let s = &stored[0].session;
    let agent = s.agent.as_deref().unwrap();
    let referer = s.referer.as_deref().unwrap();
    for text in [agent, referer] {
        assert!(
            text.len() <= jars::domain::session::MAX_STORED_TEXT,
            "{}",
            text.len()
        );
        assert!(
            text.ends_with(jars::domain::session::CUT_MARK),
            "marked as cut"
        );
    }
    assert!(referer.starts_with("https://radio.example/é"));
}

/// After a crash every open row may be stale: the sweep reads them a page
/// ([`jars::sessions::writer::LOST_PAGE`]) at a time and closes every one that is not live.
#[tokio::test]
async fn the_lost_sweep_closes_more_stale_rows_than_a_page() {
    use crate::sessions::store::{listener, open};
    let server = TestServer::start(CONFIG).await;
    let store = server.state.hooks.sessions.store().expect("sessions on");
    let event = uuid::Uuid::new_v4();
    // Started now (the daemon's own sweep leaves them be), stale two days on.
    let now = server.clock.now();
    let session = |i: usize| jars::domain::Session {
        started: now + chrono::Duration::milliseconds(i as i64),
        ..listener(&format!("{i}"), event, 0.0)
    };
    let rows = jars::sessions::writer::LOST_PAGE as usize + 5;
    let ops: Vec<_> = (0..rows).map(|i| open(session(i))).collect();
    store.apply(&ops).await.unwrap();
    // One of them is live on this node: it stays open.
    let live = jars::live::LiveState::new();
    let kept = session(7);
    live.listener_joined(kept.clone(), None, now).unwrap();
    let later = now + chrono::Duration::days(2);
    let (purged, lost) = maintain(&server, &live, later).await;
    assert_eq!((purged, lost), (0, rows as u64 - 1));
    let open_left = store.open_before(later, later, 0, 100).await.unwrap();
    assert_eq!(open_left.len(), 1);
    assert_eq!(open_left[0].key, kept.key);
}
