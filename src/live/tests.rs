//! Live state on a set clock: counts, the ticket cap, sources and airing, kicks, resync.

use super::*;
use crate::domain::DenyReason;
use uuid::Uuid;

pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

pub(crate) fn server(name: &str) -> ServerId {
    ServerId::new(name, "8000")
}

/// A listener session `client` on `server` of `target`.
pub(crate) fn listener(target: &Target, on: &str, client: &str, ticket: Option<&str>) -> Session {
    Session {
        key: SessionKey::listener(server(on), client),
        mount: "/m".into(),
        target: target.clone(),
        ip: "192.0.2.1".into(),
        agent: None,
        referer: None,
        ticket: ticket.map(str::to_string),
        member: None,
        relay: None,
        started: t0(),
        timelimit: None,
    }
}

pub(crate) fn source(target: &Target, on: &str, relay: Option<&str>) -> Session {
    Session {
        key: SessionKey::source(server(on), "/m.mp3"),
        mount: "/m.mp3".into(),
        relay: relay.map(str::to_string),
        ..listener(target, on, "", None)
    }
}

fn event() -> Target {
    Target::Event(Uuid::new_v4())
}

#[test]
fn counts_sessions_across_servers_and_never_goes_negative() {
    let live = LiveState::new();
    let t = event();
    live.listener_joined(listener(&t, "a", "1", None), None, t0())
        .unwrap();
    // The same client id on another Icecast is another listener.
    live.listener_joined(listener(&t, "b", "1", None), None, t0())
        .unwrap();
    assert_eq!(live.mount(&t).listeners, 2);
    let a1 = SessionKey::listener(server("a"), "1");
    let ended = live.listener_left(&a1, t0()).unwrap();
    assert_eq!(ended.session.target, t);
    assert_eq!(ended.kick, None);
    assert!(live.listener_left(&a1, t0()).is_none());
    assert!(live
        .listener_left(&SessionKey::listener(server("z"), "9"), t0())
        .is_none());
    live.listener_left(&SessionKey::listener(server("b"), "1"), t0());
    let m = live.mount(&t);
    assert_eq!((m.listeners, m.peak_listeners), (0, 2));
    assert_eq!(live.totals().listeners, 0);
}

#[test]
fn ticket_cap_is_exact_and_freed_on_leave() {
    let live = LiveState::new();
    let t = event();
    let join =
        |client: &str| live.listener_joined(listener(&t, "a", client, Some("jti")), Some(2), t0());
    join("1").unwrap();
    join("2").unwrap();
    assert_eq!(join("3").unwrap_err(), TicketFull);
    // A reused session id replaces, it does not count twice; the old one is handed back.
    let (_, replaced) = join("2").unwrap();
    assert_eq!(replaced.unwrap().session.key.id, "2");
    live.listener_left(&SessionKey::listener(server("a"), "1"), t0());
    join("3").unwrap();
    assert_eq!(live.mount(&t).listeners, 2);
}

#[test]
fn sources_and_whether_a_mount_is_on_air() {
    let live = LiveState::new();
    let t = event();
    let a = server("a");
    assert_eq!(live.airing(&t, &a), Airing::Unknown, "nothing seen yet");
    live.source_allowed(
        &t,
        Allowed {
            member: Some(7),
            ip: "198.51.100.7".into(),
            ..Allowed::default()
        },
    );
    assert_eq!(live.mount(&t).allowed.unwrap().member, Some(7));
    let (s, replaced) = live.source_started(source(&t, "a", None), t0());
    assert!(replaced.is_none());
    assert!(live.mount(&t).live());
    assert_eq!(live.airing(&t, &a), Airing::Live);
    assert_eq!(live.totals().live_mounts, 1);
    let ended = live.source_ended(&t, &s.key, t0()).unwrap();
    assert_eq!(ended.session.key.role, Role::Source);
    assert!(!live.mount(&t).live());
    assert_eq!(live.airing(&t, &a), Airing::Off, "its source went away");
    assert_eq!(
        live.mount(&t).relay_dropped,
        None,
        "a member's source is no relay"
    );

    // A relay's source is remembered as dropped; allowing a source again puts it back on air.
    let (s, _) = live.source_started(source(&t, "a", Some("relay")), t0());
    live.source_ended(&t, &s.key, t0() + chrono::Duration::seconds(5));
    assert_eq!(
        live.mount(&t).relay_dropped,
        Some(("relay".into(), t0() + chrono::Duration::seconds(5)))
    );
    live.source_allowed(&t, Allowed::default());
    assert_eq!(live.airing(&t, &a), Airing::Unknown);

    // An end for a source jars never knew still takes the mount off the air.
    let other = event();
    assert!(live
        .source_ended(&other, &SessionKey::source(a.clone(), "/x"), t0())
        .is_none());
    assert_eq!(live.airing(&other, &a), Airing::Off);
}

