//! `POST /icecast/auth`: the one URL Icecast calls for all five URL-auth actions. Decodes the
//! callback, checks that the caller is our Icecast, asks [`crate::icecast::decide::Hooks`], and renders
//! the verdict as Icecast's headers (`icecast-auth-user: 1` to allow).
//!
//! Every listener join passes here, so [`CallbackRoute`] is served ahead of the router
//! ([`super::App`]) and does in line what the router's layers do for the other routes: load
//! shedding, the body limit and the request metrics. Through the router, its three layers cost
//! about twenty allocations per request (each layer clones a boxed service; callgrind, see
//! docs/benchmarks.md), more than deciding the callback does.
//!
//! # Security
//! Set `[icecast] username/password` so that only Icecast can ask. Without them, only
//! loopback and `[icecast] allowed_from` may send callbacks (`rules::may_send_callbacks`):
//! otherwise anybody who can reach jars could fake them (e.g. `mount_add`). A callback with a
//! browser's `Origin` or `Sec-Fetch-Site` header is refused whatever it carries
//! (`rules::not_from_a_browser`): a page open in a browser on Icecast's host is loopback too. The caller's
//! address is the peer's; a forwarding header counts only from `[limits] trusted_proxies`, and
//! a callback relayed by any other proxy (or not naming the client in the header jars reads)
//! has no known address. Tokens in listener URLs are never
//! logged: only the mount path is, escaped ([`Escaped`]) like every field a caller chose, so a
//! mount cannot forge a log line. Refused callers are warned of at most once
//! per [`BAD_CALLER_LOG_PERIOD`] (the `bad_caller` metric counts each).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::args::client_ip;
use super::shed::{peer_ip, read_body, BodyError, PeerSlots};
use super::{ApiError, AppState};
use crate::icecast::decide::{DenyReason, Verdict};
use crate::icecast::decode::Callback;
use crate::log_input::{Escaped, Throttle};
use crate::metrics::RouteMetrics;
use crate::rules::{self, BrowserSigns};

/// The path Icecast's `<authentication type="url">` options point at.
pub const PATH: &str = "/icecast/auth";

const AUTH_USER: HeaderName = HeaderName::from_static("icecast-auth-user");
const AUTH_MESSAGE: HeaderName = HeaderName::from_static("icecast-auth-message");
const AUTH_TIMELIMIT: HeaderName = HeaderName::from_static("icecast-auth-timelimit");

/// Icecast-KH's default prefix for forwarded headers, accepted besides the configured one.
const KH_HEADER_PREFIX: &str = "ClientHeader-";

/// The user and password of the callback's own `Authorization: Basic` header: how Icecast
/// proves it is our Icecast.
pub struct Basic {
    decoded: String,
    colon: usize,
}

impl Basic {
    fn parse(value: &HeaderValue) -> Option<Basic> {
        let value = value.to_str().ok()?;
        let encoded = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))?;
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let colon = decoded.find(':')?;
        Some(Basic { decoded, colon })
    }

    fn user(&self) -> &str {
        &self.decoded[..self.colon]
    }

    fn pass(&self) -> &str {
        &self.decoded[self.colon + 1..]
    }
}

fn render(verdict: Verdict) -> Response {
    let mut resp = StatusCode::OK.into_response();
    let headers = resp.headers_mut();
    match verdict {
        Verdict::Allow { timelimit } => {
            headers.insert(AUTH_USER, HeaderValue::from_static("1"));
            if let Some(secs) = timelimit {
                headers.insert(AUTH_TIMELIMIT, secs.into());
            }
        }
        Verdict::Noted => {
            headers.insert(AUTH_USER, HeaderValue::from_static("1"));
        }
        Verdict::Deny(reason) => {
            headers.insert(AUTH_MESSAGE, HeaderValue::from_static(reason.message()));
        }
    }
    resp
}

/// At most one warning per this period about callbacks without the configured credentials:
/// anybody who can reach jars can send them.
pub const BAD_CALLER_LOG_PERIOD: Duration = Duration::from_secs(10);

