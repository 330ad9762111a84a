//! Table-driven tests of every rule, against a set `now`: expiry, relay windows, ticket
//! lifetimes, visibility and listening, each on both sides of its boundary.

use super::*;
use chrono::TimeZone;
use uuid::Uuid;

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

pub(crate) fn member(sub: i64, admin: bool, exp: i64) -> Arc<Claims> {
    Arc::new(Claims {
        iss: "jars".into(),
        sub,
        iat: 0,
        exp,
        access_level: if admin {
            AccessLevel::Admin
        } else {
            AccessLevel::Standard
        },
        nbf: None,
        jti: None,
        aud: None,
    })
}

pub(crate) fn ticket_for(event: Uuid, exp: i64) -> TicketClaims {
    TicketClaims {
        iss: "jars".into(),
        sub: event.to_string(),
        kind: crate::tokens::TICKET_KIND.into(),
        iat: 0,
        exp,
        jti: "jti-1".into(),
        nbf: None,
        ip: None,
        referer: None,
        max_listeners: None,
        aud: None,
    }
}

/// An event owned by member 1, ending `ends_in` seconds after [`t0`].
pub(crate) fn event(private: bool, ends_in: i64) -> Event {
    Event {
        id: Uuid::new_v4(),
        title: None,
        description: None,
        private,
        created_by: 1,
        created_time: t0() - secs(3600),
        expires_time: t0() + secs(ends_in),
        connected: false,
        connected_by: None,
        last_connected_at: None,
        last_disconnected_at: None,
        max_listeners: None,
        relation_id: None,
    }
}

const FAR: i64 = i64::MAX / 2;

#[test]
fn connect_rule() {
    let live = event(false, 60);
    let ended = event(false, 0);
    type Case<'a> = (
        &'a str,
        Arc<Claims>,
        Option<&'a Event>,
        Result<(), ConnectDenial>,
    );
    let cases: [Case; 6] = [
        ("owner", member(1, false, FAR), Some(&live), Ok(())),
        ("admin", member(9, true, FAR), Some(&live), Ok(())),
        (
            "another member",
            member(2, false, FAR),
            Some(&live),
            Err(ConnectDenial::NotOwnerOrAdmin),
        ),
        (
            "no event",
            member(1, false, FAR),
            None,
            Err(ConnectDenial::NoEvent),
        ),
        (
            "expired at exactly now",
            member(9, true, FAR),
            Some(&ended),
            Err(ConnectDenial::Expired),
        ),
        (
            "owner, expired",
            member(1, false, FAR),
            Some(&ended),
            Err(ConnectDenial::Expired),
        ),
    ];
    for (name, who, event, expected) in cases {
        assert_eq!(may_connect(&who, event, t0()), expected, "{name}");
        assert_eq!(may_mint_ticket(&who, event, t0()), expected, "{name}");
        // What a store checks in its one statement admits exactly what the rule allows.
        let admitted = event.is_some_and(|e| connect_terms(&who, t0()).admit(e));
        assert_eq!(admitted, expected.is_ok(), "{name}: terms");
    }
    // One second before the end it is still open.
    assert_eq!(
        may_connect(&member(1, false, FAR), Some(&live), t0() + secs(59)),
        Ok(())
    );
}

