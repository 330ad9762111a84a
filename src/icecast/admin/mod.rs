//! Acting on Icecast through its 2.4 admin API, for each `[[icecast.servers]]` entry:
//! [`IcecastAdmin`] drops sessions (the [`Kicker`] behind revocations, bans and ended events),
//! rebuilds this node's live state from what each server lists ([`resync`]) and checks that
//! each server answers ([`health`]). What it knows of each server (last resync, servers
//! reported without an entry) is shown in `/readyz`.

mod client;
pub mod health;
pub mod resync;
pub mod xml;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

pub use client::{AdminApi, AdminError, KillOutcome};

use crate::config::IcecastServer;
use crate::domain::{DenyReason, Role, Session};
use crate::live::Kicker;
use crate::metrics::Metrics;

/// How often a kill is tried, and the wait before the second try (doubling after each):
/// five tries over about 7.5 s, plus the requests' own time.
const KILL_TRIES: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// How the last resync of one server went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncStatus {
    pub at: DateTime<Utc>,
    /// `None`: it worked; else why not (fit for the readiness detail: no credentials).
    pub error: Option<String>,
}

/// The admin APIs of the configured Icecast servers. Replaced servers take effect at the next
/// kick or resync ([`IcecastAdmin::set_servers`], on SIGHUP).
///
/// Kicks fan out without bound in number (ending an event with ten thousand listeners asks
/// for ten thousand), but at most `CONNECTIONS_PER_SERVER` (16) of them run at once per
/// server, on kept-alive connections: an Icecast (and jars' own file descriptors) never sees
/// more.
pub struct IcecastAdmin {
    http: reqwest::Client,
    servers: ArcSwap<Vec<IcecastServer>>,
    metrics: Arc<Metrics>,
    /// Servers that reported sessions but have no entry (`server:port`), logged once each.
    unknown: Mutex<BTreeSet<String>>,
    /// The last resync of each configured server (`server:port`).
    resyncs: Mutex<BTreeMap<String, ResyncStatus>>,
    /// Wakes the resync task early: the servers were replaced.
    servers_changed: Arc<tokio::sync::Notify>,
    /// Kicks running at once, per server (`server:port`).
    kicking: Mutex<BTreeMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// What one kill asks for.
#[derive(Debug, Clone)]
enum Kill {
    Listener { mount: String, client: String },
    Source { mount: String },
}

impl IcecastAdmin {
    pub fn new(servers: Vec<IcecastServer>, metrics: Arc<Metrics>) -> IcecastAdmin {
        IcecastAdmin {
            http: client::http_client(),
            servers: ArcSwap::from_pointee(servers),
            metrics,
            unknown: Mutex::default(),
            resyncs: Mutex::default(),
            servers_changed: Arc::default(),
            kicking: Mutex::default(),
        }
    }

    /// Uses `servers` from now on (a reload), and resyncs them soon if they changed.
    pub fn set_servers(&self, servers: Vec<IcecastServer>) {
        if **self.servers.load() != servers {
            self.servers_changed.notify_one();
        }
        self.servers.store(Arc::new(servers));
        let names: BTreeSet<String> = self.servers.load().iter().map(name).collect();
        lock(&self.resyncs).retain(|n, _| names.contains(n));
        lock(&self.unknown).retain(|n| !names.contains(n));
    }

    pub fn servers(&self) -> Arc<Vec<IcecastServer>> {
        self.servers.load_full()
    }

    /// The entry for sessions Icecast reported with these `server` and `port` fields; without
    /// one, says so in the log once per server and counts the kick as `no_admin`.
    fn entry(&self, server: &str, port: &str, reason: DenyReason) -> Option<IcecastServer> {
        let found = self
            .servers
            .load()
            .iter()
            .find(|s| s.reported_as(server, port))
            .cloned();
        if found.is_none() {
            self.count(reason, "no_admin");
            if lock(&self.unknown).insert(format!("{server}:{port}")) {
                tracing::warn!(
                    server,
                    port,
                    "no [[icecast.servers]] entry for this Icecast: its sessions can be refused \
                     at their next callback but not dropped"
                );
            }
        }
        found
    }

    fn count(&self, reason: DenyReason, result: &str) {
        self.metrics
            .kicks
            .with_label_values(&[reason.label(), result])
            .inc();
    }

