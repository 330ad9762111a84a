//! Live connection state of this node, in memory: which mounts have a source, who was allowed
//! to be that source, listener sessions (by Icecast server and client id), current and peak
//! listener counts, and how many listeners each ticket holds.
//!
//! What each Icecast's admin API reports can replace what this node knows of that server
//! (after a restart, or to heal drift): see [`snapshot`].
//!
//! One mutex guards it all: every operation is a few hash-map steps, and keeping the ticket
//! cap check and the session insert in one critical section is what makes the cap exact.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::icecast::decode::Origin;
pub use crate::icecast::Target;

mod snapshot;
pub use snapshot::{ResyncChange, ServerSnapshot};

/// Who `stream_auth` allowed to source a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A member, by id (their token).
    Member(i64),
    /// A guest's source ticket (`jti`), minted by member `by`.
    Ticket { by: i64, jti: &'a str },
    /// A trusted relay (`[[icecast.trusted_sources]]`), by user name.
    Relay(&'a str),
}

/// The state of one mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountState {
    /// A source is streaming.
    pub live: bool,
    /// The member the last successful `stream_auth` allowed (`None`: a trusted relay).
    pub allowed_source: Option<i64>,
    /// The trusted relay the last successful `stream_auth` allowed, if it was one.
    pub relay: Option<String>,
    /// The source ticket (`jti`) the last successful `stream_auth` accepted, if it was one.
    pub allowed_ticket: Option<String>,
    /// The relay whose source Icecast last removed from this mount, and when.
    pub relay_dropped: Option<(String, DateTime<Utc>)>,
    /// Where the live source streams (`None` while not live, or live since before a restart).
    pub source: Option<SourceSession>,
    pub listeners: u32,
    pub peak_listeners: u32,
}

impl MountState {
    /// The source has gone, at `now`; a relay's source is remembered as dropped.
    fn source_gone(&mut self, now: DateTime<Utc>) {
        self.live = false;
        self.source = None;
        if let Some(relay) = self.relay.take() {
            self.relay_dropped = Some((relay, now));
        }
    }
}

/// A listener session is identified by the Icecast server that reported it (`server`,
/// `port`) and its client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    server: String,
    port: String,
    client: String,
}

impl SessionKey {
    fn new(origin: &Origin<'_>, client: &str) -> SessionKey {
        SessionKey {
            server: origin.server.to_string(),
            port: origin.port.to_string(),
            client: client.to_string(),
        }
    }
}

/// A listener session as this node knows it: where Icecast reported it and what admitted it.
/// What revocations and bans are checked against, and what Icecast's admin API is asked to
/// drop (`killclient?mount=…&id=…` on that server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSession {
    pub target: Target,
    /// The mount as Icecast named it (`/<id>.mp3`, no query string).
    pub mount: String,
    /// The Icecast that reported it: its `server` and `port` callback fields.
    pub server: String,
    pub port: String,
    /// Icecast's client id on that server.
    pub client: String,
    /// The listener's address as Icecast reported it.
    pub ip: String,
    /// The ticket (`jti`) that admitted the listener.
    pub ticket: Option<String>,
    /// The member whose token admitted the listener.
    pub member: Option<i64>,
    pub started: DateTime<Utc>,
}

impl ListenerSession {
    fn key(&self) -> SessionKey {
        SessionKey {
            server: self.server.clone(),
            port: self.port.clone(),
            client: self.client.clone(),
        }
    }
}

/// A source Icecast reported streaming through this node (`mount_add`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSession {
    /// The mount as Icecast named it: what `killsource?mount=…` expects.
    pub mount: String,
    pub server: String,
    pub port: String,
    pub since: DateTime<Utc>,
}

/// The maps are keyed by what Icecast reports (server, client id) and by ticket ids that
/// verified, never by a listener's own input, so a fast hasher is safe; a `listener_add`
/// hashes a session key twice (a reused client id ends the old session first).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Inner {
    mounts: FastMap<Target, MountState>,
    sessions: FastMap<SessionKey, ListenerSession>,
    /// Listeners currently holding each ticket (by `jti`).
    per_ticket: FastMap<String, u32>,
    /// While a server's admin API is being read: what callbacks changed meanwhile.
    resync: Option<snapshot::Touched>,
}

