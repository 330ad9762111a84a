//! Several Icecast servers, and several jars nodes, seen as one station: which server a new
//! listener goes to ([`Placement::choose`], for `/listen`), each server's health, listeners and
//! capacity ([`Placement::statuses`], for `/readyz`, `jars status` and `/metrics`), and the
//! listener licence caps held over every server and node ([`caps`]).
//!
//! What a server is, is gathered here from three sources: its `[[icecast.servers]]` entry
//! (address, capacity, weight, region), what its admin API said at the last health check
//! ([`Placement::checked`], run by `icecast::admin::health`), and what its callbacks told live
//! state. The rules that judge them are pure ([`crate::rules::placement`]).

pub mod caps;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::clock::SharedClock;
use crate::config::IcecastServer;
use crate::domain::{FastMap, ServerId, Target};
use crate::live::{LiveState, ServerTally};
use crate::rules::placement::{self as rule, Candidate, Health, HealthLimits, Sent, Signals};

pub use caps::Caps;

/// A listener sent to a server is expected there within this; until then it counts as there.
pub const ARRIVAL: Duration = Duration::from_secs(5);
/// Listeners sent to a server that did not arrive, while it sent no callback, before it counts
/// as unhealthy…
pub const UNANSWERED: u32 = 3;
/// …among those sent within this window; past it the server is tried again.
pub const UNANSWERED_WINDOW: Duration = Duration::from_secs(60);
/// Failed health checks in a row that make a server unhealthy.
pub const FAILED_CHECKS: u32 = 2;
/// A health check waits this long for the admin API.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Placements remembered per server (a burst beyond this is pending as this many).
const SENT_KEPT: usize = 10_000;

/// What the last health check of a server found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// When its admin API last answered.
    pub answered: Option<DateTime<Utc>>,
    /// Failed checks since then.
    pub failures: u32,
    /// Why the last check failed (fit for `/readyz`: no credentials).
    pub error: Option<String>,
    /// Its mounts with a source, with what each is to jars and Icecast's count of listeners.
    pub mounts: Vec<CheckedMount>,
}

/// A mount a health check listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedMount {
    pub mount: String,
    pub target: Option<Target>,
    pub listeners: u32,
}

/// One server as `/readyz`, `jars status` and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// `server:port`.
    pub name: String,
    pub public_url: Option<String>,
    /// Listeners on it: Icecast's own count at the last check (edge pulls included) or this
    /// node's, whichever is larger.
    pub listeners: u32,
    pub capacity: u32,
    /// Listeners sent there by `/listen` that have not arrived yet.
    pub pending: u32,
    pub health: Health,
    /// Why the last check failed.
    pub error: Option<String>,
}

/// Where `/listen` sends a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// To `url` (the server's `public_url` and the mount), on server `server`.
    To { url: String, server: String },
    /// Every server carrying the event is full (or drained).
    Full,
    /// Servers carry the event, but none is healthy.
    Unhealthy,
    /// No server carries the event.
    NotOnAir,
}

