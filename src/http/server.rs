//! Serving: [`run`] puts the [`App`](super::App) (and, when it has its own address,
//! `/metrics`) on the listeners and stops them gracefully. `jars serve` and the tests both start jars through
//! [`run`], so the tests exercise what production runs.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use tokio::net::TcpListener;

use super::{app, metrics_router, AppState};

/// Where jars listens.
pub struct Listeners {
    /// The API and Icecast's callbacks (and `/metrics`, unless `metrics` is set).
    pub main: TcpListener,
    /// `metrics_listen`: `/metrics` alone, on its own address.
    pub metrics: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    /// Everything on one address.
    fn from(main: TcpListener) -> Listeners {
        Listeners {
            main,
            metrics: None,
        }
    }
}

/// Serves jars on `listeners` until `shutdown` completes (or a server fails), then stops
/// accepting on all of them and waits for in-flight requests to finish.
pub async fn run(
    listeners: impl Into<Listeners>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listeners = listeners.into();
    let (trigger, down) = crate::shutdown::latch();
    let mut servers = tokio::task::JoinSet::new();
    let main_app = app(state.clone(), listeners.metrics.is_none());
    let edge = super::edge::Edge::with_metrics(state.metrics.clone());
    servers.spawn(super::edge::serve_with(
        listeners.main,
        main_app,
        down.clone().wait(),
        edge,
    ));
    if let Some(l) = listeners.metrics {
        tracing::info!(addr = ?l.local_addr().ok(), "serving /metrics");
        servers.spawn(serve(l, metrics_router(state), down.wait()));
    }
    let mut result = Ok(());
    let mut record = |done: Result<std::io::Result<()>, tokio::task::JoinError>| {
        if let Err(e) = done.map_err(std::io::Error::other).and_then(|r| r) {
            tracing::error!(error = %e, "server failed");
            result = Err(e);
        }
    };
    tokio::select! {
        () = shutdown => {}
        // A server that ends before shutdown has failed: stop the others too.
        Some(done) = servers.join_next() => record(done),
    }
    trigger.trip();
    while let Some(done) = servers.join_next().await {
        record(done);
    }
    result
}

/// A client must send its request head within this time, or the connection is closed
/// (slow-header clients cannot hold connections open).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers) accepted; larger ones are refused.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Serves `app` ([`App`](super::App), or any router) until `shutdown`, then waits for open
/// connections to finish their requests. Each request carries the client address
/// (`ConnectInfo`); sockets get `TCP_NODELAY` (Icecast waits for each small answer before it
/// sends the next callback). Connections are bounded and must send a request head in time:
/// [`Edge::default`](super::edge::Edge::default), without connection metrics
/// ([`serve_with`](super::edge::serve_with) takes them).
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    super::edge::serve_with(listener, app, shutdown, super::edge::Edge::default()).await
}
