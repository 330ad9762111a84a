//! The JARS API: `/jars/pubkey`, `/jars/jwks.json`, `/jars/token`, `/jars/create`,
//! `/jars/connect`, `/jars/ticket`, `/jars/events`, `/jars/events/{id}`; and the record of every
//! outcome of `/jars/connect`, `/jars/token` and `/jars/ticket` (one log line, one sample).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use uuid::Uuid;

use super::args::{parse_bool, Args, ClientAddr};
use super::{ApiError, AppState};
use crate::icecast::Target;
use crate::identity::MemberError;
use crate::log_input::Escaped;
use crate::rules;
use crate::rules::sanctions::Power;
use crate::store::{Event, EventCursor, ListFilter, NewEvent, MAX_EVENT_LISTENERS};
use crate::tokens::{Claims, TicketBinding, TokenError};
use crate::webcast::{ApprovalError, Approver};

/// `GET /jars/pubkey`: the PEM public key tokens are signed with.
pub async fn pubkey(State(state): State<AppState>) -> impl IntoResponse {
    let pem = state.tokens.keys().public_pem().to_string();
    ([(header::CONTENT_TYPE, "application/x-pem-file")], pem)
}

/// `GET /jars/jwks.json`: every key tokens may be verified with, with its `kid`.
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.tokens.keys().jwks()),
    )
}

/// The actions `/jars/connect`, `/jars/token` and `/jars/ticket` are counted and logged as
/// (`jars_auth_decisions_total{action}`).
pub const DECIDED_ACTIONS: [&str; 3] = ["connect", "token", "ticket"];

/// What a decided request was about, for its log line: names and ids, never a secret.
#[derive(Default)]
struct Subject {
    event: Option<Uuid>,
    member: Option<i64>,
    /// The user name sent to `/jars/token`: request input, logged escaped.
    user: Option<String>,
}

/// Records one outcome of `action`: exactly one log line and one `jars_auth_decisions_total`
/// sample, whatever the outcome, so an operator sees every refusal with its client.
fn recorded<T>(
    state: &AppState,
    action: &'static str,
    client: Option<IpAddr>,
    subject: &Subject,
    outcome: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let (allowed, reason) = match &outcome {
        Ok(_) => (true, "ok"),
        Err(e) => (false, e.reason_label()),
    };
    state.metrics.decision(action, allowed, reason);
    let decision = if allowed { "allow" } else { "deny" };
    let client = client.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let event = subject.event.map(tracing::field::display);
    let user = subject
        .user
        .as_deref()
        .map(|u| tracing::field::display(Escaped(u)));
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                action,
                decision,
                reason,
                client = %client,
                event,
                member = subject.member,
                user,
                "api decision"
            )
        };
    }
    match &outcome {
        // A client over its limit, or jars short of something: worth an operator's look.
        Err(e) if matches!(e, ApiError::TooManyRequests(_)) || e.status().is_server_error() => {
            line!(warn)
        }
        // Client input is never reported as trouble.
        _ => line!(info),
    }
    outcome
}

/// `POST /jars/token` with `user`, `password`: a token for valid credentials.
pub async fn token(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    args: Result<Args, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let mut subject = Subject::default();
    let outcome = match args {
        Ok(args) => issue_token(&state, client, &args, &mut subject).await,
        Err(e) => Err(e),
    };
    recorded(&state, "token", client, &subject, outcome)
}

