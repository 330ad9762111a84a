//! Table-driven tests of who may go live through a relay and when a relayed show must stop,
//! on a set `now`.

use chrono::Duration;

use super::*;
use crate::domain::sanction::{Ban, EventEnd, RevokedTicket, SanctionRows};
use crate::rules::tests::{event, member, t0};
use crate::tokens::AccessLevel;

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

fn standing(admin: bool) -> Standing {
    Standing::Present {
        access_level: if admin {
            AccessLevel::Admin
        } else {
            AccessLevel::Standard
        },
        created: 0,
    }
}

fn guest(event: Uuid, by: i64, jti: &str) -> SourceTicketClaims {
    SourceTicketClaims {
        iss: "jars".into(),
        sub: event.to_string(),
        kind: crate::tokens::SOURCE_TICKET_KIND.into(),
        by,
        iat: t0().timestamp() - 60,
        exp: t0().timestamp() + 3600,
        jti: jti.into(),
        nbf: None,
        aud: None,
    }
}

fn ban(ip: Option<&str>, member: Option<i64>) -> Ban {
    Ban {
        id: 1,
        ip: ip.map(str::to_string),
        member,
        member_name: None,
        event: None,
        reason: None,
        created_by: 9,
        created: t0() - secs(60),
        expires: None,
    }
}

/// Member 1 owns the events; member 7 is banned, ticket `gone` revoked, address
/// 203.0.113.9 banned, and `ended` ended early.
fn sanctions(ended: Uuid) -> SanctionSet {
    SanctionSet::from_rows(&SanctionRows {
        version: 1,
        bans: vec![
            ban(None, Some(7)),
            Ban {
                id: 2,
                ..ban(Some("203.0.113.9"), None)
            },
        ],
        tickets: vec![RevokedTicket {
            jti: "gone".into(),
            event: Uuid::nil(),
            expires: t0() + secs(600),
            created_by: 1,
            created: t0(),
        }],
        cutoffs: vec![],
        ends: vec![EventEnd {
            event: ended,
            at: t0() - secs(1),
        }],
        ..SanctionRows::default()
    })
}

#[test]
fn who_may_go_live_through_a_relay() {
    let show = event(false, 3600);
    let ended = event(false, 3600);
    let expired = event(false, 0);
    let set = sanctions(ended.id);
    let owner = member(1, false, i64::MAX / 2);
    let other = member(2, false, i64::MAX / 2);
    let admin = member(3, true, i64::MAX / 2);
    let banned = member(7, true, i64::MAX / 2);
    let ok = guest(show.id, 1, "ok");
    let revoked = guest(show.id, 1, "gone");
    let elsewhere = guest(Uuid::new_v4(), 1, "ok");
    let by_banned = guest(show.id, 7, "b");
    let by_other = guest(show.id, 2, "o");
    let on_ended = guest(ended.id, 1, "e");
    let m = |c| Broadcaster::Member(c);
    let g = |t, admin| Broadcaster::Guest {
        ticket: t,
        minter: standing(admin),
    };
    type Case<'a> = (
        &'a str,
        Broadcaster<'a>,
        &'a Event,
        Option<&'a str>,
        Result<(), DenyReason>,
    );
    let cases: Vec<Case> = vec![
        ("owner", m(&owner), &show, None, Ok(())),
        ("admin", m(&admin), &show, None, Ok(())),
        (
            "another member",
            m(&other),
            &show,
            None,
            Err(DenyReason::NotOwnerOrAdmin),
        ),
        (
            "expired event",
            m(&owner),
            &expired,
            None,
            Err(DenyReason::EventExpired),
        ),
        (
            "ended early",
            m(&owner),
            &ended,
            None,
            Err(DenyReason::EventExpired),
        ),
        (
            "banned member",
            m(&banned),
            &show,
            None,
            Err(DenyReason::Banned),
        ),
        (
            "banned address",
            m(&owner),
            &show,
            Some("203.0.113.9"),
            Err(DenyReason::Banned),
        ),
        ("guest", g(&ok, false), &show, Some("192.0.2.1"), Ok(())),
        (
            "revoked guest",
            g(&revoked, false),
            &show,
            None,
            Err(DenyReason::Revoked),
        ),
        (
            "guest on another event",
            g(&elsewhere, false),
            &show,
            None,
            Err(DenyReason::TicketForAnotherEvent),
        ),
        (
            "guest of a banned minter",
            g(&by_banned, true),
            &show,
            None,
            Err(DenyReason::Banned),
        ),
        (
            "guest minted by a demoted admin",
            g(&by_other, false),
            &show,
            None,
            Err(DenyReason::NotOwnerOrAdmin),
        ),
        (
            "guest minted by an admin",
            g(&by_other, true),
            &show,
            None,
            Ok(()),
        ),
        (
            "guest on an ended event",
            g(&on_ended, false),
            &ended,
            None,
            Err(DenyReason::EventExpired),
        ),
    ];
    for (name, who, e, ip, want) in cases {
        assert_eq!(
            may_broadcast(who, Some(e), e.id, &set, ip, t0()),
            want,
            "{name}"
        );
    }
    assert_eq!(
        may_broadcast(m(&owner), None, show.id, &set, None, t0()),
        Err(DenyReason::NoSuchEvent)
    );
    // A row of another event never admits.
    assert_eq!(
        may_broadcast(m(&owner), Some(&show), Uuid::new_v4(), &set, None, t0()),
        Err(DenyReason::NoSuchEvent)
    );
}

#[test]
fn a_guests_approval_is_recorded_under_its_minters_terms() {
    let t = guest(Uuid::new_v4(), 4, "x");
    assert_eq!(guest_terms(&t, standing(false), t0()).owner, Some(4));
    assert_eq!(guest_terms(&t, standing(true), t0()).owner, None);
    assert_eq!(guest_terms(&t, Standing::Unasked, t0()).owner, None);
    assert_eq!(guest_terms(&t, Standing::Removed, t0()).owner, Some(4));
    assert_eq!(guest_terms(&t, standing(false), t0()).unexpired_at, t0());
    let c = Credential::Guest(Arc::new(t));
    assert_eq!(c.member(), 4);
    assert_eq!(c.ticket(), Some(("x", t0().timestamp() - 60)));
    let m = Credential::Member(member(5, false, 0));
    assert_eq!((m.member(), m.ticket()), (5, None));
}