/// The whole body of a callback must arrive within this time, before the callback may take a
/// slot; otherwise 408. Icecast sends its small form at once, with the headers.
pub const CALLBACK_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// [`PATH`], served ahead of the router (see the module docs).
///
/// In order, each step cheap before the next: POST over HTTP/1 only (Icecast never speaks
/// h2; an h2 connection could carry hundreds of callbacks), the Basic credentials from the
/// headers, the body within [`CALLBACK_BODY_TIMEOUT`], then a slot of the peer address (at
/// most half of all) and one of `max_concurrent_callbacks`. A slow or unauthenticated caller
/// thus never holds a slot.
#[derive(Clone)]
pub struct CallbackRoute {
    state: AppState,
    /// At most `limits.max_concurrent_callbacks` callbacks in progress; beyond, 503 at once.
    slots: Arc<tokio::sync::Semaphore>,
    /// At most half of those from one address.
    peers: Arc<PeerSlots>,
    metrics: RouteMetrics,
    /// Warnings about callers without the credentials, at most one per period.
    bad_callers: Arc<Throttle>,
}

impl CallbackRoute {
    pub fn new(state: AppState) -> CallbackRoute {
        let max = state.api.load().limits.max_concurrent_callbacks;
        CallbackRoute {
            slots: Arc::new(tokio::sync::Semaphore::new(max)),
            peers: PeerSlots::new(max / 2),
            metrics: state.metrics.route(PATH),
            bad_callers: Arc::new(Throttle::new(BAD_CALLER_LOG_PERIOD)),
            state,
        }
    }

    /// Answers one request for [`PATH`].
    pub async fn serve(&self, req: Request) -> Response {
        let started = Instant::now();
        let resp = self.answer(req).await;
        self.metrics
            .observe(resp.status().as_str(), started.elapsed());
        resp
    }

    async fn answer(&self, req: Request) -> Response {
        if req.method() != Method::POST {
            let mut resp = StatusCode::METHOD_NOT_ALLOWED.into_response();
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return resp;
        }
        if req.version() >= Version::HTTP_2 {
            return StatusCode::HTTP_VERSION_NOT_SUPPORTED.into_response();
        }
        let peer = peer_ip(&req);
        let caller = peer.and_then(|peer| self.caller(&req, peer));
        // A page in a browser on Icecast's host must never be obeyed, credentials or not.
        let signs = BrowserSigns {
            origin: req.headers().contains_key(header::ORIGIN),
            fetch_site: req
                .headers()
                .get("sec-fetch-site")
                .map(|v| v.to_str().unwrap_or("unreadable")),
        };
        if let Err(reason) = rules::not_from_a_browser(signs) {
            self.warn_bad_caller(reason, None, caller);
            self.state
                .metrics
                .decision("unknown", false, reason.label());
            return render(Verdict::Deny(reason));
        }
        let (parts, body) = req.into_parts();
        let basic = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(Basic::parse);
        // Before the body: a caller that is not our Icecast gets nothing of ours to hold.
        if let Err(reason) = self
            .state
            .hooks
            .caller_is_icecast(basic.as_ref().map(|b| (b.user(), b.pass())), caller)
        {
            self.warn_bad_caller(reason, basic.as_ref(), caller);
            self.state
                .metrics
                .decision("unknown", false, reason.label());
            return render(Verdict::Deny(reason));
        }
        let shed = |reason: &str| {
            self.state
                .metrics
                .callbacks_shed
                .with_label_values(&[reason])
                .inc();
        };
        let body = match read_body(body, CALLBACK_BODY_TIMEOUT).await {
            Ok(body) => body,
            Err(BodyError::TimedOut) => {
                shed("slow_body");
                return ApiError::RequestTimeout.into_response();
            }
            Err(BodyError::TooLarge) => return ApiError::PayloadTooLarge.into_response(),
            Err(BodyError::Unreadable) => return StatusCode::BAD_REQUEST.into_response(),
        };
        let _peer_slot = match peer.map(|ip| self.peers.try_take(ip)) {
            Some(None) => {
                shed("peer_busy");
                return ApiError::Overloaded.into_response();
            }
            slot => slot,
        };
        let Ok(_slot) = self.slots.try_acquire() else {
            shed("busy");
            return ApiError::Overloaded.into_response();
        };
        let _in_progress = InProgress::enter(&self.state.metrics.callbacks_in_progress);
        callback(&self.state, &body).await
    }
}

/// Headers a reverse proxy adds; Icecast's own callbacks carry none of them.
const FORWARDING_HEADERS: [&str; 3] = ["x-forwarded-for", "forwarded", "x-real-ip"];

impl CallbackRoute {
    /// The caller's address: the peer's, or behind a trusted proxy the client's it forwarded.
    /// `None` (unknown) when a proxy relayed the callback and did not name the client in
    /// `[limits] forwarded_header` (a proxy not in `trusted_proxies`, or one using another
    /// header): a proxy on loopback must not make every caller look local.
    fn caller(&self, req: &Request, peer: IpAddr) -> Option<IpAddr> {
        let relayed = FORWARDING_HEADERS
            .iter()
            .any(|h| req.headers().contains_key(*h));
        if !relayed {
            return Some(peer);
        }
        let api = self.state.api.load();
        let client = client_ip(req.headers(), peer, &api.limits);
        (client != peer).then_some(client)
    }

