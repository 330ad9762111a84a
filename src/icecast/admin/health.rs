//! Health checks of every `[[icecast.servers]]` entry: every `[icecast] health_interval` (of
//! wall time) each server's `listmounts` is asked for, all servers at once, each bounded by
//! [`CHECK_TIMEOUT`]. What it answers (its mounts, what each is to jars, Icecast's count of
//! listeners) or why not goes to [`Placement::checked`], stamped with the node's clock; the
//! rule that turns that into healthy or not is [`crate::rules::placement::health`]. A server
//! turning unhealthy, or healthy again, is logged once.

use std::sync::{Arc, Weak};

use super::{AdminApi, IcecastAdmin};
use crate::icecast::decide::Hooks;
use crate::placement::{CheckedMount, Placement, CHECK_TIMEOUT};

/// Checks every configured server once, all at once.
pub async fn check_all(admin: &IcecastAdmin, hooks: &Hooks, placement: &Placement) {
    let mut checks = tokio::task::JoinSet::new();
    for server in placement.servers().iter() {
        let (http, server) = (admin.http.clone(), server.clone());
        checks.spawn(async move {
            let api = AdminApi {
                http: &http,
                server: &server,
            };
            let listed = tokio::time::timeout(CHECK_TIMEOUT, api.list_mounts()).await;
            let result = match listed {
                Ok(Ok(mounts)) => Ok(mounts),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            (server.name(), result)
        });
    }
    while let Some(done) = checks.join_next().await {
        let Ok((name, result)) = done else { continue };
        let result = result.map(|mounts| {
            mounts
                .into_iter()
                .map(|m| CheckedMount {
                    target: hooks.target_of(&m.mount),
                    mount: m.mount,
                    listeners: m.listeners,
                })
                .collect()
        });
        placement.checked(&name, result, hooks.clock.now());
    }
}

/// Checks now, then every health interval, for as long as `placement` is in use; logs each
/// server's changes between healthy and not.
pub fn start(admin: &Arc<IcecastAdmin>, hooks: &Arc<Hooks>, placement: &Arc<Placement>) {
    let (admin, hooks, placement): (Weak<IcecastAdmin>, Weak<Hooks>, Weak<Placement>) = (
        Arc::downgrade(admin),
        Arc::downgrade(hooks),
        Arc::downgrade(placement),
    );
    tokio::spawn(async move {
        let mut was: Vec<(String, &'static str)> = Vec::new();
        loop {
            let (Some(a), Some(h), Some(p)) =
                (admin.upgrade(), hooks.upgrade(), placement.upgrade())
            else {
                return;
            };
            check_all(&a, &h, &p).await;
            let now: Vec<(String, &'static str)> = p
                .statuses()
                .into_iter()
                .map(|s| {
                    let before = was.iter().find(|(n, _)| *n == s.name).map(|(_, l)| *l);
                    let label = s.health.label();
                    if before.is_some_and(|b| b != label)
                        || (before.is_none() && !s.health.is_healthy())
                    {
                        if s.health.is_healthy() {
                            tracing::info!(server = s.name, "Icecast server healthy again");
                        } else {
                            tracing::warn!(
                                server = s.name,
                                health = label,
                                error = s.error.as_deref(),
                                "Icecast server unhealthy: /listen sends it no listeners"
                            );
                        }
                    }
                    (s.name, label)
                })
                .collect();
            was = now;
            let interval = p.interval();
            drop((a, h, p));
            tokio::time::sleep(interval).await;
        }
    });
}
