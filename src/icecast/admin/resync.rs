//! Rebuilding this node's live state from each configured Icecast's admin API: at start, then
//! every `[icecast] resync`. Live mounts come from `listmounts`, their listeners from
//! `listclients`; [`LiveState::replace_server`](crate::icecast::live::LiveState::replace_server)
//! swaps them in for that server at once. The event store is not written: `connected` and
//! `connected_by` stay what the callbacks recorded (the admin API cannot say who connected).

use std::sync::{Arc, Weak};

use chrono::Duration as ChronoDuration;

use super::{AdminApi, AdminError, IcecastAdmin};
use crate::config::IcecastServer;
use crate::icecast::decide::Hooks;
use crate::icecast::live::{ListenerSession, ResyncChange, ServerSnapshot, SourceSession};

/// Reads what `server` has: its live mounts jars decides, and their listeners.
async fn snapshot(api: &AdminApi<'_>, hooks: &Hooks) -> Result<ServerSnapshot, AdminError> {
    let server = api.server;
    let port = server.port.to_string();
    let now = hooks.clock.now();
    // Icecast's own counters; capped far below where chrono's arithmetic would overflow.
    let ago = |secs: u64| now - ChronoDuration::seconds(secs.min(1 << 40) as i64);
    let mut out = ServerSnapshot::default();
    for mount in api.list_mounts().await? {
        let Some(target) = hooks.target_of(&mount.mount) else {
            continue;
        };
        // The source left between the two requests: it is not live.
        let Some(clients) = api.list_clients(&mount.mount).await? else {
            continue;
        };
        out.listeners
            .extend(clients.into_iter().map(|c| ListenerSession {
                target: target.clone(),
                mount: mount.mount.clone(),
                server: server.server.clone(),
                port: port.clone(),
                client: c.id,
                ip: c.ip,
                ticket: None,
                member: None,
                started: ago(c.connected),
            }));
        out.sources.push((
            target,
            SourceSession {
                mount: mount.mount,
                server: server.server.clone(),
                port: port.clone(),
                since: ago(mount.connected),
            },
        ));
    }
    Ok(out)
}

/// Resyncs `server` now.
pub async fn resync_server(
    admin: &IcecastAdmin,
    hooks: &Hooks,
    server: &IcecastServer,
) -> Result<ResyncChange, AdminError> {
    let api = AdminApi {
        http: &admin.http,
        server,
    };
    hooks.live.begin_resync();
    match snapshot(&api, hooks).await {
        Ok(snap) => {
            let port = server.port.to_string();
            let change = hooks
                .live
                .replace_server(&server.server, &port, snap, hooks.clock.now());
            admin.record_resync(server, hooks.clock.now(), None);
            Ok(change)
        }
        Err(e) => {
            hooks.live.abandon_resync();
            admin.record_resync(server, hooks.clock.now(), Some(e.to_string()));
            Err(e)
        }
    }
}

/// Resyncs every configured server, one after the other, logging what changed and failures
/// (a failure once until it works again).
pub async fn resync_all(admin: &IcecastAdmin, hooks: &Hooks) {
    for server in admin.servers().iter() {
        let failed_before = super::lock(&admin.resyncs)
            .get(&super::name(server))
            .is_some_and(|r| r.error.is_some());
        match resync_server(admin, hooks, server).await {
            Ok(change) if change != ResyncChange::default() || failed_before => {
                tracing::info!(
                    server = server.server,
                    port = server.port,
                    listeners_added = change.listeners_added,
                    listeners_removed = change.listeners_removed,
                    sources_added = change.sources_added,
                    sources_removed = change.sources_removed,
                    "live state resynced from Icecast's admin API"
                );
            }
            Ok(_) => {}
            Err(e) if !failed_before => tracing::warn!(
                server = server.server,
                port = server.port,
                error = %e,
                "could not resync live state from Icecast's admin API; keeping what callbacks said"
            ),
            Err(_) => {}
        }
    }
}

/// Resyncs now, then every `[icecast] resync` and whenever a reload changes the servers, in
/// the background, for as long as `admin` and `hooks` are in use (the task holds weak
/// references).
pub fn start(admin: &Arc<IcecastAdmin>, hooks: &Arc<Hooks>) {
    let (admin, hooks): (Weak<IcecastAdmin>, Weak<Hooks>) =
        (Arc::downgrade(admin), Arc::downgrade(hooks));
    tokio::spawn(async move {
        loop {
            let (Some(a), Some(h)) = (admin.upgrade(), hooks.upgrade()) else {
                return;
            };
            resync_all(&a, &h).await;
            let wait = h.settings.load().resync;
            let changed = a.servers_changed.clone();
            drop((a, h));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = changed.notified() => {}
            }
        }
    });
}
