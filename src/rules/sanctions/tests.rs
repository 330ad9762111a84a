//! Table-driven tests of the sanction rules on a set `now`: bans by address, range, member and
//! event, on both sides of their expiry; revocations by id and by cut-off; early ends; live
//! sessions that must go; guests' source tickets.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::domain::sanction::{Ban, EventEnd, RevokedTicket, SanctionRows, TicketCutoff};
use crate::rules::tests::{event, member, t0};

/// Address, member, event, when, and the answer.
pub(super) type BanCase<'a> = (
    &'a str,
    Option<i64>,
    Option<Uuid>,
    DateTime<Utc>,
    Result<(), DenyReason>,
);
/// Minter, target event, minter's standing, seconds after t0, and the answer.
type GuestCase = (i64, Uuid, Standing, i64, Result<(), DenyReason>);

pub(super) fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

pub(super) fn ban(
    ip: Option<&str>,
    member: Option<i64>,
    event: Option<Uuid>,
    expires_in: Option<i64>,
) -> Ban {
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

pub(super) fn set(rows: SanctionRows) -> SanctionSet {
    SanctionSet::from_rows(&rows)
}

/// The set of `bans`, numbered 1, 2, … as the store numbers them.
pub(super) fn bans(mut bans: Vec<Ban>) -> SanctionSet {
    for (i, ban) in bans.iter_mut().enumerate() {
        ban.id = i as i64 + 1;
    }
    set(SanctionRows {
        version: 1,
        bans,
        ..SanctionRows::default()
    })
}

pub(super) fn party<'a>(
    ip: &'a str,
    member: Option<i64>,
    ticket: Option<(&'a str, i64)>,
) -> Party<'a> {
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

pub(super) fn present(admin: bool) -> Standing {
    Standing::Present {
        access_level: if admin {
            AccessLevel::Admin
        } else {
            AccessLevel::Standard
        },
        created: 0,
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
        (1, e.id, created_before, 60, Err(DenyReason::EventExpired)),
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

fn revoked(jti: &str, event: Uuid, by: i64) -> RevokedTicket {
    RevokedTicket {
        jti: jti.into(),
        event,
        expires: t0() + secs(600),
        created_by: by,
        created: t0(),
    }
}

fn changes(version: i64, rows: SanctionRows) -> SanctionRows {
    SanctionRows {
        version,
        complete: false,
        ..rows
    }
}

/// Issue 28, item 1: carol revoked bob's ticket id on her own event, which squatted the id:
/// bob's ticket kept admitting, and his own revocation answered 0.
#[test]
fn a_revocation_reaches_only_the_event_it_was_recorded_against() {
    let (bobs, carols) = (event(true, 3600), event(true, 3600));
    let squatted = set(SanctionRows {
        version: 1,
        tickets: vec![revoked("bob-ticket", carols.id, 3)],
        ..SanctionRows::default()
    });
    let issued = t0().timestamp() - 60;
    let p = party("192.0.2.1", None, Some(("bob-ticket", issued)));
    assert_eq!(admits(&squatted, &p, Some(bobs.id), t0()), Ok(()));
    assert_eq!(
        admits(&squatted, &p, Some(carols.id), t0()),
        Err(DenyReason::Revoked)
    );
    // A live listener of bob's event, its row found or unknown (the store failing), stays.
    let listener = LiveListener {
        ip: "192.0.2.1",
        member: None,
        ticket: Some("bob-ticket"),
        started: t0() - secs(30),
    };
    for row in [EventRow::Found(&bobs), EventRow::Unknown] {
        assert_eq!(listener_must_go(&squatted, &listener, row, t0()), None);
    }
    // Bob's own revocation counts beside carol's, and reaches his ticket.
    let both = squatted.updated(
        &changes(
            2,
            SanctionRows {
                tickets: vec![revoked("bob-ticket", bobs.id, 2)],
                versions_seen: 1,
                ..SanctionRows::default()
            },
        ),
        t0(),
    );
    assert_eq!(
        admits(&both, &p, Some(bobs.id), t0()),
        Err(DenyReason::Revoked)
    );
    assert_eq!(
        listener_must_go(&both, &listener, EventRow::Found(&bobs), t0()),
        Some(DenyReason::Revoked)
    );
}

/// A node applies the rows written since its version: the set it ends with is the one a
/// whole load would build.
#[test]
fn changes_applied_one_by_one_make_the_set_a_whole_load_makes() {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut first_ban = ban(Some("192.0.2.7"), None, None, None);
    first_ban.id = 1;
    let mut second_ban = ban(None, Some(7), Some(a), Some(60));
    second_ban.id = 2;
    let mut range = ban(Some("198.51.100.0/24"), None, Some(b), None);
    range.id = 3;
    let steps = [
        SanctionRows {
            bans: vec![first_ban.clone(), second_ban.clone()],
            tickets: vec![revoked("t1", a, 3)],
            ..SanctionRows::default()
        },
        SanctionRows {
            tickets: vec![revoked("t1", b, 4), revoked("t2", Uuid::nil(), 1)],
            cutoffs: vec![TicketCutoff {
                event: a,
                before: t0(),
            }],
            ..SanctionRows::default()
        },
        SanctionRows {
            bans: vec![range.clone()],
            lifted: vec![1],
            ends: vec![EventEnd {
                event: b,
                at: t0() + secs(5),
            }],
            cutoffs: vec![TicketCutoff {
                event: a,
                before: t0() + secs(9),
            }],
            ..SanctionRows::default()
        },
    ];
    let mut grown = set(SanctionRows::default());
    for (i, step) in steps.into_iter().enumerate() {
        grown = grown.updated(&changes(i as i64 + 2, step), t0());
    }
    let whole = set(SanctionRows {
        version: 4,
        complete: true,
        bans: vec![second_ban, range],
        tickets: vec![
            revoked("t1", a, 3),
            revoked("t1", b, 4),
            revoked("t2", Uuid::nil(), 1),
        ],
        cutoffs: vec![TicketCutoff {
            event: a,
            before: t0() + secs(9),
        }],
        ends: vec![EventEnd {
            event: b,
            at: t0() + secs(5),
        }],
        ..SanctionRows::default()
    });
    assert!(grown.same_as(&whole), "{grown:#?}\n{whole:#?}");
    assert_eq!(grown.version, 4);
    let ip = |s: &str| s.parse().unwrap();
    assert!(
        !grown.ip_banned(ip("192.0.2.7"), None, t0()),
        "ban 1 lifted"
    );
    assert!(grown.ip_banned(ip("198.51.100.9"), Some(b), t0()));
    assert_eq!(grown.revoked_by(3), 1);
    assert_eq!(grown.revoked_tickets(), 2);
}

#[test]
fn ticket_ids_revoked_by_id_are_short_and_plain() {
    for ok in ["2f1c7c9e-55b4-4b0e-9d7f-8f2b8f0e2a11", "a", "A-z_0.9~"] {
        assert!(jti_fits(ok), "{ok}");
    }
    let long = "a".repeat(MAX_JTI_BYTES + 1);
    for bad in ["", "a b", "x\n2026 INFO forged", "é", "a/b", long.as_str()] {
        assert!(!jti_fits(bad), "{bad:?}");
    }
}

#[test]
fn a_member_may_hold_a_bounded_number_of_revocations() {
    let event = Uuid::new_v4();
    let full = set(SanctionRows {
        version: 1,
        tickets: (0..MAX_REVOKED_PER_MEMBER)
            .map(|i| revoked(&format!("t{i}"), event, 3))
            .collect(),
        ..SanctionRows::default()
    });
    assert!(!may_revoke_more(&full, &member(3, false, i64::MAX)));
    assert!(may_revoke_more(&full, &member(3, true, i64::MAX)), "admins");
    assert!(may_revoke_more(&full, &member(4, false, i64::MAX)));
}
