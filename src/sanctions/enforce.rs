//! Enforcing sanctions on sessions Icecast already admitted: every live session of this node
//! is put to [`rules::sanctions::listener_must_go`] / [`rules::sanctions::source_must_go`] with
//! its event's row and its member's standing, and those that must go are handed to the
//! [`crate::live::Kicker`] — once: live state remembers the kick
//! ([`crate::live::LiveState::kick_due`]), so sweeps do not kick a session again while Icecast
//! drops it, and its row ends `kicked` with the reason.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Sanctions;
use crate::domain::{DenyReason, Role, Session, Target};
use crate::log_input::Escaped;
use crate::rules::sanctions::{EventRow, LiveListener, LiveSource};
use crate::rules::{self, Standing};
use crate::store::Event;

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
    /// Where member `id` stands now, asked once per pass.
    fn standing(&self, cache: &mut HashMap<i64, Standing>, id: i64) -> Standing {
        *cache.entry(id).or_insert_with(|| {
            // A backend that cannot answer takes nobody's rights away.
            self.identity.standing(id).unwrap_or(Standing::Unasked)
        })
    }

    /// Why `s` must go at `now`, if it must.
    fn must_go(
        &self,
        s: &Session,
        row: EventRow<'_>,
        standings: &mut HashMap<i64, Standing>,
        now: DateTime<Utc>,
    ) -> Option<DenyReason> {
        let set = self.set.load();
        let member = s.member.map(|m| (m, self.standing(standings, m)));
        match s.role() {
            Role::Listener => {
                let l = LiveListener {
                    ip: &s.ip,
                    member,
                    ticket: s.ticket.as_deref(),
                    started: s.started,
                };
                rules::sanctions::listener_must_go(&set, &l, row, now)
            }
            Role::Source => {
                let source = LiveSource {
                    ip: &s.ip,
                    member,
                    ticket: s.ticket.as_deref(),
                    since: s.started,
                };
                rules::sanctions::source_must_go(&set, &source, row, now)
            }
        }
    }

    /// Checks the live sessions of this node against the sanctions, event rows and members'
    /// standing, and kicks those that must go. [`Pass::Changed`] and [`Pass::Full`] check every
    /// session; [`Pass::Sweep`] (every second) every source and the listeners a member's
    /// rights admitted: bans and revocations reach listeners on the change itself, and
    /// Icecast's own time limit ends a listener at its event's natural end.
    pub async fn enforce(&self, pass: Pass) {
        let full = pass != Pass::Sweep;
        let mut sessions = self
            .live
            .sessions_where(|s| full || s.role() == Role::Source || s.member.is_some());
        // Sources first: an Icecast lets a dropped source's listeners go at once, long before
        // thousands of listener kicks (16 at a time) would reach them.
        sessions.sort_by_key(|s| s.role() != Role::Source);
        if sessions.is_empty() {
            return;
        }
        let ids: HashSet<Uuid> = sessions.iter().filter_map(|s| s.event()).collect();
        let rows = rows(self, ids, pass == Pass::Changed).await;
        let now = self.clock.now();
        let kicker = self.kicker();
        let mut standings = HashMap::new();
        for s in &sessions {
            let row = row_of(&rows, &s.target);
            let Some(reason) = self.must_go(s, row, &mut standings, now) else {
                continue;
            };
            if self.live.kick_due(&s.key, reason, now) {
                tracing::info!(
                    role = s.role().as_str(),
                    mount = %Escaped(&s.mount),
                    server = %Escaped(&s.key.server.to_string()),
                    client = %Escaped(&s.key.id),
                    ticket = s.ticket.as_deref().map(|t| tracing::field::display(Escaped(t))),
                    member = s.member,
                    reason = reason.label(),
                    "dropping a session"
                );
                kicker.kick(s, reason);
            }
        }
    }
}
