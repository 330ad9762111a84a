//! Table-driven tests of which live listeners and sources must go (expiry, ends, bans,
//! revocations, lost rights) on a set `now`.

use super::tests::*;
use super::*;
use crate::domain::sanction::{Ban, EventEnd, RevokedTicket, SanctionRows, TicketCutoff};
use crate::rules::tests::{event, t0};

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
        bans: vec![
            ban(None, Some(7), Some(e.id), None),
            Ban {
                id: 2,
                ..ban(Some("198.51.100.7"), None, None, None)
            },
        ],
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
        ..SanctionRows::default()
    });
    let src = |member: Option<(i64, Standing)>, ticket: Option<&'static str>, since| LiveSource {
        ip: "192.0.2.1",
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
        // A banned address, wherever it streams from (an encoder or a relay).
        (
            LiveSource {
                ip: "198.51.100.7",
                ..src(Some((1, present(false))), None, since)
            },
            EventRow::Found(&other),
            now,
            Some(DenyReason::Banned),
        ),
        (
            LiveSource {
                ip: "::ffff:198.51.100.7",
                ..src(None, None, since)
            },
            EventRow::NotAnEvent,
            now,
            Some(DenyReason::Banned),
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
