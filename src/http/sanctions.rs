//! The API of issue 16: revoking tickets (`POST /jars/tickets/revoke`), bans (`POST`/`GET
//! /jars/bans`, `DELETE /jars/bans/{id}`), ending an event (`POST /jars/events/{id}/end`) and
//! an event's live sessions on this node (`GET /jars/events/{id}/sessions`). Each write is
//! applied on this node at once ([`crate::sanctions::Sanctions::changed`]); other nodes notice
//! it within two seconds.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::api::{not_banned_from, parse_event_id, verified, view};
use super::args::Args;
use super::{ApiError, AppState};
use crate::domain::Target;
use crate::identity::IdentityError;
use crate::log_input::Escaped;
use crate::rules;
use crate::rules::sanctions::Power;
use crate::sanctions::bans::{ban_ip, ban_member};
use crate::store::sanctions::{EventEnd, NewBan, RevokedTicket, TicketCutoff};
use crate::store::Event;
use crate::tokens::{Claims, Verified};

/// The caller's token (`auth` or `Authorization: Bearer`), verified, with current rights.
pub(super) async fn caller(state: &AppState, args: &Args) -> Result<Arc<Claims>, ApiError> {
    let token = args.token()?.ok_or(ApiError::MissingArgument("auth"))?;
    verified(state, token).await
}

/// An admin's token, or 403; a banned admin may not manage bans (nor lift their own).
async fn admin(state: &AppState, args: &Args) -> Result<Arc<Claims>, ApiError> {
    let claims = caller(state, args).await?;
    if !rules::sanctions::may_ban(&claims) {
        return Err(ApiError::NoUserPermission);
    }
    not_banned_from(state, &claims, Power::ManageBans)?;
    Ok(claims)
}

/// The event `id`, when `claims` may manage it (its owner or an admin, expired or not).
pub(super) async fn managed(
    state: &AppState,
    claims: &Claims,
    id: Uuid,
) -> Result<Event, ApiError> {
    let event = state.store.get_fresh(id).await?;
    rules::sanctions::may_manage(claims, event.as_ref())?;
    event.ok_or(ApiError::NonExistentOrExpiredEvent)
}

/// Distinct tickets of `event` in use on this node: by its listeners, and by its source.
fn tickets_in_use(state: &AppState, event: Uuid) -> usize {
    let target = Target::Event(event);
    let jtis: HashSet<String> = state
        .hooks
        .live
        .sessions_where(|s| s.target == target && s.ticket.is_some())
        .iter()
        .filter_map(|s| s.ticket.clone())
        .collect();
    jtis.len()
}

/// The event of ticket `jti` as this node sees it in use, if it does.
fn event_of_ticket(state: &AppState, jti: &str) -> Option<Uuid> {
    state
        .hooks
        .live
        .sessions_where(|s| s.ticket.as_deref() == Some(jti))
        .iter()
        .find_map(|s| s.event())
}

