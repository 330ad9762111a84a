//! Bans, revocations and early ends in force on this node: the [`SanctionSet`] callbacks
//! consult (held in an `ArcSwap`, so a callback pays an atomic load and hash lookups), kept
//! up to date with the store ([`Sanctions::refresh`]: a changed version loads what changed), and
//! enforced on the sessions Icecast already admitted ([`enforce`]).
//!
//! Propagation: a background task polls the store's version every [`POLL_INTERVAL`] (the CLI's
//! and other nodes' writes on SQLite; PostgreSQL also pushes them with `LISTEN/NOTIFY`), and
//! sweeps the live sessions every [`SWEEP_INTERVAL`] (expiry, lost rights). A write through
//! this node's API is applied at once ([`Sanctions::changed`]).

pub mod bans;
pub mod enforce;
pub mod refresh;

pub use enforce::Pass;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock::SharedClock;
use crate::identity::Identity;
use crate::live::{Kicker, LiveState, NoKicker};
use crate::rules::sanctions::SanctionSet;
use crate::store::sanctions::SanctionStore;
use crate::store::{EventStore, StoreError};

/// How often the store's version is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often (on the node's clock) live sessions are checked even when nothing changed
/// (events expire, members lose rights, bans run out).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Every this many sweeps, a full pass over every live session.
const FULL_EVERY: u32 = 30;

/// This node's sanctions: the set in force, the store it comes from, and what enforcing it
/// needs (live sessions, event rows, members' standing, a [`Kicker`]).
pub struct Sanctions {
    pub store: Arc<dyn SanctionStore>,
    set: ArcSwap<SanctionSet>,
    kicker: ArcSwap<KickerSlot>,
    live: Arc<LiveState>,
    events: Arc<dyn EventStore>,
    identity: Arc<Identity>,
    clock: SharedClock,
    /// Woken by the store's push (PostgreSQL `NOTIFY`) and by local writes.
    wake: Arc<tokio::sync::Notify>,
    /// A failing reload is logged once until one succeeds.
    failing: AtomicBool,
    /// Loads changes into `set`; purges the store when due.
    loader: refresh::Loader,
}

/// The [`Kicker`] in use (replaced when the Icecast admin wiring is configured, or by tests).
struct KickerSlot(Arc<dyn Kicker>);

impl Sanctions {
    /// Sanctions from `store`, enforced on `live` (empty until [`Sanctions::refresh`]).
    pub fn new(
        store: Arc<dyn SanctionStore>,
        live: Arc<LiveState>,
        events: Arc<dyn EventStore>,
        identity: Arc<Identity>,
        clock: SharedClock,
    ) -> Sanctions {
        Sanctions {
            store,
            set: ArcSwap::from_pointee(SanctionSet::unloaded()),
            kicker: ArcSwap::from_pointee(KickerSlot(Arc::new(NoKicker))),
            live,
            events,
            identity,
            clock,
            wake: Arc::new(tokio::sync::Notify::new()),
            failing: AtomicBool::new(false),
            loader: refresh::Loader::default(),
        }
    }

    /// The set in force now.
    pub fn current(&self) -> arc_swap::Guard<Arc<SanctionSet>> {
        self.set.load()
    }

    /// Drops live sessions through `kicker` from now on.
    pub fn set_kicker(&self, kicker: Arc<dyn Kicker>) {
        self.kicker.store(Arc::new(KickerSlot(kicker)));
    }

    /// The [`Kicker`] in use.
    pub fn kicker(&self) -> Arc<dyn Kicker> {
        self.kicker.load().0.clone()
    }

    /// Brings the set to the store's version (reading only what changed since,
    /// [`refresh::Loader`]); true when it moved.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        self.loader
            .refresh(&*self.store, &self.set, self.clock.now())
            .await
    }

    /// After a write through this node: reload and enforce now, not at the next poll.
    pub async fn changed(&self) {
        match self.refresh().await {
            Ok(_) => self.enforce(Pass::Changed).await,
            // The background task retries.
            Err(e) => {
                tracing::warn!(error = %e, "could not reload sanctions after a change");
                self.wake.notify_one();
            }
        }
    }

    /// Loads the set now, then keeps it fresh and enforced in the background for as long as
    /// `self` lives.
    pub async fn start(self: &Arc<Self>) {
        if let Err(e) = self.refresh().await {
            tracing::error!(error = %e, "could not load bans and revocations; retrying");
            self.failing.store(true, Ordering::Relaxed);
        }
        self.store.push_changes_to(Arc::downgrade(&self.wake));
        let weak = Arc::downgrade(self);
        let wake = self.wake.clone();
        tokio::spawn(watch(weak, wake));
    }

    /// One turn of the background task: reload if changed (then enforce with fresh event
    /// rows), else sweep when due (`sweep`).
    async fn turn(&self, sweep: Option<Pass>) {
        match self.refresh().await {
            Ok(changed) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("bans and revocations loaded again");
                }
                match (changed, sweep) {
                    (true, _) => self.enforce(Pass::Changed).await,
                    (false, Some(pass)) => self.enforce(pass).await,
                    (false, None) => {}
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e,
                        "could not reload bans and revocations; enforcing the last ones loaded");
                }
                if let Some(pass) = sweep {
                    self.enforce(pass).await;
                }
            }
        }
    }
}

/// Polls, listens and sweeps until the sanctions are dropped. The store is polled on the wall
/// clock (it is I/O, not a rule); sweeps run on the node's clock, so a test moves them by
/// moving its clock.
async fn watch(weak: Weak<Sanctions>, wake: Arc<tokio::sync::Notify>) {
    let Some(clock) = weak.upgrade().map(|s| s.clock.clone()) else {
        return;
    };
    let mut sweep_due = clock.sleep(SWEEP_INTERVAL);
    let mut sweeps = 0u32;
    loop {
        let sweep = tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => None,
            _ = wake.notified() => None,
            _ = &mut sweep_due => {
                sweep_due = clock.sleep(SWEEP_INTERVAL);
                sweeps = sweeps.wrapping_add(1);
                Some(if sweeps % FULL_EVERY == 0 { Pass::Full } else { Pass::Sweep })
            }
        };
        let Some(sanctions) = weak.upgrade() else {
            return;
        };
        sanctions.turn(sweep).await;
    }
}
