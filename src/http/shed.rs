//! Request-level defences against slow and greedy clients: per-client caps on requests in
//! progress ([`PeerSlots`]) and a short deadline for the whole request body ([`read_body`]),
//! both applied before a request may take one of the shared slots. [`guard_api`] applies them
//! to the management API; [`super::icecast::CallbackRoute`] to Icecast's callbacks.

use crate::domain::FastMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, MAX_BODY_BYTES};

/// The whole body of an API request must arrive within this time; otherwise 408.
pub const API_BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// API requests in progress per client address (body read included) unless
/// `[limits] max_requests_per_client` says otherwise; beyond, 429.
pub const API_MAX_PER_CLIENT: usize = crate::config::DEFAULT_MAX_REQUESTS_PER_CLIENT;

/// At most `max` things in progress per address.
pub struct PeerSlots {
    max: usize,
    counts: Mutex<FastMap<IpAddr, usize>>,
}

/// One address's slot, given back on drop.
pub struct PeerSlot {
    slots: Arc<PeerSlots>,
    ip: IpAddr,
}

impl PeerSlots {
    /// Slots for `max` (at least 1) requests per address.
    pub fn new(max: usize) -> Arc<PeerSlots> {
        Arc::new(PeerSlots {
            max: max.max(1),
            counts: Mutex::default(),
        })
    }

    /// A slot for `ip`, unless it has `max` already.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Why a body could not be read.
pub enum BodyError {
    /// Not complete within the deadline.
    TimedOut,
    /// Over [`MAX_BODY_BYTES`].
    TooLarge,
    /// The connection failed or the body was malformed.
    Unreadable,
}

/// Reads `body` (at most [`MAX_BODY_BYTES`]) if it arrives completely within `deadline`. The
/// deadline's timer is armed only if the body is not complete on the first poll.
pub async fn read_body(body: Body, deadline: Duration) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_length_limit(&e) => Err(BodyError::TooLarge),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "request body unreadable");
            Err(BodyError::Unreadable)
        }
        Err(_) => Err(BodyError::TimedOut),
    }
}

/// Whether reading a body failed on the length limit (rather than on the connection).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The connection's peer address, when served by [`super::serve`].
pub fn peer_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Middleware of the API routes, ahead of their shared slots: at most
/// `limits.max_requests_per_client` requests per client address (429 beyond), and the body read whole within
/// [`API_BODY_TIMEOUT`] (408 otherwise). A slow or greedy client thus holds none of the
/// shared slots while it dawdles.
pub async fn guard_api(
    State((state, peers)): State<(AppState, Arc<PeerSlots>)>,
    req: Request,
    next: Next,
) -> Response {
    // Behind a trusted proxy every request has the proxy's address: count the client's.
    let client = peer_ip(&req)
        .map(|peer| super::args::client_ip(req.headers(), peer, &state.api.load().limits));
    let shed = |reason: &str| state.metrics.api_shed.with_label_values(&[reason]).inc();
    let _slot = match client {
        Some(ip) => match peers.try_take(ip) {
            Some(slot) => Some(slot),
            None => {
                shed("peer_busy");
                return ApiError::TooManyRequests(1).into_response();
            }
        },
        None => None,
    };
    let (parts, body) = req.into_parts();
    let body = match read_body(body, API_BODY_TIMEOUT).await {
        Ok(body) => body,
        Err(BodyError::TimedOut) => {
            shed("slow_body");
            return ApiError::RequestTimeout.into_response();
        }
        Err(BodyError::TooLarge) => return ApiError::PayloadTooLarge.into_response(),
        Err(BodyError::Unreadable) => {
            return ApiError::InvalidArgument("body").into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_address_and_gives_slots_back() {
        let slots = PeerSlots::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = slots.try_take(a).unwrap();
        let _second = slots.try_take(a).unwrap();
        assert!(slots.try_take(a).is_none(), "a third for the same address");
        assert!(
            slots.try_take(b).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert!(slots.try_take(a).is_some(), "a slot comes back on drop");
    }
}
