//! The Prometheus registry and every metric jars exports. Labels come from small fixed sets
//! (matched routes, actions, decisions, reasons): never a raw path, token or user.
//!
//! # Security
//! `/metrics` reveals traffic volumes and deny reasons, no secrets. Serve it on loopback or on
//! its own `metrics_listen` address that only Prometheus reaches.

use std::time::Duration;

use crate::domain::DenyReason;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The store operations `jars_store_errors_total{op}` counts (`store::metered`).
pub const STORE_OPS: [&str; 8] = [
    "create",
    "get",
    "list",
    "mark_connected",
    "mark_disconnected",
    "set_max_listeners",
    "ping",
    "listener_counts",
];

/// The Icecast actions that are decided (the notifications are not).
const CALLBACK_ACTIONS: [&str; 2] = ["stream_auth", "listener_add"];

/// All of jars' metrics, registered in their own registry (no global state).
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub auth_decisions: IntCounterVec,
    pub token_cache: IntCounterVec,
    pub key_set_refreshes: IntCounterVec,
    pub key_set_age: Gauge,
    pub live_mounts: IntGauge,
    pub listeners: IntGauge,
    pub store_errors: IntCounterVec,
    pub ready: IntGauge,
    /// Callbacks being decided (holding one of `max_concurrent_callbacks` slots).
    pub callbacks_in_progress: IntGauge,
    /// Callbacks refused before they were decided, by reason (`busy`, `peer_busy`,
    /// `slow_body`).
    pub callbacks_shed: IntCounterVec,
    /// API requests refused before their handler ran, by reason (`peer_busy`, `slow_body`).
    pub api_shed: IntCounterVec,
    /// Open client connections on the main address.
    pub connections_open: IntGauge,
    /// Connections closed by jars before a request, by reason (`over_limit`, `no_request`).
    pub connections_dropped: IntCounterVec,
    /// Sessions jars asked an Icecast to drop, by deny reason and [`KICK_RESULTS`].
    pub kicks: IntCounterVec,
    /// Session rows not written, by reason (`queue_full`, `store_error`).
    pub sessions_dropped: IntCounterVec,
    /// Seconds listened, summed as sessions end.
    pub listening_seconds: IntCounter,
    /// jars' own webcast relay (`jars_webcast_*`).
    pub webcast: WebcastMetrics,
    /// `/listen` requests by [`LISTEN_RESULTS`].
    pub listen_requests: IntCounterVec,
    /// Listeners `/listen` sent to each server (`server:port`, configured servers only).
    pub placements: IntCounterVec,
    /// Each configured server (`jars_server_*{server}`), set when `/metrics` is read.
    pub servers: ServerMetrics,
}

/// How `/listen` answered (`jars_listen_requests_total{result}`): `placed` (a redirect or a
/// playlist), or the refusal's reason label.
pub const LISTEN_RESULTS: [&str; 9] = [
    "placed",
    "invalid_identifier",
    "no_event",
    "not_on_air",
    "servers_full",
    "no_healthy_server",
    "station_full",
    "event_full",
    "store_error",
];

/// `jars_server_*{server}`: each `[[icecast.servers]]` entry's listeners, capacity, listeners
/// on their way and health, as `/readyz` shows them.
#[derive(Clone)]
pub struct ServerMetrics {
    pub listeners: IntGaugeVec,
    pub capacity: IntGaugeVec,
    pub pending: IntGaugeVec,
    pub healthy: IntGaugeVec,
}

