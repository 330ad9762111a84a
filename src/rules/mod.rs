//! Every access rule of jars, in one place: who may send Icecast callbacks
//! ([`may_send_callbacks`], never a browser: [`not_from_a_browser`]), who may broadcast to an event ([`may_connect`],
//! [`relay_may_source`], [`may_source_static`]; through a relay, members and guests alike:
//! [`broadcast`]), who may listen to a mount and until when
//! ([`may_listen`]), what a listener ticket admits ([`ticket`]), how long a ticket may live
//! ([`ticket_lifetime`]), which events a viewer sees ([`list_filter`], [`may_see`]) and how many
//! at once ([`page_size`]), what a
//! member's token is worth now ([`current_claims`]), how long an event's text may be
//! ([`text_fits`]), who may read an event's listening stats ([`may_see_stats`]), what
//! bans, revocations and early ends take back ([`sanctions`]), which server a listener is sent
//! to and whether a server is healthy ([`placement`]), and whether one more listener fits the
//! station's and the event's listener caps ([`caps`]).
//!
//! Pure functions of plain inputs and an explicit `now`: no I/O, no clock, no HTTP. The JARS
//! API handlers, the Icecast hooks and the CLI gather the inputs, call one rule, and render
//! the outcome.

pub mod broadcast;
mod caller;
pub mod caps;
pub mod placement;
mod reports;
pub mod sanctions;
pub mod sessions;
pub mod ticket;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Access;
use crate::domain::{Event, ListFilter};
use crate::tokens::{AccessLevel, Claims, TicketClaims};

pub use crate::domain::{ConnectDenial, ConnectTerms, DenyReason};
pub use caller::{may_send_callbacks, not_from_a_browser, BrowserSigns, CallbackCredentials};
pub use reports::may_see_stats;
pub use sessions::{session_is_lost, TIMELIMIT_GRACE};
pub use ticket::Listener;

/// The longest title or description the original schema holds (`VARCHAR(255)`).
pub const MAX_TEXT_CHARS: usize = 255;

/// Whether an event's title or description fits the original schema.
pub fn text_fits(text: &str) -> bool {
    text.chars().count() <= MAX_TEXT_CHARS
}

/// What the identity backend reports, now, of the member a token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The backend is not asked (MyRadio, or a verify-only node without a users file): the
    /// token speaks for itself until it expires.
    Unasked,
    /// No member has the token's id.
    Removed,
    /// The member with the token's id: their access level now, and the Unix second their
    /// record was created (0 when the backend does not know).
    Present {
        access_level: AccessLevel,
        created: i64,
    },
}

/// A member's claims as their identity backend stands now. A removed member's token is worth
/// nothing, and so is a token issued before the member's record was created (it was issued to
/// somebody else who held the id, or to a record since removed and added again); a demoted
/// admin's counts as a standard user's; a level is never raised above the token's.
pub fn current_claims(claims: Arc<Claims>, standing: Standing) -> Option<Arc<Claims>> {
    let current = match standing {
        Standing::Unasked => return Some(claims),
        Standing::Removed => return None,
        Standing::Present { created, .. } if claims.iat < created => return None,
        Standing::Present { access_level, .. } => access_level,
    };
    let level = match current {
        AccessLevel::Admin => claims.access_level,
        AccessLevel::Standard => AccessLevel::Standard,
    };
    if level == claims.access_level {
        Some(claims)
    } else {
        Some(Arc::new(Claims {
            access_level: level,
            ..(*claims).clone()
        }))
    }
}

/// The connect rule (`/jars/connect`, a member's `stream_auth`, metadata updates, minting
/// tickets): the event exists and has not expired, and the member owns it or is an admin.
pub fn may_connect(
    member: &Claims,
    event: Option<&Event>,
    now: DateTime<Utc>,
) -> Result<(), ConnectDenial> {
    let terms = connect_terms(member, now);
    let event = event.ok_or(ConnectDenial::NoEvent)?;
    if !terms.unexpired(event) {
        return Err(ConnectDenial::Expired);
    }
    if terms.owned(event) {
        Ok(())
    } else {
        Err(ConnectDenial::NotOwnerOrAdmin)
    }
}

/// What `member` may connect to at `now`: unexpired events of their own, any event if admin.
pub fn connect_terms(member: &Claims, now: DateTime<Utc>) -> ConnectTerms {
    ConnectTerms {
        unexpired_at: now,
        owner: (!member.is_admin()).then_some(member.sub),
    }
}

