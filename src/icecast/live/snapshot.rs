//! Replacing what one Icecast (`server`, `port`) reported with what its admin API lists now:
//! how live state is rebuilt after a restart and healed when a callback was lost.
//!
//! Reading an admin API takes a while, and callbacks keep arriving meanwhile. Between
//! [`LiveState::begin_resync`] and [`LiveState::replace_server`], every session and mount a
//! callback touches is remembered, and the snapshot does not override them: a callback is
//! newer than the listing. Resyncs run one server at a time.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{Inner, ListenerSession, LiveState, SessionKey, SourceSession, Target};

/// What callbacks changed while a server's admin API was being read.
#[derive(Debug, Default)]
pub(super) struct Touched {
    pub(super) sessions: HashSet<SessionKey>,
    pub(super) mounts: HashSet<Target>,
}

/// What one Icecast's admin API lists: the mounts with a source and their listeners, each
/// already classified (mounts jars does not decide are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSnapshot {
    pub sources: Vec<(Target, SourceSession)>,
    /// Sessions as listed: no ticket or member (the admin API does not know them).
    pub listeners: Vec<ListenerSession>,
}

/// What a [`LiveState::replace_server`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResyncChange {
    pub listeners_added: usize,
    pub listeners_removed: usize,
    pub sources_added: usize,
    pub sources_removed: usize,
}

impl LiveState {
    /// Starts remembering what callbacks change, before a server's admin API is read.
    pub fn begin_resync(&self) {
        self.lock().resync = Some(Touched::default());
    }

    /// Stops remembering (the admin API could not be read).
    pub fn abandon_resync(&self) {
        self.lock().resync = None;
    }

