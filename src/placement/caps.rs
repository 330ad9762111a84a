//! Listener licence caps held over every Icecast server and every jars node sharing the store:
//! the station's (`[limits] max_listeners`) and each event's own (its `max_listeners`).
//!
//! Each node counts, per server whose callbacks it hears, the listeners it knows there (live
//! state) and shares the counts through the store ([`ListenerCounts`]). A capped admission on
//! this node waits its turn (one at a time per node), writes this node's count of that server
//! with the new listener in it and reads every other node's in one round trip, then asks
//! [`rules::caps`](crate::rules::caps). Uncapped admissions never wait or touch the store.
//!
//! Overshoot: two nodes admitting at the same instant may each not yet see the other's write,
//! and each node has at most one admission in flight, so the cluster may go over a cap by at
//! most one listener per node besides the first. With one node (or the embedded store) caps are
//! exact. Every [`PUBLISH_EVERY`] each node also rewrites all its counts, so listeners who left
//! stop counting; until then a count errs high (a listener refused), never low.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::clock::SharedClock;
use crate::config::OnStoreError;
use crate::domain::{DenyReason, FastMap, ServerId, Target};
use crate::live::{LiveState, ServerTally};
use crate::metrics::Metrics;
use crate::rules::caps::{cluster_total, vouches_for, within_caps, Capped};

/// A server whose admin API has failed its checks this long is presumed gone (see
/// [`crate::rules::caps::presumed_gone`]).
pub const GONE_AFTER: Duration = Duration::from_secs(30);
use crate::store::listener_counts::{Count, ListenerCounts, Others, Scope, ServerCounts, ROW_HOLD};

/// How often this node rewrites its counts in the store and reads the others'.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// The caps, this node's name in the shared counts, and the others' counts as last read.
pub struct Caps {
    node: String,
    counts: Arc<dyn ListenerCounts>,
    live: Arc<LiveState>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    /// `[limits] max_listeners`, replaced on reload.
    station: ArcSwap<Option<u32>>,
    /// One capped admission (or publish) at a time on this node.
    turn: tokio::sync::Mutex<()>,
    /// The other nodes' counts as last read: for `on_store_error = "cached"`, `/listen`'s
    /// early refusal and the servers' health.
    last: Mutex<Others>,
    /// Servers (`server:port`) presumed gone: their listeners no longer count.
    gone: Mutex<Vec<String>>,
}

/// Why a capped admission was refused, or what admitting it returned.
pub type Admission<T> = Result<T, DenyReason>;

impl Caps {
    pub fn new(
        node: String,
        station: Option<u32>,
        counts: Arc<dyn ListenerCounts>,
        live: Arc<LiveState>,
        clock: SharedClock,
        metrics: Arc<Metrics>,
    ) -> Caps {
        Caps {
            node,
            counts,
            live,
            clock,
            metrics,
            station: ArcSwap::from_pointee(station),
            turn: tokio::sync::Mutex::new(()),
            last: Mutex::default(),
            gone: Mutex::default(),
        }
    }

    /// This node's name in the shared counts.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The station's licence from now on (a reload).
    pub fn set_station(&self, station: Option<u32>) {
        self.station.store(Arc::new(station));
    }