/// Who may mint a listener ticket for an event: whoever may connect to it.
pub fn may_mint_ticket(
    member: &Claims,
    event: Option<&Event>,
    now: DateTime<Utc>,
) -> Result<(), ConnectDenial> {
    may_connect(member, event, now)
}

/// How long a trusted relay's permission lasts (`[icecast] relay_window`, `relay_reconnect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayWindows {
    /// After a `/jars/connect` approval for the event.
    pub approval: Duration,
    /// After Icecast dropped that relay's source of the event (a blip, a restart, a kick).
    pub reconnect: Duration,
}

/// What this node knows of a trusted relay and an event's mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayHistory<'a> {
    /// A source is streaming to the mount now.
    pub live: bool,
    /// The relay whose source Icecast last dropped from the mount, and when.
    pub dropped: Option<(&'a str, DateTime<Utc>)>,
}

/// A trusted relay (webcaster-relay) `relay` may source an unexpired event when
/// `/jars/connect` approved it within `windows.approval`, when the event is already live (the
/// relay reconnecting to its own stream), or when Icecast dropped this same relay's source of
/// the event within `windows.reconnect` (so a network blip or an Icecast restart does not end
/// a show that was approved once).
pub fn relay_may_source(
    event: Option<&Event>,
    relay: &str,
    history: RelayHistory<'_>,
    windows: RelayWindows,
    now: DateTime<Utc>,
) -> Result<(), DenyReason> {
    let event = event.ok_or(DenyReason::NoSuchEvent)?;
    if event.is_expired(now) {
        return Err(DenyReason::EventExpired);
    }
    let within = |since: DateTime<Utc>, window: Duration| {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        now - since <= window
    };
    let approved = event
        .last_connected_at
        .is_some_and(|t| within(t, windows.approval));
    let reconnecting = !windows.reconnect.is_zero()
        && history
            .dropped
            .is_some_and(|(by, at)| by == relay && within(at, windows.reconnect));
    if approved || history.live || reconnecting {
        Ok(())
    } else {
        Err(DenyReason::RelayNotApproved)
    }
}

/// A static mount (`[[icecast.mounts]]`) is sourced by a trusted relay (`member` is `None`) or
/// an admin.
pub fn may_source_static(member: Option<&Claims>) -> Result<(), DenyReason> {
    match member {
        None => Ok(()),
        Some(m) if m.is_admin() => Ok(()),
        Some(_) => Err(DenyReason::AdminsOnly),
    }
}

/// What a listener wants to hear.
#[derive(Debug, Clone, Copy)]
pub enum ListenTo<'a> {
    /// A static mount with its configured access.
    Static(Access),
    /// An event mount, with its row (`None`: no such event).
    Event(Option<&'a Event>),
}

/// What a listener presented, verified: the Icecast hook verifies tokens (a cache lookup or an
/// RSA check) only when [`listener_needs_credential`] says the rule will read them.
#[derive(Debug, Clone)]
pub enum Presented {
    /// No token at all.
    Nothing,
    /// A member's user token, with the member's current rights ([`current_claims`]).
    Member(Arc<Claims>),
    /// A listener ticket.
    Ticket(Arc<TicketClaims>),
    /// The first presented token was refused, for this reason.
    Refused(DenyReason),
}

/// An admitted listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Unix second at which the listener must be cut off (`None`: never).
    pub until: Option<i64>,
    /// The ticket's id, when a ticket admitted the listener.
    pub ticket: Option<String>,
    /// How many listeners that ticket may hold at once.
    pub cap: Option<u32>,
    /// The member whose token admitted the listener.
    pub member: Option<i64>,
}

/// Whether [`may_listen`] reads the presented credentials for `to` (public mounts and public
/// events do not: their listeners cost no token check).
pub fn listener_needs_credential(to: ListenTo<'_>) -> bool {
    match to {
        ListenTo::Static(access) => access != Access::Public,
        ListenTo::Event(event) => event.is_some_and(|e| e.private),
    }
}

