//! Placement on a set clock: which server `/listen` picks from live state and health checks,
//! health turning, and the caps on one node (the embedded store: nobody to share with).

use std::sync::Arc;

use uuid::Uuid;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::config::OnStoreError;
use crate::domain::{DenyReason, Session, SessionKey};
use crate::metrics::Metrics;
use crate::store::listener_counts::Alone;

fn entry(port: u16, capacity: u32) -> IcecastServer {
    IcecastServer {
        server: "localhost".into(),
        port,
        admin_url: format!("http://127.0.0.1:{port}"),
        admin_user: "admin".into(),
        admin_password: "secret".into(),
        max_listeners: capacity,
        public_url: Some(format!("http://edge{port}.example")),
        weight: 1,
        region: None,
    }
}

struct Rig {
    clock: Arc<ManualClock>,
    live: Arc<LiveState>,
    placement: Placement,
}

fn rig(servers: Vec<IcecastServer>, station: Option<u32>) -> Rig {
    let clock = ManualClock::at(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
    let live = Arc::new(LiveState::new());
    let caps = Arc::new(Caps::new(
        "test".into(),
        station,
        Arc::new(Alone),
        live.clone(),
        clock.clone(),
        Arc::new(Metrics::new()),
    ));
    let placement = Placement::new(
        servers,
        Duration::from_secs(2),
        live.clone(),
        caps,
        clock.clone(),
    );
    Rig {
        clock,
        live,
        placement,
    }
}

fn listener(port: u16, client: &str, target: &Target) -> Session {
    Session {
        key: SessionKey::listener(ServerId::new("localhost", port.to_string()), client),
        mount: "/m.mp3".into(),
        target: target.clone(),
        ip: "192.0.2.1".into(),
        agent: None,
        referer: None,
        ticket: None,
        member: None,
        relay: None,
        started: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        timelimit: None,
    }
}

fn carrying(target: &Target, listeners: u32) -> Vec<CheckedMount> {
    let Target::Event(id) = target else {
        unreachable!()
    };
    vec![
        CheckedMount {
            mount: format!("/{id}.ogg"),
            target: Some(target.clone()),
            listeners: 0,
        },
        CheckedMount {
            mount: format!("/{id}.mp3"),
            target: Some(target.clone()),
            listeners,
        },
    ]
}

#[test]
fn listeners_go_where_the_mount_is_and_there_is_room() {
    let event = Target::Event(Uuid::new_v4());
    let Target::Event(id) = event else {
        unreachable!()
    };
    let r = rig(vec![entry(8001, 25), entry(8002, 15)], None);
    let now = r.clock.now();
    assert_eq!(r.placement.choose(&event, ".mp3", None), Choice::NotOnAir);
    r.placement
        .checked("localhost:8001", Ok(carrying(&event, 0)), now);
    r.placement.checked("localhost:8002", Ok(Vec::new()), now);
    assert_eq!(
        r.placement.choose(&event, ".mp3", None),
        Choice::To {
            url: format!("http://edge8001.example/{id}.mp3"),
            server: "localhost:8001".into(),
        }
    );
    // The other server starts carrying it: a burst then fills both towards full together.
    r.placement
        .checked("localhost:8002", Ok(carrying(&event, 0)), now);
    let mut sent = FastMap::<String, u32>::default();
    for _ in 1..30 {
        match r.placement.choose(&event, ".ogg", None) {
            Choice::To { url, server } => {
                assert!(url.ends_with(&format!("/{id}.ogg")), "{url}");
                *sent.entry(server).or_default() += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sent.get("localhost:8001"), Some(&19), "{sent:?}");
    assert_eq!(sent.get("localhost:8002"), Some(&10), "{sent:?}");
    // Both have 5 left.
    for _ in 0..10 {
        assert!(matches!(
            r.placement.choose(&event, "", None),
            Choice::To { .. }
        ));
    }
    assert_eq!(r.placement.choose(&event, "", None), Choice::Full);
    let statuses = r.placement.statuses();
    assert_eq!(
        statuses.iter().map(|s| s.pending).collect::<Vec<_>>(),
        [25, 15]
    );
    // Arrivals replace pending listeners one for one; Icecast's own count is not added twice.
    for c in 0..5 {
        r.live
            .listener_joined(listener(8001, &c.to_string(), &event), None, now)
            .unwrap();
    }
    let s = &r.placement.statuses()[0];
    assert_eq!((s.listeners, s.pending, s.capacity), (5, 20, 25));
    // Past the arrival time the others stop counting: there is room again.
    r.clock.advance(ARRIVAL);
    r.live.heard_from("localhost", "8001", r.clock.now());
    r.live.heard_from("localhost", "8002", r.clock.now());
    let later = r.clock.now();
    r.placement
        .checked("localhost:8001", Ok(carrying(&event, 5)), later);
    r.placement
        .checked("localhost:8002", Ok(carrying(&event, 0)), later);
    assert!(matches!(
        r.placement.choose(&event, ".mp3", None),
        Choice::To { server, .. } if server == "localhost:8001"
    ));
}

#[test]
fn a_server_whose_checks_fail_is_skipped_and_said_why() {
    let event = Target::Event(Uuid::new_v4());
    let r = rig(vec![entry(8001, 100), entry(8002, 100)], None);
    let now = r.clock.now();
    for s in ["localhost:8001", "localhost:8002"] {
        r.placement.checked(s, Ok(carrying(&event, 0)), now);
    }
    for _ in 0..FAILED_CHECKS {
        r.placement
            .checked("localhost:8001", Err("unreachable: refused".into()), now);
    }
    let statuses = r.placement.statuses();
    assert_eq!(
        statuses[0].health,
        Health::AdminFailing {
            failures: 2,
            since: Some(now)
        }
    );
    assert_eq!(statuses[0].error.as_deref(), Some("unreachable: refused"));
    assert!(statuses[1].health.is_healthy());
    for _ in 0..10 {
        assert!(matches!(
            r.placement.choose(&event, "", None),
            Choice::To { server, .. } if server == "localhost:8002"
        ));
    }
    r.placement
        .checked("localhost:8002", Err("no answer".into()), now);
    r.placement
        .checked("localhost:8002", Err("no answer".into()), now);
    assert_eq!(r.placement.choose(&event, "", None), Choice::Unhealthy);
    // One answer and it is back.
    r.placement
        .checked("localhost:8001", Ok(carrying(&event, 0)), now);
    assert!(r.placement.statuses()[0].health.is_healthy());
}

#[test]
fn listeners_that_never_arrive_make_a_server_unhealthy_until_it_calls() {
    let event = Target::Event(Uuid::new_v4());
    let r = rig(vec![entry(8001, 100)], None);
    let now = r.clock.now();
    r.placement
        .checked("localhost:8001", Ok(carrying(&event, 0)), now);
    for _ in 0..UNANSWERED {
        assert!(matches!(
            r.placement.choose(&event, "", None),
            Choice::To { .. }
        ));
    }
    r.clock.advance(ARRIVAL + Duration::from_secs(1));
    let later = r.clock.now();
    r.placement
        .checked("localhost:8001", Ok(carrying(&event, 0)), later);
    assert_eq!(
        r.placement.statuses()[0].health,
        Health::CallbacksQuiet {
            sent: UNANSWERED,
            since: now
        }
    );
    assert_eq!(r.placement.choose(&event, "", None), Choice::Unhealthy);
    r.live.heard_from("localhost", "8001", later);
    assert!(r.placement.statuses()[0].health.is_healthy());
}

#[test]
fn servers_without_a_public_url_or_weight_get_no_listeners() {
    let event = Target::Event(Uuid::new_v4());
    let master = IcecastServer {
        public_url: None,
        ..entry(8000, 1000)
    };
    let draining = IcecastServer {
        weight: 0,
        ..entry(8001, 1000)
    };
    let r = rig(vec![master, draining, entry(8002, 10)], None);
    let now = r.clock.now();
    for s in ["localhost:8000", "localhost:8001", "localhost:8002"] {
        r.placement.checked(s, Ok(carrying(&event, 0)), now);
    }
    for _ in 0..10 {
        assert!(matches!(
            r.placement.choose(&event, "", None),
            Choice::To { server, .. } if server == "localhost:8002"
        ));
    }
    assert_eq!(r.placement.choose(&event, "", None), Choice::Full);
}

#[tokio::test]
async fn caps_on_one_node_are_exact() {
    let event = Target::Event(Uuid::new_v4());
    let other = Target::Event(Uuid::new_v4());
    let r = rig(vec![entry(8001, 100)], Some(3));
    let caps = r.placement.caps().clone();
    let now = r.clock.now();
    let server = ServerId::new("localhost", "8001");
    let join = |client: &str, target: &Target, cap: Option<u32>| {
        let session = listener(8001, client, target);
        let live = r.live.clone();
        let caps = caps.clone();
        let (server, target) = (server.clone(), target.clone());
        async move {
            caps.admit(&server, &target, cap, OnStoreError::Deny, || {
                live.listener_joined(session, None, now)
                    .map(|_| ())
                    .map_err(|_| DenyReason::TicketFull)
            })
            .await
        }
    };
    assert_eq!(join("1", &event, Some(2)).await, Ok(()));
    assert_eq!(join("2", &event, Some(2)).await, Ok(()));
    assert_eq!(caps.refusal(&event, Some(2)), Some(DenyReason::EventFull));
    assert_eq!(join("3", &event, Some(2)).await, Err(DenyReason::EventFull));
    assert_eq!(caps.refusal(&other, None), None);
    assert_eq!(join("4", &other, None).await, Ok(()));
    assert_eq!(caps.refusal(&other, None), Some(DenyReason::StationFull));
    assert_eq!(join("5", &other, None).await, Err(DenyReason::StationFull));
    assert_eq!(r.live.totals().listeners, 3);
    // Raising the licence (a reload) lets the next one in.
    caps.set_station(Some(4));
    assert_eq!(join("6", &other, None).await, Ok(()));
    caps.set_station(None);
    assert_eq!(join("7", &other, None).await, Ok(()));
    assert!(!caps.apply(None));
}

#[tokio::test]
async fn listeners_of_a_server_presumed_gone_stop_counting() {
    let event = Target::Event(Uuid::new_v4());
    let r = rig(vec![entry(8001, 100), entry(8002, 100)], Some(2));
    let caps = r.placement.caps().clone();
    let now = r.clock.now();
    r.placement
        .checked("localhost:8001", Ok(carrying(&event, 2)), now);
    for c in ["1", "2"] {
        r.live
            .listener_joined(listener(8001, c, &event), None, now)
            .unwrap();
    }
    assert_eq!(caps.refusal(&event, None), Some(DenyReason::StationFull));
    // Its admin API fails: not yet long enough to say it died.
    let later = now + chrono::Duration::seconds(10);
    for _ in 0..FAILED_CHECKS {
        r.placement
            .checked("localhost:8001", Err("unreachable".into()), later);
    }
    assert_eq!(caps.refusal(&event, None), Some(DenyReason::StationFull));
    // Thirty seconds after its last answer it is presumed gone: its listeners (whose ends
    // never come) free their places for the ones reconnecting elsewhere.
    let gone = now + chrono::Duration::from_std(caps::GONE_AFTER).unwrap();
    r.placement
        .checked("localhost:8001", Err("unreachable".into()), gone);
    assert_eq!(caps.refusal(&event, None), None);
    // Back: they count again (until a resync says they are gone).
    r.placement
        .checked("localhost:8001", Ok(carrying(&event, 2)), gone);
    assert_eq!(caps.refusal(&event, None), Some(DenyReason::StationFull));
}
