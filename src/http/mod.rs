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
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

use crate::hooks::Hooks;
use crate::identity::Identity;
use crate::limits::RateLimiter;
use crate::store::EventStore;
use crate::tokens::TokenService;

pub use error::ApiError;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A request that takes longer than this is answered 408. Icecast gives up after 15 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared state of every handler: cheap to clone, all `Arc`s.
#[derive(Clone)]
pub struct AppState {
    pub tokens: Arc<TokenService>,
    pub identity: Arc<Identity>,
    pub store: Arc<dyn EventStore>,
    /// How long new events live (`events.lifetime`).
    pub event_lifetime: Duration,
    /// Limits `/jars/token` per client address and per user name.
    pub token_limiter: Arc<RateLimiter>,
    /// Decides Icecast callbacks; holds the live state.
    pub hooks: Arc<Hooks>,
}

/// All routes, with body limit and timeout.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/jars/pubkey", get(jars::pubkey))
        .route("/jars/jwks.json", get(jars::jwks))
        .route("/jars/token", post(jars::token))
        .route("/jars/create", post(jars::create))
        .route("/jars/connect", post(jars::connect))
        .route("/jars/ticket", post(jars::ticket))
        .route("/icecast/auth", post(icecast::callback))
        .route("/jars/events", get(jars::list_events))
        .route("/jars/events/{id}", get(jars::get_event))
        .route("/healthz", get(ops::healthz))
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then lets in-flight
/// requests finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
