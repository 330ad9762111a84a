//! The HTTP edge: [`AppState`], [`router`] and [`run`]. Handlers parse arguments, call one
//! decision or store operation, and render; they hold no rules of their own.

pub mod args;
pub mod error;
pub mod icecast;
pub mod jars;
pub mod ops;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

use crate::config::LimitSettings;
use crate::hooks::Hooks;
use crate::identity::Identity;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::store::EventStore;
use crate::tokens::TokenService;

pub use error::ApiError;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A request that takes longer than this is answered 408. Icecast gives up after 15 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the API handlers that a reload may replace.
pub struct ApiSettings {
    /// How long new events live (`events.lifetime`).
    pub event_lifetime: Duration,
    pub limits: LimitSettings,
    /// Limits `/jars/token` per client address and per user name.
    pub token_limiter: Arc<RateLimiter>,
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
}

/// All routes, with body limit, timeout and request metrics. `/metrics` is included unless it
/// is served on its own address ([`metrics_router`]).
pub fn router(state: AppState, with_metrics: bool) -> Router {
    let mut app = Router::new()
        .route("/jars/pubkey", get(jars::pubkey))
        .route("/jars/jwks.json", get(jars::jwks))
        .route("/jars/token", post(jars::token))
        .route("/jars/create", post(jars::create))
        .route("/jars/connect", post(jars::connect))
        .route("/jars/ticket", post(jars::ticket))
        .route("/jars/events", get(jars::list_events))
        .route("/jars/events/{id}", get(jars::get_event))
        .route("/icecast/auth", post(icecast::callback))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz));
    if with_metrics {
        app = app.route("/metrics", get(ops::metrics));
    }
    app.fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// `/metrics` alone, for `metrics_listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .with_state(state)
}

/// Counts every request by matched route (never the raw path) and status, and times it.
async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.http_duration
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .with_label_values(&[route.as_str(), resp.status().as_str()])
        .inc();
    resp
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then lets in-flight
/// requests finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, router(state, true), shutdown).await
}

/// Serves any router with client addresses, until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
