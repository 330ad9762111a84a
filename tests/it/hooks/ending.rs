//! Ended and expired events, lost rights and guests' source tickets through a real jars
//! server (issue 16), and an event's sessions as the node knows them.

use std::time::Duration;

use jars::sanctions::Pass;
use serde_json::Value;

use super::revoke::{admitted, denied, post, revoke, within, Recorder};
use super::*;

#[tokio::test]
async fn ending_an_event_drops_its_source_and_listeners() {
    let st = station("").await;
    let s = &st.server;
    let kicks = Recorder::on(s);
    let event = s.create_event(&st.owner, "show", false).await;
    let mount = format!("/{event}.mp3");
    assert!(stream_auth(s, &mount, "source", &st.owner).await.allowed);
    mount_change(s, "mount_add", &mount).await;
    // Enough listeners that a kick order left to chance would put some before the source.
    for client in 1..=20 {
        let ip = format!("192.0.2.{client}");
        assert!(admitted(s, &client.to_string(), &mount, &ip).await);
    }
    let path = format!("/jars/events/{event}/end");
    let (status, body) = post(s, &path, &[("auth", &st.other)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("UnauthorizedConnectionException"))
    );
    let (status, body) = post(s, &path, &[("auth", &st.owner)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event_id"].as_str(), Some(event.as_str()));
    assert_eq!(
        body["expires_time"].as_i64(),
        Some(s.clock.now().timestamp())
    );
    assert_eq!(body["live"], true);
    assert!(
        within(Duration::from_secs(2), || kicks.sources().len() == 1
            && kicks.listeners().len() == 20)
        .await
    );
    assert_eq!(kicks.sources(), [(mount.clone(), "event_expired")]);
    let mut listeners = kicks.listeners();
    listeners.sort_by_key(|(client, _)| client.parse::<u32>().unwrap());
    let want: Vec<(String, &str)> = (1..=20).map(|c| (c.to_string(), "event_expired")).collect();
    assert_eq!(listeners, want);
    // The source first: Icecast then lets its listeners go at once, before their own kicks
    // reach it (issue 27, scenario 10).
    assert_eq!(
        kicks.roles()[0],
        jars::domain::Role::Source,
        "{:?}",
        kicks.roles()
    );
    assert!(!stream_auth(s, &mount, "source", &st.owner).await.allowed);
    assert!(!admitted(s, "2", &mount, "192.0.2.2").await);
    // Ending again is harmless; an admin may too; unknown or malformed ids are told apart.
    assert_eq!(post(s, &path, &[("auth", &st.admin)]).await.0, 200);
    let missing = format!("/jars/events/{}/end", uuid::Uuid::new_v4());
    let (status, body) = post(s, &missing, &[("auth", &st.admin)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("NonExistentOrExpiredEventException"))
    );
    let (status, body) = post(s, "/jars/events/nope/end", &[("auth", &st.admin)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidIdentifierException"))
    );
    let (status, _) = post(s, &path, &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_source_is_dropped_when_its_event_expires_while_live_and_only_once() {
    let st = station("").await;
    let s = &st.server;
    let kicks = Recorder::on(s);
    let event = s.create_event(&st.owner, "show", false).await;
    let mount = format!("/{event}");
    assert!(stream_auth(s, &mount, "source", &st.owner).await.allowed);
    mount_change(s, "mount_add", &mount).await;
    let expires = event_json(s, &st.owner, &event).await["expires_time"]
        .as_i64()
        .unwrap();
    let left = (expires - s.clock.now().timestamp()) as u64;
    s.clock.advance(Duration::from_secs(left - 1));
    // A second before the end, a sweep leaves it alone.
    s.state.sanctions.enforce(Pass::Sweep).await;
    assert!(kicks.sources().is_empty());
    // At the end the sweep the clock wakes drops it.
    s.clock.advance(Duration::from_secs(1));
    assert!(within(Duration::from_secs(2), || !kicks.sources().is_empty()).await);
    // Later sweeps do not kick it again while Icecast drops it.
    for _ in 0..3 {
        s.clock.advance(Duration::from_secs(1));
        s.state.sanctions.enforce(Pass::Sweep).await;
    }
    assert_eq!(kicks.sources(), [(mount.clone(), "event_expired")]);
    mount_change(s, "mount_remove", &mount).await;
}

#[tokio::test]
async fn a_demoted_admin_loses_a_source_on_somebody_elses_event() {
    let st = station("").await;
    let s = &st.server;
    let kicks = Recorder::on(s);
    let event = s.create_event(&st.owner, "show", false).await;
    let mount = format!("/{event}");
    assert!(stream_auth(s, &mount, "source", &st.admin).await.allowed);
    mount_change(s, "mount_add", &mount).await;
    s.clock.advance(Duration::from_secs(1));
    s.state.sanctions.enforce(Pass::Sweep).await;
    assert!(kicks.sources().is_empty(), "an admin may source any event");
    s.users().set_admin("admin", false).unwrap();
    // The token check rereads the users file at most once a RECHECK.
    s.clock.advance(jars::identity::users_file::RECHECK);
    assert!(within(Duration::from_secs(2), || !kicks.sources().is_empty()).await);
    assert_eq!(kicks.sources(), [(mount.clone(), "not_owner")]);
}

#[tokio::test]
async fn a_guests_source_ticket_sources_its_event_only_and_can_be_revoked() {
    let st = station("").await;
    let s = &st.server;
    let kicks = Recorder::on(s);
    let event = s.create_event(&st.owner, "show", false).await;
    let other = s.create_event(&st.owner, "other", false).await;
    let guest = ticket(s, &st.owner, &event, &[("kind", "source")]).await;
    for (form, status, name) in [
        (
            vec![
                ("auth", st.other.as_str()),
                ("mount", event.as_str()),
                ("kind", "source"),
            ],
            403,
            "UnauthorizedConnectionException",
        ),
        (
            vec![("auth", &st.owner), ("mount", &event), ("kind", "dj")],
            400,
            "InvalidArgumentError",
        ),
        (
            vec![
                ("auth", &st.owner),
                ("mount", &event),
                ("kind", "source"),
                ("ip", "192.0.2.1"),
            ],
            400,
            "InvalidArgumentError",
        ),
    ] {
        let (got, body) = post_form(&s.url("/jars/ticket"), &form).await;
        assert_eq!(
            (got, error_name(&body)),
            (status, name.to_string()),
            "{form:?}"
        );
    }
    // Not a user token, not a listener ticket, not for another event or a static mount.
    let (status, _) = post_form(
        &s.url("/jars/create"),
        &[
            ("auth", &guest),
            ("title", "t"),
            ("description", "d"),
            ("private", "false"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    let private = s.create_event(&st.owner, "private", true).await;
    let guest_private = ticket(s, &st.owner, &private, &[("kind", "source")]).await;
    assert!(
        !admitted(
            s,
            "9",
            &format!("/{private}?token={guest_private}"),
            "192.0.2.9"
        )
        .await
    );
    assert_eq!(denied(s, "listener_add", "wrong_token_kind"), 1);
    assert!(
        !stream_auth(s, &format!("/{other}"), "source", &guest)
            .await
            .allowed
    );
    assert!(!stream_auth(s, "/studio", "source", &guest).await.allowed);
    // On its own event it goes live, connected by the owner who minted it.
    let mount = format!("/{event}.mp3");
    assert!(stream_auth(s, &mount, "source", &guest).await.allowed);
    mount_change(s, "mount_add", &mount).await;
    let shown = event_json(s, &st.owner, &event).await;
    assert_eq!(
        (shown["live"].as_bool(), shown["connected_by"].as_i64()),
        (Some(true), Some(st.owner_id))
    );
    let (status, body) = revoke(s, &[("auth", &st.owner), ("ticket", &guest)]).await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(1)));
    assert!(within(Duration::from_secs(2), || !kicks.sources().is_empty()).await);
    assert_eq!(kicks.sources(), [(mount.clone(), "revoked")]);
    let refused = stream_auth(s, &mount, "source", &guest).await;
    assert_eq!(refused.message.as_deref(), Some("ticket revoked"));
    assert_eq!(denied(s, "stream_auth", "revoked"), 1);
}

#[tokio::test]
async fn an_events_sessions_as_this_node_knows_them() {
    let st = station("").await;
    let s = &st.server;
    let event = s.create_event(&st.owner, "private", true).await;
    let path = format!("/jars/events/{event}/sessions");
    let get = |token: String| {
        let url = s.url(&path);
        async move {
            let resp = client().get(url).bearer_auth(token).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(
        get(st.owner.clone()).await.1,
        serde_json::json!({"source": null, "listeners": []})
    );
    let mount = format!("/{event}.mp3");
    assert!(stream_auth(s, &mount, "source", &st.owner).await.allowed);
    mount_change(s, "mount_add", &mount).await;
    let t = ticket(s, &st.owner, &event, &[]).await;
    assert!(admitted(s, "11", &format!("{mount}?token={t}"), "192.0.2.1").await);
    assert!(admitted(s, "12", &format!("{mount}?token={}", st.admin), "192.0.2.2").await);
    let (status, v) = get(st.admin.clone()).await;
    assert_eq!(status, 200);
    let source = &v["source"];
    assert_eq!(
        (
            source["mount"].as_str(),
            source["server"].as_str(),
            source["port"].as_str()
        ),
        (Some(mount.as_str()), Some("localhost"), Some("8000"))
    );
    assert_eq!(
        (source["member"].as_i64(), &source["relay"]),
        (Some(st.owner_id), &Value::Null)
    );
    assert!(chrono::DateTime::parse_from_rfc3339(source["since"].as_str().unwrap()).is_ok());
    let listeners = v["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2);
    let by_client = |c: &str| listeners.iter().find(|l| l["client"] == c).unwrap();
    // `[sessions] ip` applies here too: truncated by default, as the owner sees it.
    assert_eq!(by_client("11")["ip"], "192.0.2.0");
    assert!(by_client("11")["ticket"].as_str().is_some());
    assert_eq!(by_client("11")["member"], Value::Null);
    assert_eq!(by_client("12")["member"].as_i64(), Some(st.admin_id));
    assert_eq!(by_client("12")["ticket"], Value::Null);
    assert_eq!(get(st.other.clone()).await.0, 403);
    let resp = client().get(s.url(&path)).send().await.unwrap();
    assert_eq!(resp.status(), 400, "no auth");

    // One listener dropped by hand: nothing revoked, Icecast asked to drop it once.
    let kicks = Recorder::on(s);
    let drop = format!("{path}/drop");
    let (other, owner) = (st.other.as_str(), st.owner.as_str());
    let (status, body) = post(s, &drop, &form(other, "11")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("UnauthorizedConnectionException"))
    );
    let (status, body) = post(s, &drop, &form(owner, "11")).await;
    assert_eq!((status, body["dropped"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(kicks.listeners(), [("11".to_string(), "dropped")]);
    let (status, _) = post(s, &drop, &form(owner, "11")).await;
    assert_eq!(
        status, 200,
        "asked again: still live, kicked once within the memory"
    );
    assert_eq!(kicks.listeners().len(), 1);
    let (status, body) = post(s, &drop, &form(owner, "99")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("NoSuchSessionException"))
    );
    // The ticket still admits: nothing was revoked.
    assert!(admitted(s, "13", &format!("{mount}?token={t}"), "192.0.2.1").await);
}

/// A `/sessions/drop` form for listener `client` on the station's Icecast.
fn form<'a>(auth: &'a str, client: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("auth", auth),
        ("server", "localhost"),
        ("port", "8000"),
        ("client", client),
    ]
}
