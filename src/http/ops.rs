//! Operational endpoints: liveness, readiness, metrics, and the JSON 404 for unknown paths.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::{ApiError, AppState};
use crate::identity::IdentityError;

/// How long `/readyz` waits for the store before calling it unready.
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok\n")
}

/// `GET /readyz`: 200 when keys are loaded (and, on a verify-only node, not stale), the users
/// file (required on a node that issues tokens) is readable and parses, and the event store
/// answers; 503 with the reason otherwise. Either way, `callbacks` tells how full
/// the callback path is (`callbacks`); a full path is load, not unreadiness; and `icecast`
/// tells each `[[icecast.servers]]` entry's last resync and which servers have none.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let reason = if state.tokens.keys().verifying.is_empty() {
        Some("no keys loaded")
    } else if state.tokens.is_stale() {
        Some("key set stale")
    } else if let Err(e) = state.identity.check() {
        tracing::warn!(error = %e, "readiness: identity backend failed");
        // Where it fails stays in the log: the reason only says which backend to look at.
        Some(match e {
            IdentityError::UsersFileSyntax(_) => "users file does not parse",
            _ => "users file unavailable",
        })
    } else {
        match tokio::time::timeout(STORE_PING_TIMEOUT, state.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: event store failed");
                Some("event store unavailable")
            }
            Err(_) => Some("event store timed out"),
        }
    };
    state.metrics.ready.set(i64::from(reason.is_none()));
    let callbacks = callbacks(&state);
    let mut icecast = state.icecast_admin.readiness();
    with_placement(&state, &mut icecast);
    match reason {
        None => (
            StatusCode::OK,
            Json(serde_json::json!({ "ready": true, "callbacks": callbacks, "icecast": icecast })),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "error": "ServiceUnavailable",
                "reason": reason,
                "callbacks": callbacks,
                "icecast": icecast,
            })),
        ),
    }
}

/// Adds to each server of `/readyz`'s `icecast` detail what placement knows of it: its
/// listeners, capacity, listeners on their way, health and, when unhealthy, why; and the
/// station's listener licence.
fn with_placement(state: &AppState, icecast: &mut serde_json::Value) {
    let statuses = state.placement.statuses();
    if let Some(servers) = icecast["servers"].as_array_mut() {
        for entry in servers.iter_mut() {
            let name = format!(
                "{}:{}",
                entry["server"].as_str().unwrap_or_default(),
                entry["port"]
            );
            let Some(s) = statuses.iter().find(|s| s.name == name) else {
                continue;
            };
            entry["public_url"] = s.public_url.clone().into();
            entry["listeners"] = s.listeners.into();
            entry["capacity"] = s.capacity.into();
            entry["pending"] = s.pending.into();
            entry["health"] = s.health.label().into();
            if let Some(why) = why(s) {
                entry["why"] = why.into();
            }
        }
    }
    let caps = state.placement.caps();
    icecast["max_listeners"] = caps.station().into();
    icecast["node"] = caps.node().into();
}

/// Why a server is unhealthy, in a sentence for `/readyz` (no credentials: the admin API's
/// error is its status or the connection's failure).
fn why(s: &crate::placement::ServerStatus) -> Option<String> {
    use crate::rules::placement::Health;
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    let error = s.error.as_deref().unwrap_or("no answer");
    Some(match s.health {
        Health::Healthy => return None,
        Health::Unchecked => "its admin API has not been checked yet".into(),
        Health::AdminFailing { failures, since } => format!(
            "its admin API failed {failures} checks in a row ({error}); last answered {}",
            since.map_or("never".into(), at)
        ),
        Health::AdminQuiet { since } => {
            format!("its admin API has not answered since {}", at(since))
        }
        Health::CallbacksQuiet { sent, since } => format!(
            "{sent} listeners sent there since {} never arrived and it sent no callback: \
             can it reach jars?",
            at(since)
        ),
    })
}

/// The callback path's load: callbacks being decided, the cap, whether it is reached, and how
/// many callbacks were refused for want of a slot since start (`busy`, `peer_busy`); and
/// whether `[icecast] username/password` are set (`credentials`).
fn callbacks(state: &AppState) -> serde_json::Value {
    let m = &state.metrics;
    let in_progress = m.callbacks_in_progress.get().max(0) as u64;
    let capacity = state.api.load().limits.max_concurrent_callbacks as u64;
    let shed: u64 = ["busy", "peer_busy"]
        .iter()
        .map(|r| m.callbacks_shed.with_label_values(&[r]).get())
        .sum();
    // Without them any process on loopback or allowed_from can fake callbacks: shown, not
    // made unready (the original's config.json has none).
    let credentials = match state.hooks.settings.load().username {
        Some(_) => "set",
        None => "unset",
    };
    serde_json::json!({
        "in_progress": in_progress,
        "capacity": capacity,
        "saturated": in_progress >= capacity,
        "shed": shed,
        "credentials": credentials,
    })
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let totals = state.hooks.live.totals();
    m.live_mounts.set(totals.live_mounts as i64);
    m.listeners.set(totals.listeners as i64);
    let statuses = state.placement.statuses();
    m.servers
        .set(statuses.iter().map(|s| crate::metrics::ServerSample {
            name: &s.name,
            listeners: s.listeners,
            capacity: s.capacity,
            pending: s.pending,
            healthy: s.health.is_healthy(),
        }));
    m.key_set_age.set(state.tokens.key_set_age().as_secs_f64());
    if state.tokens.is_stale() || state.tokens.keys().verifying.is_empty() {
        m.ready.set(0);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
}

/// Any path jars does not serve.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
