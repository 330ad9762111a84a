//! The Icecast hooks: each decoded [`Callback`] decided against tokens, listener tickets, the
//! event table and this node's live state. Knows nothing of HTTP; `http::icecast` renders the
//! [`Verdict`] as Icecast's response headers.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwap;

use chrono::Utc;
use subtle::ConstantTimeEq;

use crate::config::{Access, IcecastSettings, OnStoreError};
use crate::icecast::decode::{self, Callback, Credentials, Mount, Origin};
use crate::icecast::live::{LiveState, Target};
use crate::identity::Identity;
use crate::rules::{self, ConnectDenial};
use crate::store::{Event, EventStore};
use crate::tokens::{unix_now, Claims, TokenError, TokenService, Verified};

/// Why a source or listener was turned away. The text goes to Icecast's error log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    UnknownMount,
    NoCredentials,
    Token(TokenError),
    NoSuchEvent,
    EventExpired,
    NotOwnerOrAdmin,
    RelayNotApproved,
    TicketRequired,
    TicketForAnotherEvent,
    TicketBoundToAnotherAddress,
    RefererNotAllowed,
    TicketFull,
    MembersOnly,
    AdminsOnly,
    StoreUnavailable,
    /// A valid token of a user who has since been removed.
    UserRemoved,
    /// The identity backend failed while checking a token's user.
    IdentityUnavailable,
    /// The callback did not carry the configured Basic credentials.
    CallerNotIcecast,
}

impl DenyReason {
    /// A short, useful line for Icecast's error log; never contains a secret.
    pub fn message(self) -> &'static str {
        match self {
            DenyReason::UnknownMount => "not an event mount",
            DenyReason::NoCredentials => "no credentials",
            DenyReason::Token(TokenError::Expired) => "ticket or token expired",
            DenyReason::Token(TokenError::Immature) => "ticket or token not yet valid",
            DenyReason::Token(TokenError::WrongKind) => "a listener ticket cannot do this",
            DenyReason::Token(TokenError::InvalidSignature) => "bad signature",
            DenyReason::Token(_) => "invalid token",
            DenyReason::NoSuchEvent => "no such event",
            DenyReason::EventExpired => "event expired",
            DenyReason::NotOwnerOrAdmin => "not the event's owner or an admin",
            DenyReason::RelayNotApproved => "relay not approved by /jars/connect",
            DenyReason::TicketRequired => "private event: ticket required",
            DenyReason::TicketForAnotherEvent => "ticket for another event",
            DenyReason::TicketBoundToAnotherAddress => "ticket bound to another address",
            DenyReason::RefererNotAllowed => "referer not allowed for this ticket",
            DenyReason::TicketFull => "ticket already has its maximum listeners",
            DenyReason::MembersOnly => "members only",
            DenyReason::AdminsOnly => "admins only",
            DenyReason::StoreUnavailable => "event store unavailable",
            DenyReason::UserRemoved => "user no longer exists",
            DenyReason::IdentityUnavailable => "users unavailable",
            DenyReason::CallerNotIcecast => "callback credentials wrong",
        }
    }

    /// A stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            DenyReason::UnknownMount => "unknown_mount",
            DenyReason::NoCredentials => "no_credentials",
            DenyReason::Token(TokenError::Expired) => "expired",
            DenyReason::Token(TokenError::WrongKind) => "wrong_token_kind",
            DenyReason::Token(_) => "invalid_token",
            DenyReason::NoSuchEvent => "no_event",
            DenyReason::EventExpired => "event_expired",
            DenyReason::NotOwnerOrAdmin => "not_owner",
            DenyReason::RelayNotApproved => "relay_not_approved",
            DenyReason::TicketRequired => "ticket_required",
            DenyReason::TicketForAnotherEvent => "wrong_event",
            DenyReason::TicketBoundToAnotherAddress => "wrong_ip",
            DenyReason::RefererNotAllowed => "wrong_referer",
            DenyReason::TicketFull => "ticket_full",
            DenyReason::MembersOnly => "members_only",
            DenyReason::AdminsOnly => "admins_only",
            DenyReason::StoreUnavailable => "store_error",
            DenyReason::UserRemoved => "user_removed",
            DenyReason::IdentityUnavailable => "identity_error",
            DenyReason::CallerNotIcecast => "bad_caller",
        }
    }
}

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
}

/// A mount, classified.
enum Kind {
    Event(uuid::Uuid),
    Static(String, Access),
}

