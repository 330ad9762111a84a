//! The HTTP edge: [`AppState`], [`App`] (Icecast's callbacks, then the [`router`]: the API,
//! the operational endpoints and the station [`page`]) and [`server`] (how both are served).
//! Handlers parse arguments, call one decision or store operation, and render; they hold no
//! rules of their own.

pub mod api;
pub mod args;
pub mod edge;
pub mod error;
pub mod icecast;
pub mod listen;
pub mod ops;
pub mod page;
pub mod sanctions;
pub mod server;
pub mod sessions;
pub mod shed;
pub mod stats;
pub mod webcast;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower_http::timeout::TimeoutLayer;

use crate::clock::SharedClock;
use crate::config::LimitSettings;
use crate::icecast::decide::Hooks;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::rate_limit::{KnownLogins, RateLimiter};
use crate::sanctions::Sanctions;
use crate::signing::SigningSlots;
use crate::store::EventStore;
use crate::tokens::TokenService;

pub use error::ApiError;
pub use server::{run, serve, Listeners, HEADER_READ_TIMEOUT, MAX_HEAD_BYTES};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A request that takes longer than this is answered 408. Icecast gives up after 15 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a login gets beyond MyRadio's own `timeout`: its password check and token signing.
const LOGIN_MARGIN: Duration = Duration::from_secs(2);

/// Settings of the API handlers that a reload may replace.
pub struct ApiSettings {
    /// How long new events live (`events.lifetime`).
    pub event_lifetime: Duration,
    pub limits: LimitSettings,
    /// Limits `/jars/token` per client address and per user name.
    pub token_limiter: Arc<RateLimiter>,
    /// Networks that logged in as a user: exempt from that user's failure limit.
    pub known_logins: Arc<KnownLogins>,
    /// Limits `/jars/create` per member.
    pub create_limiter: Arc<RateLimiter>,
    /// Limits `/jars/ticket` per member.
    pub ticket_limiter: Arc<RateLimiter>,
    /// Limits `/jars/tickets/revoke` per member.
    pub revoke_limiter: Arc<RateLimiter>,
    /// `/jars/events` listings reading the store at once (`limits.max_concurrent_lists`).
    pub list_slots: Arc<tokio::sync::Semaphore>,
    /// The station page (`[ui]`): whether it is served, and the addresses it shows.
    pub ui: crate::config::UiSettings,
}

/// Shared state of every handler: cheap to clone, all `Arc`s.
#[derive(Clone)]
pub struct AppState {
    pub tokens: Arc<TokenService>,
    pub identity: Arc<Identity>,
    pub store: Arc<dyn EventStore>,
    /// Decides Icecast callbacks; holds the live state.
    pub hooks: Arc<Hooks>,
    /// Replaced as a whole on reload.
    pub api: Arc<ArcSwap<ApiSettings>>,
    pub metrics: Arc<Metrics>,
    /// Where minting signs tokens: off the async workers, a bounded number at once.
    pub signing: Arc<SigningSlots>,
    /// Where every decision reads `now` from (tests hand in a manual clock).
    pub clock: SharedClock,
    /// Bans, revocations and early ends: in force on callbacks, enforced on live sessions.
    pub sanctions: Arc<Sanctions>,
    /// Drops live sessions on the Icecast that reported them (`icecast_admin`, as a seam).
    pub kicker: Arc<dyn crate::live::Kicker>,
    /// The configured Icecast servers' admin APIs: kicks, resyncs, their `/readyz` detail.
    pub icecast_admin: Arc<crate::icecast::admin::IcecastAdmin>,
    /// Relay approvals (`/jars/connect`) and jars' own webcast endpoint (`/webcast/{mount}`).
    pub webcast: Arc<crate::webcast::Webcast>,
    /// Several Icecast servers as one station: where `/listen` sends listeners, each server's
    /// health, the listener caps.
    pub placement: Arc<crate::placement::Placement>,
}

/// Everything jars serves on its main address: Icecast's callbacks ([`icecast::PATH`]) go
/// straight to [`icecast::CallbackRoute`], every other request to the [`router`].
///
/// The management API and the Icecast callbacks each have their own cap on requests in
/// progress; beyond it a request is answered 503 at once (load shedding) rather than queued,
/// and a flood of API requests cannot take the callbacks' share.
#[derive(Clone)]
pub struct App {
    /// Shared, not cloned, per callback: a clone is an atomic count per handle it holds
    /// (about twenty), which two workers bounce between their caches at 64 connections.
    callbacks: Arc<icecast::CallbackRoute>,
    router: Router,
}

