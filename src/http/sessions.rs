//! An event's live sessions on this node, for its owner or an admin: `GET
//! /jars/events/{id}/sessions` lists them (addresses as `[sessions] ip` keeps them), and `POST
//! /jars/events/{id}/sessions/drop` has Icecast drop one listener without revoking anything (its
//! row ends `kicked`, `dropped`).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::api::parse_event_id;
use super::args::Args;
use super::sanctions::{caller, managed};
use super::{ApiError, AppState};
use crate::domain::{DenyReason, Role, ServerId, SessionKey, Target};
use crate::log_input::Escaped;
use crate::sessions::ip::kept_ip;

#[derive(Serialize)]
struct SourceView {
    mount: String,
    server: String,
    port: String,
    since: DateTime<Utc>,
    ip: Option<String>,
    member: Option<i64>,
    ticket: Option<String>,
    relay: Option<String>,
}

#[derive(Serialize)]
struct ListenerView {
    mount: String,
    server: String,
    port: String,
    client: String,
    ip: Option<String>,
    agent: Option<String>,
    ticket: Option<String>,
    member: Option<i64>,
    started: DateTime<Utc>,
}

/// `GET /jars/events/{id}/sessions` (its owner or an admin): the event's source and listeners
/// as this node knows them; addresses as `[sessions] ip` keeps them.
pub async fn sessions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    let claims = caller(&state, &args).await?;
    let id = parse_event_id(&id)?;
    managed(&state, &claims, id).await?;
    let target = Target::Event(id);
    let ip_mode = state.hooks.sessions.ip_mode();
    let mut live = state.hooks.live.sessions_where(|s| s.target == target);
    live.sort_by(|a, b| (a.started, &a.key).cmp(&(b.started, &b.key)));
    let source = live
        .iter()
        .find(|s| s.role() == Role::Source)
        .map(|s| SourceView {
            mount: s.mount.clone(),
            server: s.key.server.host.clone(),
            port: s.key.server.port.clone(),
            since: s.started,
            ip: kept_ip(&s.ip, ip_mode),
            member: s.member,
            ticket: s.ticket.clone(),
            relay: s.relay.clone(),
        });
    let listeners: Vec<ListenerView> = live
        .iter()
        .filter(|s| s.role() == Role::Listener)
        .map(|s| ListenerView {
            mount: s.mount.clone(),
            server: s.key.server.host.clone(),
            port: s.key.server.port.clone(),
            client: s.key.id.clone(),
            ip: kept_ip(&s.ip, ip_mode),
            agent: s.agent.clone(),
            ticket: s.ticket.clone(),
            member: s.member,
            started: s.started,
        })
        .collect();
    Ok(Json(
        serde_json::json!({ "source": source, "listeners": listeners }),
    ))
}

/// `POST /jars/events/{id}/sessions/drop` (its owner or an admin) with `server`, `port` and
/// `client` as `/sessions` lists them: Icecast is asked to drop that listener (through its
/// admin API), nothing is revoked — the listener may come back with what let it in. 200
/// `{"dropped": 1}`; 404 `NoSuchSessionException` when this node has no such live listener on
/// the event.
pub async fn drop_listener(
    State(state): State<AppState>,
    Path(id): Path<String>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    let claims = caller(&state, &args).await?;
    let id = parse_event_id(&id)?;
    managed(&state, &claims, id).await?;
    let server = ServerId::new(args.require("server")?, args.require("port")?);
    let key = SessionKey::listener(server, args.require("client")?);
    let session = state
        .hooks
        .live
        .session(&key)
        .filter(|s| s.target == Target::Event(id))
        .ok_or(ApiError::NoSuchSession)?;
    let now = state.clock.now();
    if state.hooks.live.kick_due(&key, DenyReason::Dropped, now) {
        tracing::info!(event = %id, by = claims.sub, server = %Escaped(&key.server.to_string()),
            client = %Escaped(&key.id), "listener dropped by hand");
        state.sanctions.kicker().kick(&session, DenyReason::Dropped);
    }
    Ok(Json(serde_json::json!({ "dropped": 1 })))
}
