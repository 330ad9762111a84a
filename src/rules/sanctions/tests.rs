//! Table-driven tests of the sanction rules on a set `now`: bans by address, range, member and
//! event, on both sides of their expiry; revocations by id and by cut-off; early ends; live
//! sessions that must go; guests' source tickets.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::rules::tests::{event, member, t0};
use crate::store::sanctions::{Ban, EventEnd, RevokedTicket, SanctionRows, TicketCutoff};

/// Address, member, event, when, and the answer.
type BanCase<'a> = (
    &'a str,
    Option<i64>,
    Option<Uuid>,
    DateTime<Utc>,
    Result<(), DenyReason>,
);
/// Minter, target event, minter's standing, seconds after t0, and the answer.
type GuestCase = (i64, Uuid, Standing, i64, Result<(), DenyReason>);

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

fn ban(ip: Option<&str>, member: Option<i64>, event: Option<Uuid>, expires_in: Option<i64>) -> Ban {
    Ban {
        id: 1,
        ip: ip.map(str::to_string),
        member,
        member_name: None,
        event,
        reason: None,
        created_by: 9,
        created: t0() - secs(60),
        expires: expires_in.map(|s| t0() + secs(s)),
    }
}

fn set(rows: SanctionRows) -> SanctionSet {
    SanctionSet::from_rows(&rows)
}

fn bans(bans: Vec<Ban>) -> SanctionSet {
    set(SanctionRows {
        version: 1,
        bans,
        ..SanctionRows::default()
    })
}

