//! Connection-level defences of [`super::serve`]: a bound on open connections with a reserve
//! for Icecast's address ([`Edge`]), and a deadline for a connection's first request head
//! (hyper's own header timeout does not cover the bytes its HTTP/1-or-2 detection reads, so a
//! connection that never sends a byte would stay open for ever).

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{HEADER_READ_TIMEOUT, MAX_HEAD_BYTES};
use crate::metrics::Metrics;

/// Open connections at most, whatever the file descriptor limit allows.
pub const MAX_CONNECTIONS: usize = 16_384;
/// Connections kept for [`Edge::reserved_for`] peers once the bound is reached.
pub const RESERVED_CONNECTIONS: usize = 64;
/// File descriptors left for everything else (store, key files, MyRadio, the listener).
const FD_HEADROOM: usize = 128;
/// Streams one HTTP/2 connection may have in progress.
pub const MAX_H2_STREAMS: u32 = 32;

/// How [`serve_with`] treats connections.
#[derive(Clone)]
pub struct Edge {
    /// A connection must send a complete request head within this time, the first one and
    /// each one after (HTTP/1 keep-alive), or it is closed.
    pub header_read_timeout: Duration,
    /// Open connections at most; beyond, new ones are closed at once...
    pub max_connections: usize,
    /// ...except this many more for peers that `reserved_for` accepts.
    pub reserved_connections: usize,
    /// Icecast's address. jars has no setting for it: loopback by default.
    pub reserved_for: fn(IpAddr) -> bool,
    /// Where to count connections; none for `/metrics`' own address.
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for Edge {
    /// The defaults: [`HEADER_READ_TIMEOUT`], as many connections as the open file limit
    /// allows (at most [`MAX_CONNECTIONS`]), [`RESERVED_CONNECTIONS`] for loopback peers.
    fn default() -> Self {
        let fds = open_file_limit().unwrap_or(1024);
        Edge {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: fds
                .saturating_sub(FD_HEADROOM + RESERVED_CONNECTIONS)
                .clamp(16, MAX_CONNECTIONS),
            reserved_connections: RESERVED_CONNECTIONS,
            reserved_for: |ip| ip.is_loopback(),
            metrics: None,
        }
    }
}

impl Edge {
    /// The defaults, counting connections in `metrics`.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Edge {
        Edge {
            metrics: Some(metrics),
            ..Edge::default()
        }
    }
}

/// The soft limit on open files (`/proc/self/limits`), where there is one.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Counts a connection as open until dropped, and holds its place under the bound.
struct Open {
    _permit: tokio::sync::OwnedSemaphorePermit,
    metrics: Option<Arc<Metrics>>,
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            m.connections_open.dec();
        }
    }
}

/// [`super::serve`] with the connection handling of `edge`.
pub async fn serve_with<S>(
    listener: TcpListener,
    app: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
    edge: Edge,
) -> std::io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt;

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(edge.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS);
    let general = Arc::new(Semaphore::new(edge.max_connections));
    let reserve = Arc::new(Semaphore::new(edge.reserved_connections));
    let dropped = |reason: &str| {
        if let Some(m) = &edge.metrics {
            m.connections_dropped.with_label_values(&[reason]).inc();
        }
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let reserved = || {
            (edge.reserved_for)(peer.ip())
                .then(|| reserve.clone().try_acquire_owned().ok())
                .flatten()
        };
        let Some(permit) = general.clone().try_acquire_owned().ok().or_else(reserved) else {
            // Closed at once: a full server must not also run out of descriptors.
            tracing::debug!(%peer, "too many open connections: closed");
            dropped("over_limit");
            continue;
        };
        if let Some(m) = &edge.metrics {
            m.connections_open.inc();
        }
        let open = Open {
            _permit: permit,
            metrics: edge.metrics.clone(),
        };
        let _ = stream.set_nodelay(true);
        let asked = Arc::new(AtomicBool::new(false));
        let service = app.clone().map_request({
            let asked = asked.clone();
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                asked.store(true, Ordering::Relaxed);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req.map(axum::body::Body::new)
            }
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_head = edge.header_read_timeout;
        let metrics = edge.metrics.clone();
        tokio::spawn(async move {
            let _open = open;
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let mut conn = std::pin::pin!(watcher.watch(conn));
            let ended = tokio::select! {
                ended = &mut conn => Some(ended),
                _ = tokio::time::sleep(first_head) => None,
            };
            let ended = match ended {
                Some(ended) => ended,
                None if !asked.load(Ordering::Relaxed) => {
                    // No complete request head yet: dropping the connection closes it.
                    if let Some(m) = &metrics {
                        m.connections_dropped
                            .with_label_values(&["no_request"])
                            .inc();
                    }
                    return;
                }
                None => conn.await,
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