impl Inner {
    fn end_session(&mut self, key: &SessionKey) -> Option<ListenerSession> {
        if let Some(t) = &mut self.resync {
            t.sessions.insert(key.clone());
        }
        let session = self.sessions.remove(key)?;
        if let Some(m) = self.mounts.get_mut(&session.target) {
            m.listeners = m.listeners.saturating_sub(1);
        }
        if let Some(jti) = &session.ticket {
            if let Some(n) = self.per_ticket.get_mut(jti) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_ticket.remove(jti);
                }
            }
        }
        Some(session)
    }
}

/// The ticket already holds its maximum number of listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketFull;

/// This node's live state.
#[derive(Debug, Default)]
pub struct LiveState {
    inner: Mutex<Inner>,
}

/// Totals over every mount, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub live_mounts: usize,
    pub listeners: usize,
}

impl LiveState {
    pub fn new() -> LiveState {
        LiveState::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind: keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers that `stream_auth` allowed `source` to source `target`.
    pub fn source_allowed(&self, target: &Target, source: Source<'_>) {
        let mut inner = self.lock();
        let m = inner.mounts.entry(target.clone()).or_default();
        (m.allowed_source, m.relay, m.allowed_ticket) = match source {
            Source::Member(id) => (Some(id), None, None),
            Source::Ticket { by, jti } => (Some(by), None, Some(jti.to_string())),
            Source::Relay(user) => (None, Some(user.to_string()), None),
        };
    }

    /// The source of `target` is streaming, as `source` describes; returns the member
    /// `stream_auth` allowed.
    pub fn mount_added(&self, target: &Target, source: SourceSession) -> Option<i64> {
        let mut inner = self.lock();
        if let Some(t) = &mut inner.resync {
            t.mounts.insert(target.clone());
        }
        let m = inner.mounts.entry(target.clone()).or_default();
        m.live = true;
        m.source = Some(source);
        m.allowed_source
    }

    /// The source of `target` has gone, at `now`; a relay's source is remembered as dropped
    /// (see `rules::relay_may_source`).
    pub fn mount_removed(&self, target: &Target, now: DateTime<Utc>) {
        let mut inner = self.lock();
        if let Some(t) = &mut inner.resync {
            t.mounts.insert(target.clone());
        }
        if let Some(m) = inner.mounts.get_mut(target) {
            m.source_gone(now);
        }
    }

    pub fn is_live(&self, target: &Target) -> bool {
        self.lock().mounts.get(target).is_some_and(|m| m.live)
    }

    /// Opens `session`, unless its ticket already holds `cap` listeners. A session id Icecast
    /// reuses (after its restart) replaces the old session, which is returned.
    pub fn add_listener(
        &self,
        session: ListenerSession,
        cap: Option<u32>,
    ) -> Result<Option<ListenerSession>, TicketFull> {
        let mut inner = self.lock();
        let key = session.key();
        let replaced = inner.end_session(&key);
        if let (Some(jti), Some(cap)) = (&session.ticket, cap) {
            if inner.per_ticket.get(jti).copied().unwrap_or(0) >= cap {
                return Err(TicketFull);
            }
        }
        if let Some(jti) = &session.ticket {
            *inner.per_ticket.entry(jti.clone()).or_default() += 1;
        }
        let m = inner.mounts.entry(session.target.clone()).or_default();
        m.listeners += 1;
        m.peak_listeners = m.peak_listeners.max(m.listeners);
        inner.sessions.insert(key, session);
        Ok(replaced)
    }

    /// Closes a listener session and returns it; unknown sessions (e.g. opened before a
    /// restart) are ignored.
    pub fn remove_listener(&self, origin: &Origin<'_>, client: &str) -> Option<ListenerSession> {
        self.lock().end_session(&SessionKey::new(origin, client))
    }

    /// The listener sessions `keep` selects, copied out of the lock.
    pub fn listeners_where(&self, keep: impl Fn(&ListenerSession) -> bool) -> Vec<ListenerSession> {
        self.lock()
            .sessions
            .values()
            .filter(|s| keep(s))
            .cloned()
            .collect()
    }

    /// Every mount with a live source, and its state.
    pub fn live_mounts(&self) -> Vec<(Target, MountState)> {
        self.lock()
            .mounts
            .iter()
            .filter(|(_, m)| m.live)
            .map(|(t, m)| (t.clone(), m.clone()))
            .collect()
    }

    /// The state of `target` (all zero if never seen).
    pub fn mount(&self, target: &Target) -> MountState {
        self.lock().mounts.get(target).cloned().unwrap_or_default()
    }

    pub fn totals(&self) -> Totals {
        let inner = self.lock();
        Totals {
            live_mounts: inner.mounts.values().filter(|m| m.live).count(),
            listeners: inner.sessions.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn origin(server: &str) -> Origin<'_> {
        Origin {
            server: server.into(),
            port: "8000".into(),
        }
    }

    pub(super) fn session(
        t: &Target,
        server: &str,
        client: &str,
        ticket: Option<&str>,
    ) -> ListenerSession {
        ListenerSession {
            target: t.clone(),
            mount: "/m".into(),
            server: server.into(),
            port: "8000".into(),
            client: client.into(),
            ip: "192.0.2.1".into(),
            ticket: ticket.map(str::to_string),
            member: None,
            started: Utc::now(),
        }
    }

    fn source(mount: &str) -> SourceSession {
        SourceSession {
            mount: mount.into(),
            server: "a".into(),
            port: "8000".into(),
            since: Utc::now(),
        }
    }

    #[test]
    fn counts_sessions_across_servers_and_never_goes_negative() {
        let live = LiveState::new();
        let t = Target::Event(Uuid::new_v4());
        live.add_listener(session(&t, "a", "1", None), None)
            .unwrap();
        // The same client id on another Icecast is another listener.
        live.add_listener(session(&t, "b", "1", None), None)
            .unwrap();
        assert_eq!(live.mount(&t).listeners, 2);
        assert_eq!(
            live.remove_listener(&origin("a"), "1").map(|s| s.target),
            Some(t.clone())
        );
        assert_eq!(live.remove_listener(&origin("a"), "1"), None);
        assert_eq!(live.remove_listener(&origin("z"), "9"), None);
        live.remove_listener(&origin("b"), "1");
        let m = live.mount(&t);
        assert_eq!((m.listeners, m.peak_listeners), (0, 2));
        assert_eq!(live.totals().listeners, 0);
    }

    #[test]
    fn ticket_cap_is_exact_and_freed_on_leave() {
        let live = LiveState::new();
        let t = Target::Event(Uuid::new_v4());
        live.add_listener(session(&t, "a", "1", Some("jti")), Some(2))
            .unwrap();
        live.add_listener(session(&t, "a", "2", Some("jti")), Some(2))
            .unwrap();
        assert_eq!(
            live.add_listener(session(&t, "a", "3", Some("jti")), Some(2)),
            Err(TicketFull)
        );
        // A reused session id replaces, it does not count twice.
        live.add_listener(session(&t, "a", "2", Some("jti")), Some(2))
            .unwrap();
        live.remove_listener(&origin("a"), "1");
        live.add_listener(session(&t, "a", "3", Some("jti")), Some(2))
            .unwrap();
        assert_eq!(live.mount(&t).listeners, 2);
    }

    #[test]
    fn source_bookkeeping() {
        let live = LiveState::new();
        let t = Target::Event(Uuid::new_v4());
        let now = Utc::now();
        live.source_allowed(&t, Source::Member(7));
        assert!(!live.is_live(&t));
        assert_eq!(live.mount_added(&t, source("/m.mp3")), Some(7));
        let live_now = live.live_mounts();
        assert_eq!(
            live_now[0].1.source.as_ref().map(|s| s.mount.as_str()),
            Some("/m.mp3")
        );
        assert!(live.is_live(&t));
        assert_eq!(live.totals().live_mounts, 1);
        live.mount_removed(&t, now);
        assert!(!live.is_live(&t));
        assert_eq!(live.mount(&t).source, None, "a gone source is forgotten");
        assert_eq!(
            live.mount(&t).relay_dropped,
            None,
            "a member's source is no relay"
        );

        live.source_allowed(&t, Source::Relay("relay"));
        assert_eq!(live.mount_added(&t, source("/m")), None);
        live.mount_removed(&t, now);
        assert_eq!(live.mount(&t).relay_dropped, Some(("relay".into(), now)));
        live.source_allowed(&t, Source::Member(7));
        live.mount_added(&t, source("/m"));
        live.mount_removed(&t, now + chrono::Duration::seconds(5));
        assert_eq!(
            live.mount(&t).relay_dropped,
            Some(("relay".into(), now)),
            "a member's later source does not move the relay's drop"
        );
    }
}