    /// A warning about a refused caller, at most one per [`BAD_CALLER_LOG_PERIOD`].
    fn warn_bad_caller(&self, reason: DenyReason, basic: Option<&Basic>, caller: Option<IpAddr>) {
        let Some(suppressed) = self.bad_callers.admit(self.state.clock.now()) else {
            return;
        };
        let caller_user = Escaped(basic.map(Basic::user).unwrap_or("(none)"));
        let caller = caller.map_or_else(|| "(unknown)".to_string(), |ip| ip.to_string());
        if reason == DenyReason::CallerIsBrowser {
            tracing::warn!(
                caller,
                suppressed,
                "callback with a browser's Origin or Sec-Fetch-Site header: denied, a page \
                 must never drive Icecast's callbacks (`suppressed`: more since the last such \
                 line, not logged)"
            );
        } else if reason == DenyReason::CallerNotIcecast {
            tracing::warn!(
                caller_user = %caller_user,
                caller,
                suppressed,
                "callback without the configured Icecast credentials: denied \
                 (`suppressed`: more since the last such line, not logged)"
            );
        } else {
            tracing::warn!(
                caller,
                suppressed,
                "callback from an address that may not send them (only loopback and \
                 [icecast] allowed_from may, or set [icecast] username/password): denied \
                 (`suppressed`: more since the last such line, not logged)"
            );
        }
    }
}

/// Counts one callback in progress until dropped (also when the caller goes away mid-way).
struct InProgress<'a>(&'a prometheus::IntGauge);

impl<'a> InProgress<'a> {
    fn enter(gauge: &'a prometheus::IntGauge) -> InProgress<'a> {
        gauge.inc();
        InProgress(gauge)
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// 400 for a body that is not a callback Icecast would send; `why` is jars' own text.
fn malformed(why: &str) -> Response {
    tracing::warn!(error = why, "malformed Icecast callback");
    let mut resp = (
        StatusCode::BAD_REQUEST,
        format!("malformed callback: {why}\n"),
    )
        .into_response();
    resp.headers_mut()
        .insert(AUTH_MESSAGE, HeaderValue::from_static("malformed callback"));
    resp
}

/// Whether the fields Icecast itself fills in (its hostname and port, a listener's connection
/// id) hold no control characters, as Icecast's never do. They are kept with live sessions
/// and written to the log when a session is dropped: checked here, at the edge, so that no
/// caller can put a line break there.
fn icecasts_fields_are_plain(callback: &Callback<'_>) -> bool {
    let (origin, client) = match callback {
        Callback::StreamAuth { origin, .. }
        | Callback::MountAdd { origin, .. }
        | Callback::MountRemove { origin, .. } => (origin, None),
        Callback::ListenerAdd { origin, client, .. }
        | Callback::ListenerRemove { origin, client, .. } => (origin, Some(client)),
    };
    [Some(&origin.server), Some(&origin.port), client]
        .into_iter()
        .flatten()
        .all(|f| !f.chars().any(char::is_control))
}

/// Decides a callback body from our Icecast.
async fn callback(state: &AppState, body: &[u8]) -> Response {
    let settings = state.hooks.settings.load();
    let prefixes = [settings.header_prefix.as_str(), KH_HEADER_PREFIX];
    let callback = match Callback::decode(body, &prefixes) {
        Ok(c) if icecasts_fields_are_plain(&c) => c,
        Ok(_) => return malformed("control characters in server, port or client"),
        Err(e) => return malformed(&e.to_string()),
    };
    let verdict = state.hooks.decide(&callback).await;
    match verdict {
        Verdict::Allow { .. } => state.metrics.decision(callback.action(), true, "ok"),
        Verdict::Deny(reason) => state
            .metrics
            .decision(callback.action(), false, reason.label()),
        Verdict::Noted => {}
    }
    if let Verdict::Deny(reason) = verdict {
        let ip = match &callback {
            Callback::StreamAuth { ip, .. } | Callback::ListenerAdd { ip, .. } => ip,
            _ => "",
        };
        tracing::info!(
            action = callback.action(),
            reason = reason.label(),
            mount = %Escaped(callback.mount().path()),
            client = %Escaped(ip),
            "denied"
        );
    }
    render(verdict)
}