async fn issue_token(
    state: &AppState,
    client: Option<IpAddr>,
    args: &Args,
    subject: &mut Subject,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = args.require("user")?;
    subject.user = Some(user.to_string());
    let password = args.require("password")?;
    let api = state.api.load();
    let now = state.clock.now();
    // Only failures count, per address and per name (OWASP's advice): many members behind one
    // address log in freely, one name guessed from many addresses is slowed. Not per name from
    // a network that has logged in as that name: a third party cannot lock a member out.
    let known = client.is_some_and(|ip| api.known_logins.knows(user, ip, now));
    let keys: Vec<String> = client
        .map(|ip| format!("ip:{ip}"))
        .into_iter()
        .chain((!known).then(|| format!("user:{user}")))
        .collect();
    // Counted now, given back unless the password was wrong, so that concurrent guesses
    // cannot all pass before the first failure is counted.
    for (i, key) in keys.iter().enumerate() {
        if let Err(retry) = api.token_limiter.check(key) {
            keys[..i].iter().for_each(|k| api.token_limiter.refund(k));
            return Err(too_many(retry));
        }
    }
    let settle = |failed_login: bool| {
        if !failed_login {
            keys.iter().for_each(|k| api.token_limiter.refund(k));
        }
    };
    if !state.tokens.can_sign() {
        // A verify-only node: tokens come from the issuer named in tokens.jwks_url.
        settle(false);
        return Err(TokenError::NoSigningKey.into());
    }
    let member = match state.identity.authenticate(user, password).await {
        Ok(m) => m,
        Err(e) => {
            settle(matches!(e, crate::identity::IdentityError::NoUser));
            return Err(e.into());
        }
    };
    settle(false);
    if let Some(ip) = client {
        api.known_logins.remember(user, ip, now);
    }
    subject.member = Some(member.id);
    let tokens = state.tokens.clone();
    let (token, _) = state
        .signing
        .run(move || tokens.issue(member.id, member.access_level, None))
        .await?;
    Ok(Json(serde_json::json!({ "token": token })))
}

/// 429 with the seconds until the next request is allowed.
fn too_many(retry: std::time::Duration) -> ApiError {
    ApiError::TooManyRequests(retry.as_secs_f64().ceil() as u64)
}

/// Counts one request of `member` against `limiter` (`create_limiter`, `ticket_limiter`).
fn member_within(limiter: &crate::rate_limit::RateLimiter, member: i64) -> Result<(), ApiError> {
    limiter.check(&format!("member:{member}")).map_err(too_many)
}

/// 403 `Banned` when a ban in force takes `power` from the member
/// ([`rules::sanctions::ban_takes`]).
pub(super) fn not_banned_from(
    state: &AppState,
    claims: &Claims,
    power: Power,
) -> Result<(), ApiError> {
    rules::sanctions::ban_takes(
        &state.sanctions.current(),
        claims.sub,
        power,
        state.clock.now(),
    )
    .map_err(|_| ApiError::Banned)
}

/// A verified user token, with the member's current rights
/// ([`crate::identity::Identity::verify_member`]).
pub(super) async fn verified(state: &AppState, token: &str) -> Result<Arc<Claims>, ApiError> {
    state
        .identity
        .verify_member(&state.tokens, token)
        .await
        .map_err(|e| match e {
            MemberError::Token(e) => ApiError::Token(e),
            MemberError::Removed => ApiError::UserRemoved,
            MemberError::Identity(e) => e.into(),
        })
}

/// An event id as the original accepted it (a v4 UUID), and as the Icecast side spells its
/// mount: with or without a leading `/` and an audio extension (`<id>.mp3`: what
/// webcaster-relay sends for a DJ on `wss://relay/<id>.mp3`).
pub fn parse_event_id(text: &str) -> Result<Uuid, ApiError> {
    let text = text.strip_prefix('/').unwrap_or(text);
    let text =
        crate::icecast::decode::without_extension(text).ok_or(ApiError::InvalidIdentifier)?;
    Uuid::try_parse(text)
        .ok()
        .filter(|u| u.get_version_num() == 4)
        .ok_or(ApiError::InvalidIdentifier)
}

/// A title or description that fits the original's `VARCHAR(255)`.
fn bounded_text(text: &str, name: &'static str) -> Result<String, ApiError> {
    if !rules::text_fits(text) {
        return Err(ApiError::StringDataRightTruncation(name));
    }
    Ok(text.to_string())
}