/// The servers as one station.
pub struct Placement {
    servers: ArcSwap<Vec<IcecastServer>>,
    live: Arc<LiveState>,
    clock: SharedClock,
    caps: Arc<Caps>,
    checks: Mutex<FastMap<String, Check>>,
    /// Listeners sent to each server lately; choosing and recording one is one step under
    /// this lock, so concurrent `/listen`s see each other's.
    sent: Mutex<FastMap<String, VecDeque<Sent>>>,
    interval: ArcSwap<Duration>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Placement {
    pub fn new(
        servers: Vec<IcecastServer>,
        health_interval: Duration,
        live: Arc<LiveState>,
        caps: Arc<Caps>,
        clock: SharedClock,
    ) -> Placement {
        Placement {
            servers: ArcSwap::from_pointee(servers),
            live,
            clock,
            caps,
            checks: Mutex::default(),
            sent: Mutex::default(),
            interval: ArcSwap::from_pointee(health_interval),
        }
    }

    /// Uses `servers` and checks them every `health_interval` from now on (a reload); what is
    /// known of servers no longer listed is forgotten.
    pub fn set_servers(&self, servers: Vec<IcecastServer>, health_interval: Duration) {
        let names: Vec<String> = servers.iter().map(IcecastServer::name).collect();
        lock(&self.checks).retain(|n, _| names.contains(n));
        lock(&self.sent).retain(|n, _| names.contains(n));
        self.servers.store(Arc::new(servers));
        self.interval.store(Arc::new(health_interval));
    }

    pub fn servers(&self) -> Arc<Vec<IcecastServer>> {
        self.servers.load_full()
    }

    /// How often each server is checked.
    pub fn interval(&self) -> Duration {
        **self.interval.load()
    }

    /// The licence caps.
    pub fn caps(&self) -> &Arc<Caps> {
        &self.caps
    }

    /// Records a health check of `server` (by name) at `at`: its listed mounts, or why not.
    pub fn checked(
        &self,
        server: &str,
        result: Result<Vec<CheckedMount>, String>,
        at: DateTime<Utc>,
    ) {
        let mut checks = lock(&self.checks);
        let check = checks.entry(server.to_string()).or_default();
        match result {
            Ok(mounts) => {
                *check = Check {
                    answered: Some(at),
                    failures: 0,
                    error: None,
                    mounts,
                };
            }
            Err(e) => {
                check.failures = check.failures.saturating_add(1);
                check.error = Some(e);
            }
        }
        let gone = checks
            .iter()
            .filter(|(_, c)| {
                crate::rules::caps::presumed_gone(
                    c.answered,
                    c.failures,
                    FAILED_CHECKS,
                    at,
                    caps::GONE_AFTER,
                )
            })
            .map(|(name, _)| name.clone())
            .collect();
        drop(checks);
        self.caps.set_gone(gone);
    }

    fn limits(&self) -> HealthLimits {
        HealthLimits {
            // Three checks missed: the checks themselves stalled.
            admin_quiet: self.interval() * 3 + CHECK_TIMEOUT,
            failures: FAILED_CHECKS,
            arrival: ARRIVAL,
            unanswered: UNANSWERED,
            window: UNANSWERED_WINDOW,
        }
    }

    /// One server's view: its check, this node's tally of it, when any node last heard it.
    fn view(
        &self,
        check: Option<&Check>,
        tally: Option<&ServerTally>,
        sent: &[Sent],
        others_heard: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> (Health, u32, u32) {
        let heard = tally.and_then(|t| t.heard).max(others_heard);
        let signals = Signals {
            answered: check.and_then(|c| c.answered),
            failures: check.map_or(0, |c| c.failures),
            heard,
            sent,
        };
        let health = rule::health(&signals, now, &self.limits());
        let checked: u32 = check.map_or(0, |c| c.mounts.iter().map(|m| m.listeners).sum());
        let listeners = checked.max(tally.map_or(0, |t| t.listeners));
        let pending = rule::pending(sent, tally.map_or(0, |t| t.joins), now, ARRIVAL);
        (health, listeners, pending)
    }

    /// Every configured server as it stands now.
    pub fn statuses(&self) -> Vec<ServerStatus> {
        let now = self.clock.now();
        let tallies = tallies(&self.live);
        let others = self.caps.others_heard();
        let checks = lock(&self.checks).clone();
        let sent = lock(&self.sent);
        self.servers
            .load()
            .iter()
            .map(|s| {
                let name = s.name();
                let sent: Vec<Sent> = sent
                    .get(&name)
                    .map_or_else(Vec::new, |q| q.iter().copied().collect());
                let check = checks.get(&name);
                let (health, listeners, pending) = self.view(
                    check,
                    tallies.get(&name),
                    &sent,
                    others.get(&name).copied(),
                    now,
                );
                ServerStatus {
                    name,
                    public_url: s.public_url.clone(),
                    listeners,
                    capacity: s.max_listeners,
                    pending,
                    health,
                    error: check.and_then(|c| c.error.clone()),
                }
            })
            .collect()
    }

    /// The server a new listener of `target` goes to, by [`rule::place`], among the servers
    /// with a `public_url`; `extension` (`.mp3`) picks among a server's mounts of the target,
    /// `region` the servers preferred. The listener is then counted as on its way there.
    pub fn choose(&self, target: &Target, extension: &str, region: Option<&str>) -> Choice {
        let now = self.clock.now();
        let servers = self.servers.load();
        let tallies = tallies(&self.live);
        let others = self.caps.others_heard();
        let checks = lock(&self.checks).clone();
        let mut sent = lock(&self.sent);
        let mut mounts: Vec<Option<String>> = Vec::new();
        let mut candidates: Vec<Candidate<'_>> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for s in servers.iter().filter(|s| s.public_url.is_some()) {
            let name = s.name();
            let queue = sent.entry(name.clone()).or_default();
            forget_old(queue, now);
            let recent: Vec<Sent> = queue.iter().copied().collect();
            let tally = tallies.get(&name);
            let check = checks.get(&name);
            let (health, listeners, pending) =
                self.view(check, tally, &recent, others.get(&name).copied(), now);
            let mount = mount_of(target, extension, tally, check);
            candidates.push(Candidate {
                healthy: health.is_healthy(),
                carries: mount.is_some(),
                listeners,
                pending,
                capacity: s.max_listeners,
                weight: s.weight,
                region: s.region.as_deref(),
            });
            mounts.push(mount);
            names.push(name);
        }
        match rule::place(&candidates, region) {
            rule::Placement::To(i) => {
                let name = &names[i];
                let joins = tallies.get(name).map_or(0, |t| t.joins);
                let queue = sent.entry(name.clone()).or_default();
                if queue.len() >= SENT_KEPT {
                    queue.pop_front();
                }
                queue.push_back(Sent { at: now, joins });
                let base = servers
                    .iter()
                    .find(|s| &s.name() == name)
                    .and_then(|s| s.public_url.clone())
                    .unwrap_or_default();
                let mount = mounts[i].clone().unwrap_or_default();
                Choice::To {
                    url: format!("{base}{mount}"),
                    server: name.clone(),
                }
            }
            rule::Placement::Full => Choice::Full,
            rule::Placement::Unhealthy => Choice::Unhealthy,
            rule::Placement::NotOnAir => Choice::NotOnAir,
        }
    }
}

/// This node's tally of each server, by `server:port`.
fn tallies(live: &LiveState) -> FastMap<String, ServerTally> {
    live.servers()
        .into_iter()
        .map(|(id, t): (ServerId, ServerTally)| (id.to_string(), t))
        .collect()
}

/// Drops placements older than anything the rules look at.
fn forget_old(queue: &mut VecDeque<Sent>, now: DateTime<Utc>) {
    let window = chrono::Duration::from_std(UNANSWERED_WINDOW).unwrap_or(chrono::Duration::MAX);
    while queue.front().is_some_and(|s| now - s.at >= window) {
        queue.pop_front();
    }
}

/// The server's mount of `target`: one with the wanted extension if it has one, else the
/// first by name; from this node's live state (its callbacks) or its last check.
fn mount_of(
    target: &Target,
    extension: &str,
    tally: Option<&ServerTally>,
    check: Option<&Check>,
) -> Option<String> {
    let mut found: Vec<&str> = tally
        .into_iter()
        .flat_map(|t| t.sources.iter())
        .filter(|(_, t)| *t == target)
        .map(|(m, _)| m.as_str())
        .chain(
            check
                .into_iter()
                .flat_map(|c| c.mounts.iter())
                .filter(|m| m.target.as_ref() == Some(target))
                .map(|m| m.mount.as_str()),
        )
        .collect();
    found.sort_unstable();
    found.dedup();
    found
        .iter()
        .find(|m| !extension.is_empty() && m.ends_with(extension))
        .or(found.first())
        .map(|m| m.to_string())
}

#[cfg(test)]
mod tests;