    /// The station's licence.
    pub fn station(&self) -> Option<u32> {
        **self.station.load()
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Others> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When another node last heard each server (`server:port`).
    pub fn others_heard(&self) -> FastMap<String, DateTime<Utc>> {
        self.last().heard.iter().cloned().collect()
    }

    /// From now on the listeners of `servers` (`server:port`) do not count: their Icecast is
    /// presumed gone ([`crate::rules::caps::presumed_gone`]).
    pub fn set_gone(&self, servers: Vec<String>) {
        let mut gone = self.gone.lock().unwrap_or_else(|p| p.into_inner());
        if *gone != servers {
            if !servers.is_empty() {
                tracing::warn!(
                    servers = servers.join(", "),
                    "Icecast servers presumed gone: their listeners no longer count against \
                     the listener caps"
                );
            }
            *gone = servers;
        }
    }

    fn gone(&self) -> Vec<String> {
        self.gone.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The other nodes' counts as last read.
    pub fn others(&self) -> Vec<Count> {
        self.last().counts.clone()
    }

    /// Why one more listener of `target` would be refused now, judged on the counts as last
    /// read (`/listen` answers at once instead of sending the listener to be refused; the
    /// admission itself decides on fresh counts).
    pub fn refusal(&self, target: &Target, event_cap: Option<u32>) -> Option<DenyReason> {
        if !self.apply(event_cap) {
            return None;
        }
        let event = target.event().filter(|_| event_cap.is_some());
        let others = self.others();
        let tallies = self.live.servers();
        let totals = Totals::of(self, &tallies, &others, None);
        let station = self.station().map(|cap| Capped {
            cap,
            total: totals.of_scope(Scope::Station) + 1,
        });
        let event = event.zip(event_cap).map(|(id, cap)| Capped {
            cap,
            total: totals.of_scope(Scope::Event(id)) + 1,
        });
        within_caps(station, event).err()
    }

    /// Whether a listener with `event_cap` (its event's own cap) is capped at all.
    pub fn apply(&self, event_cap: Option<u32>) -> bool {
        event_cap.is_some() || self.station().is_some()
    }

    /// Admits a listener of `target` on `server` by `admit` (which adds it to live state) if
    /// the station's licence and `event_cap` leave room for it over the cluster. Without a
    /// cap, `admit` runs at once.
    pub async fn admit<T>(
        &self,
        server: &ServerId,
        target: &Target,
        event_cap: Option<u32>,
        on_store_error: OnStoreError,
        admit: impl FnOnce() -> Admission<T>,
    ) -> Admission<T> {
        if !self.apply(event_cap) {
            return admit();
        }
        let event = target.event().filter(|_| event_cap.is_some());
        let _turn = self.turn.lock().await;
        let now = self.clock.now();
        let tallies = self.live.servers();
        let mut scopes = vec![Scope::Station];
        scopes.extend(event.map(Scope::Event));
        let joining = tallies.iter().find(|(id, _)| id == server).map(|(_, t)| t);
        // This node's count of the joining server, the new listener in it.
        let mine_here: Vec<(Scope, u32)> = scopes
            .iter()
            .map(|&s| (s, joining.map_or(0, |t| of_scope(s, t)).saturating_add(1)))
            .collect();
        let others = if self.counts.shared() {
            let claimed = self
                .counts
                .claim(&self.node, &server.to_string(), now, &mine_here)
                .await;
            match claimed {
                Ok(others) => others,
                Err(e) => {
                    self.store_failed();
                    if on_store_error == OnStoreError::Deny {
                        tracing::error!(error = %e,
                            "cannot read the listener counts: refusing a capped listener");
                        return Err(DenyReason::StoreUnavailable);
                    }
                    tracing::warn!(error = %e,
                        "cannot read the listener counts: deciding a capped listener on the \
                         last counts read");
                    self.others()
                }
            }
        } else {
            Vec::new()
        };
        let totals = Totals::of(self, &tallies, &others, Some((server, &mine_here)));
        let station = self.station().map(|cap| Capped {
            cap,
            total: totals.of_scope(Scope::Station),
        });
        let event = event.zip(event_cap).map(|(id, cap)| Capped {
            cap,
            total: totals.of_scope(Scope::Event(id)),
        });
        within_caps(station, event)?;
        admit()
    }

    fn store_failed(&self) {
        self.metrics
            .store_errors
            .with_label_values(&["listener_counts"])
            .inc();
    }

    /// Rewrites this node's counts in the store and reads the other nodes'.
    pub async fn publish(&self) {
        if !self.counts.shared() {
            return;
        }
        let _turn = self.turn.lock().await;
        let now = self.clock.now();
        let others_heard = self.others_heard();
        let servers: Vec<ServerCounts> = self
            .live
            .servers()
            .into_iter()
            .filter(|(id, t)| {
                vouches_for(
                    t.heard,
                    others_heard.get(&id.to_string()).copied(),
                    now,
                    ROW_HOLD,
                )
            })
            .map(|(id, t)| ServerCounts {
                server: id.to_string(),
                heard: t.heard,
                station: t.listeners,
                events: t
                    .by_target
                    .iter()
                    .filter_map(|(target, n)| target.event().map(|id| (id, *n)))
                    .collect(),
            })
            .collect();
        match self.counts.publish(&self.node, &servers).await {
            Ok(others) => *self.last() = others,
            Err(e) => {
                self.store_failed();
                tracing::warn!(error = %e, "could not share this node's listener counts");
            }
        }
    }

    /// Publishes every [`PUBLISH_EVERY`] for as long as `caps` is in use (with a store other
    /// nodes share).
    pub fn start(caps: &Arc<Caps>) {
        if !caps.counts.shared() {
            return;
        }
        let weak: Weak<Caps> = Arc::downgrade(caps);
        tokio::spawn(async move {
            loop {
                let Some(caps) = weak.upgrade() else { return };
                caps.publish().await;
                drop(caps);
                tokio::time::sleep(PUBLISH_EVERY).await;
            }
        });
    }
}

/// A server's listeners in `scope`, by this node's tally.
fn of_scope(scope: Scope, t: &ServerTally) -> u32 {
    match scope {
        Scope::Station => t.listeners,
        Scope::Event(id) => t.by_target.get(&Target::Event(id)).copied().unwrap_or(0),
    }
}

/// The counts one decision sums: this node's of the servers it vouches for, the joining
/// server's as just claimed, and the other nodes'.
struct Totals<'a> {
    mine: Vec<(String, &'a ServerTally)>,
    here: Option<(String, &'a [(Scope, u32)])>,
    others: &'a [Count],
    /// Servers presumed gone: counted by nobody.
    gone: Vec<String>,
}

impl<'a> Totals<'a> {
    fn of(
        caps: &Caps,
        tallies: &'a [(ServerId, ServerTally)],
        others: &'a [Count],
        here: Option<(&ServerId, &'a [(Scope, u32)])>,
    ) -> Totals<'a> {
        let now = caps.clock.now();
        let others_heard = caps.others_heard();
        let mine = tallies
            .iter()
            .filter(|(id, t)| {
                here.is_none_or(|(h, _)| h != id)
                    && vouches_for(
                        t.heard,
                        others_heard.get(&id.to_string()).copied(),
                        now,
                        ROW_HOLD,
                    )
            })
            .map(|(id, t)| (id.to_string(), t))
            .collect();
        Totals {
            mine,
            here: here.map(|(id, counts)| (id.to_string(), counts)),
            others,
            gone: caps.gone(),
        }
    }

    /// Listeners of `scope` over the cluster.
    fn of_scope(&self, scope: Scope) -> u64 {
        let mine = self
            .mine
            .iter()
            .map(|(s, t)| (s.as_str(), of_scope(scope, t)))
            .chain(self.here.iter().flat_map(|(s, counts)| {
                counts
                    .iter()
                    .filter(move |(sc, _)| *sc == scope)
                    .map(move |(_, n)| (s.as_str(), *n))
            }));
        let theirs = self
            .others
            .iter()
            .filter(|c| c.scope == scope)
            .map(|c| (c.server.as_str(), c.listeners));
        let counted = |(s, _): &(&str, u32)| !self.gone.iter().any(|g| g == s);
        cluster_total(mine.filter(counted), theirs.filter(counted))
    }
}

/// This node's default name in the shared counts: its host name and listening port.
pub fn default_node_name(listen: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "jars".into());
    format!("{host}:{}", listen.port())
}
