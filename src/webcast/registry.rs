//! The shows live through this node's `/webcast`, one per event: who holds each, so a second
//! DJ is refused and the same DJ reconnecting replaces their old socket; and how jars'
//! sanctions end one ([`Registry::end`], and [`WebcastKicker`], the [`Kicker`] that ends a
//! webcast show itself before asking Icecast to drop the source).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::protocol::Stop;
use super::show::{End, Show};
use crate::domain::{Role, Session};
use crate::live::Kicker;
use crate::rules::DenyReason;

/// Who a show's DJ is: a member, or the holder of one source ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DjKey {
    Member(i64),
    Ticket(String),
}

struct Entry {
    serial: u64,
    dj: DjKey,
    show: Arc<Show>,
    /// Resolves once the show's relay has closed its Icecast connection.
    done: tokio::sync::watch::Receiver<bool>,
}

/// The live shows by event.
#[derive(Default)]
pub struct Registry {
    shows: Mutex<HashMap<Uuid, Entry>>,
    serials: AtomicU64,
}

/// A place in the registry, held while a show is live; released on drop.
pub struct Claim {
    registry: Arc<Registry>,
    pub event: Uuid,
    serial: u64,
    /// Set when the show's relay has closed its Icecast connection.
    pub done: tokio::sync::watch::Sender<bool>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = self.done.send(true);
        let mut shows = self.registry.lock();
        if shows
            .get(&self.event)
            .is_some_and(|e| e.serial == self.serial)
        {
            shows.remove(&self.event);
        }
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Entry>> {
        self.shows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes event `event` for `dj`'s `show`. Another DJ's live show refuses it; the same DJ's
    /// is ended (`replaced`) and returned to wait for, so one Icecast connection at a time
    /// ever sources the event from this node.
    pub fn claim(
        self: &Arc<Self>,
        event: Uuid,
        dj: DjKey,
        show: Arc<Show>,
    ) -> Result<(Claim, Option<tokio::sync::watch::Receiver<bool>>), Stop> {
        let mut shows = self.lock();
        let replaced = match shows.get(&event) {
            Some(e) if e.show.ended().is_none() && e.dj != dj => return Err(Stop::MOUNT_IN_USE),
            Some(e) => {
                e.show.finish(End::Stopped(Stop::REPLACED));
                Some(e.done.clone())
            }
            None => None,
        };
        let serial = self.serials.fetch_add(1, Ordering::Relaxed);
        let (done, done_rx) = tokio::sync::watch::channel(false);
        shows.insert(
            event,
            Entry {
                serial,
                dj,
                show,
                done: done_rx,
            },
        );
        Ok((
            Claim {
                registry: self.clone(),
                event,
                serial,
                done,
            },
            replaced,
        ))
    }

    /// Ends the show live on event `event`, telling its DJ `reason`; whether there was one.
    pub fn end_event(&self, event: Uuid, reason: DenyReason) -> bool {
        let shows = self.lock();
        shows
            .get(&event)
            .is_some_and(|e| e.show.finish(End::Stopped(Stop::denied(reason))))
    }

    /// [`Registry::end_event`] for the event of `mount` (`/<event id>` with an optional
    /// extension, as Icecast names it).
    pub fn end(&self, mount: &str, reason: DenyReason) -> bool {
        let id = mount.strip_prefix('/').unwrap_or(mount);
        crate::icecast::decode::without_extension(id)
            .and_then(|id| Uuid::try_parse(id).ok())
            .is_some_and(|id| self.end_event(id, reason))
    }

    /// The title the DJ of event `event`'s live show last sent, if any.
    pub fn title(&self, event: Uuid) -> Option<String> {
        let shows = self.lock();
        let show = &shows.get(&event)?.show;
        if show.ended().is_some() {
            return None;
        }
        let song = show.titles.borrow().song.clone();
        song
    }

    /// How many shows are live.
    pub fn len(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| e.show.ended().is_none())
            .count()
    }

    /// Whether no show is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`Kicker`] that ends a webcast show itself (its DJ told why, never reconnected), then asks
/// `inner` (Icecast's admin API) to drop the source as for any other.
pub struct WebcastKicker {
    pub registry: Arc<Registry>,
    pub inner: Arc<dyn Kicker>,
}

impl Kicker for WebcastKicker {
    fn kick(&self, session: &Session, reason: DenyReason) {
        if let (Role::Source, Some(event)) = (session.role(), session.event()) {
            self.registry.end_event(event, reason);
        }
        self.inner.kick(session, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show() -> Arc<Show> {
        Arc::new(Show::new(
            "audio/mpeg",
            1024,
            crate::metrics::Metrics::new().webcast,
        ))
    }

    #[test]
    fn one_show_per_event_the_same_dj_replaces_and_sanctions_end_it() {
        let r = Arc::new(Registry::default());
        let e = Uuid::new_v4();
        let first = show();
        let (claim, replaced) = r.claim(e, DjKey::Member(1), first.clone()).unwrap();
        assert!(replaced.is_none());
        assert_eq!(r.len(), 1);
        assert_eq!(r.title(e), None);
        first.title("Band - Song".into());
        assert_eq!(r.title(e).as_deref(), Some("Band - Song"));
        // Another DJ is refused while it is live.
        assert_eq!(
            r.claim(e, DjKey::Ticket("g".into()), show()).err(),
            Some(Stop::MOUNT_IN_USE)
        );
        // The same DJ again: the first show is told it was replaced.
        let second = show();
        let (claim2, replaced) = r.claim(e, DjKey::Member(1), second.clone()).unwrap();
        assert!(replaced.is_some());
        assert_eq!(first.ended(), Some(End::Stopped(Stop::REPLACED)));
        assert_eq!(r.title(e), None, "the new show has sent no title");
        // The old claim going away leaves the new one in place.
        drop(claim);
        assert_eq!(r.len(), 1);
        // The sanctions' path: by mount, as Icecast names it.
        assert!(!r.end("/not-an-event", DenyReason::Revoked));
        assert!(r.end(&format!("/{e}.mp3"), DenyReason::Revoked));
        assert_eq!(
            second.ended(),
            Some(End::Stopped(Stop::denied(DenyReason::Revoked)))
        );
        assert!(!r.end_event(e, DenyReason::Banned), "ended once");
        drop(claim2);
        assert!(r.is_empty());
        assert!(!r.end_event(e, DenyReason::Banned));
    }
}
