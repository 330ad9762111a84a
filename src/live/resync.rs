//! Replacing what one Icecast reported with what its admin API lists now: how live state is
//! rebuilt after a restart and healed when a callback was lost.
//!
//! Reading an admin API takes a while, and callbacks keep arriving meanwhile. Between
//! [`LiveState::begin_resync`] and the end of [`LiveState::replace_server`], every session a
//! callback touches is remembered, and the listing does not override it: a callback is newer
//! than the listing. Resyncs run one server at a time.
//!
//! The listing is applied in linear time and in chunks of [`CHUNK`] sessions, the lock taken
//! once per chunk, so that callbacks never wait long behind a resync of a large audience:
//! listed sessions jars knows are marked with the resync's epoch, unknown ones added; then
//! one pass drops this server's sessions the epoch did not reach.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Ended, LiveState};
use crate::domain::{FastSet, Role, ServerId, Session, SessionKey};

/// Listed sessions applied per taking of the lock.
pub const CHUNK: usize = 2_048;

/// What a [`LiveState::replace_server`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resynced {
    pub listeners_added: usize,
    pub listeners_removed: usize,
    pub sources_added: usize,
    pub sources_removed: usize,
    /// The sessions jars knew that Icecast no longer lists: their ends were never reported.
    pub vanished: Vec<Ended>,
}

impl Resynced {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.listeners_added + self.listeners_removed + self.sources_added + self.sources_removed
            > 0
    }
}

impl Resynced {
    fn count_removed(&mut self, role: Role) {
        match role {
            Role::Listener => self.listeners_removed += 1,
            Role::Source => self.sources_removed += 1,
        }
    }
}

impl LiveState {
    /// Starts remembering what callbacks change, before a server's admin API is read.
    pub fn begin_resync(&self) {
        self.lock().resync = Some(FastSet::default());
    }

    /// Stops remembering (the admin API could not be read).
    pub fn abandon_resync(&self) {
        self.lock().resync = None;
    }

    /// Whether a resync of `server` has succeeded since this node started: until then, live
    /// state may lack sessions that began before a restart.
    pub fn was_listed(&self, server: &ServerId) -> bool {
        self.lock().listed.contains(server)
    }

    /// Makes what this node knows of `server` what its admin API lists (`listed`: sessions of
    /// that server, sources and listeners): sessions missing from it are gone, new ones are
    /// added, sessions already known keep what let them in. A client id listed on another
    /// mount than jars knew it on is another listener (Icecast reused it). Sessions a callback
    /// changed since [`LiveState::begin_resync`] are left as the callback said.
    pub fn replace_server(
        &self,
        server: &ServerId,
        listed: Vec<Session>,
        now: DateTime<Utc>,
    ) -> Resynced {
        let mut out = Resynced::default();
        let epoch = {
            let mut inner = self.lock();
            inner.epoch = inner.epoch.wrapping_add(1);
            inner.epoch
        };
        let mut listed = listed.into_iter().peekable();
        while listed.peek().is_some() {
            let mut inner = self.lock();
            for session in listed.by_ref().take(CHUNK) {
                let touched = inner
                    .resync
                    .as_ref()
                    .is_some_and(|t| t.contains(&session.key));
                let known = inner.sessions.get_mut(&session.key);
                match known {
                    Some(e) if e.session.target == session.target => {
                        e.seen = epoch;
                        continue;
                    }
                    _ if touched => continue,
                    // An id Icecast reused on another mount: the old session is over.
                    Some(_) => {
                        if let Some(ended) = inner.remove(&session.key, now) {
                            out.count_removed(ended.session.role());
                            out.vanished.push(ended);
                        }
                    }
                    None => {}
                }
                match session.role() {
                    Role::Listener => out.listeners_added += 1,
                    Role::Source => out.sources_added += 1,
                }
                inner.insert(Arc::new(session));
            }
        }
        let mut inner = self.lock();
        let touched = inner.resync.take().unwrap_or_default();
        let gone: Vec<SessionKey> = inner
            .sessions
            .iter()
            .filter(|(k, e)| k.server == *server && e.seen != epoch && !touched.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(ended) = inner.remove(&key, now) {
                out.count_removed(key.role);
                out.vanished.push(ended);
            }
        }
        inner.listed.insert(server.clone());
        out
    }
}