fn party<'a>(ip: &'a str, member: Option<i64>, ticket: Option<(&'a str, i64)>) -> Party<'a> {
    Party { ip, member, ticket }
}

#[test]
fn an_empty_set_admits_everybody() {
    let s = SanctionSet::unloaded();
    assert!(s.is_empty());
    let e = Uuid::new_v4();
    assert_eq!(
        admits(
            &s,
            &party("192.0.2.1", Some(1), Some(("j", 0))),
            Some(e),
            t0()
        ),
        Ok(())
    );
}

#[test]
fn bans_by_address_range_member_and_event_until_they_expire() {
    let a = Uuid::new_v4();
    let b = Uuid::new_v4();
    let s = bans(vec![
        ban(Some("192.0.2.7"), None, None, None),
        ban(Some("198.51.100.0/24"), None, None, Some(60)),
        ban(None, Some(5), Some(a), None),
        ban(Some("2001:db8::/32"), None, Some(b), None),
    ]);
    let now = t0();
    let cases: &[BanCase<'_>] = &[
        // Exact address, every mount (static ones too), IPv4-mapped IPv6 alike.
        ("192.0.2.7", None, Some(a), now, Err(DenyReason::Banned)),
        ("192.0.2.7", None, None, now, Err(DenyReason::Banned)),
        (
            "::ffff:192.0.2.7",
            None,
            Some(b),
            now,
            Err(DenyReason::Banned),
        ),
        ("192.0.2.8", None, Some(a), now, Ok(())),
        // A range, until its expiry (exclusive).
        (
            "198.51.100.99",
            None,
            Some(a),
            now + secs(59),
            Err(DenyReason::Banned),
        ),
        ("198.51.100.99", None, Some(a), now + secs(60), Ok(())),
        ("198.51.101.1", None, Some(a), now, Ok(())),
        // A member, on one event only.
        ("192.0.2.9", Some(5), Some(a), now, Err(DenyReason::Banned)),
        ("192.0.2.9", Some(5), Some(b), now, Ok(())),
        ("192.0.2.9", Some(6), Some(a), now, Ok(())),
        // An IPv6 range on event b only.
        ("2001:db8::1", None, Some(b), now, Err(DenyReason::Banned)),
        ("2001:db8::1", None, Some(a), now, Ok(())),
        // An address Icecast reported that is no address is not banned by address.
        ("not-an-ip", None, Some(a), now, Ok(())),
    ];
    for (ip, m, event, at, want) in cases {
        assert_eq!(
            admits(&s, &party(ip, *m, None), *event, *at),
            *want,
            "{ip} {m:?} {event:?} at +{}s",
            (*at - now).num_seconds()
        );
    }
}

#[test]
fn tickets_revoked_by_id_or_by_the_events_cut_off() {
    let a = Uuid::new_v4();
    let b = Uuid::new_v4();
    let c = Uuid::new_v4();
    let s = set(SanctionRows {
        version: 3,
        tickets: vec![
            RevokedTicket {
                jti: "leaked".into(),
                event: a,
                expires: t0() + secs(600),
                created_by: 1,
                created: t0(),
            },
            // Revoked by an admin or the CLI without naming the event.
            RevokedTicket {
                jti: "anywhere".into(),
                event: Uuid::nil(),
                expires: t0() + secs(600),
                created_by: 0,
                created: t0(),
            },
        ],
        cutoffs: vec![TicketCutoff {
            event: b,
            before: t0(),
        }],
        ..SanctionRows::default()
    });
    let at = t0().timestamp();
    let cases: &[(&str, Uuid, i64, Result<(), DenyReason>)] = &[
        ("leaked", a, at - 100, Err(DenyReason::Revoked)),
        // Revoked on event a: a ticket id on another event is not that ticket.
        ("leaked", c, at - 100, Ok(())),
        ("anywhere", c, at - 100, Err(DenyReason::Revoked)),
        ("other", a, at - 100, Ok(())),
        // Issued at or before the cut-off (same second included), or after it.
        ("other", b, at - 1, Err(DenyReason::Revoked)),
        ("other", b, at, Err(DenyReason::Revoked)),
        ("other", b, at + 1, Ok(())),
    ];
    for (jti, event, issued, want) in cases {
        assert_eq!(
            admits(
                &s,
                &party("192.0.2.1", None, Some((jti, *issued))),
                Some(*event),
                t0() + secs(5)
            ),
            *want,
            "{jti} issued {}",
            issued - at
        );
    }
    // Without a ticket, a cut-off does not matter.
    assert_eq!(
        admits(&s, &party("192.0.2.1", None, None), Some(b), t0()),
        Ok(())
    );
}

#[test]
fn an_early_end_beats_a_cached_row() {
    let e = event(false, 3600);
    let s = set(SanctionRows {
        version: 1,
        ends: vec![EventEnd {
            event: e.id,
            at: t0() + secs(10),
        }],
        ..SanctionRows::default()
    });
    assert_eq!(s.expiry(&e), t0() + secs(10));
    let p = party("192.0.2.1", None, None);
    assert_eq!(admits(&s, &p, Some(e.id), t0() + secs(9)), Ok(()));
    assert_eq!(
        admits(&s, &p, Some(e.id), t0() + secs(10)),
        Err(DenyReason::EventExpired)
    );
    // An end after the row's own expiry does not extend it.
    let short = event(false, 5);
    let s = set(SanctionRows {
        version: 1,
        ends: vec![EventEnd {
            event: short.id,
            at: t0() + secs(100),
        }],
        ..SanctionRows::default()
    });
    assert_eq!(s.expiry(&short), t0() + secs(5));
}

fn present(admin: bool) -> Standing {
    Standing::Present {
        access_level: if admin {
            AccessLevel::Admin
        } else {
            AccessLevel::Standard
        },
        created: 0,
    }
}

#[test]
fn live_listeners_that_must_go() {
    let public = event(false, 3600);
    let private = event(true, 3600);
    let started = t0() - secs(30);
    let s = set(SanctionRows {
        version: 1,
        bans: vec![ban(Some("203.0.113.0/24"), None, None, None)],
        tickets: vec![RevokedTicket {
            jti: "gone".into(),
            event: Uuid::nil(),
            expires: t0() + secs(600),
            created_by: 0,
            created: t0(),
        }],
        cutoffs: vec![TicketCutoff {
            event: private.id,
            before: t0() - secs(10),
        }],
        ..SanctionRows::default()
    });
    let l = |ip: &'static str,
             member: Option<(i64, Standing)>,
             ticket: Option<&'static str>,
             started| {
        LiveListener {
            ip,
            member,
            ticket,
            started,
        }
    };
    let now = t0();
    let cases: Vec<(
        LiveListener<'_>,
        EventRow<'_>,
        DateTime<Utc>,
        Option<DenyReason>,
    )> = vec![
        (
            l("192.0.2.1", None, None, started),
            EventRow::Found(&public),
            now,
            None,
        ),
        (
            l("203.0.113.5", None, None, started),
            EventRow::Found(&public),
            now,
            Some(DenyReason::Banned),
        ),
        (
            l("203.0.113.5", None, None, started),
            EventRow::NotAnEvent,
            now,
            Some(DenyReason::Banned),
        ),
        // A revoked ticket id, on any event.
        (
            l("192.0.2.1", None, Some("gone"), started),
            EventRow::Found(&private),
            now,
            Some(DenyReason::Revoked),
        ),
        // The cut-off: sessions that began at or before it go, later ones stay.
        (
            l("192.0.2.1", None, Some("t"), now - secs(10)),
            EventRow::Found(&private),
            now,
            Some(DenyReason::Revoked),
        ),
        (
            l("192.0.2.1", None, Some("t"), now - secs(9)),
            EventRow::Found(&private),
            now,
            None,
        ),
        // The event gone, expired, or unknown (the store failed: nobody is dropped on a guess).
        (
            l("192.0.2.1", None, None, started),
            EventRow::Gone,
            now,
            Some(DenyReason::NoSuchEvent),
        ),
        (
            l("192.0.2.1", None, None, started),
            EventRow::Found(&public),
            now + secs(3599),
            None,
        ),
        (
            l("192.0.2.1", None, None, started),
            EventRow::Found(&public),
            now + secs(3600),
            Some(DenyReason::EventExpired),
        ),
        (
            l("192.0.2.1", None, None, started),
            EventRow::Unknown,
            now + secs(99999),
            None,
        ),
        // Members on a private event: the owner stays; a removed member goes; an admin
        // demoted on somebody else's event goes; the owner demoted stays.
        (
            l("192.0.2.1", Some((1, present(false))), None, started),
            EventRow::Found(&private),
            now,
            None,
        ),
        (
            l("192.0.2.1", Some((2, Standing::Removed)), None, started),
            EventRow::Found(&private),
            now,
            Some(DenyReason::UserRemoved),
        ),
        (
            l("192.0.2.1", Some((2, present(false))), None, started),
            EventRow::Found(&private),
            now,
            Some(DenyReason::NotOwnerOrAdmin),
        ),
        (
            l("192.0.2.1", Some((2, present(true))), None, started),
            EventRow::Found(&private),
            now,
            None,
        ),
        (
            l("192.0.2.1", Some((2, Standing::Unasked)), None, started),
            EventRow::Found(&private),
            now,
            None,
        ),
        // On a public event nobody's rights were needed.
        (
            l("192.0.2.1", Some((2, Standing::Removed)), None, started),
            EventRow::Found(&public),
            now,
            None,
        ),
    ];
    for (i, (listener, row, at, want)) in cases.iter().enumerate() {
        assert_eq!(listener_must_go(&s, listener, *row, *at), *want, "case {i}");
    }
}

#[test]
fn live_sources_that_must_go() {
    let e = event(false, 60);
    let other = event(false, 60);
    let since = t0() - secs(30);
    let s = set(SanctionRows {
        version: 1,
        bans: vec![ban(None, Some(7), Some(e.id), None)],
        tickets: vec![RevokedTicket {
            jti: "guest-revoked".into(),
            event: e.id,
            expires: t0() + secs(60),
            created_by: 1,
            created: t0(),
        }],
        cutoffs: vec![TicketCutoff {
            event: other.id,
            before: t0() - secs(60),
        }],
        ends: vec![EventEnd {
            event: other.id,
            at: t0() + secs(20),
        }],
    });
    let src = |member: Option<(i64, Standing)>, ticket: Option<&'static str>, since| LiveSource {
        member,
        ticket,
        since,
    };
    let now = t0();
    let cases: Vec<(
        LiveSource<'_>,
        EventRow<'_>,
        DateTime<Utc>,
        Option<DenyReason>,
    )> = vec![
        (
            src(Some((1, present(false))), None, since),
            EventRow::Found(&e),
            now,
            None,
        ),
        // Expiry while live: the source goes at the event's end, not a second before.
        (
            src(Some((1, present(false))), None, since),
            EventRow::Found(&e),
            now + secs(59),
            None,
        ),
        (
            src(Some((1, present(false))), None, since),
            EventRow::Found(&e),
            now + secs(60),
            Some(DenyReason::EventExpired),
        ),
        // Ended early (the row may still say later).
        (
            src(None, None, since),
            EventRow::Found(&other),
            now + secs(20),
            Some(DenyReason::EventExpired),
        ),
        (
            src(None, None, since),
            EventRow::Gone,
            now,
            Some(DenyReason::NoSuchEvent),
        ),
        // A banned member, on that event only.
        (
            src(Some((7, present(true))), None, since),
            EventRow::Found(&e),
            now,
            Some(DenyReason::Banned),
        ),
        (
            src(Some((7, present(true))), None, since),
            EventRow::Found(&other),
            now,
            None,
        ),
        // A guest's ticket revoked by id; a cut-off before the source began spares it.
        (
            src(Some((1, present(false))), Some("guest-revoked"), since),
            EventRow::Found(&e),
            now,
            Some(DenyReason::Revoked),
        ),
        (
            src(Some((1, present(false))), Some("guest"), since),
            EventRow::Found(&other),
            now,
            None,
        ),
        (
            src(Some((1, present(false))), Some("guest"), now - secs(61)),
            EventRow::Found(&other),
            now,
            Some(DenyReason::Revoked),
        ),
        // Lost rights: removed; an admin demoted on somebody else's event; the owner stays.
        (
            src(Some((1, Standing::Removed)), None, since),
            EventRow::Found(&e),
            now,
            Some(DenyReason::UserRemoved),
        ),
        (
            src(Some((3, present(false))), None, since),
            EventRow::Found(&e),
            now,
            Some(DenyReason::NotOwnerOrAdmin),
        ),
        (
            src(Some((3, present(true))), None, since),
            EventRow::Found(&e),
            now,
            None,
        ),
        (
            src(Some((3, Standing::Unasked)), None, since),
            EventRow::Found(&e),
            now,
            None,
        ),
        // A static mount: a removed admin's source goes; a relay's stays.
        (
            src(Some((3, Standing::Removed)), None, since),
            EventRow::NotAnEvent,
            now,
            Some(DenyReason::UserRemoved),
        ),
        (src(None, None, since), EventRow::NotAnEvent, now, None),
        // The store could not be asked: no decision on the row.
        (
            src(Some((3, present(false))), None, since),
            EventRow::Unknown,
            now + secs(9999),
            None,
        ),
    ];
    for (i, (source, row, at, want)) in cases.iter().enumerate() {
        assert_eq!(source_must_go(&s, source, *row, *at), *want, "case {i}");
    }
}

