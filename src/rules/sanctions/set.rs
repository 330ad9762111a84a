//! [`SanctionSet`]: every sanction in force on this node, as lookups, so that a callback pays
//! hash lookups only. Built whole from a complete load ([`SanctionSet::from_rows`]) or grown
//! from the previous set by the rows written since ([`SanctionSet::updated`]): a revocation
//! costs a node one small read and a copy of the lookups (ticket ids are shared, not copied),
//! not a reload of everything.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::sanction::{Ban, RevokedTicket, SanctionRows};
use crate::domain::Event;
use crate::net::IpNet;

/// Keys are ids and addresses from the store: a fast hasher is safe. Ticket ids are callers'
/// text, but the hasher is seeded per process.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Where a ban applies, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Scope {
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

/// What one ban bans: an address, a range or a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Banned {
    Ip(IpAddr),
    Net(IpNet),
    Member(i64),
}

/// The events one ticket id is revoked on (nil: whichever), each with the ticket's expiry
/// (Unix seconds).
type Revocations = Arc<[(Uuid, i64)]>;

/// Every sanction in force, as lookups: addresses in a hash map, CIDR ranges in a short list,
/// members, revoked ticket ids with their events, per-event ticket cut-offs and early ends.
#[derive(Debug, Default, Clone)]
pub struct SanctionSet {
    /// The store version this is as of.
    pub version: i64,
    /// Every ban in force by id, what it bans and where: the three lookups below are built
    /// from these.
    bans: FastMap<i64, (Banned, Scope)>,
    ips: FastMap<IpAddr, Vec<Scope>>,
    nets: Vec<(IpNet, Scope)>,
    members: FastMap<i64, Vec<Scope>>,
    tickets: FastMap<Arc<str>, Revocations>,
    /// Individual revocations made by each member, counted as loaded (for
    /// [`super::may_revoke_more`]).
    revoked_by: FastMap<i64, u32>,
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

/// What `ban` bans, where; `None` for an address that does not parse (never written by jars).
fn banned(ban: &Ban) -> Option<(Banned, Scope)> {
    let scope = Scope {
        event: ban.event,
        expires: ban.expires,
    };
    let what = match (&ban.ip, ban.member) {
        (Some(ip), _) => match canonical_ip(ip) {
            Some(addr) => Banned::Ip(addr),
            None => Banned::Net(ip.parse().ok()?),
        },
        (None, Some(member)) => Banned::Member(member),
        (None, None) => return None,
    };
    Some((what, scope))
}

impl SanctionSet {
    /// No sanctions, at a version below any stored one, so the first load always replaces it.
    pub fn unloaded() -> SanctionSet {
        SanctionSet {
            version: i64::MIN,
            ..SanctionSet::default()
        }
    }

    /// Whether this set was ever loaded (else the next load must be whole).
    pub fn is_loaded(&self) -> bool {
        self.version != i64::MIN
    }

    /// The set of `rows`, taken as every sanction in force.
    pub fn from_rows(rows: &SanctionRows) -> SanctionSet {
        let mut set = SanctionSet {
            version: rows.version,
            ..SanctionSet::default()
        };
        set.apply(rows, None);
        set
    }

    /// This set with `rows` applied: the set of `rows` when they are complete, else this one
    /// with the changes they hold (bans added or lifted, tickets revoked, cut-offs and ends
    /// set). Revocations already expired at `now` are left out.
    pub fn updated(&self, rows: &SanctionRows, now: DateTime<Utc>) -> SanctionSet {
        if rows.complete {
            return SanctionSet::from_rows(rows);
        }
        let mut set = self.clone();
        set.version = rows.version;
        set.apply(rows, Some(now));
        set
    }

    fn apply(&mut self, rows: &SanctionRows, now: Option<DateTime<Utc>>) {
        let bans_changed = !rows.bans.is_empty() || !rows.lifted.is_empty();
        for id in &rows.lifted {
            self.bans.remove(id);
        }
        for ban in &rows.bans {
            match banned(ban) {
                Some(entry) => self.bans.insert(ban.id, entry),
                None => self.bans.remove(&ban.id),
            };
        }
        if bans_changed {
            self.index_bans();
        }
        for t in &rows.tickets {
            if now.is_none_or(|now| t.expires > now) {
                self.revoke(t);
            }
        }
        for c in &rows.cutoffs {
            let before = c.before.timestamp();
            let at = self.cutoffs.entry(c.event).or_insert(before);
            *at = (*at).max(before);
        }
        for e in &rows.ends {
            let at = self.ends.entry(e.event).or_insert(e.at);
            *at = (*at).min(e.at);
        }
    }

