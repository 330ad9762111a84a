//! Taking access back: what bans, revoked tickets and early ends mean for a callback
//! ([`admits`]) and for a session Icecast already admitted ([`listener_must_go`],
//! [`source_must_go`]); who may end an event, revoke its tickets or see its sessions
//! ([`may_manage`]); who may ban ([`may_ban`]); what a ban takes at the API ([`ban_takes`]).
//! [`SanctionSet`] is the in-memory form of every sanction in force, built once per change so
//! that a callback pays hash lookups only.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConnectDenial, DenyReason, Standing};
use crate::domain::Event;
use crate::tokens::{AccessLevel, Claims, SourceTicketClaims};

mod powers;
mod set;
pub use powers::{ban_takes, Power};
pub use set::{canonical_ip, SanctionSet};

/// Who a callback is about, as far as sanctions go.
#[derive(Debug, Clone, Copy)]
pub struct Party<'a> {
    /// The address Icecast reported.
    pub ip: &'a str,
    /// The member whose token (or source ticket) admits them.
    pub member: Option<i64>,
    /// The ticket admitting them: its `jti` and issue time (Unix seconds).
    pub ticket: Option<(&'a str, i64)>,
}

/// Whether sanctions let `party` onto `event` (`None`: a static mount) at `now`; asked after
/// the ordinary rules admitted them.
pub fn admits(
    set: &SanctionSet,
    party: &Party<'_>,
    event: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), DenyReason> {
    if set.is_empty() {
        return Ok(());
    }
    if event.and_then(|e| set.ended(e)).is_some_and(|at| at <= now) {
        return Err(DenyReason::EventExpired);
    }
    if canonical_ip(party.ip).is_some_and(|ip| set.ip_banned(ip, event, now))
        || party
            .member
            .is_some_and(|m| set.member_banned(m, event, now))
    {
        return Err(DenyReason::Banned);
    }
    if let (Some((jti, issued)), Some(event)) = (party.ticket, event) {
        if set.ticket_revoked(jti, event, issued) {
            return Err(DenyReason::Revoked);
        }
    }
    Ok(())
}

/// What this node knows of a live session's event.
#[derive(Debug, Clone, Copy)]
pub enum EventRow<'a> {
    /// A static mount: no event.
    NotAnEvent,
    Found(&'a Event),
    /// The store has no such event (any more).
    Gone,
    /// The store could not be asked: no decision rests on the row.
    Unknown,
}

impl EventRow<'_> {
    fn id(&self) -> Option<Uuid> {
        match self {
            EventRow::Found(e) => Some(e.id),
            _ => None,
        }
    }
}

/// Whether the event of a live session is over: gone from the store, expired, or ended.
fn event_over(set: &SanctionSet, row: EventRow<'_>, now: DateTime<Utc>) -> Option<DenyReason> {
    match row {
        EventRow::Gone => Some(DenyReason::NoSuchEvent),
        EventRow::Found(e) if set.expiry(e) <= now => Some(DenyReason::EventExpired),
        _ => None,
    }
}

/// Whether a member's rights, as their identity backend stands now, still let them do what
/// only an event's owner or an admin may do on `event`.
fn rights_lost(member: i64, standing: Standing, event: &Event) -> Option<DenyReason> {
    match standing {
        Standing::Unasked => None,
        Standing::Removed => Some(DenyReason::UserRemoved),
        Standing::Present { access_level, .. } => (member != event.created_by
            && access_level != AccessLevel::Admin)
            .then_some(DenyReason::NotOwnerOrAdmin),
    }
}

/// A listener session Icecast admitted, as far as sanctions go.
#[derive(Debug, Clone, Copy)]
pub struct LiveListener<'a> {
    pub ip: &'a str,
    /// The member whose token admitted them, and where their backend stands on them now.
    pub member: Option<(i64, Standing)>,
    /// The ticket (`jti`) that admitted them.
    pub ticket: Option<&'a str>,
    pub started: DateTime<Utc>,
}

/// Whether a live listener must be dropped at `now`, and why: a ban on their address or
/// member, their ticket revoked (by id, or all of the event's tickets since they joined), the
/// event gone, expired or ended, or — on a private event — the rights that alone let their
/// member in lost (removed; no longer an admin, on somebody else's event).
pub fn listener_must_go(
    set: &SanctionSet,
    l: &LiveListener<'_>,
    row: EventRow<'_>,
    now: DateTime<Utc>,
) -> Option<DenyReason> {
    let event = row.id();
    if canonical_ip(l.ip).is_some_and(|ip| set.ip_banned(ip, event, now))
        || l.member
            .is_some_and(|(m, _)| set.member_banned(m, event, now))
    {
        return Some(DenyReason::Banned);
    }
    if let Some(jti) = l.ticket {
        // A session that began before the cut-off was admitted by a ticket issued before it.
        let cut = event.is_some_and(|e| set.cut_off(e, l.started.timestamp()));
        if set.jti_revoked(jti, event) || cut {
            return Some(DenyReason::Revoked);
        }
    }
    if let Some(reason) = event_over(set, row, now) {
        return Some(reason);
    }
    match (row, l.member) {
        (EventRow::Found(e), Some((member, standing))) if e.private => {
            rights_lost(member, standing, e)
        }
        _ => None,
    }
}