#[test]
fn relay_window() {
    let windows = RelayWindows {
        approval: Duration::from_secs(60),
        reconnect: Duration::from_secs(600),
    };
    let mut approved = event(false, 3600);
    approved.last_connected_at = Some(t0());
    let never = event(false, 3600);
    let mut ended = event(false, 10);
    ended.last_connected_at = Some(t0());
    let live = RelayHistory {
        live: true,
        dropped: None,
    };
    let idle = RelayHistory::default();
    let dropped = |by, at| RelayHistory {
        live: false,
        dropped: Some((by, t0() + secs(at))),
    };
    let refused = Err(DenyReason::RelayNotApproved);
    let cases = [
        ("just approved", Some(&approved), idle, 0, Ok(())),
        ("at the window's edge", Some(&approved), idle, 60, Ok(())),
        ("past the window", Some(&approved), idle, 61, refused),
        (
            "past the window, already live",
            Some(&approved),
            live,
            61,
            Ok(()),
        ),
        ("never approved", Some(&never), idle, 0, refused),
        ("never approved, live", Some(&never), live, 0, Ok(())),
        (
            "dropped, back at once",
            Some(&approved),
            dropped("relay", 120),
            121,
            Ok(()),
        ),
        (
            "dropped, back at the edge",
            Some(&approved),
            dropped("relay", 120),
            720,
            Ok(()),
        ),
        (
            "dropped too long ago",
            Some(&approved),
            dropped("relay", 120),
            721,
            refused,
        ),
        (
            "another relay was dropped",
            Some(&approved),
            dropped("other", 120),
            121,
            refused,
        ),
        (
            "event ended: its retries are refused as event_expired",
            Some(&ended),
            live,
            10,
            Err(DenyReason::EventExpired),
        ),
        (
            "event ended while dropped",
            Some(&ended),
            dropped("relay", 5),
            10,
            Err(DenyReason::EventExpired),
        ),
        ("no event", None, live, 0, Err(DenyReason::NoSuchEvent)),
    ];
    for (name, event, history, at, expected) in cases {
        assert_eq!(
            relay_may_source(event, "relay", history, windows, t0() + secs(at)),
            expected,
            "{name}"
        );
    }
    let never_reconnect = RelayWindows {
        reconnect: Duration::ZERO,
        ..windows
    };
    assert_eq!(
        relay_may_source(
            Some(&approved),
            "relay",
            dropped("relay", 120),
            never_reconnect,
            t0() + secs(121)
        ),
        refused,
        "relay_reconnect = 0 turns reconnecting off"
    );
}

#[test]
fn static_sources() {
    assert_eq!(may_source_static(None), Ok(()));
    assert_eq!(may_source_static(Some(&member(9, true, FAR))), Ok(()));
    assert_eq!(
        may_source_static(Some(&member(1, false, FAR))),
        Err(DenyReason::AdminsOnly)
    );
}

#[test]
fn current_rights() {
    let admin = member(1, true, FAR);
    let standard = member(1, false, FAR);
    let now = |access_level| Standing::Present {
        access_level,
        created: 0,
    };
    assert_eq!(
        current_claims(admin.clone(), Standing::Removed),
        None,
        "removed"
    );
    assert_eq!(
        current_claims(admin.clone(), Standing::Unasked),
        Some(admin.clone()),
        "nobody asked: the token speaks for itself"
    );
    assert!(current_claims(admin.clone(), now(AccessLevel::Admin))
        .unwrap()
        .is_admin());
    assert!(
        !current_claims(admin, now(AccessLevel::Standard))
            .unwrap()
            .is_admin(),
        "demoted"
    );
    assert!(
        !current_claims(standard, now(AccessLevel::Admin))
            .unwrap()
            .is_admin(),
        "never raised above the token"
    );
}

#[test]
fn tokens_issued_before_the_member_was_created_are_worthless() {
    let issued_at = |iat| {
        Arc::new(Claims {
            iat,
            ..(*member(1, false, FAR)).clone()
        })
    };
    let created_at = |created| Standing::Present {
        access_level: AccessLevel::Standard,
        created,
    };
    assert_eq!(
        current_claims(issued_at(99), created_at(100)),
        None,
        "before"
    );
    assert!(
        current_claims(issued_at(100), created_at(100)).is_some(),
        "same second"
    );
    assert!(
        current_claims(issued_at(101), created_at(100)).is_some(),
        "after"
    );
    assert!(
        current_claims(issued_at(5), created_at(0)).is_some(),
        "a record without `created` accepts every token"
    );
}

fn listener() -> Listener<'static> {
    Listener {
        ip: "192.0.2.7",
        referer: None,
    }
}

#[test]
fn listening_on_static_mounts() {
    let m = Presented::Member(member(1, false, 500));
    let a = Presented::Member(member(2, true, 700));
    let t = Presented::Ticket(Arc::new(ticket_for(Uuid::new_v4(), FAR)));
    let bad = Presented::Refused(DenyReason::Token(crate::tokens::TokenError::Expired));
    let l = listener();
    let cases = [
        (Access::Public, &Presented::Nothing, Ok(None)),
        (Access::Public, &bad, Ok(None)),
        (Access::Members, &m, Ok(Some(500))),
        (Access::Members, &a, Ok(Some(700))),
        (Access::Members, &t, Err(DenyReason::MembersOnly)),
        (
            Access::Members,
            &Presented::Nothing,
            Err(DenyReason::MembersOnly),
        ),
        (
            Access::Members,
            &bad,
            Err(DenyReason::Token(crate::tokens::TokenError::Expired)),
        ),
        (Access::Admins, &m, Err(DenyReason::AdminsOnly)),
        (Access::Admins, &a, Ok(Some(700))),
    ];
    for (access, presented, expected) in cases {
        assert_eq!(
            may_listen(ListenTo::Static(access), presented, &l, None, t0()).map(|a| a.until),
            expected,
            "{access:?} {presented:?}"
        );
        assert_eq!(
            listener_needs_credential(ListenTo::Static(access)),
            access != Access::Public
        );
    }
}