    /// Rebuilds the address, range and member lookups from the bans.
    fn index_bans(&mut self) {
        self.ips.clear();
        self.nets.clear();
        self.members.clear();
        let mut bans: Vec<_> = self.bans.iter().collect();
        // In id order, so a set built whole and one built by changes look alike.
        bans.sort_unstable_by_key(|(id, _)| **id);
        for (_, (what, scope)) in bans {
            match what {
                Banned::Ip(ip) => self.ips.entry(*ip).or_default().push(*scope),
                Banned::Net(net) => self.nets.push((*net, *scope)),
                Banned::Member(m) => self.members.entry(*m).or_default().push(*scope),
            }
        }
    }

    fn revoke(&mut self, t: &RevokedTicket) {
        let entry = (t.event, t.expires.timestamp());
        let jti: &str = &t.jti;
        let events = match self.tickets.get(jti) {
            Some(events) if events.iter().any(|(e, _)| *e == t.event) => return,
            Some(events) => events.iter().copied().chain([entry]).collect(),
            None => Arc::from([entry]),
        };
        self.tickets.insert(Arc::from(jti), events);
        *self.revoked_by.entry(t.created_by).or_insert(0) += 1;
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

    /// Whether `member` is banned from `event` (`None`: the station as a whole: only bans
    /// everywhere count) at `now`.
    pub fn member_banned(&self, member: i64, event: Option<Uuid>, now: DateTime<Utc>) -> bool {
        self.members
            .get(&member)
            .is_some_and(|s| s.iter().any(|s| s.covers(event, now)))
    }

    /// Whether the ticket `jti` of `event`, issued at Unix second `issued`, is revoked.
    pub fn ticket_revoked(&self, jti: &str, event: Uuid, issued: i64) -> bool {
        self.jti_revoked(jti, Some(event)) || self.cut_off(event, issued)
    }

    /// Whether ticket `jti` is revoked on `event`: by a revocation recorded against that event,
    /// or against whichever event (nil: an admin's or the operator's by id alone). With
    /// `event` unknown (`None`), only the latter count: a revocation recorded against an event
    /// never reaches a ticket of another.
    pub(super) fn jti_revoked(&self, jti: &str, event: Option<Uuid>) -> bool {
        self.tickets.get(jti).is_some_and(|on| {
            on.iter()
                .any(|(e, _)| e.is_nil() || event.is_some_and(|event| event == *e))
        })
    }

    /// Whether every ticket of `event` issued (or session begun) at or before Unix second
    /// `at` is revoked.
    pub(super) fn cut_off(&self, event: Uuid, at: i64) -> bool {
        self.cutoffs.get(&event).is_some_and(|c| at <= *c)
    }

    /// How many tickets `member` revoked one by one, of those this set holds.
    pub fn revoked_by(&self, member: i64) -> u32 {
        self.revoked_by.get(&member).copied().unwrap_or(0)
    }

    /// Revoked ticket ids held.
    pub fn revoked_tickets(&self) -> usize {
        self.tickets.len()
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

    /// Whether this set holds the same sanctions as `other` (whatever its version).
    pub fn same_as(&self, other: &SanctionSet) -> bool {
        let tickets = |s: &SanctionSet| {
            let mut t: Vec<(String, Vec<(Uuid, i64)>)> = s
                .tickets
                .iter()
                .map(|(k, v)| {
                    let mut v = v.to_vec();
                    v.sort_unstable();
                    (k.to_string(), v)
                })
                .collect();
            t.sort_unstable();
            t
        };
        self.bans == other.bans
            && self.ips == other.ips
            && self.nets == other.nets
            && self.members == other.members
            && tickets(self) == tickets(other)
            && self.revoked_by == other.revoked_by
            && self.cutoffs == other.cutoffs
            && self.ends == other.ends
    }
}
