//! Live state of this node, in memory: every live [`Session`] Icecast reported (listeners and
//! sources, by [`SessionKey`]), each mount's counts and who `stream_auth` last allowed to
//! source it, how many listeners each ticket holds, each server's counts and when it last
//! called ([`ServerTally`]), and which sessions jars has asked Icecast to drop ([`Kick`]). The
//! one place a live session lives; what ends here is handed back ([`Ended`]) so its row can be
//! closed.
//!
//! [`resync`] replaces what one Icecast reported with what its admin API lists; [`kick`] is
//! the seam to whatever drops sessions on an Icecast.
//!
//! One mutex guards it all: every operation is a few hash-map steps, and keeping the ticket
//! cap check and the session insert in one critical section is what makes the cap exact.

pub mod kick;
pub mod resync;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::domain::{
    Airing, DenyReason, Ending, FastMap, FastSet, Role, ServerId, Session, SessionKey, Target,
};

pub use kick::{Kicker, NoKicker};
pub use resync::Resynced;

/// How long a kicked session is not kicked again: longer than a kick's retries; a session
/// Icecast still reports after it is asked again.
pub const KICK_MEMORY: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// Who the last `stream_auth` allowed to source a mount, and from where: what the source
/// session carries once `mount_add` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allowed {
    /// The member whose token let it in, or who minted its source ticket, or (a relay) whom
    /// `/jars/connect` approved.
    pub member: Option<i64>,
    /// A guest's source ticket (`jti`).
    pub ticket: Option<String>,
    /// A trusted relay, by user name.
    pub relay: Option<String>,
    /// The address `stream_auth` reported.
    pub ip: String,
}

/// A relay approval (`/jars/connect`, `/webcast`): whom it was for, and — what the event row
/// does not keep — the guest's source ticket and the DJ's own address, when known. A trusted
/// relay's source then carries them, so revoking the ticket or banning the address drops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The member approved (for a guest: the ticket's minter), the event's `connected_by`.
    pub member: i64,
    /// The guest's source ticket: its `jti` and issue time (Unix seconds).
    pub ticket: Option<(String, i64)>,
    /// The DJ's address, when jars sees it (its own `/webcast`); behind webcaster-relay it
    /// does not.
    pub ip: Option<String>,
}

/// The state of one mount, over every server that reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountState {
    /// Live source sessions (one per server that streams it).
    pub sources: u32,
    pub listeners: u32,
    /// The most listeners at once since this node started.
    pub peak_listeners: u32,
    /// Who the last successful `stream_auth` allowed.
    pub allowed: Option<Allowed>,
    /// The relay whose source Icecast last removed from this mount, and when.
    pub relay_dropped: Option<(String, DateTime<Utc>)>,
    /// The last relay approval for this mount's event.
    pub approved: Option<Approval>,
    /// Known to have no source: its source went away (`mount_remove`, a resync) and none has
    /// been allowed since.
    pub off_air: bool,
}

impl MountState {
    /// A source is streaming to it.
    pub fn live(&self) -> bool {
        self.sources > 0
    }
}

/// jars asked Icecast to drop a session, at `at`, because of `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kick {
    pub reason: DenyReason,
    pub at: DateTime<Utc>,
}

/// A session that ended, as live state last knew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub session: Arc<Session>,
    /// Set when jars had asked Icecast to drop it.
    pub kick: Option<Kick>,
}

impl Ended {
    /// How it ended, when Icecast reported the end itself.
    pub fn reported(&self) -> Ending {
        self.kick
            .map_or(Ending::Reported, |k| Ending::Kicked(k.reason))
    }
}

/// The ticket already holds its maximum number of listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketFull;

/// What one Icecast server reported to this node: its live sessions counted, and when it last
/// sent a callback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerTally {
    pub listeners: u32,
    /// Its listeners by what they listen to.
    pub by_target: FastMap<Target, u32>,
    /// Listeners a callback admitted there since this node started: only ever grows.
    pub joins: u64,
    /// Its mounts with a source, as it names them, and what each is to jars.
    pub sources: FastMap<String, Target>,
    /// When it last sent a callback (any action, allowed or not).
    pub heard: Option<DateTime<Utc>>,
}

/// Totals over every mount, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub live_mounts: usize,
    pub listeners: usize,
}

