//! The Icecast hooks: each decoded [`Callback`] decided. This module gathers the inputs
//! (the event row, verified tokens, live state, the clock's `now`), asks [`crate::rules`],
//! and records what Icecast reports into [`LiveState`] and the store. Knows nothing of HTTP;
//! `http::icecast` renders the [`Verdict`] as Icecast's response headers.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;

use crate::clock::SharedClock;
use crate::config::{Access, IcecastSettings, OnStoreError};
use crate::domain::{Session, SessionKey, Target};
use crate::icecast::decode::{self, Callback, Credentials, Mount, Origin};
use crate::identity::{Identity, MemberError};
use crate::live::{Allowed, LiveState};
use crate::log_input::Escaped;
use crate::placement::Caps;
use crate::rules::sanctions::Party;
use crate::rules::{
    self, CallbackCredentials, ListenTo, Listener, Presented, RelayHistory, RelayWindows,
};
use crate::sanctions::Sanctions;
use crate::sessions::SessionWriter;
use crate::store::{Event, EventStore};
use crate::tokens::{Claims, SourceTicketClaims, TokenError, TokenService, Verified};

pub use crate::rules::DenyReason;

/// The answer to a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the source or listener in; listeners are cut off after `timelimit` seconds.
    Allow {
        timelimit: Option<u64>,
    },
    Deny(DenyReason),
    /// A notification (`mount_add`, `mount_remove`, `listener_remove`) was recorded; Icecast
    /// ignores the answer.
    Noted,
}

/// Decides callbacks.
pub struct Hooks {
    pub tokens: Arc<TokenService>,
    /// Whether a token's member still exists, and with what access level.
    pub identity: Arc<Identity>,
    pub store: Arc<dyn EventStore>,
    pub live: Arc<LiveState>,
    /// Replaced as a whole on reload.
    pub settings: ArcSwap<IcecastSettings>,
    /// Where `now` comes from.
    pub clock: SharedClock,
    /// Where listener sessions are recorded, off the callback path.
    pub sessions: Arc<SessionWriter>,
    /// Bans, revocations and early ends in force.
    pub sanctions: Arc<Sanctions>,
    /// The station's and events' listener caps, over every server and node.
    pub caps: Arc<Caps>,
}

/// Who a `stream_auth` password says the source is.
enum Sourcer {
    /// A trusted relay (`[[icecast.trusted_sources]]`).
    Relay,
    /// A member's token, with the member's current rights.
    Member(Arc<Claims>),
    /// A guest's source ticket.
    Guest(Arc<SourceTicketClaims>),
}