#[test]
fn listening_to_events() {
    let public = event(false, 100);
    let private = event(true, 100);
    let end = (t0() + secs(100)).timestamp();
    let owner = Presented::Member(member(1, false, end + 50));
    let owner_short = Presented::Member(member(1, false, end - 40));
    let admin = Presented::Member(member(9, true, end + 50));
    let other = Presented::Member(member(2, false, end + 50));
    let mut good = ticket_for(private.id, end - 10);
    good.max_listeners = Some(3);
    let good = Presented::Ticket(Arc::new(good));
    let elsewhere = Presented::Ticket(Arc::new(ticket_for(public.id, end)));
    let l = listener();
    let until = |a: Admission| a.until;
    type Case<'a> = (
        &'a str,
        &'a Event,
        &'a Presented,
        Result<Option<i64>, DenyReason>,
    );
    let cases: Vec<Case> = vec![
        (
            "public, nobody",
            &public,
            &Presented::Nothing,
            Ok(Some(end)),
        ),
        ("private, owner", &private, &owner, Ok(Some(end))),
        (
            "private, owner's token ends first",
            &private,
            &owner_short,
            Ok(Some(end - 40)),
        ),
        ("private, admin", &private, &admin, Ok(Some(end))),
        (
            "private, another member (issue 11.9)",
            &private,
            &other,
            Err(DenyReason::TicketRequired),
        ),
        ("private, ticket", &private, &good, Ok(Some(end - 10))),
        (
            "private, ticket for another event",
            &private,
            &elsewhere,
            Err(DenyReason::TicketForAnotherEvent),
        ),
        (
            "private, nothing",
            &private,
            &Presented::Nothing,
            Err(DenyReason::TicketRequired),
        ),
        (
            "private, refused token",
            &private,
            &Presented::Refused(DenyReason::UserRemoved),
            Err(DenyReason::UserRemoved),
        ),
    ];
    for (name, event, presented, expected) in cases {
        let got = may_listen(ListenTo::Event(Some(event)), presented, &l, None, t0());
        assert_eq!(got.map(until), expected, "{name}");
    }
    let admitted = may_listen(ListenTo::Event(Some(&private)), &good, &l, Some(2), t0()).unwrap();
    assert_eq!(admitted.ticket.as_deref(), Some("jti-1"));
    assert_eq!(admitted.cap, Some(2), "station cap below the ticket's");
    assert!(listener_needs_credential(ListenTo::Event(Some(&private))));
    assert!(!listener_needs_credential(ListenTo::Event(Some(&public))));
    assert_eq!(
        may_listen(ListenTo::Event(None), &owner, &l, None, t0()),
        Err(DenyReason::NoSuchEvent)
    );
    // The event's end is a boundary: open one second before, closed at it.
    let before = t0() + secs(99);
    assert!(may_listen(ListenTo::Event(Some(&public)), &owner, &l, None, before).is_ok());
    assert_eq!(
        may_listen(
            ListenTo::Event(Some(&public)),
            &owner,
            &l,
            None,
            t0() + secs(100)
        ),
        Err(DenyReason::EventExpired)
    );
}

#[test]
fn ticket_bindings() {
    let private = event(true, 100);
    let mut t = ticket_for(private.id, FAR);
    t.ip = Some("192.0.2.7".into());
    t.referer = Some("https://good.example/player".into());
    let t = Presented::Ticket(Arc::new(t));
    let to = ListenTo::Event(Some(&private));
    let cases = [
        ("192.0.2.7", Some("https://good.example/player/1"), Ok(())),
        (
            "::ffff:192.0.2.7",
            Some("https://good.example/player"),
            Ok(()),
        ),
        (
            "192.0.2.8",
            Some("https://good.example/player"),
            Err(DenyReason::TicketBoundToAnotherAddress),
        ),
        ("192.0.2.7", None, Err(DenyReason::RefererNotAllowed)),
        (
            "192.0.2.7",
            Some("https://good.example.evil.com/player"),
            Err(DenyReason::RefererNotAllowed),
        ),
    ];
    for (ip, referer, expected) in cases {
        let l = Listener { ip, referer };
        assert_eq!(
            may_listen(to, &t, &l, None, t0()).map(|_| ()),
            expected,
            "{ip} {referer:?}"
        );
    }
}