#[derive(Debug)]
struct Entry {
    session: Arc<Session>,
    kick: Option<Kick>,
    /// The resync epoch that last saw it (listed, or added meanwhile).
    seen: u64,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: FastMap<SessionKey, Entry>,
    mounts: FastMap<Target, MountState>,
    /// Listeners currently holding each ticket (by `jti`).
    per_ticket: FastMap<String, u32>,
    listeners: usize,
    /// Each server's counts.
    servers: FastMap<ServerId, ServerTally>,
    /// Servers a resync has listed: their mounts' absence is known.
    listed: FastSet<ServerId>,
    /// While a server's admin API is being read: the sessions callbacks changed meanwhile.
    resync: Option<FastSet<SessionKey>>,
    /// Counts resyncs: an entry's `seen` (see [`resync`]).
    epoch: u64,
}

impl Inner {
    fn touch(&mut self, key: &SessionKey) {
        if let Some(touched) = &mut self.resync {
            touched.insert(key.clone());
        }
    }

    /// Adds `session` (its key not present), counting it.
    fn insert(&mut self, session: Arc<Session>) {
        let m = self.mounts.entry(session.target.clone()).or_default();
        let server = self.servers.entry(session.key.server.clone()).or_default();
        match session.role() {
            Role::Listener => {
                m.listeners += 1;
                m.peak_listeners = m.peak_listeners.max(m.listeners);
                self.listeners += 1;
                server.listeners += 1;
                *server.by_target.entry(session.target.clone()).or_default() += 1;
                if let Some(jti) = &session.ticket {
                    *self.per_ticket.entry(jti.clone()).or_default() += 1;
                }
            }
            Role::Source => {
                m.sources += 1;
                m.off_air = false;
                server
                    .sources
                    .insert(session.mount.clone(), session.target.clone());
            }
        }
        let key = session.key.clone();
        self.sessions.insert(
            key,
            Entry {
                session,
                kick: None,
                seen: self.epoch,
            },
        );
    }

    /// Removes the session with `key`, uncounting it; a source's relay is remembered as
    /// dropped at `now`.
    fn remove(&mut self, key: &SessionKey, now: DateTime<Utc>) -> Option<Ended> {
        let Entry { session, kick, .. } = self.sessions.remove(key)?;
        if let Some(m) = self.mounts.get_mut(&session.target) {
            match session.role() {
                Role::Listener => m.listeners = m.listeners.saturating_sub(1),
                Role::Source => {
                    m.sources = m.sources.saturating_sub(1);
                    if m.sources == 0 {
                        m.off_air = true;
                    }
                    if let Some(relay) = &session.relay {
                        m.relay_dropped = Some((relay.clone(), now));
                    }
                }
            }
        }
        if let Some(server) = self.servers.get_mut(&session.key.server) {
            match session.role() {
                Role::Listener => {
                    server.listeners = server.listeners.saturating_sub(1);
                    if let Some(n) = server.by_target.get_mut(&session.target) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            server.by_target.remove(&session.target);
                        }
                    }
                }
                Role::Source => {
                    server.sources.remove(&session.mount);
                }
            }
        }
        if session.role() == Role::Listener {
            self.listeners = self.listeners.saturating_sub(1);
            if let Some(jti) = &session.ticket {
                if let Some(n) = self.per_ticket.get_mut(jti) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_ticket.remove(jti);
                    }
                }
            }
        }
        Some(Ended { session, kick })
    }
}

/// This node's live state.
#[derive(Debug, Default)]
pub struct LiveState {
    inner: Mutex<Inner>,
}

