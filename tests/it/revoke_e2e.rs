//! Taking access back on a real Icecast 2.4.4 (issue 16.9), with jars dropping sessions through
//! Icecast's admin API (`[[icecast.servers]]`): a listener holding a revoked ticket is
//! disconnected within 3 s; a banned address is refused and its live listener dropped; a DJ's
//! source is dropped when the event is ended and when it expires while live; a guest's source
//! ticket goes live on its event only and is dropped when revoked; and a ban made on node A
//! drops a listener admitted through node B (two jars, one PostgreSQL).

use std::time::{Duration, Instant};

use jars::clock::Clock;
use jars::config::IcecastServer;
use serde_json::Value;

use crate::icecast_e2e::{rig, Rig};
use crate::support::icecast::{self, ADMIN_PASSWORD, ADMIN_USER};
use crate::support::pg::{admin_url, TempDb};
use crate::support::{post_form, TestServer};

/// How soon a taken-back session must be gone from Icecast.
const DROPPED_WITHIN: Duration = Duration::from_secs(3);

/// Gives the rig's jars the admin API of the rig's Icecast (as `[[icecast.servers]]` would).
fn wire_admin(rig: &Rig) {
    rig.jars
        .state
        .icecast_admin
        .set_servers(vec![IcecastServer {
            server: "localhost".into(),
            port: rig.icecast.port,
            admin_url: format!("http://127.0.0.1:{}", rig.icecast.port),
            admin_user: ADMIN_USER.into(),
            admin_password: ADMIN_PASSWORD.into(),
            max_listeners: 100,
            public_url: None,
            weight: 1,
            region: None,
        }]);
}