#[test]
fn time_limits() {
    let now = t0();
    assert_eq!(timelimit(now.timestamp() + 30, now), 30);
    assert_eq!(timelimit(now.timestamp(), now), 1, "never zero (no limit)");
    assert_eq!(timelimit(i64::MIN, now), 1, "no overflow");
}

#[test]
fn ticket_lifetimes() {
    let e = event(true, 600);
    let default = Duration::from_secs(3600);
    let s = Duration::from_secs;
    let cases = [
        ("default, capped by the event", None, t0(), Ok(s(600))),
        ("asked for less", Some(s(60)), t0(), Ok(s(60))),
        ("asked for more", Some(s(6000)), t0(), Ok(s(600))),
        (
            "event almost over",
            Some(s(60)),
            t0() + secs(590),
            Ok(s(10)),
        ),
        (
            "event over: one second",
            Some(s(60)),
            t0() + secs(700),
            Ok(s(1)),
        ),
        ("zero", Some(s(0)), t0(), Err(ZeroLifetime)),
    ];
    for (name, requested, now, expected) in cases {
        assert_eq!(
            ticket_lifetime(requested, default, &e, now),
            expected,
            "{name}"
        );
    }
}

#[test]
fn visibility() {
    let private = event(true, 60);
    let public = event(false, 60);
    let expired = event(false, 0);
    let owner = member(1, false, FAR);
    let other = member(2, false, FAR);
    let admin = member(9, true, FAR);
    let cases = [
        ("anonymous, public", None, &public, false, true),
        ("anonymous, private", None, &private, false, false),
        ("owner, private", Some(&*owner), &private, false, true),
        ("other, private", Some(&*other), &private, false, false),
        ("admin, private", Some(&*admin), &private, false, true),
        ("owner, expired, all", Some(&*owner), &expired, true, false),
        ("admin, expired", Some(&*admin), &expired, false, false),
        ("admin, expired, all", Some(&*admin), &expired, true, true),
    ];
    for (name, viewer, event, all, expected) in cases {
        assert_eq!(may_see(viewer, event, all, t0()), expected, "{name}");
    }
    assert!(
        may_see(None, &expired, false, t0() - secs(1)),
        "open a second before its end"
    );
}

#[test]
fn private_events_have_one_rule() {
    // Whoever may see a private event may listen to it with their token, and nobody else.
    let private = event(true, 60);
    for who in [
        member(1, false, FAR),
        member(2, false, FAR),
        member(9, true, FAR),
    ] {
        let sees = may_see(Some(&who), &private, false, t0());
        let hears = may_listen(
            ListenTo::Event(Some(&private)),
            &Presented::Member(who.clone()),
            &listener(),
            None,
            t0(),
        )
        .is_ok();
        let mints = may_mint_ticket(&who, Some(&private), t0()).is_ok();
        assert_eq!(sees, hears, "member {}", who.sub);
        assert_eq!(sees, mints, "member {}", who.sub);
    }
}

#[test]
fn text_limits() {
    assert!(text_fits(""));
    assert!(text_fits(&"é".repeat(255)));
    assert!(!text_fits(&"a".repeat(256)));
}

#[test]
fn pages_and_referers_are_bounded() {
    assert_eq!(page_size(None), Some(DEFAULT_PAGE_SIZE));
    assert_eq!(page_size(Some(1)), Some(1));
    assert_eq!(page_size(Some(MAX_PAGE_SIZE)), Some(MAX_PAGE_SIZE));
    assert_eq!(page_size(Some(MAX_PAGE_SIZE + 1)), None);
    assert_eq!(page_size(Some(0)), None);
    assert!(ticket::referer_fits(&"r".repeat(ticket::MAX_REFERER_BYTES)));
    assert!(!ticket::referer_fits(
        &"r".repeat(ticket::MAX_REFERER_BYTES + 1)
    ));
    // Bytes, not characters: 256 two-byte characters are 512 bytes, 257 are too many.
    assert!(ticket::referer_fits(&"é".repeat(256)));
    assert!(!ticket::referer_fits(&"é".repeat(257)));
}