impl LiveState {
    pub fn new() -> LiveState {
        LiveState::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind: keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers that `stream_auth` allowed `allowed` to source `target`.
    pub fn source_allowed(&self, target: &Target, allowed: Allowed) {
        let mut inner = self.lock();
        let m = inner.mounts.entry(target.clone()).or_default();
        m.allowed = Some(allowed);
        m.off_air = false;
    }

    /// Remembers a relay approval for `target` (the last one wins, as `connected_by` does).
    pub fn relay_approved(&self, target: &Target, approval: Approval) {
        self.lock()
            .mounts
            .entry(target.clone())
            .or_default()
            .approved = Some(approval);
    }

    /// A source started (`mount_add`). A source Icecast still had under the same key (its
    /// `mount_remove` never came) is replaced and handed back.
    pub fn source_started(
        &self,
        session: Session,
        now: DateTime<Utc>,
    ) -> (Arc<Session>, Option<Ended>) {
        let mut inner = self.lock();
        inner.touch(&session.key);
        let replaced = inner.remove(&session.key, now);
        let session = Arc::new(session);
        inner.insert(session.clone());
        (session, replaced)
    }

    /// The source of `target` under `key` ended (`mount_remove`), at `now`. One this node
    /// never knew (it began before a restart) leaves the mount off the air all the same.
    pub fn source_ended(
        &self,
        target: &Target,
        key: &SessionKey,
        now: DateTime<Utc>,
    ) -> Option<Ended> {
        let mut inner = self.lock();
        inner.touch(key);
        let ended = inner.remove(key, now);
        let m = inner.mounts.entry(target.clone()).or_default();
        if m.sources == 0 {
            m.off_air = true;
        }
        ended
    }

    /// A listener joined, unless its ticket already holds `cap` listeners. A client id Icecast
    /// reuses (after its own restart) replaces the old session, which is handed back.
    pub fn listener_joined(
        &self,
        session: Session,
        cap: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<(Arc<Session>, Option<Ended>), TicketFull> {
        let mut inner = self.lock();
        inner.touch(&session.key);
        let replaced = inner.remove(&session.key, now);
        if let (Some(jti), Some(cap)) = (&session.ticket, cap) {
            if inner.per_ticket.get(jti).copied().unwrap_or(0) >= cap {
                return Err(TicketFull);
            }
        }
        let session = Arc::new(session);
        inner
            .servers
            .entry(session.key.server.clone())
            .or_default()
            .joins += 1;
        inner.insert(session.clone());
        Ok((session, replaced))
    }

    /// A listener left (`listener_remove`); `None` for one this node does not know (it began
    /// before a restart and no resync found it yet).
    pub fn listener_left(&self, key: &SessionKey, now: DateTime<Utc>) -> Option<Ended> {
        let mut inner = self.lock();
        inner.touch(key);
        inner.remove(key, now)
    }

    /// Whether `target` has a source, as seen from `server` (which reports a listener).
    pub fn airing(&self, target: &Target, server: &ServerId) -> Airing {
        let inner = self.lock();
        match inner.mounts.get(target) {
            Some(m) if m.live() => Airing::Live,
            Some(m) if m.off_air => Airing::Off,
            _ if inner.listed.contains(server) => Airing::Off,
            _ => Airing::Unknown,
        }
    }

    /// The state of `target` (all zero if never seen).
    pub fn mount(&self, target: &Target) -> MountState {
        self.lock().mounts.get(target).cloned().unwrap_or_default()
    }

    /// Every mount with a live source, and its state.
    pub fn live_mounts(&self) -> Vec<(Target, MountState)> {
        self.lock()
            .mounts
            .iter()
            .filter(|(_, m)| m.live())
            .map(|(t, m)| (t.clone(), m.clone()))
            .collect()
    }

    /// The live sessions `keep` selects.
    pub fn sessions_where(&self, keep: impl Fn(&Session) -> bool) -> Vec<Arc<Session>> {
        self.lock()
            .sessions
            .values()
            .filter(|e| keep(&e.session))
            .map(|e| e.session.clone())
            .collect()
    }

    /// The live session with `key`.
    pub fn session(&self, key: &SessionKey) -> Option<Arc<Session>> {
        self.lock().sessions.get(key).map(|e| e.session.clone())
    }

    /// Whether to ask Icecast to drop the session `key` for `reason` now: it is live and was
    /// not asked within [`KICK_MEMORY`]. Remembers the kick if so: the session's end is then
    /// stored as `kicked`, with this reason.
    pub fn kick_due(&self, key: &SessionKey, reason: DenyReason, now: DateTime<Utc>) -> bool {
        let mut inner = self.lock();
        let Some(entry) = inner.sessions.get_mut(key) else {
            return false;
        };
        match entry.kick {
            Some(k) if now - k.at < KICK_MEMORY => false,
            _ => {
                entry.kick = Some(Kick { reason, at: now });
                true
            }
        }
    }

    /// Remembers that the server a callback names (`server`, `port` fields) sent one at `now`.
    pub fn heard_from(&self, host: &str, port: &str, now: DateTime<Utc>) {
        let mut inner = self.lock();
        // A few servers: a scan, and no allocation for one already known.
        let known = inner
            .servers
            .iter_mut()
            .find(|(id, _)| id.host == host && id.port == port);
        match known {
            Some((_, t)) => t.heard = Some(now),
            None => {
                let tally = ServerTally {
                    heard: Some(now),
                    ..ServerTally::default()
                };
                inner.servers.insert(ServerId::new(host, port), tally);
            }
        }
    }

    /// Every server that reported to this node (by callbacks or a resync), with its counts.
    pub fn servers(&self) -> Vec<(ServerId, ServerTally)> {
        self.lock()
            .servers
            .iter()
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect()
    }

    pub fn totals(&self) -> Totals {
        let inner = self.lock();
        Totals {
            live_mounts: inner.mounts.values().filter(|m| m.live()).count(),
            listeners: inner.listeners,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