    /// Makes what this node knows of the Icecast at `server`:`port` what `snapshot` says, at
    /// once: its sessions and sources missing from the snapshot are gone, new ones are added,
    /// sessions already known keep their ticket and member. Sessions and mounts a callback
    /// changed since [`LiveState::begin_resync`] are left as the callback said.
    pub fn replace_server(
        &self,
        server: &str,
        port: &str,
        snapshot: ServerSnapshot,
        now: DateTime<Utc>,
    ) -> ResyncChange {
        let mut inner = self.lock();
        let touched = inner.resync.take().unwrap_or_default();
        let mut change = ResyncChange::default();
        let here = |s: &str, p: &str| s == server && p == port;

        let stale: Vec<SessionKey> = inner
            .sessions
            .iter()
            .filter(|(k, s)| {
                here(&k.server, &k.port)
                    && !touched.sessions.contains(k)
                    && !snapshot_has(&snapshot, s)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            inner.end_session(&key);
            change.listeners_removed += 1;
        }
        for session in snapshot.listeners {
            let key = session.key();
            if touched.sessions.contains(&key) || inner.sessions.contains_key(&key) {
                continue;
            }
            add_session(&mut inner, key, session);
            change.listeners_added += 1;
        }

        let listed: HashSet<&Target> = snapshot.sources.iter().map(|(t, _)| t).collect();
        for (target, m) in inner.mounts.iter_mut() {
            let on_here = m.source.as_ref().is_some_and(|s| here(&s.server, &s.port));
            if m.live && on_here && !listed.contains(target) && !touched.mounts.contains(target) {
                m.source_gone(now);
                change.sources_removed += 1;
            }
        }
        for (target, source) in snapshot.sources {
            if touched.mounts.contains(&target) {
                continue;
            }
            let m = inner.mounts.entry(target).or_default();
            if !m.live || m.source.is_none() {
                m.live = true;
                m.source = Some(source);
                change.sources_added += 1;
            }
        }
        change
    }
}

/// Whether the snapshot lists `session` on the same mount (a client id Icecast reused after
/// its own restart may be another listener).
fn snapshot_has(snapshot: &ServerSnapshot, session: &ListenerSession) -> bool {
    snapshot
        .listeners
        .iter()
        .any(|s| s.client == session.client && s.target == session.target)
}

fn add_session(inner: &mut Inner, key: SessionKey, session: ListenerSession) {
    if let Some(jti) = &session.ticket {
        *inner.per_ticket.entry(jti.clone()).or_default() += 1;
    }
    let m = inner.mounts.entry(session.target.clone()).or_default();
    m.listeners += 1;
    m.peak_listeners = m.peak_listeners.max(m.listeners);
    inner.sessions.insert(key, session);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icecast::decode::Origin;
    use crate::icecast::live::tests::session as listener;
    use uuid::Uuid;

    fn source(server: &str) -> SourceSession {
        SourceSession {
            mount: "/m".into(),
            server: server.into(),
            port: "8000".into(),
            since: Utc::now(),
        }
    }

    #[test]
    fn a_snapshot_replaces_one_server_and_keeps_what_jars_knew() {
        let live = LiveState::new();
        let t = Target::Event(Uuid::new_v4());
        let gone = Target::Event(Uuid::new_v4());
        let now = Utc::now();
        live.add_listener(listener(&t, "a", "1", Some("jti")), None)
            .unwrap();
        live.add_listener(listener(&t, "a", "2", None), None)
            .unwrap();
        live.add_listener(listener(&t, "b", "2", None), None)
            .unwrap();
        live.mount_added(&gone, source("a"));
        live.mount_added(&Target::Static("/b".into()), source("b"));

        let snapshot = ServerSnapshot {
            sources: vec![(t.clone(), source("a"))],
            listeners: vec![listener(&t, "a", "1", None), listener(&t, "a", "3", None)],
        };
        live.begin_resync();
        let change = live.replace_server("a", "8000", snapshot.clone(), now);
        assert_eq!(
            change,
            ResyncChange {
                listeners_added: 1,
                listeners_removed: 1,
                sources_added: 1,
                sources_removed: 1
            }
        );
        let kept = live.listeners_where(|s| s.server == "a" && s.client == "1");
        assert_eq!(
            kept[0].ticket.as_deref(),
            Some("jti"),
            "a known session keeps its ticket"
        );
        assert_eq!(live.mount(&t).listeners, 3, "a:1, a:3 and b:2");
        assert!(live.is_live(&t));
        assert!(!live.is_live(&gone));
        assert!(
            live.is_live(&Target::Static("/b".into())),
            "another server is untouched"
        );
        assert_eq!(live.totals().live_mounts, 2);
        // The same snapshot again changes nothing.
        live.begin_resync();
        assert_eq!(
            live.replace_server("a", "8000", snapshot, now),
            ResyncChange::default()
        );
        // A reused client id on another mount is another listener.
        let other = Target::Event(Uuid::new_v4());
        let snapshot = ServerSnapshot {
            sources: vec![(t.clone(), source("a"))],
            listeners: vec![
                listener(&t, "a", "1", None),
                listener(&other, "a", "3", None),
            ],
        };
        live.begin_resync();
        let change = live.replace_server("a", "8000", snapshot, now);
        assert_eq!((change.listeners_removed, change.listeners_added), (1, 1));
        assert_eq!(live.mount(&other).listeners, 1);
        assert_eq!(live.mount(&t).listeners, 2);
    }

    #[test]
    fn callbacks_during_a_resync_win_over_the_listing() {
        let live = LiveState::new();
        let t = Target::Event(Uuid::new_v4());
        let origin = Origin {
            server: "a".into(),
            port: "8000".into(),
        };
        live.add_listener(listener(&t, "a", "1", None), None)
            .unwrap();
        live.begin_resync();
        // Listed while still there, then gone by callback; and one that joined after listing.
        live.remove_listener(&origin, "1");
        live.add_listener(listener(&t, "a", "2", None), None)
            .unwrap();
        live.mount_removed(&t, Utc::now());
        let snapshot = ServerSnapshot {
            sources: vec![(t.clone(), source("a"))],
            listeners: vec![listener(&t, "a", "1", None)],
        };
        live.replace_server("a", "8000", snapshot, Utc::now());
        let left: Vec<String> = live
            .listeners_where(|_| true)
            .into_iter()
            .map(|s| s.client)
            .collect();
        assert_eq!(left, ["2"]);
        assert!(!live.is_live(&t), "mount_remove came after the listing");
        assert_eq!(live.mount(&t).listeners, 1);
    }
}
