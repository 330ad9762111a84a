//! One live session model, where its parts meet, on a real Icecast 2.4.4 (issue 27): a kicked
//! listener's row ends `kicked` with its cause; after a jars restart the resync joins Icecast's
//! sessions with the open rows, so revoking a ticket or banning a member drops sessions that
//! began before it; a source's address is known and an IP ban drops it; a player retrying
//! while nothing is on air is no session; an ended event refuses a relay's retries as
//! `event_expired`.

use std::time::{Duration, Instant};

use jars::domain::{EndReason, Role};
use jars::store::sessions::{SessionFilter, SessionRecord};
use serde_json::Value;

use crate::icecast_e2e::{rig, rig_config, Rig, RELAY_PASS, RELAY_USER, WAIT};
use crate::ops::{metrics, sample};
use crate::support::icecast::{self, ADMIN_PASSWORD, ADMIN_USER};
use crate::support::{post_form, TestServer};

/// How soon a taken-back session must be gone from Icecast.
const DROPPED_WITHIN: Duration = Duration::from_secs(3);

/// `[[icecast.servers]]` for the rig's Icecast, as it reports itself.
fn admin_entry(port: u16) -> String {
    format!(
        "[[icecast.servers]]\nserver = \"localhost\"\nport = {port}\n\
         admin_url = \"http://127.0.0.1:{port}\"\nadmin_user = \"{ADMIN_USER}\"\n\
         admin_password = \"{ADMIN_PASSWORD}\"\n"
    )
}

/// A rig whose jars knows its Icecast's admin API (set once Icecast's port is known).
async fn wired_rig() -> Rig {
    let rig = rig("").await;
    let port = rig.icecast.port;
    let jars = rig.jars.restart(&rig_config(&admin_entry(port))).await;
    Rig { jars, ..rig }
}