#[test]
fn a_session_is_kicked_once_within_the_memory_and_its_end_says_why() {
    let live = LiveState::new();
    let t = event();
    let (s, _) = live
        .listener_joined(listener(&t, "a", "1", None), None, t0())
        .unwrap();
    assert!(live.kick_due(&s.key, DenyReason::Banned, t0()));
    assert!(!live.kick_due(
        &s.key,
        DenyReason::Banned,
        t0() + chrono::Duration::seconds(29)
    ));
    assert!(
        live.kick_due(&s.key, DenyReason::Revoked, t0() + KICK_MEMORY),
        "still listed after the memory: asked again"
    );
    let ended = live.listener_left(&s.key, t0()).unwrap();
    assert_eq!(ended.reported(), Ending::Kicked(DenyReason::Revoked));
    assert!(!live.kick_due(&s.key, DenyReason::Banned, t0()), "gone");
}

#[test]
fn a_listing_replaces_one_server_and_keeps_what_jars_knew() {
    let live = LiveState::new();
    let t = event();
    let gone = event();
    let a = server("a");
    live.listener_joined(listener(&t, "a", "1", Some("jti")), None, t0())
        .unwrap();
    live.listener_joined(listener(&t, "a", "2", None), None, t0())
        .unwrap();
    live.listener_joined(listener(&t, "b", "2", None), None, t0())
        .unwrap();
    live.source_started(source(&gone, "a", None), t0());
    live.source_started(
        Session {
            key: SessionKey::source(server("b"), "/b"),
            ..source(&Target::Static("/b".into()), "b", None)
        },
        t0(),
    );

    let listing = vec![
        source(&t, "a", None),
        listener(&t, "a", "1", None),
        listener(&t, "a", "3", None),
    ];
    live.begin_resync();
    let r = live.replace_server(&a, listing.clone(), t0());
    assert_eq!(
        (
            r.listeners_added,
            r.listeners_removed,
            r.sources_added,
            r.sources_removed
        ),
        (1, 1, 1, 1)
    );
    let mut vanished: Vec<&str> = r
        .vanished
        .iter()
        .map(|e| e.session.key.id.as_str())
        .collect();
    vanished.sort();
    assert_eq!(vanished, ["/m.mp3", "2"]);
    let kept = live.session(&SessionKey::listener(a.clone(), "1")).unwrap();
    assert_eq!(
        kept.ticket.as_deref(),
        Some("jti"),
        "a known session keeps its ticket"
    );
    assert_eq!(live.mount(&t).listeners, 3, "a:1, a:3 and b:2");
    assert!(live.mount(&t).live());
    assert!(!live.mount(&gone).live());
    assert!(
        live.mount(&Target::Static("/b".into())).live(),
        "another server is untouched"
    );
    assert!(live.was_listed(&a) && !live.was_listed(&server("b")));
    // A listed server's unlisted mounts are off the air.
    assert_eq!(live.airing(&event(), &a), Airing::Off);
    assert_eq!(live.airing(&event(), &server("b")), Airing::Unknown);

    // The same listing again changes nothing.
    live.begin_resync();
    assert!(!live.replace_server(&a, listing, t0()).changed());

    // A reused client id on another mount is another listener.
    let other = event();
    live.begin_resync();
    let r = live.replace_server(
        &a,
        vec![
            source(&t, "a", None),
            listener(&t, "a", "1", None),
            listener(&other, "a", "3", None),
        ],
        t0(),
    );
    assert_eq!((r.listeners_removed, r.listeners_added), (1, 1));
    assert_eq!(live.mount(&other).listeners, 1);
    assert_eq!(live.mount(&t).listeners, 2);
}