impl ServerMetrics {
    fn register(registry: &Registry) -> ServerMetrics {
        let gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["server"]).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        ServerMetrics {
            listeners: gauge(
                "jars_server_listeners",
                "Listeners on each Icecast server (Icecast's own count or this node's, the larger).",
            ),
            capacity: gauge(
                "jars_server_capacity",
                "Each Icecast server's max_listeners.",
            ),
            pending: gauge(
                "jars_server_pending",
                "Listeners /listen sent to each Icecast server that have not arrived yet.",
            ),
            healthy: gauge(
                "jars_server_healthy",
                "1 while an Icecast server's admin API answers and its callbacks arrive.",
            ),
        }
    }

    /// Sets every series from `servers`, dropping servers no longer configured.
    pub fn set<'a>(&self, servers: impl IntoIterator<Item = ServerSample<'a>>) {
        for g in [
            &self.listeners,
            &self.capacity,
            &self.pending,
            &self.healthy,
        ] {
            g.reset();
        }
        for s in servers {
            let name = [s.name];
            self.listeners
                .with_label_values(&name)
                .set(i64::from(s.listeners));
            self.capacity
                .with_label_values(&name)
                .set(i64::from(s.capacity));
            self.pending
                .with_label_values(&name)
                .set(i64::from(s.pending));
            self.healthy
                .with_label_values(&name)
                .set(i64::from(s.healthy));
        }
    }
}

/// One server's `jars_server_*` samples.
#[derive(Debug, Clone, Copy)]
pub struct ServerSample<'a> {
    /// `server:port`.
    pub name: &'a str,
    pub listeners: u32,
    pub capacity: u32,
    pub pending: u32,
    pub healthy: bool,
}

/// `jars_webcast_*`: DJs streaming through `/webcast/{mount}` and what reached Icecast.
#[derive(Clone)]
pub struct WebcastMetrics {
    /// DJs live through this node now.
    pub sessions: IntGauge,
    /// Audio bytes written to Icecast.
    pub bytes: IntCounter,
    /// Audio bytes dropped: the oldest beyond the buffer while Icecast was away or slow.
    pub dropped_bytes: IntCounter,
    /// New Icecast connections after the first of a session.
    pub reconnects: IntCounter,
}