async fn post(server: &TestServer, path: &str, form: &[(&str, &str)]) -> Value {
    let (status, body) = post_form(&server.url(path), form).await;
    assert!((200..300).contains(&status), "{path}: {status} {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

async fn ticket(rig: &Rig, event: &str, kind: &str) -> String {
    let body = post(
        &rig.jars,
        "/jars/ticket",
        &[("auth", &rig.owner), ("mount", event), ("kind", kind)],
    )
    .await;
    body["ticket"].as_str().unwrap().to_string()
}

/// Starts `event`'s source with `password` and waits until jars shows it live.
async fn live_source(rig: &Rig, event: &str, password: &str) -> icecast::SourceHandle {
    let source = rig
        .source(&format!("/{event}.mp3"), "source", password)
        .await;
    assert_eq!(source.status(), 200, "{}", rig.icecast.error_log());
    rig.wait_event(event, "live", |e| e["live"] == true).await;
    source
}

/// Waits until Icecast has closed `source`'s connection; how long it took.
async fn source_dropped(source: &icecast::SourceHandle, within: Duration) -> Duration {
    let started = Instant::now();
    while source.is_streaming() {
        assert!(
            started.elapsed() < within,
            "the source was not dropped within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    started.elapsed()
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_listener_is_disconnected_within_3_s_of_its_tickets_revocation() {
    let rig = rig("").await;
    wire_admin(&rig);
    let event = rig.jars.create_event(&rig.owner, "Private", true).await;
    let _source = live_source(&rig, &event, &rig.owner).await;
    let t = ticket(&rig, &event, "listener").await;
    let mount = format!("/{event}.mp3?token={t}");
    let listener = icecast::open_listener(rig.icecast.port, &mount, None).await;
    assert_eq!(listener.status(), 200);
    rig.wait_event(&event, "one listener", |e| e["listeners"] == 1)
        .await;
    let body = post(
        &rig.jars,
        "/jars/tickets/revoke",
        &[("auth", &rig.owner), ("ticket", &t)],
    )
    .await;
    assert_eq!(body["revoked"], 1);
    let closed = listener.wait_closed(DROPPED_WITHIN).await;
    assert!(closed.is_some(), "still listening 3 s after the revocation");
    let again = icecast::open_listener(rig.icecast.port, &mount, None).await;
    assert_ne!(again.status(), 200, "a revoked ticket is refused");
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_banned_address_is_refused_and_its_live_listener_dropped() {
    let rig = rig("").await;
    wire_admin(&rig);
    rig.jars.add_user("boss", "pw", true);
    let boss = rig.jars.login("boss", "pw").await;
    let event = rig.jars.create_event(&rig.owner, "Public", false).await;
    let _source = live_source(&rig, &event, &rig.owner).await;
    let mount = format!("/{event}.mp3");
    let listener = icecast::open_listener(rig.icecast.port, &mount, None).await;
    assert_eq!(listener.status(), 200);
    rig.wait_event(&event, "one listener", |e| e["listeners"] == 1)
        .await;
    post(
        &rig.jars,
        "/jars/bans",
        &[("auth", &boss), ("ip", "127.0.0.0/8")],
    )
    .await;
    assert!(
        listener.wait_closed(DROPPED_WITHIN).await.is_some(),
        "the banned listener is still there"
    );
    let again = icecast::open_listener(rig.icecast.port, &mount, None).await;
    assert_ne!(again.status(), 200, "the banned address is refused");
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_djs_source_is_dropped_when_the_event_is_ended_and_when_it_expires_while_live() {
    let rig = rig("").await;
    wire_admin(&rig);
    let ended = rig.jars.create_event(&rig.owner, "Ended", false).await;
    let expiring = rig.jars.create_event(&rig.owner, "Expiring", false).await;
    let source = live_source(&rig, &ended, &rig.owner).await;
    let other = live_source(&rig, &expiring, &rig.owner).await;
    post(
        &rig.jars,
        &format!("/jars/events/{ended}/end"),
        &[("auth", &rig.owner)],
    )
    .await;
    source_dropped(&source, DROPPED_WITHIN).await;
    // Icecast's mount_remove reaches jars: the ended event has no source any more.
    let sessions = format!("/jars/events/{ended}/sessions");
    let started = Instant::now();
    loop {
        let v: Value = crate::support::client()
            .get(rig.jars.url(&sessions))
            .bearer_auth(&rig.owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["source"].is_null() {
            break;
        }
        assert!(started.elapsed() < DROPPED_WITHIN * 3, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(other.is_streaming(), "only the ended event's source goes");
    let again = rig
        .source(&format!("/{ended}.mp3"), "source", &rig.owner)
        .await;
    assert_ne!(again.status(), 200, "an ended event takes no source");

    // Expiry while live: jars' clock moves past the event's end; the next sweep drops it.
    let e = rig
        .wait_event(&expiring, "live", |e| e["live"] == true)
        .await;
    let left = e["expires_time"].as_i64().unwrap() - rig.jars.clock.now().timestamp();
    rig.jars
        .clock
        .advance(Duration::from_secs(left.max(0) as u64 + 1));
    source_dropped(&other, DROPPED_WITHIN).await;
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_guests_source_ticket_goes_live_on_its_event_only_and_is_dropped_when_revoked() {
    let rig = rig("").await;
    wire_admin(&rig);
    let event = rig.jars.create_event(&rig.owner, "Guest show", false).await;
    let elsewhere = rig.jars.create_event(&rig.owner, "Other show", false).await;
    let guest = ticket(&rig, &event, "source").await;
    let refused = rig
        .source(&format!("/{elsewhere}.mp3"), "source", &guest)
        .await;
    assert_ne!(refused.status(), 200, "not on another event");
    drop(refused);
    let source = live_source(&rig, &event, &guest).await;
    let e = rig.wait_event(&event, "live", |e| e["live"] == true).await;
    assert_eq!(e["connected_by"], rig.owner_id, "connected by its minter");
    post(
        &rig.jars,
        "/jars/tickets/revoke",
        &[("auth", &rig.owner), ("ticket", &guest)],
    )
    .await;
    source_dropped(&source, DROPPED_WITHIN).await;
}

#[cfg_attr(
    not(all(jars_has = "icecast2", jars_has = "postgres")),
    ignore = "needs icecast2 and PostgreSQL, not all found when the tests were built (install or start them, then touch build.rs)"
)]
#[tokio::test]
async fn a_ban_made_on_node_a_drops_a_listener_admitted_through_node_b() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let store = format!("[store]\nurl = \"{}\"\n", db.url);
    // Node B answers the Icecast; node A only shares the database.
    let rig = rig(&store).await;
    wire_admin(&rig);
    let a = TestServer::start(&store).await;
    a.add_user("boss", "pw", true);
    let boss = a.login("boss", "pw").await;
    let event = rig.jars.create_event(&rig.owner, "Shared", false).await;
    let _source = live_source(&rig, &event, &rig.owner).await;
    let mount = format!("/{event}.mp3");
    let listener = icecast::open_listener(rig.icecast.port, &mount, None).await;
    assert_eq!(listener.status(), 200);
    rig.wait_event(&event, "one listener", |e| e["listeners"] == 1)
        .await;
    let banned = Instant::now();
    post(&a, "/jars/bans", &[("auth", &boss), ("ip", "127.0.0.1")]).await;
    // Node B notices within 2 s, then Icecast drops the listener.
    let closed = listener.wait_closed(DROPPED_WITHIN).await;
    assert!(closed.is_some(), "B's listener survived A's ban");
    eprintln!("listener dropped {:?} after the ban on A", banned.elapsed());
    a.stop().await;
}