#[test]
fn a_large_listing_is_applied_in_chunks_in_linear_time() {
    let live = LiveState::new();
    let t = event();
    let a = server("a");
    let n = resync::CHUNK * 3 + 17;
    let listing: Vec<Session> = (0..n)
        .map(|i| listener(&t, "a", &i.to_string(), None))
        .collect();
    live.begin_resync();
    assert_eq!(
        live.replace_server(&a, listing.clone(), t0())
            .listeners_added,
        n
    );
    live.begin_resync();
    let r = live.replace_server(&a, listing[..n - 5].to_vec(), t0());
    assert_eq!((r.listeners_added, r.listeners_removed), (0, 5));
    assert_eq!(live.totals().listeners, n - 5);
}

#[test]
fn callbacks_during_a_resync_win_over_the_listing() {
    let live = LiveState::new();
    let t = event();
    let a = server("a");
    live.listener_joined(listener(&t, "a", "1", None), None, t0())
        .unwrap();
    let (s, _) = live.source_started(source(&t, "a", None), t0());
    live.begin_resync();
    // Listed while still there, then gone by callback; and one that joined after listing.
    live.listener_left(&SessionKey::listener(a.clone(), "1"), t0());
    live.listener_joined(listener(&t, "a", "2", None), None, t0())
        .unwrap();
    live.source_ended(&t, &s.key, t0());
    let listing = vec![source(&t, "a", None), listener(&t, "a", "1", None)];
    live.replace_server(&a, listing, t0());
    let left: Vec<String> = live
        .sessions_where(|_| true)
        .iter()
        .map(|s| s.key.id.clone())
        .collect();
    assert_eq!(left, ["2"]);
    assert!(
        !live.mount(&t).live(),
        "mount_remove came after the listing"
    );
    assert_eq!(live.mount(&t).listeners, 1);
}

#[test]
fn each_server_is_tallied_with_its_joins_sources_and_last_callback() {
    let live = LiveState::new();
    let (t, u) = (event(), event());
    live.source_started(source(&t, "a", None), t0());
    live.listener_joined(listener(&t, "a", "1", None), None, t0())
        .unwrap();
    live.listener_joined(listener(&u, "a", "2", None), None, t0())
        .unwrap();
    live.listener_joined(listener(&t, "b", "1", None), None, t0())
        .unwrap();
    live.heard_from("a", "8000", t0());
    live.heard_from("c", "8000", t0());
    let tally = |name: &str| {
        live.servers()
            .into_iter()
            .find(|(id, _)| *id == server(name))
            .map(|(_, t)| t)
            .unwrap_or_default()
    };
    let a = tally("a");
    assert_eq!((a.listeners, a.joins, a.heard), (2, 2, Some(t0())));
    assert_eq!(a.by_target.get(&t), Some(&1));
    assert_eq!(a.sources.get("/m.mp3"), Some(&t));
    assert_eq!((tally("b").listeners, tally("b").heard), (1, None));
    assert_eq!((tally("c").listeners, tally("c").heard), (0, Some(t0())));
    live.listener_left(&SessionKey::listener(server("a"), "1"), t0());
    live.source_ended(&t, &SessionKey::source(server("a"), "/m.mp3"), t0());
    let a = tally("a");
    // Joins only grow: what `/listen` counts arrivals by.
    assert_eq!((a.listeners, a.joins), (1, 2));
    assert_eq!(a.by_target.get(&t), None);
    assert!(a.sources.is_empty());
    // A ticket over its cap is no join.
    live.listener_joined(listener(&u, "b", "7", Some("j")), Some(1), t0())
        .unwrap();
    assert!(live
        .listener_joined(listener(&u, "b", "8", Some("j")), Some(1), t0())
        .is_err());
    assert_eq!(tally("b").joins, 2);
}