/// `POST /jars/create` with `auth`, `title`, `description`, `private`, and (admins only)
/// `max_listeners`: a new event, 201.
pub async fn create(
    State(state): State<AppState>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    // The original's order: it read `title`, `description` and `private`, then the token;
    // its database then refused a `private` that is not a boolean word before a text too
    // long (PostgreSQL converts the literal while planning the INSERT, and checks lengths
    // after).
    let title = args.require("title")?;
    let description = args.require("description")?;
    let private = args.require("private")?;
    let claims = verified(&state, args.require("auth")?).await?;
    let private = parse_bool(private).ok_or(ApiError::InvalidTextRepresentation("private"))?;
    let title = bounded_text(title, "title")?;
    let description = bounded_text(description, "description")?;
    not_banned_from(&state, &claims, Power::CreateEvent)?;
    let max_listeners = match args.get("max_listeners")? {
        None => None,
        Some(text) => {
            let cap = rules::caps::event_cap(text, MAX_EVENT_LISTENERS, true)
                .map_err(|_| ApiError::InvalidArgument("max_listeners"))?;
            if cap.is_some() && !rules::caps::may_cap_events(&claims) {
                return Err(ApiError::NoUserPermission);
            }
            cap
        }
    };
    member_within(&state.api.load().create_limiter, claims.sub).inspect_err(|_| {
        tracing::warn!(member = claims.sub, "event creation over the rate limit");
    })?;
    let event = state
        .store
        .create(NewEvent {
            created_by: claims.sub,
            title,
            description,
            private,
            lifetime: state.api.load().event_lifetime,
            now: state.clock.now(),
            max_listeners,
        })
        .await?;
    tracing::info!(event = %event.id, by = claims.sub, private, max_listeners, "event created");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "event_id": event.id })),
    ))
}

/// `POST /jars/connect` with `auth`, `mount`: 202 when the member (or the guest whose source
/// ticket `auth` is) may broadcast to the event, which is then marked connected by them (by
/// the ticket's minter).
pub async fn connect(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    args: Result<Args, ApiError>,
) -> Result<StatusCode, ApiError> {
    let mut subject = Subject::default();
    let outcome = match args {
        Ok(args) => approve_connect(&state, &args, &mut subject).await,
        Err(e) => Err(e),
    };
    recorded(&state, "connect", client, &subject, outcome)
}

async fn approve_connect(
    state: &AppState,
    args: &Args,
    subject: &mut Subject,
) -> Result<StatusCode, ApiError> {
    let approver = &approver(state);
    // A member's token, or a guest's source ticket: webcaster-relay sends either as `auth`.
    let credential = approver
        .verify(args.require("auth")?)
        .await
        .map_err(approval_error)?;
    subject.member = Some(credential.member());
    let id = parse_event_id(args.require("mount")?)?;
    subject.event = Some(id);
    approver
        .approve(&credential, id, None)
        .await
        .map_err(approval_error)?;
    if let Some((jti, _)) = credential.ticket() {
        tracing::info!(event = %id, by = credential.member(), ticket = %jti,
            "a guest's source ticket approved for a relay");
    }
    Ok(StatusCode::ACCEPTED)
}

/// Relay approvals on this state's token service, identity, store, sanctions and clock.
pub(super) fn approver(state: &AppState) -> Approver {
    Approver {
        tokens: state.tokens.clone(),
        identity: state.identity.clone(),
        store: state.store.clone(),
        sanctions: state.sanctions.clone(),
        live: state.hooks.live.clone(),
        clock: state.clock.clone(),
    }
}

/// A refused approval as the API answers it: token and identity failures as for any user
/// token ([`verified`]), the rules' refusals by name.
pub(super) fn approval_error(e: ApprovalError) -> ApiError {
    match e {
        ApprovalError::Member(MemberError::Token(e)) => ApiError::Token(e),
        ApprovalError::Member(MemberError::Removed) => ApiError::UserRemoved,
        ApprovalError::Member(MemberError::Identity(e)) => e.into(),
        ApprovalError::Denied(r) => r.into(),
        ApprovalError::Store(e) => e.into(),
    }
}

async fn viewer(state: &AppState, args: &Args) -> Result<Option<Arc<Claims>>, ApiError> {
    match args.token()? {
        Some(t) => Ok(Some(verified(state, t).await?)),
        None => Ok(None),
    }
}

/// An event as the API shows it: the row plus this node's live state.
#[derive(serde::Serialize)]
pub struct EventView {
    #[serde(flatten)]
    event: Event,
    /// The owner's (`created_by`) user name, for members, where the identity backend keeps
    /// names; `null` for visitors without a token, who are not told members' login names.
    owner_name: Option<String>,
    /// A source is streaming to the event's mount on this node's Icecast.
    live: bool,
    /// Current listeners, summed over the Icecast servers reporting to this node.
    listeners: u32,
    peak_listeners: u32,
    /// The title the DJ's webcast client last sent (`metadata`), while live through this
    /// node's `/webcast`.
    stream_title: Option<String>,
}