/// A live source, as far as sanctions go.
#[derive(Debug, Clone, Copy)]
pub struct LiveSource<'a> {
    /// The address `stream_auth` reported.
    pub ip: &'a str,
    /// The member whose token or source ticket let it in (for a trusted relay: the member
    /// `/jars/connect` approved, the event's `connected_by`), and where their backend stands.
    pub member: Option<(i64, Standing)>,
    /// The source ticket (`jti`) that let it in.
    pub ticket: Option<&'a str>,
    pub since: DateTime<Utc>,
}

/// Whether a live source must be dropped at `now`, and why: its event gone, expired or ended;
/// its address or member banned; its source ticket revoked; or its member's rights lost (removed, or no
/// longer an admin on somebody else's event).
pub fn source_must_go(
    set: &SanctionSet,
    s: &LiveSource<'_>,
    row: EventRow<'_>,
    now: DateTime<Utc>,
) -> Option<DenyReason> {
    if let Some(reason) = event_over(set, row, now) {
        return Some(reason);
    }
    let event = row.id();
    if canonical_ip(s.ip).is_some_and(|ip| set.ip_banned(ip, event, now))
        || s.member
            .is_some_and(|(m, _)| set.member_banned(m, event, now))
    {
        return Some(DenyReason::Banned);
    }
    if let Some(jti) = s.ticket {
        let cut = event.is_some_and(|e| set.cut_off(e, s.since.timestamp()));
        if set.jti_revoked(jti, event) || cut {
            return Some(DenyReason::Revoked);
        }
    }
    match (row, s.member) {
        (EventRow::Found(e), Some((member, standing))) => rights_lost(member, standing, e),
        (EventRow::NotAnEvent, Some((_, Standing::Removed))) => Some(DenyReason::UserRemoved),
        _ => None,
    }
}

/// Who may end an event, revoke its tickets or see its sessions: its owner or an admin,
/// expired or not.
pub fn may_manage(member: &Claims, event: Option<&Event>) -> Result<(), ConnectDenial> {
    let event = event.ok_or(ConnectDenial::NoEvent)?;
    if event.created_by == member.sub || member.is_admin() {
        Ok(())
    } else {
        Err(ConnectDenial::NotOwnerOrAdmin)
    }
}

/// Who may ban, list bans and lift them: admins.
pub fn may_ban(member: &Claims) -> bool {
    member.is_admin()
}

/// When a ban made at `now` for `length` ends (`None`: never).
/// A length beyond the calendar counts as never.
pub fn ban_expiry(
    now: DateTime<Utc>,
    length: Option<std::time::Duration>,
) -> Option<DateTime<Utc>> {
    now.checked_add_signed(chrono::Duration::from_std(length?).ok()?)
}

/// The longest ticket id `/jars/tickets/revoke` takes by `jti` (jars mints UUIDs: 36).
pub const MAX_JTI_BYTES: usize = 64;

/// Whether `jti` could be the id of a ticket jars minted: at most [`MAX_JTI_BYTES`] of
/// letters, digits, `-`, `_`, `.` and `~`. What is stored (and logged) for a revocation by id
/// is thus short and plain, whatever a caller sends.
pub fn jti_fits(jti: &str) -> bool {
    !jti.is_empty()
        && jti.len() <= MAX_JTI_BYTES
        && jti
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// Tickets a member (not an admin) may hold revoked one by one at once: past it, revoking
/// every ticket of the event (`mount` alone) still works, and so does waiting for the
/// revoked tickets to expire.
pub const MAX_REVOKED_PER_MEMBER: u32 = 1000;

/// Whether `member` may revoke one more ticket by id, with `set` as it stands: admins always;
/// others while they hold fewer than [`MAX_REVOKED_PER_MEMBER`], so that what one member can
/// make every node store and hold is bounded.
pub fn may_revoke_more(set: &SanctionSet, member: &Claims) -> bool {
    member.is_admin() || set.revoked_by(member.sub) < MAX_REVOKED_PER_MEMBER
}

/// A guest's source ticket lets its holder source `target` when it was minted for that event,
/// the event exists and has not expired, and the member who minted it (`minter`: where their
/// backend stands now) may still broadcast on it: still there, with the id they had when
/// minting, and still its owner or an admin.
pub fn may_source_with_ticket(
    ticket: &SourceTicketClaims,
    minter: Standing,
    event: Option<&Event>,
    target: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DenyReason> {
    if Uuid::try_parse(&ticket.sub).ok() != Some(target) {
        return Err(DenyReason::TicketForAnotherEvent);
    }
    let event = event.ok_or(DenyReason::NoSuchEvent)?;
    if event.is_expired(now) {
        return Err(DenyReason::EventExpired);
    }
    if let Standing::Present { created, .. } = minter {
        if ticket.iat < created {
            return Err(DenyReason::UserRemoved);
        }
    }
    rights_lost(ticket.by, minter, event).map_or(Ok(()), Err)
}

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;