/// `POST /jars/tickets/revoke` with `auth` (the event's owner or an admin) and one of `ticket`
/// (the ticket itself), `jti` (with `mount` naming its event, unless this node sees it in use;
/// admins may omit both) or `mount` alone (every ticket of that event issued until now): 200
/// `{"revoked": n}`, n being the tickets newly revoked (for `mount`: those this node sees in
/// use; unused ones are revoked too, but jars keeps no list of minted tickets).
///
/// A revocation is recorded against the event its ticket belongs to as far as jars can tell
/// (the ticket's own `sub`, the event this node sees it admit, or the `mount` named by one who
/// manages it), never against another: revoking bob's `jti` on carol's event reaches only a
/// ticket of carol's event with that id (there is none), and bob's own revocation of it
/// still counts. Only an admin's `jti` alone, with no event known, is recorded for whichever
/// event. Each member's revocations count against `limits.revoke_per_minute`.
pub async fn revoke(
    State(state): State<AppState>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    let claims = caller(&state, &args).await?;
    state
        .api
        .load()
        .revoke_limiter
        .check(&format!("member:{}", claims.sub))
        .map_err(|retry| ApiError::TooManyRequests(retry.as_secs_f64().ceil() as u64))?;
    let now = state.clock.now();
    let mount = args.get("mount")?.map(parse_event_id).transpose()?;
    let revoked = if let Some(token) = args.get("ticket")? {
        let (event, jti, exp) = match state.tokens.verify_any(token).await? {
            Verified::Ticket(t) => (t.sub.clone(), t.jti.clone(), t.exp),
            Verified::Source(t) => (t.sub.clone(), t.jti.clone(), t.exp),
            Verified::User(_) => return Err(ApiError::InvalidArgument("ticket")),
        };
        let event = parse_event_id(&event)?;
        managed(&state, &claims, event).await?;
        let expires = DateTime::from_timestamp(exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
        revoke_one(&state, &claims, jti, event, expires, now).await?
    } else if let Some(jti) = args.get("jti")? {
        if !rules::sanctions::jti_fits(jti) {
            return Err(ApiError::InvalidArgument("jti"));
        }
        match mount.or_else(|| event_of_ticket(&state, jti)) {
            Some(event) => {
                let row = managed(&state, &claims, event).await?;
                // No ticket outlives its event, whose expiry never moves later.
                revoke_one(&state, &claims, jti.into(), event, row.expires_time, now).await?
            }
            None if claims.is_admin() => {
                // Unknown event: kept as long as any ticket minted now could live.
                let expires = now + lifetime(state.api.load().event_lifetime);
                revoke_one(&state, &claims, jti.into(), Uuid::nil(), expires, now).await?
            }
            None => return Err(ApiError::MissingArgument("mount")),
        }
    } else if let Some(event) = mount {
        managed(&state, &claims, event).await?;
        let cutoff = TicketCutoff { event, before: now };
        state
            .sanctions
            .store
            .revoke_event_tickets(cutoff, claims.sub)
            .await?;
        tracing::info!(event = %event, by = claims.sub, "every ticket of the event revoked");
        let in_use = tickets_in_use(&state, event);
        state.sanctions.changed().await;
        in_use
    } else {
        return Err(ApiError::MissingArgument("ticket"));
    };
    Ok(Json(serde_json::json!({ "revoked": revoked })))
}

/// How long a member past [`rules::sanctions::MAX_REVOKED_PER_MEMBER`] is asked to wait.
const REVOKED_CAP_RETRY: u64 = 3600;

fn lifetime(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
}

async fn revoke_one(
    state: &AppState,
    claims: &Claims,
    jti: String,
    event: Uuid,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    // What one member can make every node store is bounded.
    if !rules::sanctions::may_revoke_more(&state.sanctions.current(), claims) {
        return Err(ApiError::TooManyRequests(REVOKED_CAP_RETRY));
    }
    let row = RevokedTicket {
        jti,
        event,
        expires,
        created_by: claims.sub,
        created: now,
    };
    let new = state.sanctions.store.revoke_ticket(row.clone()).await?;
    if new {
        // The jti is the caller's: written escaped, it cannot start a line of its own.
        tracing::info!(event = %event, ticket = %Escaped(&row.jti), by = claims.sub, "ticket revoked");
        state.sanctions.changed().await;
    }
    Ok(usize::from(new))
}

/// `POST /jars/bans` (admins) with `ip` (an address or CIDR range) or `member` (a name or
/// numeric id), optional `event`, `for` (`24h`; absent: until removed) and `reason`: 201 with
/// the ban.
pub async fn add_ban(
    State(state): State<AppState>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    let claims = admin(&state, &args).await?;
    let (ip, member, member_name) = match (args.get("ip")?, args.get("member")?) {
        (Some(ip), None) => (
            Some(ban_ip(ip).ok_or(ApiError::InvalidArgument("ip"))?),
            None,
            None,
        ),
        (None, Some(m)) => {
            let (id, name) = ban_member(&state.identity, m).await.map_err(|e| match e {
                IdentityError::NoUser => ApiError::InvalidArgument("member"),
                other => other.into(),
            })?;
            (None, Some(id), name)
        }
        (Some(_), Some(_)) => return Err(ApiError::InvalidArgument("member")),
        (None, None) => return Err(ApiError::MissingArgument("ip")),
    };
    let event = args.get("event")?.map(parse_event_id).transpose()?;
    if let Some(id) = event {
        if state.store.get(id).await?.is_none() {
            return Err(ApiError::NonExistentOrExpiredEvent);
        }
    }
    let length = args
        .get("for")?
        .map(|f| crate::config::parse_duration("for", f))
        .transpose()
        .map_err(|_| ApiError::InvalidArgument("for"))?;
    if length.is_some_and(|l| l.is_zero()) {
        return Err(ApiError::InvalidArgument("for"));
    }
    let reason = args.get("reason")?.map(str::to_string);
    if reason.as_deref().is_some_and(|r| !rules::text_fits(r)) {
        return Err(ApiError::InvalidArgument("reason"));
    }
    let now = state.clock.now();
    let ban = state
        .sanctions
        .store
        .add_ban(NewBan {
            ip,
            member,
            member_name,
            event,
            reason,
            created_by: claims.sub,
            created: now,
            expires: rules::sanctions::ban_expiry(now, length),
        })
        .await?;
    tracing::info!(
        ban = ban.id,
        ip = ban.ip.as_deref(),
        member = ban.member,
        event = ban.event.map(tracing::field::display),
        by = claims.sub,
        "ban added"
    );
    state.sanctions.changed().await;
    Ok((StatusCode::CREATED, Json(ban)))
}

/// `GET /jars/bans` (admins): the bans in force, oldest first.
pub async fn list_bans(
    State(state): State<AppState>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    admin(&state, &args).await?;
    Ok(Json(state.sanctions.store.bans(state.clock.now()).await?))
}

/// `DELETE /jars/bans/{id}` (admins): 204, or 404 `NoSuchBanException`.
pub async fn remove_ban(
    State(state): State<AppState>,
    Path(id): Path<String>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    let claims = admin(&state, &args).await?;
    let id: i64 = id.trim().parse().map_err(|_| ApiError::NoSuchBan)?;
    if !state.sanctions.store.remove_ban(id).await? {
        return Err(ApiError::NoSuchBan);
    }
    tracing::info!(ban = id, by = claims.sub, "ban removed");
    state.sanctions.changed().await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /jars/events/{id}/end` (its owner or an admin): the event expires now; 200 with it.
pub async fn end_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    let claims = caller(&state, &args).await?;
    let id = parse_event_id(&id)?;
    managed(&state, &claims, id).await?;
    let now = state.clock.now();
    if !state
        .sanctions
        .store
        .end_event(EventEnd { event: id, at: now })
        .await?
    {
        return Err(ApiError::NonExistentOrExpiredEvent);
    }
    tracing::info!(event = %id, by = claims.sub, "event ended");
    state.sanctions.changed().await;
    let event = state
        .store
        .get_fresh(id)
        .await?
        .ok_or(ApiError::NonExistentOrExpiredEvent)?;
    Ok(Json(view(&state, event)))
}