fn equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Hooks {
    /// Whether a callback is from our Icecast ([`rules::may_send_callbacks`]): its HTTP Basic
    /// credentials (compared in constant time with the configured ones) and `caller`, its
    /// address (`None`: unknown).
    pub fn caller_is_icecast(
        &self,
        basic: Option<(&str, &str)>,
        caller: Option<std::net::IpAddr>,
    ) -> Result<(), DenyReason> {
        let settings = self.settings.load();
        let credentials = match (&settings.username, &settings.password) {
            (Some(u), Some(p)) if basic.is_some_and(|(bu, bp)| equal(bu, u) & equal(bp, p)) => {
                CallbackCredentials::Right
            }
            (Some(_), Some(_)) => CallbackCredentials::Wrong,
            _ => CallbackCredentials::Unset,
        };
        rules::may_send_callbacks(credentials, caller, &settings.allowed_from)
    }

    /// What `mount` is: an event's mount, or a static one with its configured access.
    fn classify(&self, mount: &Mount<'_>) -> Option<(Target, Access)> {
        if let Some(id) = mount.event_id() {
            // Events decide their own access (public or private); this one is never read.
            return Some((Target::Event(id), Access::Public));
        }
        self.settings
            .load()
            .mounts
            .iter()
            .find(|m| m.name == mount.path())
            .map(|m| (Target::Static(m.name.clone()), m.access))
    }

    /// What the mount Icecast names `path` is to jars, if anything (as for a callback).
    pub fn target_of(&self, path: &str) -> Option<Target> {
        self.classify(&Mount::new(path)).map(|(t, _)| t)
    }

    /// Decides `callback`.
    pub async fn decide(&self, callback: &Callback<'_>) -> Verdict {
        let (Callback::StreamAuth { origin, .. }
        | Callback::MountAdd { origin, .. }
        | Callback::MountRemove { origin, .. }
        | Callback::ListenerAdd { origin, .. }
        | Callback::ListenerRemove { origin, .. }) = callback;
        // Whether its callbacks arrive is part of a server's health.
        self.live
            .heard_from(&origin.server, &origin.port, self.clock.now());
        match callback {
            Callback::StreamAuth {
                mount,
                credentials,
                ip,
                ..
            } => self.stream_auth(mount, ip, credentials).await,
            Callback::MountAdd { mount, origin } => self.mount_add(mount, origin).await,
            Callback::MountRemove { mount, origin } => self.mount_remove(mount, origin).await,
            Callback::ListenerAdd {
                mount,
                origin,
                client,
                ip,
                credentials,
                agent,
                headers,
            } => {
                let listener = Joining {
                    client,
                    ip,
                    agent: *agent,
                    headers,
                };
                self.listener_add(mount, origin, listener, credentials)
                    .await
            }
            Callback::ListenerRemove {
                origin,
                client,
                duration,
                ..
            } => {
                let now = self.clock.now();
                let key = SessionKey::listener(origin.server_id(), client.as_ref());
                let ended = self.live.listener_left(&key, now);
                self.sessions.closed(key, ended.as_ref(), now, *duration);
                Verdict::Noted
            }
        }
    }

    /// The event's row; when the store fails, with `on_store_error = "cached"`, the last row
    /// this node read of it (never an expired event's), else a denial.
    async fn event(&self, id: uuid::Uuid, fresh: bool) -> Result<Option<Arc<Event>>, DenyReason> {
        let row = if fresh {
            self.store.get_fresh(id).await.map(|e| e.map(Arc::new))
        } else {
            self.store.get_shared(id).await
        };
        match row {
            Ok(row) => Ok(row),
            Err(e) => {
                if self.settings.load().on_store_error == OnStoreError::Cached {
                    if let Some(last) = self.store.last_known(id).await {
                        tracing::warn!(error = %e, event = %id,
                            "event store failed during a callback; deciding on the last known row");
                        return Ok(Some(Arc::new(last)));
                    }
                }
                tracing::error!(error = %e, event = %id, "event store failed during a callback");
                Err(DenyReason::StoreUnavailable)
            }
        }
    }

    /// Whether `c` are a trusted relay's credentials.
    fn trusted_source(&self, c: &Credentials<'_>) -> bool {
        // Check every entry so timing does not tell which user names exist.
        self.settings
            .load()
            .trusted_sources
            .iter()
            .fold(false, |found, t| {
                found | (equal(&c.user, &t.user) & equal(&c.pass, &t.password))
            })
    }

    /// Who the password of a `stream_auth` says the source is.
    async fn sourcer(&self, c: &Credentials<'_>) -> Result<Sourcer, DenyReason> {
        if self.trusted_source(c) {
            return Ok(Sourcer::Relay);
        }
        match self.tokens.verify_any(&c.pass).await {
            Ok(Verified::User(claims)) => self
                .identity
                .current(claims)
                .map(Sourcer::Member)
                .map_err(Self::member_denial),
            Ok(Verified::Source(t)) => Ok(Sourcer::Guest(t)),
            Ok(Verified::Ticket(_)) => Err(DenyReason::Token(TokenError::WrongKind)),
            Err(e) => Err(DenyReason::Token(e)),
        }
    }

    async fn stream_auth(&self, mount: &Mount<'_>, ip: &str, c: &Credentials<'_>) -> Verdict {
        let Some((target, _)) = self.classify(mount) else {
            return Verdict::Deny(DenyReason::UnknownMount);
        };
        if c.pass.is_empty() {
            return Verdict::Deny(DenyReason::NoCredentials);
        }
        // A trusted relay, a member's token, or a guest's source ticket.
        let sourcer = match self.sourcer(c).await {
            Ok(s) => s,
            Err(r) => return Verdict::Deny(r),
        };
        let now = self.clock.now();
        // For a relay: the member `/jars/connect` approved (the event's `connected_by`), and
        // that approval as this node saw it (a guest's ticket, the DJ's address).
        let mut relayed_for = None;
        let mut approval = None;
        let decision = match (&target, &sourcer) {
            (Target::Static(_), Sourcer::Relay) => rules::may_source_static(None),
            (Target::Static(_), Sourcer::Member(claims)) => rules::may_source_static(Some(claims)),
            (Target::Static(_), Sourcer::Guest(_)) => Err(DenyReason::TicketForAnotherEvent),
            (Target::Event(id), sourcer) => {
                // A source decision must not act on a row cached before a /jars/connect.
                let event = match self.event(*id, true).await {
                    Ok(e) => e,
                    Err(r) => return Verdict::Deny(r),
                };
                match sourcer {
                    Sourcer::Member(claims) => {
                        rules::may_connect(claims, event.as_deref(), now).map_err(DenyReason::from)
                    }
                    Sourcer::Guest(t) => match self.identity.standing(t.by) {
                        Ok(minter) => rules::sanctions::may_source_with_ticket(
                            t,
                            minter,
                            event.as_deref(),
                            *id,
                            now,
                        ),
                        Err(e) => Err(Self::member_denial(MemberError::Identity(e))),
                    },
                    Sourcer::Relay => {
                        let settings = self.settings.load();
                        let mount = self.live.mount(&target);
                        let history = RelayHistory {
                            live: mount.live(),
                            dropped: mount
                                .relay_dropped
                                .as_ref()
                                .map(|(r, at)| (r.as_str(), *at)),
                        };
                        let windows = RelayWindows {
                            approval: settings.relay_window,
                            reconnect: settings.relay_reconnect,
                        };
                        relayed_for = event.as_ref().and_then(|e| e.connected_by);
                        approval = mount.approved.filter(|a| Some(a.member) == relayed_for);
                        rules::relay_may_source(event.as_deref(), &c.user, history, windows, now)
                    }
                }
            }
        };
        if let Err(r) = decision {
            return Verdict::Deny(r);
        }
        let party = match &sourcer {
            Sourcer::Relay => Party {
                ip: approval
                    .as_ref()
                    .and_then(|a| a.ip.as_deref())
                    .unwrap_or(ip),
                member: relayed_for,
                ticket: approval
                    .as_ref()
                    .and_then(|a| a.ticket.as_ref())
                    .map(|(jti, iat)| (jti.as_str(), *iat)),
            },
            Sourcer::Member(claims) => Party {
                ip,
                member: Some(claims.sub),
                ticket: None,
            },
            Sourcer::Guest(t) => Party {
                ip,
                member: Some(t.by),
                ticket: Some((&t.jti, t.iat)),
            },
        };
        let event = match &target {
            Target::Event(id) => Some(*id),
            Target::Static(_) => None,
        };
        if let Err(r) = rules::sanctions::admits(&self.sanctions.current(), &party, event, now) {
            return Verdict::Deny(r);
        }
        let allowed = Allowed {
            member: party.member,
            ticket: party.ticket.map(|(jti, _)| jti.to_string()),
            relay: matches!(sourcer, Sourcer::Relay).then(|| c.user.to_string()),
            ip: party.ip.to_string(),
        };
        self.live.source_allowed(&target, allowed);
        Verdict::Allow { timelimit: None }
    }

    async fn mount_add(&self, mount: &Mount<'_>, origin: &Origin<'_>) -> Verdict {
        let Some((target, _)) = self.classify(mount) else {
            return Verdict::Noted;
        };
        let now = self.clock.now();
        let allowed = self.live.mount(&target).allowed.unwrap_or_default();
        // Persist first, then show it live: whoever sees `live` also sees `connected`.
        if let Target::Event(id) = target {
            if let Err(e) = self.store.mark_connected(id, allowed.member, now).await {
                tracing::error!(error = %e, event = %id, "could not record mount_add");
            }
        }
        let session = Session {
            key: SessionKey::source(origin.server_id(), mount.path()),
            mount: mount.path().to_string(),
            target,
            ip: allowed.ip,
            agent: None,
            referer: None,
            ticket: allowed.ticket,
            member: allowed.member,
            relay: allowed.relay,
            started: now,
            timelimit: None,
        };
        let (session, replaced) = self.live.source_started(session, now);
        tracing::info!(
            mount = %Escaped(&session.mount),
            event = session.event().map(display),
            member = session.member,
            relay = session.relay.as_deref().map(|r| display(Escaped(r))),
            ticket = session.ticket.as_deref().map(|t| display(Escaped(t))),
            server = %Escaped(&session.key.server.to_string()),
            "source went live"
        );
        // A source whose end never came: its row is closed as `lost` by the open itself.
        drop(replaced);
        self.sessions.opened(&session);
        Verdict::Noted
    }

    async fn mount_remove(&self, mount: &Mount<'_>, origin: &Origin<'_>) -> Verdict {
        let Some((target, _)) = self.classify(mount) else {
            return Verdict::Noted;
        };
        let now = self.clock.now();
        let key = SessionKey::source(origin.server_id(), mount.path());
        let ended = self.live.source_ended(&target, &key, now);
        // An edge server's relay going away is not the show ending while the master (or
        // another edge) still has it.
        let still_live = self.live.mount(&target).live();
        if let (Target::Event(id), false) = (&target, still_live) {
            if let Err(e) = self.store.mark_disconnected(*id, now).await {
                tracing::error!(error = %e, event = %id, "could not record mount_remove");
            }
        }
        tracing::info!(
            mount = %Escaped(mount.path()),
            event = target.event().map(display),
            member = ended.as_ref().and_then(|e| e.session.member),
            seconds = ended.as_ref().map(|e| (now - e.session.started).num_seconds()),
            "source stopped"
        );
        self.sessions.closed(key, ended.as_ref(), now, None);
        Verdict::Noted
    }

    /// Tokens a listener presented: the configured query parameters, then the Basic password.
    fn presented<'a>(&self, mount: &'a Mount<'_>, c: &'a Credentials<'_>) -> Vec<Cow<'a, str>> {
        let settings = self.settings.load();
        let mut found: Vec<Cow<'a, str>> = settings
            .token_params
            .iter()
            .filter_map(|p| mount.param(p))
            .collect();
        if !c.pass.is_empty() {
            found.push(Cow::Borrowed(&c.pass));
        }
        found
    }

    fn member_denial(e: MemberError) -> DenyReason {
        match e {
            MemberError::Token(e) => DenyReason::Token(e),
            MemberError::Removed => DenyReason::UserRemoved,
            MemberError::Identity(e) => {
                tracing::error!(error = %e, "identity backend failed during a callback");
                DenyReason::IdentityUnavailable
            }
        }
    }

    /// The first presented token that verifies (a member's, with current rights, or a
    /// ticket), or the first refusal.
    async fn verify_presented(&self, presented: &[Cow<'_, str>]) -> Presented {
        let mut first_error = None;
        for token in presented {
            match self.tokens.verify_any(token).await {
                Ok(Verified::User(claims)) => {
                    return match self.identity.current(claims) {
                        Ok(c) => Presented::Member(c),
                        Err(e) => Presented::Refused(Self::member_denial(e)),
                    }
                }
                Ok(Verified::Ticket(t)) => return Presented::Ticket(t),
                // A source ticket never admits a listener.
                Ok(Verified::Source(_)) => {
                    first_error.get_or_insert(DenyReason::Token(TokenError::WrongKind));
                }
                Err(e) => {
                    first_error.get_or_insert(DenyReason::Token(e));
                }
            }
        }
        first_error.map_or(Presented::Nothing, Presented::Refused)
    }

    async fn listener_add(
        &self,
        mount: &Mount<'_>,
        origin: &Origin<'_>,
        joining: Joining<'_, '_>,
        credentials: &Credentials<'_>,
    ) -> Verdict {
        let Joining {
            client,
            ip,
            agent,
            headers,
        } = joining;
        let Some((target, access)) = self.classify(mount) else {
            return Verdict::Deny(DenyReason::UnknownMount);
        };
        if self.trusted_relay(ip) {
            // An edge server pulling the mount: never counted, capped or a session.
            tracing::debug!(mount = %Escaped(mount.path()), ip = %Escaped(ip), "edge relay pull allowed");
            return Verdict::Allow { timelimit: None };
        }
        let event = match &target {
            Target::Event(id) => match self.event(*id, false).await {
                Ok(e) => e,
                Err(r) => return Verdict::Deny(r),
            },
            Target::Static(_) => None,
        };
        let event_cap = event.as_deref().and_then(|e| e.max_listeners);
        let to = match &target {
            Target::Event(_) => ListenTo::Event(event.as_deref()),
            Target::Static(_) => ListenTo::Static(access),
        };
        // Public mounts and events cost no token check.
        let presented = if rules::listener_needs_credential(to) {
            self.verify_presented(&self.presented(mount, credentials))
                .await
        } else {
            Presented::Nothing
        };
        let referer = decode::header(headers, "referer");
        let listener = Listener { ip, referer };
        let now = self.clock.now();
        let max_per_ticket = self.settings.load().max_listeners_per_ticket;
        let admission = match rules::may_listen(to, &presented, &listener, max_per_ticket, now) {
            Ok(a) => a,
            Err(r) => return Verdict::Deny(r),
        };
        let party = Party {
            ip,
            member: admission.member,
            ticket: match &presented {
                Presented::Ticket(t) => Some((&t.jti, t.iat)),
                _ => None,
            },
        };
        let event = match &target {
            Target::Event(id) => Some(*id),
            Target::Static(_) => None,
        };
        if let Err(r) = rules::sanctions::admits(&self.sanctions.current(), &party, event, now) {
            return Verdict::Deny(r);
        }
        let now_airing = self.live.airing(&target, &origin.server_id());
        let timelimit = admission.until.map(|until| rules::timelimit(until, now));
        // Icecast answers a listener 404 when nothing is on air: allowed, but no session.
        if !rules::sessions::opens_session(now_airing) {
            return Verdict::Allow { timelimit };
        }
        let stored = |text: Option<&str>| {
            text.filter(|t| !t.is_empty())
                .map(crate::domain::session::stored_text)
        };
        let session = Session {
            key: SessionKey::listener(origin.server_id(), client),
            mount: mount.path().to_string(),
            target,
            ip: ip.to_string(),
            agent: stored(agent.and_then(|a| a.text()).as_deref()),
            referer: stored(referer),
            ticket: admission.ticket,
            member: admission.member,
            relay: None,
            started: now,
            timelimit,
        };
        let join = |session| {
            self.live
                .listener_joined(session, admission.cap, now)
                .map_err(|_| DenyReason::TicketFull)
        };
        let joined = if self.caps.apply(event_cap) {
            let (server, target) = (session.key.server.clone(), session.target.clone());
            let on_store_error = self.settings.load().on_store_error;
            self.caps
                .admit(&server, &target, event_cap, on_store_error, || {
                    join(session)
                })
                .await
        } else {
            join(session)
        };
        match joined {
            // A reused client id's old row is closed as `lost` by the open itself.
            Ok((session, _replaced)) => {
                self.sessions.opened(&session);
                Verdict::Allow { timelimit }
            }
            Err(r) => Verdict::Deny(r),
        }
    }

    /// Whether a listener's address is an edge server's (`[[icecast.trusted_relays]]`).
    fn trusted_relay(&self, ip: &str) -> bool {
        let settings = self.settings.load();
        !settings.trusted_relays.is_empty()
            && ip
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| settings.trusted_relays.iter().any(|r| r.contains(ip)))
    }
}

/// Who a `listener_add` is about, as Icecast reported them.
struct Joining<'c, 'h> {
    client: &'c str,
    ip: &'c str,
    agent: Option<decode::Agent<'c>>,
    headers: &'h [(Cow<'c, str>, Cow<'c, str>)],
}
