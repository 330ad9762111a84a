//! Enforcing sanctions on sessions Icecast already admitted: every live listener and source
//! of this node is put to [`rules::sanctions::listener_must_go`] /
//! [`rules::sanctions::source_must_go`] with its event's row and its member's standing, and
//! those that must go are handed to the [`crate::icecast::kick::Kicker`] — once: a session
//! kicked is remembered for [`KICK_MEMORY`], so sweeps do not kick it again while Icecast drops
//! it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Sanctions;
use crate::icecast::live::{ListenerSession, MountState};
use crate::icecast::Target;
use crate::rules::sanctions::{EventRow, LiveListener, LiveSource};
use crate::rules::{self, Standing};
use crate::store::Event;

/// How long a kicked session is not kicked again. Longer than the kicker's retries; a session
/// Icecast still reports after it is kicked again.
pub const KICK_MEMORY: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// How much [`Sanctions::enforce`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// After a change: every session, against event rows read from the store itself.
    Changed,
    /// Every session, against cached event rows (retries sessions kicked long ago and still
    /// reported).
    Full,
    /// Sources, and listeners a member's rights admitted, against cached event rows.
    Sweep,
}

/// A live session, by what Icecast knows it as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SessionKey {
    Listener {
        server: String,
        port: String,
        client: String,
    },
    Source {
        server: String,
        port: String,
        mount: String,
        since: DateTime<Utc>,
    },
}

/// Sessions kicked lately, and when.
#[derive(Debug, Default)]
pub struct Kicked(Mutex<HashMap<SessionKey, DateTime<Utc>>>);

impl Kicked {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, DateTime<Utc>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether to kick `key` now (not kicked within [`KICK_MEMORY`]); remembers it if so.
    fn first_time(&self, key: SessionKey, now: DateTime<Utc>) -> bool {
        let mut kicked = self.lock();
        match kicked.get(&key) {
            Some(at) if now - *at < KICK_MEMORY => false,
            _ => {
                kicked.insert(key, now);
                true
            }
        }
    }

    /// Forgets sessions no longer live.
    fn retain_live(&self, live: &HashSet<SessionKey>) {
        self.lock().retain(|k, _| live.contains(k));
    }

    /// How many sessions are remembered as kicked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is remembered as kicked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn listener_key(s: &ListenerSession) -> SessionKey {
    SessionKey::Listener {
        server: s.server.clone(),
        port: s.port.clone(),
        client: s.client.clone(),
    }
}

/// The event row of every event in `ids`, as the store answers now.
async fn rows(
    sanctions: &Sanctions,
    ids: HashSet<Uuid>,
    fresh: bool,
) -> HashMap<Uuid, Result<Option<Event>, ()>> {
    let mut rows = HashMap::with_capacity(ids.len());
    for id in ids {
        let row = if fresh {
            sanctions.events.get_fresh(id).await
        } else {
            sanctions.events.get(id).await
        };
        rows.insert(id, row.map_err(drop));
    }
    rows
}

fn row_of<'a>(rows: &'a HashMap<Uuid, Result<Option<Event>, ()>>, target: &Target) -> EventRow<'a> {
    match target {
        Target::Static(_) => EventRow::NotAnEvent,
        Target::Event(id) => match rows.get(id) {
            Some(Ok(Some(e))) => EventRow::Found(e),
            Some(Ok(None)) => EventRow::Gone,
            _ => EventRow::Unknown,
        },
    }
}

impl Sanctions {
    /// Where member `id` stands now, asked once per sweep.
    fn standing(&self, cache: &mut HashMap<i64, Standing>, id: i64) -> Standing {
        *cache.entry(id).or_insert_with(|| {
            // A backend that cannot answer takes nobody's rights away.
            self.identity.standing(id).unwrap_or(Standing::Unasked)
        })
    }

    /// Checks the live sessions of this node against the sanctions, event rows and members'
    /// standing, and kicks those that must go. [`Pass::Full`] (after a change, and now and then)
    /// checks every session; [`Pass::Sweep`] (every second) every source and the listeners a
    /// member's rights admitted: bans and revocations reach listeners on the change itself,
    /// and Icecast's own time limit ends a listener at its event's natural end.
    pub async fn enforce(&self, pass: Pass) {
        let full = pass != Pass::Sweep;
        let listeners = self.live.listeners_where(|l| full || l.member.is_some());
        let mounts = self.live.live_mounts();
        if listeners.is_empty() && mounts.is_empty() {
            if !self.kicked.is_empty() {
                self.kicked.retain_live(&HashSet::new());
            }
            return;
        }
        let ids: HashSet<Uuid> = listeners
            .iter()
            .map(|l| &l.target)
            .chain(mounts.iter().map(|(t, _)| t))
            .filter_map(|t| match t {
                Target::Event(id) => Some(*id),
                Target::Static(_) => None,
            })
            .collect();
        let rows = rows(self, ids, pass == Pass::Changed).await;
        let now = self.clock.now();
        let set = self.set.load_full();
        let kicker = self.kicker();
        let mut standings = HashMap::new();
        let mut live = HashSet::with_capacity(listeners.len() + mounts.len());
        for l in &listeners {
            let row = row_of(&rows, &l.target);
            let member = l.member.map(|m| (m, self.standing(&mut standings, m)));
            let session = LiveListener {
                ip: &l.ip,
                member,
                ticket: l.ticket.as_deref(),
                started: l.started,
            };
            let key = listener_key(l);
            live.insert(key.clone());
            if let Some(reason) = rules::sanctions::listener_must_go(&set, &session, row, now) {
                if self.kicked.first_time(key, now) {
                    tracing::info!(mount = %l.mount, server = %l.server, port = %l.port,
                        client = %l.client, ticket = l.ticket.as_deref(), member = l.member,
                        reason = reason.label(), "dropping a listener");
                    kicker.kick_listener(l, reason);
                }
            }
        }
        for (target, m) in &mounts {
            let Some(source) = &m.source else { continue };
            let row = row_of(&rows, target);
            let member = source_member(m, row).map(|id| (id, self.standing(&mut standings, id)));
            let session = LiveSource {
                member,
                ticket: m.allowed_ticket.as_deref(),
                since: source.since,
            };
            let key = SessionKey::Source {
                server: source.server.clone(),
                port: source.port.clone(),
                mount: source.mount.clone(),
                since: source.since,
            };
            live.insert(key.clone());
            if let Some(reason) = rules::sanctions::source_must_go(&set, &session, row, now) {
                if self.kicked.first_time(key, now) {
                    tracing::info!(mount = %source.mount, server = %source.server,
                        port = %source.port, ticket = m.allowed_ticket.as_deref(),
                        member = member.map(|(id, _)| id), reason = reason.label(),
                        "dropping a source");
                    kicker.kick_source(target, source, reason);
                }
            }
        }
        if full {
            self.kicked.retain_live(&live);
        }
    }
}

/// The member a live source broadcasts for: the one `stream_auth` allowed (their token, or the
/// minter of a source ticket), or — for a trusted relay — the one `/jars/connect` approved.
fn source_member(m: &MountState, row: EventRow<'_>) -> Option<i64> {
    match (m.allowed_source, row) {
        (Some(id), _) => Some(id),
        (None, EventRow::Found(e)) if m.relay.is_some() => e.connected_by,
        _ => None,
    }
}