async fn post(server: &TestServer, path: &str, form: &[(&str, &str)]) -> Value {
    let (status, body) = post_form(&server.url(path), form).await;
    assert!((200..300).contains(&status), "{path}: {status} {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Every stored row, oldest first, once the writer has caught up.
async fn rows(jars: &TestServer) -> Vec<SessionRecord> {
    jars.state.hooks.sessions.flush().await;
    let store = jars.state.hooks.sessions.store().expect("sessions stored");
    store
        .sessions(SessionFilter::default(), 1_000)
        .await
        .unwrap()
}

/// Polls the stored rows until `pred` holds for them.
async fn rows_until(
    jars: &TestServer,
    what: &str,
    pred: impl Fn(&[SessionRecord]) -> bool,
) -> Vec<SessionRecord> {
    let started = Instant::now();
    loop {
        let rows = rows(jars).await;
        if pred(&rows) {
            return rows;
        }
        assert!(started.elapsed() < WAIT, "rows never {what}: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn live_source(rig: &Rig, event: &str, user: &str, password: &str) -> icecast::SourceHandle {
    let source = rig.source(&format!("/{event}.mp3"), user, password).await;
    assert_eq!(source.status(), 200, "{}", rig.icecast.error_log());
    rig.wait_event(event, "live", |e| e["live"] == true).await;
    source
}

async fn dropped(source: &icecast::SourceHandle) {
    let started = Instant::now();
    while source.is_streaming() {
        assert!(
            started.elapsed() < DROPPED_WITHIN,
            "the source was not dropped within {DROPPED_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `GET /jars/events/{event}/sessions` as the event's owner.
async fn sessions_of(rig: &Rig, event: &str) -> Value {
    crate::support::client()
        .get(rig.jars.url(&format!("/jars/events/{event}/sessions")))
        .bearer_auth(&rig.owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn admin(rig: &Rig) -> String {
    rig.jars.add_user("boss", "boss-password", true);
    rig.jars.login("boss", "boss-password").await
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_kicked_listener_ends_kicked_with_its_cause() {
    let rig = wired_rig().await;
    let event = rig.jars.create_event(&rig.owner, "Private", true).await;
    let _source = live_source(&rig, &event, "source", &rig.owner).await;
    let body = post(
        &rig.jars,
        "/jars/ticket",
        &[("auth", &rig.owner), ("mount", &event)],
    )
    .await;
    let ticket = body["ticket"].as_str().unwrap().to_string();
    let listener = icecast::open_listener(
        rig.icecast.port,
        &format!("/{event}.mp3?token={ticket}"),
        None,
    )
    .await;
    assert_eq!(listener.status(), 200);
    rig.wait_event(&event, "one listener", |e| e["listeners"] == 1)
        .await;
    post(
        &rig.jars,
        "/jars/tickets/revoke",
        &[("auth", &rig.owner), ("ticket", &ticket)],
    )
    .await;
    assert!(
        listener.wait_closed(DROPPED_WITHIN).await.is_some(),
        "not dropped"
    );

    let rows = rows_until(&rig.jars, "closed", |rows| {
        rows.iter()
            .any(|r| r.session.role() == Role::Listener && r.ended.is_some())
    })
    .await;
    let row = rows
        .iter()
        .find(|r| r.session.role() == Role::Listener)
        .unwrap();
    assert_eq!(row.end_reason, Some(EndReason::Kicked), "{row:?}");
    assert_eq!(row.end_cause.as_deref(), Some("revoked"));
    let stats: Value = crate::support::client()
        .get(rig.jars.url(&format!("/jars/events/{event}/stats")))
        .bearer_auth(&rig.owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["kicked"], 1, "{stats}");
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn after_a_restart_revocations_and_member_bans_reach_sessions_from_before() {
    let rig = wired_rig().await;
    let boss = admin(&rig).await;
    let private = rig.jars.create_event(&rig.owner, "Private", true).await;
    let source = live_source(&rig, &private, "source", &rig.owner).await;
    let body = post(
        &rig.jars,
        "/jars/ticket",
        &[("auth", &rig.owner), ("mount", &private)],
    )
    .await;
    let ticket = body["ticket"].as_str().unwrap().to_string();
    let mount = format!("/{private}.mp3?token={ticket}");
    let listener = icecast::open_listener(rig.icecast.port, &mount, None).await;
    assert_eq!(listener.status(), 200);
    rig.wait_event(&private, "one listener", |e| e["listeners"] == 1)
        .await;
    rig.jars.state.hooks.sessions.flush().await;

    // jars restarts; Icecast keeps streaming. The resync finds the source and the listener
    // and gets back, from their open rows, the ticket and the member that let them in.
    let port = rig.icecast.port;
    let rig = Rig {
        jars: rig.jars.restart(&rig_config(&admin_entry(port))).await,
        ..rig
    };
    rig.wait_event(&private, "live again", |e| {
        e["live"] == true && e["listeners"] == 1
    })
    .await;
    let sessions = sessions_of(&rig, &private).await;
    assert!(sessions["listeners"][0]["ticket"].is_string(), "{sessions}");
    assert_eq!(sessions["source"]["member"], rig.owner_id, "{sessions}");

    let body = post(
        &rig.jars,
        "/jars/tickets/revoke",
        &[("auth", &rig.owner), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(body["revoked"], 1);
    assert!(
        listener.wait_closed(DROPPED_WITHIN).await.is_some(),
        "a listener from before the restart kept listening after its ticket's revocation"
    );

    let owner_id = rig.owner_id.to_string();
    post(
        &rig.jars,
        "/jars/bans",
        &[("auth", &boss), ("member", &owner_id)],
    )
    .await;
    dropped(&source).await;
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn an_ip_ban_drops_a_live_source() {
    let rig = wired_rig().await;
    let boss = admin(&rig).await;
    let event = rig.jars.create_event(&rig.owner, "Public", false).await;
    let source = live_source(&rig, &event, "source", &rig.owner).await;
    let sessions = sessions_of(&rig, &event).await;
    assert_eq!(
        sessions["source"]["ip"], "127.0.0.0",
        "known, kept as [sessions] ip says"
    );
    post(
        &rig.jars,
        "/jars/bans",
        &[("auth", &boss), ("ip", "127.0.0.1")],
    )
    .await;
    dropped(&source).await;
    let again = rig
        .source(&format!("/{event}.mp3"), "source", &rig.owner)
        .await;
    assert_ne!(again.status(), 200, "the banned address is refused");
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_player_retrying_while_nothing_is_on_air_is_no_session() {
    let rig = wired_rig().await;
    let event = rig.jars.create_event(&rig.owner, "Later", false).await;
    let source = live_source(&rig, &event, "source", &rig.owner).await;
    source.stop().await;
    rig.wait_event(&event, "off air", |e| e["live"] == false)
        .await;
    // A player retries: jars lets it in, Icecast has nothing to play.
    for _ in 0..3 {
        let retry = icecast::open_listener(rig.icecast.port, &format!("/{event}.mp3"), None).await;
        assert_ne!(retry.status(), 200);
    }
    let text = metrics(&rig.jars).await;
    assert_eq!(sample(&text, "jars_listeners "), Some(0.0));
    let rows = rows(&rig.jars).await;
    assert!(
        rows.iter().all(|r| r.session.role() == Role::Source),
        "a listener row while nothing was on air: {rows:#?}"
    );
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn an_ended_event_refuses_a_relays_retries_as_event_expired() {
    let rig = wired_rig().await;
    let event = rig.jars.create_event(&rig.owner, "Relayed", false).await;
    let (status, _) = post_form(
        &rig.jars.url("/jars/connect"),
        &[("auth", &rig.owner), ("mount", &event)],
    )
    .await;
    assert_eq!(status, 202);
    let source = live_source(&rig, &event, RELAY_USER, RELAY_PASS).await;
    post(
        &rig.jars,
        &format!("/jars/events/{event}/end"),
        &[("auth", &rig.owner)],
    )
    .await;
    dropped(&source).await;
    // The relay reconnects, as webcaster-relay does.
    let retry = rig
        .source(&format!("/{event}.mp3"), RELAY_USER, RELAY_PASS)
        .await;
    assert_ne!(retry.status(), 200);
    let text = metrics(&rig.jars).await;
    let expired = sample(
        &text,
        r#"jars_auth_decisions_total{action="stream_auth",decision="deny",reason="event_expired"}"#,
    );
    assert!(expired >= Some(1.0), "{text}");
    let no_event = sample(
        &text,
        r#"jars_auth_decisions_total{action="stream_auth",decision="deny",reason="no_event"}"#,
    );
    assert_eq!(no_event, Some(0.0));
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn revoking_a_guests_ticket_cuts_a_show_live_through_a_relay() {
    let rig = wired_rig().await;
    let event = rig.jars.create_event(&rig.owner, "Guest show", false).await;
    let body = post(
        &rig.jars,
        "/jars/ticket",
        &[("auth", &rig.owner), ("mount", &event), ("kind", "source")],
    )
    .await;
    let guest = body["ticket"].as_str().unwrap().to_string();
    // webcaster-relay asks /jars/connect with the guest's ticket, then streams with its own
    // credentials.
    let (status, _) = post_form(
        &rig.jars.url("/jars/connect"),
        &[("auth", &guest), ("mount", &event)],
    )
    .await;
    assert_eq!(status, 202);
    let source = live_source(&rig, &event, RELAY_USER, RELAY_PASS).await;
    let sessions = sessions_of(&rig, &event).await;
    assert!(
        sessions["source"]["ticket"].is_string(),
        "the relay's source carries the guest's ticket: {sessions}"
    );
    post(
        &rig.jars,
        "/jars/tickets/revoke",
        &[("auth", &rig.owner), ("ticket", &guest)],
    )
    .await;
    dropped(&source).await;
}