/// The listening rule.
///
/// - A public static mount: anybody, without a time limit.
/// - A `members` / `admins` static mount: a member's token (of an admin for `admins`), until
///   the token expires.
/// - A public event: anybody, until the event expires.
/// - A private event: its owner, admins, and holders of a ticket for it ([`ticket::admits`]),
///   until the token, ticket or event expires, whichever is first. Other members need a ticket
///   like anybody else: a private event is heard by those its owner let in.
///
/// `max_per_ticket` is the station-wide cap on listeners per ticket.
pub fn may_listen(
    to: ListenTo<'_>,
    presented: &Presented,
    listener: &Listener<'_>,
    max_per_ticket: Option<u32>,
    now: DateTime<Utc>,
) -> Result<Admission, DenyReason> {
    let member = match presented {
        Presented::Member(m) => Some(m.sub),
        _ => None,
    };
    let open_until = |until| Admission {
        until,
        ticket: None,
        cap: max_per_ticket,
        member,
    };
    let event = match to {
        ListenTo::Static(Access::Public) => return Ok(open_until(None)),
        ListenTo::Static(access) => {
            return match presented {
                Presented::Member(m) if access == Access::Admins && !m.is_admin() => {
                    Err(DenyReason::AdminsOnly)
                }
                Presented::Member(m) => Ok(open_until(Some(m.exp))),
                Presented::Ticket(_) | Presented::Nothing => Err(DenyReason::MembersOnly),
                Presented::Refused(r) => Err(*r),
            }
        }
        ListenTo::Event(None) => return Err(DenyReason::NoSuchEvent),
        ListenTo::Event(Some(event)) => event,
    };
    if event.is_expired(now) {
        return Err(DenyReason::EventExpired);
    }
    let event_end = event.expires_time.timestamp();
    if !event.private {
        return Ok(open_until(Some(event_end)));
    }
    match presented {
        Presented::Member(m) if m.sub == event.created_by || m.is_admin() => {
            Ok(open_until(Some(event_end.min(m.exp))))
        }
        Presented::Member(_) | Presented::Nothing => Err(DenyReason::TicketRequired),
        Presented::Ticket(t) => {
            ticket::admits(t, event, listener)?;
            Ok(Admission {
                until: Some(event_end.min(t.exp)),
                ticket: Some(t.jti.clone()),
                cap: ticket::cap(t, max_per_ticket),
                member: None,
            })
        }
        Presented::Refused(r) => Err(*r),
    }
}

/// Icecast's `icecast-auth-timelimit` for a listener admitted until `until`: whole seconds
/// left, at least one (zero would mean no limit).
pub fn timelimit(until: i64, now: DateTime<Utc>) -> u64 {
    until.saturating_sub(now.timestamp()).max(1) as u64
}

/// Why a ticket lifetime was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroLifetime;

/// How long a new ticket for `event` lives: `requested`, or the station's `default`, but never
/// past the event's end (and at least one second). A requested lifetime of zero is refused.
pub fn ticket_lifetime(
    requested: Option<Duration>,
    default: Duration,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<Duration, ZeroLifetime> {
    if requested.is_some_and(|d| d.is_zero()) {
        return Err(ZeroLifetime);
    }
    let remaining = (event.expires_time - now).num_seconds().max(1) as u64;
    let wanted = requested.unwrap_or(default).as_secs().max(1);
    Ok(Duration::from_secs(wanted.min(remaining)))
}

/// Which events a listing shows at `now`: public unexpired ones to everybody, a member's own
/// private ones to them, everything to admins; expired ones only to admins who ask for `all`.
pub fn list_filter(viewer: Option<&Claims>, all: bool, now: DateTime<Utc>) -> ListFilter {
    let admin = viewer.is_some_and(Claims::is_admin);
    ListFilter {
        private_of: viewer.map(|c| c.sub),
        all_private: admin,
        include_expired: admin && all,
        now,
        limit: None,
        after: None,
    }
}

/// Events on a page of `/jars/events` when the caller names no `limit`.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The most events a page of `/jars/events` may hold: no listing answer is unbounded.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The page size for a requested `limit`: the default when none, `None` when out of range
/// (zero, or above [`MAX_PAGE_SIZE`]).
pub fn page_size(requested: Option<u32>) -> Option<u32> {
    match requested {
        None => Some(DEFAULT_PAGE_SIZE),
        Some(n) => Some(n).filter(|n| (1..=MAX_PAGE_SIZE).contains(n)),
    }
}

/// The same rule as [`list_filter`], for one event.
pub fn may_see(viewer: Option<&Claims>, event: &Event, all: bool, now: DateTime<Utc>) -> bool {
    let f = list_filter(viewer, all, now);
    (f.include_expired || !event.is_expired(now))
        && (!event.private || f.all_private || f.private_of == Some(event.created_by))
}

#[cfg(test)]
mod tests;