/// The event as shown to a caller with a member's token (its owner's name included).
pub(super) fn view(state: &AppState, event: Event) -> EventView {
    view_for(state, event, true)
}

/// The event as shown; `named`: with its owner's name (the caller presented a member's token).
fn view_for(state: &AppState, event: Event, named: bool) -> EventView {
    let m = state.hooks.live.mount(&Target::Event(event.id));
    let owner_name = named
        .then(|| state.identity.name_of(event.created_by))
        .flatten();
    EventView {
        owner_name,
        live: m.live(),
        listeners: m.listeners,
        peak_listeners: m.peak_listeners,
        stream_title: state.webcast.registry.title(event.id),
        event,
    }
}

/// `GET /jars/events[?all=1][&limit=N][&after=CURSOR]`: one page of the events the caller may
/// see, newest first. When more follow, `X-Next-Cursor` and `Link: <…>; rel="next"` name the
/// next page.
pub async fn list_events(
    State(state): State<AppState>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    let page =
        rules::page_size(optional(&args, "limit")?).ok_or(ApiError::InvalidArgument("limit"))?;
    let after = args
        .get("after")?
        .map(|a| EventCursor::decode(a.trim()).ok_or(ApiError::InvalidArgument("after")))
        .transpose()?;
    let all = args.flag("all")?;
    let viewer = viewer(&state, &args).await?;
    let filter = ListFilter {
        // One more than the page: whether it comes back says whether a next page exists.
        limit: Some(page + 1),
        after,
        ..rules::list_filter(viewer.as_deref(), all, state.clock.now())
    };
    let mut events = {
        let slots = state.api.load().list_slots.clone();
        let _slot = slots
            .acquire()
            .await
            .map_err(|_| ApiError::ServiceUnavailable)?;
        state.store.list(filter).await?
    };
    let mut headers = HeaderMap::new();
    if events.len() > page as usize {
        events.truncate(page as usize);
        if let Some(last) = events.last() {
            let cursor = EventCursor::after(last).encode();
            let all = if all { "&all=1" } else { "" };
            let link = format!("</jars/events?limit={page}&after={cursor}{all}>; rel=\"next\"");
            // Base64url text: always a valid header value.
            if let (Ok(c), Ok(l)) = (cursor.parse(), link.parse()) {
                headers.insert(NEXT_CURSOR, c);
                headers.insert(header::LINK, l);
            }
        }
    }
    let named = viewer.is_some();
    let views: Vec<EventView> = events
        .into_iter()
        .map(|e| view_for(&state, e, named))
        .collect();
    Ok((headers, Json(views)))
}

/// The header naming the next page's cursor (also given in `Link`).
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// `GET /jars/events/{id}`: one event, under the same visibility rules as the list.
pub async fn get_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    let viewer = viewer(&state, &args).await?;
    let id = parse_event_id(&id)?;
    let all = args.flag("all")?;
    match state.store.get(id).await? {
        Some(e) if rules::may_see(viewer.as_deref(), &e, all, state.clock.now()) => {
            Ok(Json(view_for(&state, e, viewer.is_some())))
        }
        _ => Err(ApiError::NonExistentOrExpiredEvent),
    }
}

/// `POST /jars/events/{id}/max_listeners` with `auth` (an admin's token) and `max_listeners`
/// (a number, or empty / `none` to remove the cap): the event as `/jars/events/{id}` shows it.
/// Listeners already in stay; the cap holds for the next ones, on every node within the store
/// cache's few seconds.
pub async fn set_max_listeners(
    State(state): State<AppState>,
    Path(id): Path<String>,
    args: Args,
) -> Result<impl IntoResponse, ApiError> {
    let claims = verified(&state, args.require("auth")?).await?;
    let id = parse_event_id(&id)?;
    let cap = rules::caps::event_cap(args.require("max_listeners")?, MAX_EVENT_LISTENERS, true)
        .map_err(|_| ApiError::InvalidArgument("max_listeners"))?;
    if !rules::caps::may_cap_events(&claims) {
        return Err(ApiError::NoUserPermission);
    }
    if !state.store.set_max_listeners(id, cap).await? {
        return Err(ApiError::NonExistentOrExpiredEvent);
    }
    tracing::info!(event = %id, by = claims.sub, max_listeners = cap, "event listener cap set");
    let event = state
        .store
        .get_fresh(id)
        .await?
        .ok_or(ApiError::NonExistentOrExpiredEvent)?;
    Ok(Json(view(&state, event)))
}

