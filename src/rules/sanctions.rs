//! Taking access back: what bans, revoked tickets and early ends mean for a callback
//! ([`admits`]) and for a session Icecast already admitted ([`listener_must_go`],
//! [`source_must_go`]); who may end an event, revoke its tickets or see its sessions
//! ([`may_manage`]); who may ban ([`may_ban`]); what a ban takes at the API ([`ban_takes`]).
//! [`SanctionSet`] is the in-memory form of every sanction in force, built once per change so
//! that a callback pays hash lookups only.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConnectDenial, DenyReason, Standing};
use crate::net::IpNet;
use crate::store::sanctions::SanctionRows;
use crate::store::Event;
use crate::tokens::{AccessLevel, Claims, SourceTicketClaims};

/// Keys are ids and addresses from the store, chosen by admins: a fast hasher is safe.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Where a ban applies, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scope {
    /// `None`: every mount.
    event: Option<Uuid>,
    /// `None`: until removed.
    expires: Option<DateTime<Utc>>,
}

impl Scope {
    fn covers(&self, event: Option<Uuid>, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|e| e > now) && (self.event.is_none() || self.event == event)
    }
}

/// Every sanction in force, as lookups: addresses in a hash map, CIDR ranges in a short list,
/// members, revoked ticket ids, per-event ticket cut-offs and early ends.
#[derive(Debug, Default)]
pub struct SanctionSet {
    /// The store version this was built from.
    pub version: i64,
    ips: FastMap<IpAddr, Vec<Scope>>,
    nets: Vec<(IpNet, Scope)>,
    members: FastMap<i64, Vec<Scope>>,
    /// Revoked ticket ids, and the event each was revoked on (nil: whichever).
    tickets: FastMap<String, Uuid>,
    /// Unix second: tickets of the event issued at or before it are revoked.
    cutoffs: FastMap<Uuid, i64>,
    ends: FastMap<Uuid, DateTime<Utc>>,
}

/// An address as Icecast or a client gave it, IPv4-mapped IPv6 as IPv4.
pub fn canonical_ip(text: &str) -> Option<IpAddr> {
    text.trim()
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

impl SanctionSet {
    /// No sanctions, at a version below any stored one, so the first load always replaces it.
    pub fn unloaded() -> SanctionSet {
        SanctionSet {
            version: i64::MIN,
            ..SanctionSet::default()
        }
    }

    /// The set of `rows`. A ban whose address does not parse (never written by jars) is
    /// skipped.
    pub fn from_rows(rows: &SanctionRows) -> SanctionSet {
        let mut set = SanctionSet {
            version: rows.version,
            ..SanctionSet::default()
        };
        for ban in &rows.bans {
            let scope = Scope {
                event: ban.event,
                expires: ban.expires,
            };
            if let Some(ip) = &ban.ip {
                if let Some(addr) = canonical_ip(ip) {
                    set.ips.entry(addr).or_default().push(scope);
                } else if let Ok(net) = ip.parse::<IpNet>() {
                    set.nets.push((net, scope));
                }
            }
            if let Some(member) = ban.member {
                set.members.entry(member).or_default().push(scope);
            }
        }
        set.tickets = rows
            .tickets
            .iter()
            .map(|t| (t.jti.clone(), t.event))
            .collect();
        set.cutoffs = rows
            .cutoffs
            .iter()
            .map(|c| (c.event, c.before.timestamp()))
            .collect();
        set.ends = rows.ends.iter().map(|e| (e.event, e.at)).collect();
        set
    }

    /// Nothing is banned, revoked or ended: callbacks need not look further.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.nets.is_empty()
            && self.members.is_empty()
            && self.tickets.is_empty()
            && self.cutoffs.is_empty()
            && self.ends.is_empty()
    }

    /// Whether `ip` is banned from `event` (`None`: a static mount) at `now`.
    pub fn ip_banned(&self, ip: IpAddr, event: Option<Uuid>, now: DateTime<Utc>) -> bool {
        let ip = ip.to_canonical();
        self.ips
            .get(&ip)
            .is_some_and(|s| s.iter().any(|s| s.covers(event, now)))
            || self
                .nets
                .iter()
                .any(|(net, s)| net.contains(ip) && s.covers(event, now))
    }

    /// Whether `member` is banned from `event` at `now`.
    pub fn member_banned(&self, member: i64, event: Option<Uuid>, now: DateTime<Utc>) -> bool {
        self.members
            .get(&member)
            .is_some_and(|s| s.iter().any(|s| s.covers(event, now)))
    }

    /// Whether the ticket `jti` of `event`, issued at Unix second `issued`, is revoked.
    pub fn ticket_revoked(&self, jti: &str, event: Uuid, issued: i64) -> bool {
        self.jti_revoked(jti, Some(event)) || self.cutoffs.get(&event).is_some_and(|c| issued <= *c)
    }

    /// Whether ticket `jti` is revoked on `event` (`None`: not known, whichever). A revocation
    /// names its ticket's event when it can, so an owner revoking by id reaches only tickets of
    /// events they manage.
    fn jti_revoked(&self, jti: &str, event: Option<Uuid>) -> bool {
        self.tickets
            .get(jti)
            .is_some_and(|on| on.is_nil() || event.is_none_or(|e| e == *on))
    }

    /// When `event` was ended early, if it was.
    pub fn ended(&self, event: Uuid) -> Option<DateTime<Utc>> {
        self.ends.get(&event).copied()
    }

    /// When `event` ends: its row's expiry, or its early end if sooner (a row cached before
    /// the end still says the old expiry).
    pub fn expiry(&self, event: &Event) -> DateTime<Utc> {
        self.ended(event.id)
            .map_or(event.expires_time, |e| e.min(event.expires_time))
    }
}

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
        let cut = event.is_some_and(|e| {
            set.cutoffs
                .get(&e)
                .is_some_and(|c| l.started.timestamp() <= *c)
        });
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
    /// The member whose token or source ticket let it in (for a trusted relay: the member
    /// `/jars/connect` approved, the event's `connected_by`), and where their backend stands.
    pub member: Option<(i64, Standing)>,
    /// The source ticket (`jti`) that let it in.
    pub ticket: Option<&'a str>,
    pub since: DateTime<Utc>,
}

/// Whether a live source must be dropped at `now`, and why: its event gone, expired or ended;
/// its member banned; its source ticket revoked; or its member's rights lost (removed, or no
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
    if s.member
        .is_some_and(|(m, _)| set.member_banned(m, event, now))
    {
        return Some(DenyReason::Banned);
    }
    if let Some(jti) = s.ticket {
        let cut = event.is_some_and(|e| {
            set.cutoffs
                .get(&e)
                .is_some_and(|c| s.since.timestamp() <= *c)
        });
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
    let event = event
        .filter(|e| !e.is_expired(now))
        .ok_or(DenyReason::NoSuchEvent)?;
    if let Standing::Present { created, .. } = minter {
        if ticket.iat < created {
            return Err(DenyReason::UserRemoved);
        }
    }
    rights_lost(ticket.by, minter, event).map_or(Ok(()), Err)
}

mod powers;
pub use powers::{ban_takes, Power};

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;