impl WebcastMetrics {
    fn register(registry: &Registry) -> WebcastMetrics {
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let sessions = IntGauge::new(
            "jars_webcast_sessions",
            "DJs streaming through /webcast on this node now.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(sessions.clone()))
            .expect("unique metric");
        WebcastMetrics {
            sessions,
            bytes: counter(
                "jars_webcast_bytes_total",
                "Audio bytes relayed from /webcast DJs to Icecast.",
            ),
            dropped_bytes: counter(
                "jars_webcast_dropped_bytes_total",
                "Audio bytes of /webcast DJs dropped while Icecast was away or slow.",
            ),
            reconnects: counter(
                "jars_webcast_reconnects_total",
                "Icecast connections /webcast sessions opened again after losing one.",
            ),
        }
    }
}

/// How asking an Icecast to drop a session ended (`jars_kicks_total{result}`): `dropped`,
/// `gone` (Icecast has no such client or source), `failed` (no answer or a refusal after
/// every retry), `no_admin` (no `[[icecast.servers]]` entry for that server).
pub const KICK_RESULTS: [&str; 4] = ["dropped", "gone", "failed", "no_admin"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let http_requests = counter(
            "jars_http_requests_total",
            "HTTP requests by matched route and status code.",
            &["route", "status"],
        );
        let auth_decisions = counter(
            "jars_auth_decisions_total",
            "Decisions by action (stream_auth, listener_add, connect, ...), decision and reason.",
            &["action", "decision", "reason"],
        );
        let token_cache = counter(
            "jars_token_cache_requests_total",
            "Token verifications answered from the verified-token cache (hit) or by RSA (miss).",
            &["result"],
        );
        let key_set_refreshes = counter(
            "jars_key_set_refreshes_total",
            "Fetches of a remote key set by result (ok, error).",
            &["result"],
        );
        let store_errors = counter(
            "jars_store_errors_total",
            "Failed event store operations by operation.",
            &["op"],
        );
        let callbacks_shed = counter(
            "jars_callbacks_shed_total",
            "Icecast callbacks refused before a decision, by reason (busy, peer_busy, slow_body).",
            &["reason"],
        );
        let api_shed = counter(
            "jars_api_shed_total",
            "API requests refused before their handler, by reason (peer_busy, slow_body).",
            &["reason"],
        );
        let connections_dropped = counter(
            "jars_connections_dropped_total",
            "Connections closed before a request, by reason (over_limit, no_request).",
            &["reason"],
        );
        let kicks = counter(
            "jars_kicks_total",
            "Live sessions jars asked an Icecast to drop, by reason and result \
             (dropped, gone, failed, no_admin).",
            &["reason", "result"],
        );
        let sessions_dropped = counter(
            "jars_sessions_dropped_total",
            "Listener session rows not stored, by reason (queue_full, store_error).",
            &["reason"],
        );
        let listening_seconds = IntCounter::new(
            "jars_listening_seconds_total",
            "Seconds listened on this node, counted as listener sessions end.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(listening_seconds.clone()))
            .expect("unique metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "jars_http_request_duration_seconds",
                "HTTP request latency by matched route.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("unique metric");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let live_mounts = gauge(
            "jars_live_mounts",
            "Mounts with a live source on this node.",
        );
        let listeners = gauge(
            "jars_listeners",
            "Current listeners, all events, on this node.",
        );
        let ready = gauge(
            "jars_ready",
            "1 when keys are loaded and the store answers.",
        );
        let callbacks_in_progress = gauge(
            "jars_callbacks_in_progress",
            "Icecast callbacks being decided now (at most limits.max_concurrent_callbacks).",
        );
        let connections_open = gauge(
            "jars_connections_open",
            "Open client connections on the main address.",
        );
        let key_set_age = Gauge::new(
            "jars_key_set_age_seconds",
            "Seconds since the key set was last loaded or fetched successfully.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(key_set_age.clone()))
            .expect("unique metric");
        // Not available on every platform; jars runs on Linux where it is.
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        // Every series whose labels are known exists from the start, at zero, so alert rules and
        // dashboards see a healthy node's zeros instead of nothing ("avoid missing metrics").
        let zero = |c: &IntCounterVec, values: &[&str]| {
            for v in values {
                c.with_label_values(&[v]);
            }
        };
        zero(&token_cache, &["hit", "miss"]);
        zero(&key_set_refreshes, &["ok", "error"]);
        zero(&store_errors, &STORE_OPS);
        zero(&callbacks_shed, &["busy", "peer_busy", "slow_body"]);
        zero(&api_shed, &["peer_busy", "slow_body"]);
        zero(&connections_dropped, &["over_limit", "no_request"]);
        zero(&sessions_dropped, &["queue_full", "store_error"]);
        let callback_reasons = DenyReason::EACH_LABEL.map(DenyReason::label);
        for action in CALLBACK_ACTIONS {
            decisions_start_at_zero(&auth_decisions, action, &callback_reasons);
        }
        for reason in callback_reasons {
            for result in KICK_RESULTS {
                kicks.with_label_values(&[reason, result]);
            }
        }
        auth_decisions.with_label_values(&[
            "unknown",
            "deny",
            DenyReason::CallerNotIcecast.label(),
        ]);
        let webcast = WebcastMetrics::register(&registry);
        let listen_requests = counter(
            "jars_listen_requests_total",
            "/listen requests by result (placed, or why not: servers_full, not_on_air, ...).",
            &["result"],
        );
        zero(&listen_requests, &LISTEN_RESULTS);
        let placements = counter(
            "jars_placements_total",
            "Listeners /listen sent to each Icecast server.",
            &["server"],
        );
        let servers = ServerMetrics::register(&registry);
        Metrics {
            registry,
            http_requests,
            http_duration,
            auth_decisions,
            token_cache,
            key_set_refreshes,
            key_set_age,
            live_mounts,
            listeners,
            store_errors,
            ready,
            callbacks_in_progress,
            callbacks_shed,
            api_shed,
            connections_open,
            connections_dropped,
            kicks,
            sessions_dropped,
            listening_seconds,
            webcast,
            listen_requests,
            placements,
            servers,
        }
    }

    /// Starts `action`'s decision series at zero: allowed (`ok`), and denied for each of
    /// `reasons`. The HTTP layer names its actions and reasons (`http::api::DECIDED_ACTIONS`).
    pub fn decisions_start_at_zero(&self, action: &str, reasons: &[&str]) {
        decisions_start_at_zero(&self.auth_decisions, action, reasons);
    }

    /// Counts one decision.
    pub fn decision(&self, action: &str, allowed: bool, reason: &str) {
        self.auth_decisions
            .with_label_values(&[action, if allowed { "allow" } else { "deny" }, reason])
            .inc();
    }

    /// Counts and times one HTTP request by matched route and status.
    pub fn observe_request(&self, route: &str, status: &str, elapsed: Duration) {
        self.http_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        self.http_requests.with_label_values(&[route, status]).inc();
    }

    /// `route`'s request metrics with their label lookups done once, for a route on the
    /// callback path.
    pub fn route(&self, route: &'static str) -> RouteMetrics {
        RouteMetrics {
            route,
            duration: self.http_duration.with_label_values(&[route]),
            ok: self.http_requests.with_label_values(&[route, "200"]),
            requests: self.http_requests.clone(),
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

fn decisions_start_at_zero(decisions: &IntCounterVec, action: &str, reasons: &[&str]) {
    decisions.with_label_values(&[action, "allow", "ok"]);
    for reason in reasons {
        decisions.with_label_values(&[action, "deny", reason]);
    }
}

/// One route's request metrics, resolved once (see [`Metrics::route`]): recording a request
/// with the usual status `200` costs no label lookup.
#[derive(Clone)]
pub struct RouteMetrics {
    route: &'static str,
    duration: Histogram,
    ok: IntCounter,
    requests: IntCounterVec,
}

impl RouteMetrics {
    /// Counts and times one request, as [`Metrics::observe_request`] does.
    pub fn observe(&self, status: &str, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
        if status == "200" {
            self.ok.inc();
        } else {
            self.requests.with_label_values(&[self.route, status]).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_named_families() {
        let m = Metrics::new();
        m.decision("listener_add", false, "ticket_required");
        m.observe_request("/healthz", "200", Duration::from_millis(1));
        let route = m.route("/icecast/auth");
        route.observe("200", Duration::from_micros(50));
        route.observe("200", Duration::from_micros(50));
        route.observe("503", Duration::from_micros(5));
        let text = m.render();
        assert!(text.contains(r#"jars_http_requests_total{route="/icecast/auth",status="200"} 2"#));
        assert!(text.contains(r#"jars_http_requests_total{route="/icecast/auth",status="503"} 1"#));
        assert!(
            text.contains(r#"jars_http_request_duration_seconds_count{route="/icecast/auth"} 3"#)
        );
        assert!(text.contains(
            r#"jars_auth_decisions_total{action="listener_add",decision="deny",reason="ticket_required"} 1"#
        ));
        assert!(text.contains(r#"jars_http_requests_total{route="/healthz",status="200"} 1"#));
        assert!(text.contains("process_resident_memory_bytes"));
    }

    #[test]
    fn known_series_start_at_zero() {
        let text = Metrics::new().render();
        for series in [
            r#"jars_store_errors_total{op="create"} 0"#,
            r#"jars_store_errors_total{op="ping"} 0"#,
            r#"jars_token_cache_requests_total{result="miss"} 0"#,
            r#"jars_key_set_refreshes_total{result="error"} 0"#,
            r#"jars_callbacks_shed_total{reason="busy"} 0"#,
            r#"jars_connections_dropped_total{reason="no_request"} 0"#,
            r#"jars_sessions_dropped_total{reason="queue_full"} 0"#,
            "jars_listening_seconds_total 0",
            r#"jars_auth_decisions_total{action="stream_auth",decision="allow",reason="ok"} 0"#,
            r#"jars_auth_decisions_total{action="listener_add",decision="deny",reason="wrong_ip"} 0"#,
            r#"jars_auth_decisions_total{action="unknown",decision="deny",reason="bad_caller"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing");
        }
    }

    #[test]
    fn named_actions_start_at_zero_for_the_reasons_given() {
        let m = Metrics::new();
        m.decisions_start_at_zero("connect", &["no_event", "expired"]);
        let text = m.render();
        for series in [
            r#"jars_auth_decisions_total{action="connect",decision="allow",reason="ok"} 0"#,
            r#"jars_auth_decisions_total{action="connect",decision="deny",reason="no_event"} 0"#,
            r#"jars_auth_decisions_total{action="connect",decision="deny",reason="expired"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing");
        }
        assert!(!text.contains(r#"action="connect",decision="deny",reason="wrong_ip""#));
    }
}