fn optional<T: std::str::FromStr>(args: &Args, name: &'static str) -> Result<Option<T>, ApiError> {
    args.get(name)?
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| ApiError::InvalidArgument(name))
        })
        .transpose()
}

/// `POST /jars/ticket` with `auth`, `mount`, optional `lifetime` (seconds), `ip`, `referer`,
/// `max_listeners`: a listener ticket for one event, minted by its owner or an admin; with
/// `kind=source` (and no bindings), a guest's source ticket for it instead.
pub async fn ticket(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    args: Result<Args, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let mut subject = Subject::default();
    let outcome = match args {
        Ok(args) => mint_ticket(&state, &args, &mut subject).await,
        Err(e) => Err(e),
    };
    recorded(&state, "ticket", client, &subject, outcome)
}

async fn mint_ticket(
    state: &AppState,
    args: &Args,
    subject: &mut Subject,
) -> Result<Json<serde_json::Value>, ApiError> {
    let claims = verified(state, args.require("auth")?).await?;
    subject.member = Some(claims.sub);
    let id = parse_event_id(args.require("mount")?)?;
    subject.event = Some(id);
    let lifetime: Option<u64> = optional(args, "lifetime")?;
    let source = match args.get("kind")?.map(str::trim) {
        None | Some("listener") => false,
        Some("source") => true,
        Some(_) => return Err(ApiError::InvalidArgument("kind")),
    };
    if source {
        // A source ticket binds nothing but its event.
        for name in ["ip", "referer", "max_listeners"] {
            if args.get(name)?.is_some() {
                return Err(ApiError::InvalidArgument(name));
            }
        }
    }
    let ip: Option<std::net::IpAddr> = optional(args, "ip")?;
    let referer = args.get("referer")?.map(str::to_string);
    if referer
        .as_deref()
        .is_some_and(|r| !rules::ticket::referer_fits(r))
    {
        return Err(ApiError::InvalidArgument("referer"));
    }
    let max_listeners: Option<u32> = optional(args, "max_listeners")?;
    if max_listeners == Some(0) {
        return Err(ApiError::InvalidArgument("max_listeners"));
    }
    let power = if source {
        Power::MintSourceTicket(id)
    } else {
        Power::MintTicket(id)
    };
    not_banned_from(state, &claims, power)?;
    // The decision line (see `record`) says when this is over the limit.
    member_within(&state.api.load().ticket_limiter, claims.sub)?;
    let event = state.store.get(id).await?;
    let now = state.clock.now();
    rules::may_mint_ticket(&claims, event.as_ref(), now)?;
    let event = event.ok_or(ApiError::NonExistentOrExpiredEvent)?;
    let lifetime = rules::ticket_lifetime(
        lifetime.map(std::time::Duration::from_secs),
        state.hooks.settings.load().ticket_lifetime,
        &event,
        now,
    )
    .map_err(|_| ApiError::InvalidArgument("lifetime"))?;
    let tokens = state.tokens.clone();
    if source {
        let by = claims.sub;
        let (ticket, t) = state
            .signing
            .run(move || tokens.issue_source_ticket(id, by, lifetime))
            .await?;
        tracing::info!(event = %id, by, ticket = %t.jti, "source ticket minted");
        return Ok(Json(
            serde_json::json!({ "ticket": ticket, "expires": t.exp, "jti": t.jti }),
        ));
    }
    let binding = TicketBinding {
        ip: ip.map(|ip| ip.to_string()),
        referer,
        max_listeners,
    };
    let (ticket, t) = state
        .signing
        .run(move || tokens.issue_ticket(id, lifetime, binding))
        .await?;
    Ok(Json(
        serde_json::json!({ "ticket": ticket, "expires": t.exp, "jti": t.jti }),
    ))
}