fn guest_ticket(event: Uuid, by: i64, iat: i64) -> SourceTicketClaims {
    SourceTicketClaims {
        iss: "jars".into(),
        sub: event.to_string(),
        kind: crate::tokens::SOURCE_TICKET_KIND.into(),
        by,
        iat,
        exp: iat + 3600,
        jti: "g".into(),
        nbf: None,
        aud: None,
    }
}

#[test]
fn guest_source_tickets() {
    let e = event(false, 60);
    let iat = t0().timestamp() - 10;
    let created_before = Standing::Present {
        access_level: AccessLevel::Standard,
        created: iat - 100,
    };
    let created_after = Standing::Present {
        access_level: AccessLevel::Admin,
        created: iat + 1,
    };
    let cases: &[GuestCase] = &[
        (1, e.id, created_before, 0, Ok(())),
        (1, e.id, Standing::Unasked, 0, Ok(())),
        // Only on its own event.
        (
            1,
            Uuid::new_v4(),
            created_before,
            0,
            Err(DenyReason::TicketForAnotherEvent),
        ),
        // Not on an expired event.
        (1, e.id, created_before, 60, Err(DenyReason::NoSuchEvent)),
        // Its minter gone, or the id now somebody else's.
        (1, e.id, Standing::Removed, 0, Err(DenyReason::UserRemoved)),
        (1, e.id, created_after, 0, Err(DenyReason::UserRemoved)),
        // Minted by an admin since demoted, on somebody else's event.
        (2, e.id, created_before, 0, Err(DenyReason::NotOwnerOrAdmin)),
        (2, e.id, present(true), 0, Ok(())),
    ];
    for (i, (by, target, minter, later, want)) in cases.iter().enumerate() {
        let t = guest_ticket(e.id, *by, iat);
        assert_eq!(
            may_source_with_ticket(&t, *minter, Some(&e), *target, t0() + secs(*later)),
            *want,
            "case {i}"
        );
    }
    assert_eq!(
        may_source_with_ticket(
            &guest_ticket(e.id, 1, iat),
            Standing::Unasked,
            None,
            e.id,
            t0()
        ),
        Err(DenyReason::NoSuchEvent)
    );
}

#[test]
fn who_manages_and_who_bans() {
    let e = event(false, -10);
    // Owner and admins, expired or not; nobody else; no event: none.
    assert_eq!(may_manage(&member(1, false, 0), Some(&e)), Ok(()));
    assert_eq!(may_manage(&member(2, true, 0), Some(&e)), Ok(()));
    assert_eq!(
        may_manage(&member(2, false, 0), Some(&e)),
        Err(ConnectDenial::NotOwnerOrAdmin)
    );
    assert_eq!(
        may_manage(&member(1, false, 0), None),
        Err(ConnectDenial::NoEvent)
    );
    assert!(may_ban(&member(2, true, 0)));
    assert!(!may_ban(&member(1, false, 0)));
}

#[test]
fn ban_lengths() {
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
    assert_eq!(ban_expiry(now, None), None);
    assert_eq!(
        ban_expiry(now, Some(std::time::Duration::from_secs(90 * 60))),
        Some(now + secs(5400))
    );
    // Beyond the calendar: never.
    assert_eq!(ban_expiry(now, Some(std::time::Duration::MAX)), None);
}
