//! Rebuilding this node's live state from each configured Icecast's admin API: at start, then
//! every `[icecast] resync` (on the node's clock), and after a failure again within seconds
//! (doubling up to the resync interval), so a jars started before its Icecast knows it as soon
//! as it answers. Live mounts come from `listmounts`, their listeners from `listclients` (read
//! as a stream); [`LiveState::replace_server`] swaps them in for that server.
//!
//! The first listing of a server since this node started is joined with the session rows
//! still open for it: a session that began before a restart gets back the ticket, member,
//! relay and start its row holds, so revocations and bans reach it. Sessions Icecast no longer
//! lists end their rows as `lost`. The event table is not written: `connected` and
//! `connected_by` stay what the callbacks recorded. Listeners from `[[icecast.trusted_relays]]`
//! (edge servers pulling a mount) are not sessions, as at `listener_add`.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::Duration as ChronoDuration;

use super::{AdminApi, AdminError, IcecastAdmin};
use crate::config::IcecastServer;
use crate::domain::{ServerId, Session, SessionKey};
use crate::icecast::decide::Hooks;
use crate::live::{LiveState, Resynced};

/// After a failed resync, the next try waits this long, doubling up to `[icecast] resync`.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Reads what `server` has: its live mounts jars decides, and their listeners.
async fn listing(api: &AdminApi<'_>, hooks: &Hooks) -> Result<Vec<Session>, AdminError> {
    let server = api.server.id();
    let now = hooks.clock.now();
    let relays = hooks.settings.load().trusted_relays.clone();
    let relay = |ip: &str| {
        ip.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| relays.iter().any(|r| r.contains(ip)))
    };
    // Icecast's own counters; capped far below where chrono's arithmetic would overflow.
    let ago = |secs: u64| now - ChronoDuration::seconds(secs.min(1 << 40) as i64);
    let mut out = Vec::new();
    for mount in api.list_mounts().await? {
        let Some(target) = hooks.target_of(&mount.mount) else {
            continue;
        };
        // The source left between the two requests: it is not live.
        let Some(clients) = api
            .list_clients(&mount.mount, api.server.max_listeners)
            .await?
        else {
            continue;
        };
        let session = |key: SessionKey, ip: String, agent, started| Session {
            key,
            mount: mount.mount.clone(),
            target: target.clone(),
            ip,
            agent,
            referer: None,
            ticket: None,
            member: None,
            relay: None,
            started,
            timelimit: None,
        };
        out.extend(clients.into_iter().filter(|c| !relay(&c.ip)).map(|c| {
            let key = SessionKey::listener(server.clone(), c.id);
            session(key, c.ip, c.agent, ago(c.connected))
        }));
        let key = SessionKey::source(server.clone(), mount.mount.clone());
        out.push(session(key, String::new(), None, ago(mount.connected)));
    }
    Ok(out)
}

/// `listed` with what the open rows of `server` say of the same sessions: what let each in,
/// its start and timelimit; a listener keeps the address Icecast lists (a row may keep less).
async fn joined_with_rows(hooks: &Hooks, server: &ServerId, listed: Vec<Session>) -> Vec<Session> {
    let Some(store) = hooks.sessions.store() else {
        return listed;
    };
    let rows = match store.open_sessions(server).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(server = %server, error = %e,
                "could not read the open session rows; sessions from before the restart \
                 carry no ticket or member");
            return listed;
        }
    };
    let mut rows: HashMap<SessionKey, Session> =
        rows.into_iter().map(|r| (r.key.clone(), r)).collect();
    listed
        .into_iter()
        .map(|s| match rows.remove(&s.key) {
            Some(row) if row.target == s.target => Session {
                ip: if s.ip.is_empty() { row.ip } else { s.ip },
                agent: s.agent.or(row.agent),
                ..row
            },
            _ => s,
        })
        .collect()
}

/// Resyncs `server` now.
pub async fn resync_server(
    admin: &IcecastAdmin,
    hooks: &Hooks,
    server: &IcecastServer,
) -> Result<Resynced, AdminError> {
    let api = AdminApi {
        http: &admin.http,
        server,
    };
    let live: &LiveState = &hooks.live;
    live.begin_resync();
    match listing(&api, hooks).await {
        Ok(listed) => {
            let id = server.id();
            let listed = if live.was_listed(&id) {
                listed
            } else {
                joined_with_rows(hooks, &id, listed).await
            };
            let now = hooks.clock.now();
            let resynced = live.replace_server(&id, listed, now);
            hooks.sessions.vanished(&resynced.vanished, now);
            admin.record_resync(server, now, None);
            Ok(resynced)
        }
        Err(e) => {
            live.abandon_resync();
            admin.record_resync(server, hooks.clock.now(), Some(e.to_string()));
            Err(e)
        }
    }
}

/// Resyncs every configured server, one after the other, logging what changed and failures
/// (a failure once until it works again); true when every one worked.
pub async fn resync_all(admin: &IcecastAdmin, hooks: &Hooks) -> bool {
    let mut all = true;
    for server in admin.servers().iter() {
        let failed_before = super::lock(&admin.resyncs)
            .get(&super::name(server))
            .is_some_and(|r| r.error.is_some());
        match resync_server(admin, hooks, server).await {
            Ok(r) if r.changed() || failed_before => {
                tracing::info!(
                    server = server.server,
                    port = server.port,
                    listeners_added = r.listeners_added,
                    listeners_removed = r.listeners_removed,
                    sources_added = r.sources_added,
                    sources_removed = r.sources_removed,
                    "live state resynced from Icecast's admin API"
                );
            }
            Ok(_) => {}
            Err(e) => {
                all = false;
                if !failed_before {
                    tracing::warn!(
                        server = server.server,
                        port = server.port,
                        error = %e,
                        "could not resync live state from Icecast's admin API; keeping what \
                         callbacks said and trying again soon"
                    );
                }
            }
        }
    }
    all
}

/// Resyncs now, then every `[icecast] resync` of the node's clock and whenever a reload
/// changes the servers; after a failure, again after [`FIRST_RETRY`] of wall time, doubling up
/// to the interval. Runs in the background for as long as `admin` and `hooks` are in use (the
/// task holds weak references).
pub fn start(admin: &Arc<IcecastAdmin>, hooks: &Arc<Hooks>) {
    let (admin, hooks): (Weak<IcecastAdmin>, Weak<Hooks>) =
        (Arc::downgrade(admin), Arc::downgrade(hooks));
    tokio::spawn(async move {
        let mut retry = FIRST_RETRY;
        loop {
            let (Some(a), Some(h)) = (admin.upgrade(), hooks.upgrade()) else {
                return;
            };
            let worked = resync_all(&a, &h).await;
            let interval = h.settings.load().resync;
            let changed = a.servers_changed.clone();
            let next = h.clock.sleep(interval);
            drop((a, h));
            if worked {
                retry = FIRST_RETRY;
                tokio::select! {
                    _ = next => {}
                    _ = changed.notified() => {}
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(retry.min(interval)) => {}
                    _ = next => {}
                    _ = changed.notified() => {}
                }
                retry = (retry * 2).min(interval);
            }
        }
    });
}