    /// Runs `kill` on `server` in the background, with retries, once one of the server's
    /// kick slots is free.
    fn spawn(&self, server: IcecastServer, kill: Kill, reason: DenyReason) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("cannot drop a session outside the runtime");
            self.count(reason, "failed");
            return;
        };
        let slots = lock(&self.kicking)
            .entry(name(&server))
            .or_insert_with(|| {
                Arc::new(tokio::sync::Semaphore::new(client::CONNECTIONS_PER_SERVER))
            })
            .clone();
        let http = self.http.clone();
        let metrics = self.metrics.clone();
        runtime.spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            let result = kill_with_retries(&http, &server, &kill, reason).await;
            metrics
                .kicks
                .with_label_values(&[reason.label(), result])
                .inc();
        });
    }

    /// Remembers how the resync of `server` went.
    fn record_resync(&self, server: &IcecastServer, at: DateTime<Utc>, error: Option<String>) {
        lock(&self.resyncs).insert(name(server), ResyncStatus { at, error });
    }

    /// `/readyz`'s `icecast` detail: each server's last resync, servers without an entry.
    pub fn readiness(&self) -> serde_json::Value {
        let servers = self.servers.load();
        let resyncs = lock(&self.resyncs);
        let listed: Vec<serde_json::Value> = servers
            .iter()
            .map(|s| {
                let status = resyncs.get(&name(s));
                serde_json::json!({
                    "server": s.server,
                    "port": s.port,
                    "resync": match status {
                        None => "pending",
                        Some(ResyncStatus { error: None, .. }) => "ok",
                        Some(_) => "failed",
                    },
                    "last_resync": status.map(|r| r.at.to_rfc3339()),
                    "error": status.and_then(|r| r.error.clone()),
                })
            })
            .collect();
        let unknown: Vec<String> = lock(&self.unknown).iter().cloned().collect();
        let mut detail = serde_json::json!({ "servers": listed, "without_entry": unknown });
        if servers.is_empty() {
            detail["note"] = "no [[icecast.servers]]: live state starts empty after a restart \
                              and live sessions cannot be dropped"
                .into();
        } else if !unknown.is_empty() {
            detail["note"] = "sessions on servers without_entry cannot be dropped".into();
        }
        detail
    }
}

fn name(s: &IcecastServer) -> String {
    format!("{}:{}", s.server, s.port)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Tries `kill` until Icecast answers it or the tries run out; the `jars_kicks_total` result.
async fn kill_with_retries(
    http: &reqwest::Client,
    server: &IcecastServer,
    kill: &Kill,
    reason: DenyReason,
) -> &'static str {
    let api = AdminApi { http, server };
    let mut wait = FIRST_RETRY;
    let (mount, client) = match kill {
        Kill::Listener { mount, client } => (mount.as_str(), Some(client.as_str())),
        Kill::Source { mount } => (mount.as_str(), None),
    };
    for attempt in 1..=KILL_TRIES {
        let outcome = match client {
            Some(id) => api.kill_client(mount, id).await,
            None => api.kill_source(mount).await,
        };
        let what = if client.is_some() {
            "listener"
        } else {
            "source"
        };
        match outcome {
            Ok(outcome) => {
                let result = match outcome {
                    KillOutcome::Dropped => "dropped",
                    KillOutcome::Gone => "gone",
                };
                tracing::info!(
                    server = server.server,
                    port = server.port,
                    mount,
                    client,
                    reason = reason.label(),
                    result,
                    "asked Icecast to drop the {what}"
                );
                return result;
            }
            Err(e) if attempt == KILL_TRIES => {
                tracing::warn!(
                    server = server.server, port = server.port, mount, client,
                    reason = reason.label(), error = %e, tries = attempt,
                    "could not drop the {what}: Icecast's admin API failed every try"
                );
            }
            Err(e) => {
                tracing::debug!(
                    server = server.server, port = server.port, mount, client, error = %e,
                    attempt, "dropping the {what} failed; retrying"
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    "failed"
}

impl Kicker for IcecastAdmin {
    fn kick(&self, session: &Session, reason: DenyReason) {
        let server = &session.key.server;
        if let Some(entry) = self.entry(&server.host, &server.port, reason) {
            let mount = session.mount.clone();
            let kill = match session.role() {
                Role::Listener => Kill::Listener {
                    mount,
                    client: session.key.id.clone(),
                },
                Role::Source => Kill::Source { mount },
            };
            self.spawn(entry, kill, reason);
        }
    }
}