fn equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Hooks {
    /// Whether a callback's HTTP Basic credentials are the configured ones (or none are
    /// configured). Compared in constant time.
    pub fn caller_is_icecast(&self, basic: Option<(&str, &str)>) -> bool {
        let settings = self.settings.load();
        match (&settings.username, &settings.password) {
            (Some(u), Some(p)) => basic.is_some_and(|(bu, bp)| equal(bu, u) & equal(bp, p)),
            _ => true,
        }
    }

    fn kind(&self, mount: &Mount<'_>) -> Option<Kind> {
        if let Some(id) = mount.event_id() {
            return Some(Kind::Event(id));
        }
        self.settings
            .load()
            .mounts
            .iter()
            .find(|m| m.name == mount.path())
            .map(|m| Kind::Static(m.name.clone(), m.access))
    }

    fn target(kind: &Kind) -> Target {
        match kind {
            Kind::Event(id) => Target::Event(*id),
            Kind::Static(name, _) => Target::Static(name.to_string()),
        }
    }

    /// Decides `callback`.
    pub async fn decide(&self, callback: &Callback<'_>) -> Verdict {
        match callback {
            Callback::StreamAuth {
                mount, credentials, ..
            } => self.stream_auth(mount, credentials).await,
            Callback::MountAdd { mount, .. } => self.mount_add(mount).await,
            Callback::MountRemove { mount, .. } => self.mount_remove(mount).await,
            Callback::ListenerAdd {
                mount,
                origin,
                client,
                ip,
                credentials,
                headers,
            } => {
                self.listener_add(mount, origin, client, ip, credentials, headers)
                    .await
            }
            Callback::ListenerRemove { origin, client, .. } => {
                self.live.remove_listener(origin, client);
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

    async fn stream_auth(&self, mount: &Mount<'_>, c: &Credentials<'_>) -> Verdict {
        let Some(kind) = self.kind(mount) else {
            return Verdict::Deny(DenyReason::UnknownMount);
        };
        if c.pass.is_empty() {
            return Verdict::Deny(DenyReason::NoCredentials);
        }
        let target = Self::target(&kind);
        let relay = self.trusted_source(c);
        let member = if relay {
            None
        } else {
            let claims = match self.tokens.verify(&c.pass).await {
                Ok(claims) => claims,
                Err(e) => return Verdict::Deny(DenyReason::Token(e)),
            };
            match self.effective(claims) {
                Ok(claims) => Some(claims),
                Err(r) => return Verdict::Deny(r),
            }
        };
        match kind {
            Kind::Static(..) => match &member {
                None => {}
                Some(claims) if claims.is_admin() => {}
                Some(_) => return Verdict::Deny(DenyReason::AdminsOnly),
            },
            Kind::Event(id) => {
                // A source decision must not act on a row cached before a /jars/connect.
                let event = match self.event(id, true).await {
                    Ok(e) => e,
                    Err(r) => return Verdict::Deny(r),
                };
                let now = Utc::now();
                match &member {
                    Some(claims) => {
                        if let Err(d) = rules::may_connect(claims, event.as_deref(), now) {
                            return Verdict::Deny(match d {
                                ConnectDenial::NoEvent => DenyReason::NoSuchEvent,
                                ConnectDenial::NotOwnerOrAdmin => DenyReason::NotOwnerOrAdmin,
                            });
                        }
                    }
                    None => {
                        let Some(event) = event.filter(|e| !e.is_expired(now)) else {
                            return Verdict::Deny(DenyReason::NoSuchEvent);
                        };
                        let window = chrono::Duration::from_std(self.settings.load().relay_window)
                            .unwrap_or(chrono::Duration::MAX);
                        let approved = event.last_connected_at.is_some_and(|t| now - t <= window);
                        if !approved && !self.live.is_live(&target) {
                            return Verdict::Deny(DenyReason::RelayNotApproved);
                        }
                    }
                }
            }
        }
        self.live.source_allowed(&target, member.map(|c| c.sub));
        Verdict::Allow { timelimit: None }
    }

    async fn mount_add(&self, mount: &Mount<'_>) -> Verdict {
        let Some(kind) = self.kind(mount) else {
            return Verdict::Noted;
        };
        let target = Self::target(&kind);
        // Persist first, then show it live: whoever sees `live` also sees `connected`.
        if let Kind::Event(id) = kind {
            let member = self.live.mount(&target).allowed_source;
            if let Err(e) = self.store.mark_connected(id, member, Utc::now()).await {
                tracing::error!(error = %e, event = %id, "could not record mount_add");
            }
        }
        self.live.mount_added(&target);
        Verdict::Noted
    }

    async fn mount_remove(&self, mount: &Mount<'_>) -> Verdict {
        let Some(kind) = self.kind(mount) else {
            return Verdict::Noted;
        };
        let target = Self::target(&kind);
        if let Kind::Event(id) = kind {
            if let Err(e) = self.store.mark_disconnected(id, Utc::now()).await {
                tracing::error!(error = %e, event = %id, "could not record mount_remove");
            }
        }
        self.live.mount_removed(&target);
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

    /// A user's claims as the identity backend stands now (removed: denied; demoted: standard).
    fn effective(&self, claims: Arc<Claims>) -> Result<Arc<Claims>, DenyReason> {
        match self.identity.effective(claims) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(DenyReason::UserRemoved),
            Err(e) => {
                tracing::error!(error = %e, "identity backend failed during a callback");
                Err(DenyReason::IdentityUnavailable)
            }
        }
    }

    /// The first presented token that verifies, or the first failure.
    async fn verify_presented(&self, presented: &[Cow<'_, str>]) -> Result<Verified, DenyReason> {
        let mut first_error = None;
        for token in presented {
            match self.tokens.verify_any(token).await {
                Ok(Verified::User(claims)) => return self.effective(claims).map(Verified::User),
                Ok(v) => return Ok(v),
                Err(e) => {
                    first_error.get_or_insert(DenyReason::Token(e));
                }
            }
        }
        Err(first_error.unwrap_or(DenyReason::NoCredentials))
    }

    async fn listener_add(
        &self,
        mount: &Mount<'_>,
        origin: &Origin<'_>,
        client: &str,
        ip: &str,
        credentials: &Credentials<'_>,
        headers: &[(Cow<'_, str>, Cow<'_, str>)],
    ) -> Verdict {
        let Some(kind) = self.kind(mount) else {
            return Verdict::Deny(DenyReason::UnknownMount);
        };
        let target = Self::target(&kind);
        let now = unix_now();
        let presented = self.presented(mount, credentials);
        let (deadline, ticket) = match kind {
            Kind::Static(_, Access::Public) => (None, None),
            Kind::Static(_, access) => match self.verify_presented(&presented).await {
                Ok(Verified::User(claims)) => {
                    if access == Access::Admins && !claims.is_admin() {
                        return Verdict::Deny(DenyReason::AdminsOnly);
                    }
                    (Some(claims.exp), None)
                }
                Ok(Verified::Ticket(_)) => return Verdict::Deny(DenyReason::MembersOnly),
                Err(DenyReason::NoCredentials) => return Verdict::Deny(DenyReason::MembersOnly),
                Err(r) => return Verdict::Deny(r),
            },
            Kind::Event(id) => {
                let event = match self.event(id, false).await {
                    Ok(Some(e)) => e,
                    Ok(None) => return Verdict::Deny(DenyReason::NoSuchEvent),
                    Err(r) => return Verdict::Deny(r),
                };
                let event_end = event.expires_time.timestamp();
                if event_end <= now {
                    return Verdict::Deny(DenyReason::EventExpired);
                }
                if !event.private {
                    (Some(event_end), None)
                } else {
                    match self.verify_presented(&presented).await {
                        Ok(Verified::User(claims)) => (Some(event_end.min(claims.exp)), None),
                        Ok(Verified::Ticket(t)) => {
                            let mut buf = uuid::Uuid::encode_buffer();
                            if t.sub != *id.hyphenated().encode_lower(&mut buf) {
                                return Verdict::Deny(DenyReason::TicketForAnotherEvent);
                            }
                            if t.ip.as_deref().is_some_and(|bound| bound != ip) {
                                return Verdict::Deny(DenyReason::TicketBoundToAnotherAddress);
                            }
                            if let Some(prefix) = &t.referer {
                                let referer = decode::header(headers, "referer");
                                if !referer.is_some_and(|r| r.starts_with(prefix.as_str())) {
                                    return Verdict::Deny(DenyReason::RefererNotAllowed);
                                }
                            }
                            (Some(event_end.min(t.exp)), Some(t))
                        }
                        Err(DenyReason::NoCredentials) => {
                            return Verdict::Deny(DenyReason::TicketRequired)
                        }
                        Err(r) => return Verdict::Deny(r),
                    }
                }
            }
        };
        let cap = match (
            ticket.as_ref().and_then(|t| t.max_listeners),
            self.settings.load().max_listeners_per_ticket,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let jti = ticket.as_ref().map(|t| t.jti.as_str());
        if self
            .live
            .add_listener(&target, origin, client, jti, cap)
            .is_err()
        {
            return Verdict::Deny(DenyReason::TicketFull);
        }
        Verdict::Allow {
            timelimit: deadline.map(|d| (d - now).max(1) as u64),
        }
    }
}