/// The main application; `/metrics` is included unless it is served on its own address
/// ([`metrics_router`]).
pub fn app(state: AppState, with_metrics: bool) -> App {
    App {
        callbacks: Arc::new(icecast::CallbackRoute::new(state.clone())),
        router: router(state, with_metrics),
    }
}

impl tower::Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both parts are always ready (the router is).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.uri().path() == icecast::PATH {
            let callbacks = self.callbacks.clone();
            Box::pin(async move { Ok(callbacks.serve(req).await) })
        } else {
            Box::pin(tower::Service::call(&mut self.router, req))
        }
    }
}

/// Every route but the callbacks, with body limit, timeout, load shedding and request
/// metrics. `/metrics` is included unless it is served on its own address
/// ([`metrics_router`]).
pub fn router(state: AppState, with_metrics: bool) -> Router {
    let limits = state.api.load().limits.clone();
    // A login may wait on MyRadio for its whole `timeout`, which may be longer than other
    // requests get.
    let token_timeout = state
        .identity
        .login_timeout()
        .map_or(REQUEST_TIMEOUT, |t| REQUEST_TIMEOUT.max(t + LOGIN_MARGIN));
    let api = Router::new()
        .route("/jars/pubkey", get(api::pubkey))
        .route("/jars/jwks.json", get(api::jwks))
        .route("/jars/create", post(api::create))
        .route("/jars/connect", post(api::connect))
        .route("/jars/ticket", post(api::ticket))
        .route("/jars/events", get(api::list_events))
        .route("/jars/events/{id}", get(api::get_event))
        .route("/jars/events/{id}/stats", get(stats::event_stats))
        .route("/jars/events/{id}/end", post(sanctions::end_event))
        .route(
            "/jars/events/{id}/max_listeners",
            post(api::set_max_listeners),
        )
        .route("/jars/events/{id}/sessions", get(sessions::sessions))
        .route(
            "/jars/events/{id}/sessions/drop",
            post(sessions::drop_listener),
        )
        .route("/jars/tickets/revoke", post(sanctions::revoke))
        .route("/webcast/{mount}", get(webcast::webcast))
        .route("/listen/{event}", get(listen::listen))
        .route(
            "/jars/bans",
            post(sanctions::add_ban).get(sanctions::list_bans),
        )
        .route(
            "/jars/bans/{id}",
            axum::routing::delete(sanctions::remove_ban),
        );
    // Every route but /jars/token gets REQUEST_TIMEOUT: the outer timer below already gives it
    // unless a login may take longer.
    let api = if token_timeout > REQUEST_TIMEOUT {
        api.route_layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
    } else {
        api
    };
    let api = api.route("/jars/token", post(api::token));
    // The API waits on MyRadio, argon2 and the store: bound each request. Callbacks
    // (`icecast::CallbackRoute`) have no such timer: a per-request timer wakes a parked worker
    // on every callback (measured, see docs/benchmarks.md), and everything a callback can wait on is
    // bounded already (store operations; slow clients by the header read timeout and
    // `icecast::CALLBACK_BODY_TIMEOUT`).
    // Per-client cap and body deadline first (`shed::guard_api`), so that slow or greedy
    // clients never hold one of the shared slots.
    let peers = shed::PeerSlots::new(limits.max_requests_per_client);
    let api = shed_beyond(api, limits.max_concurrent_requests)
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), peers),
            shed::guard_api,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            token_timeout,
        ));
    let mut ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz));
    if with_metrics {
        ops = ops.route("/metrics", get(ops::metrics));
    }
    api.merge(ops)
        .merge(page::routes())
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// At most `max` of `routes`' requests in progress, all routes together; the next ones get
/// 503 at once (load shedding) instead of waiting in a queue without bound.
fn shed_beyond(routes: Router<AppState>, max: usize) -> Router<AppState> {
    let slots = Arc::new(tokio::sync::Semaphore::new(max));
    routes.route_layer(middleware::from_fn_with_state(
        slots,
        |State(slots): State<Arc<tokio::sync::Semaphore>>, req: Request, next: Next| async move {
            match slots.try_acquire() {
                Ok(_slot) => next.run(req).await,
                Err(_) => axum::response::IntoResponse::into_response(ApiError::Overloaded),
            }
        },
    ))
}

/// `/metrics` alone, for `metrics_listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .with_state(state)
}

/// Counts every request by matched route (never the raw path) and status, and times it.
async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The matched route is shared (an `Arc`), not copied.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .observe_request(route, resp.status().as_str(), started.elapsed());
    resp
}
