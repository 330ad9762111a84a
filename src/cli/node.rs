//! Asking a running `jars serve`: where it answers (`--url`, else the config's `listen` and
//! `metrics_listen`), `jars status` (its `/readyz` and `/metrics`), and the live state and
//! listener counts `jars event list` shows (its `/jars/events`), which only the running node
//! knows.

use super::out::out;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::Failure;
use crate::config::Config;

/// How long a command waits for the node to answer one request.
const TIMEOUT: Duration = Duration::from_secs(3);

/// At most this many pages of 1,000 events are asked for (a bound, not a limit met in practice).
const MAX_PAGES: usize = 1_000;

/// Where a running node answers.
#[derive(Debug, Clone)]
pub struct Node {
    /// Base URL of the API, `/readyz` included (`listen`).
    pub api: String,
    /// Base URL of `/metrics` (`metrics_listen` when set, else the API's).
    pub metrics: String,
}

/// `http://ADDR` for a listening address; an unspecified address (`0.0.0.0`, `::`) is asked
/// on loopback, where it answers too.
fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

impl Node {
    /// The node `url` names (both the API and `/metrics` there), else the one `config`
    /// describes.
    pub fn new(config: &Config, url: Option<&str>) -> Result<Node, Failure> {
        if let Some(url) = url {
            let parsed = url::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "--url: \"{url}\" is not an http(s) URL, e.g. http://127.0.0.1:8888"
                    ))
                })?;
            let base = parsed.as_str().trim_end_matches('/').to_string();
            return Ok(Node {
                api: base.clone(),
                metrics: base,
            });
        }
        let api = base_url(config.listen);
        Ok(Node {
            metrics: config.metrics_listen.map_or_else(|| api.clone(), base_url),
            api,
        })
    }
}

fn client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .user_agent(concat!("jars-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(TIMEOUT)
        // The node is usually on loopback: an HTTP_PROXY of the shell must not carry the request.
        .no_proxy()
        .build()
        .map_err(|e| Failure::Runtime(format!("HTTP client: {e}")))
}

/// What went wrong reaching the node, without the URL (it is named by the caller): the
/// innermost cause, e.g. "Connection refused (os error 111)".
fn cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", TIMEOUT.as_secs());
    }
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}

/// The sum of every sample of metric `name` (whatever its labels; or `name{labels}` exactly)
/// in a Prometheus text exposition; `None` when it has no sample.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue; // another metric whose name starts with `name`
        }
        let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// `jars status`: the node's readiness (and every detail `/readyz` gives), live mounts,
/// listeners and key set from `/metrics`. `Ok` when ready; not ready is a runtime failure
/// (exit 1) and no answer [`Failure::Unavailable`] (exit 69).
pub async fn status(node: &Node) -> Result<(), Failure> {
    let http = client()?;
    let unavailable = |what: String| Failure::Unavailable(format!("{} {what}", node.api));
    let resp = http
        .get(format!("{}/readyz", node.api))
        .send()
        .await
        .map_err(|e| unavailable(format!("does not answer: {}", cause(&e))))?;
    let code = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| {
            unavailable(format!(
                "answered /readyz {code} without jars' JSON: is it jars?"
            ))
        })?;
    let ready = code == reqwest::StatusCode::OK && body["ready"] == serde_json::Value::Bool(true);
    let reason = body["reason"].as_str().unwrap_or("no reason given");
    let metrics = match http.get(format!("{}/metrics", node.metrics)).send().await {
        Ok(r) if r.status().is_success() => r.text().await.ok(),
        _ => None,
    };

    // Names longer than the column (icecast.without_entry) still get two spaces.
    let row = |name: &str, value: &str| {
        let width = 14.max(name.len() + 2);
        out!("{name:<width$}{value}")
    };
    row("node", &node.api);
    row(
        "ready",
        &if ready {
            "yes".to_string()
        } else {
            format!("no: {reason}")
        },
    );
    match &metrics {
        Some(text) => {
            let count = |name| metric(text, name).map_or("?".into(), |v| format!("{v}"));
            row("live mounts", &count("jars_live_mounts"));
            row("listeners", &count("jars_listeners"));
            row("key set", &key_set(text));
        }
        None => row(
            "metrics",
            &format!(
                "unknown: no /metrics at {} (metrics_listen elsewhere?)",
                node.metrics
            ),
        ),
    }
    if let Some(c) = body.get("callbacks") {
        let n = |k: &str| c[k].as_u64().map_or("?".into(), |v| v.to_string());
        row(
            "callbacks",
            &format!(
                "{} in progress of {}, {} shed since start",
                n("in_progress"),
                n("capacity"),
                n("shed")
            ),
        );
    }
    let icecast = &body["icecast"];
    if let Some(cap) = icecast["max_listeners"].as_u64() {
        row(
            "licence",
            &format!("at most {cap} listeners, all servers and nodes"),
        );
    }
    for s in icecast["servers"].as_array().into_iter().flatten() {
        row("server", &server_line(s));
    }
    // Whatever else /readyz reports, as rows of text rather than JSON.
    if let Some(fields) = body.as_object() {
        let mut rows = Vec::new();
        for (k, v) in fields {
            let mut v = v.clone();
            if k == "icecast" {
                // Shown above, a line each.
                if let Some(o) = v.as_object_mut() {
                    o.remove("servers");
                    o.remove("max_listeners");
                }
            }
            if !matches!(k.as_str(), "ready" | "error" | "reason" | "callbacks") {
                detail_rows(k, &v, &mut rows);
            }
        }
        for (name, value) in rows {
            row(&name, &value);
        }
    }
    if ready {
        Ok(())
    } else {
        Err(Failure::Runtime(format!("not ready: {reason}")))
    }
}

/// One `[[icecast.servers]]` entry of `/readyz` in a line: its name, health (and why not),
/// listeners of its capacity, those on their way, and where `/listen` sends listeners.
fn server_line(s: &serde_json::Value) -> String {
    let n = |k: &str| s[k].as_u64().map_or("?".into(), |v| v.to_string());
    let mut line = format!(
        "{}:{}  {}, {} of {} listeners",
        s["server"].as_str().unwrap_or("?"),
        s["port"],
        s["health"].as_str().unwrap_or("unknown"),
        n("listeners"),
        n("capacity")
    );
    if s["pending"].as_u64().is_some_and(|p| p > 0) {
        line.push_str(&format!(" (+{} on their way)", n("pending")));
    }
    match s["public_url"].as_str() {
        Some(url) => line.push_str(&format!(", listeners go to {url}")),
        None => line.push_str(", no public_url: /listen sends nobody"),
    }
    if let Some(why) = s["why"].as_str() {
        line.push_str(&format!("; {why}"));
    }
    if let Some(resync) = s["resync"].as_str() {
        line.push_str(&format!("; resync {resync}"));
        if let Some(e) = s["error"].as_str() {
            line.push_str(&format!(" ({e})"));
        }
    }
    line
}

/// `value` under `name` as rows: an object's fields as `name.field`, each item of a list on a
/// row of its own, an empty list not at all (nothing to report).
fn detail_rows(name: &str, value: &serde_json::Value, rows: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                detail_rows(&format!("{name}.{k}"), v, rows);
            }
        }
        Value::Array(items) => {
            for item in items {
                rows.push((name.to_string(), inline(item)));
            }
        }
        other => rows.push((name.to_string(), inline(other))),
    }
}

/// One value as text on one line: strings without quotes, an object as `key value, …`
/// without its empty fields.
fn inline(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Object(fields) => fields
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k} {}", inline(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) => items.iter().map(inline).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The key set's source and age: local key files are never refreshed; a fetched set has an age.
fn key_set(metrics: &str) -> String {
    let fetches = metric(metrics, "jars_key_set_refreshes_total").unwrap_or(0.0);
    if fetches == 0.0 {
        return "local key files".into();
    }
    let age = metric(metrics, "jars_key_set_age_seconds").unwrap_or(0.0);
    let age = humantime::format_duration(Duration::from_secs(age as u64));
    let failed = metric(metrics, "jars_key_set_refreshes_total{result=\"error\"}").unwrap_or(0.0);
    format!("fetched {age} ago ({failed} of {fetches} fetches failed)")
}

/// What the node knows of an event now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct LiveState {
    /// A source is on the event's mount.
    pub live: bool,
    /// Current listeners, summed over the Icecast servers reporting to the node.
    pub listeners: u32,
}

#[derive(serde::Deserialize)]
struct ListedEvent {
    event_id: uuid::Uuid,
    #[serde(flatten)]
    state: LiveState,
}

/// The live state of every event the node shows (`all`: expired ones too), asked with `token`
/// (an admin's sees private events; without one only public events are shown). `Err` says why
/// the node could not be asked.
pub async fn live_states(
    node: &Node,
    token: Option<&str>,
    all: bool,
) -> Result<HashMap<uuid::Uuid, LiveState>, String> {
    let http = client().map_err(|f| f.message().to_string())?;
    let mut states = HashMap::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("limit", "1000".to_string())];
        if all {
            query.push(("all", "1".into()));
        }
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let mut req = http.get(format!("{}/jars/events", node.api)).query(&query);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{} does not answer: {}", node.api, cause(&e)))?;
        if !resp.status().is_success() {
            return Err(format!(
                "{} answered /jars/events {}",
                node.api,
                resp.status()
            ));
        }
        after = resp
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let page: Vec<ListedEvent> = resp
            .json()
            .await
            .map_err(|_| format!("{} answered /jars/events with another list", node.api))?;
        states.extend(page.into_iter().map(|e| (e.event_id, e.state)));
        if after.is_none() {
            break;
        }
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums_samples_of_exactly_that_name() {
        let text = "# HELP jars_listeners x\n# TYPE jars_listeners gauge\njars_listeners 3\n\
                    jars_listeners_extra 100\njars_key_set_refreshes_total{result=\"error\"} 2\n\
                    jars_key_set_refreshes_total{result=\"ok\"} 5\n";
        assert_eq!(metric(text, "jars_listeners"), Some(3.0));
        assert_eq!(metric(text, "jars_key_set_refreshes_total"), Some(7.0));
        let failed = "jars_key_set_refreshes_total{result=\"error\"}";
        assert_eq!(metric(text, failed), Some(2.0));
        assert_eq!(key_set(text), "fetched 0s ago (2 of 7 fetches failed)");
        assert_eq!(metric(text, "jars_live_mounts"), None);
    }

    #[test]
    fn a_server_in_one_line() {
        let s = serde_json::json!({
            "server": "localhost", "port": 8001, "health": "admin_failing",
            "listeners": 12, "capacity": 100, "pending": 3,
            "public_url": "http://edge1:8001", "why": "its admin API failed 2 checks in a row",
        });
        assert_eq!(
            server_line(&s),
            "localhost:8001  admin_failing, 12 of 100 listeners (+3 on their way), listeners go \
             to http://edge1:8001; its admin API failed 2 checks in a row"
        );
        let master = serde_json::json!({
            "server": "localhost", "port": 8000, "health": "healthy",
            "listeners": 2, "capacity": 500, "pending": 0, "resync": "failed",
            "error": "connection refused",
        });
        assert_eq!(
            server_line(&master),
            "localhost:8000  healthy, 2 of 500 listeners, no public_url: /listen sends nobody; \
             resync failed (connection refused)"
        );
    }

    #[test]
    fn unspecified_addresses_are_asked_on_loopback() {
        assert_eq!(
            base_url("0.0.0.0:8888".parse().unwrap()),
            "http://127.0.0.1:8888"
        );
        assert_eq!(base_url("[::]:80".parse().unwrap()), "http://[::1]:80");
        assert_eq!(
            base_url("192.0.2.1:9000".parse().unwrap()),
            "http://192.0.2.1:9000"
        );
    }

    #[test]
    fn readiness_detail_is_rows_of_text_not_json() {
        let detail = serde_json::json!({
            "servers": [
                {"server": "localhost", "port": 8000, "resync": "failed",
                 "last_resync": "2026-12-10T08:00:00+00:00", "error": "connection refused"},
            ],
            "without_entry": [],
            "note": "sessions on servers without_entry cannot be dropped",
        });
        let mut rows = Vec::new();
        detail_rows("icecast", &detail, &mut rows);
        assert_eq!(
            rows,
            [
                (
                    "icecast.note".to_string(),
                    "sessions on servers without_entry cannot be dropped".to_string()
                ),
                (
                    "icecast.servers".to_string(),
                    "error connection refused, last_resync 2026-12-10T08:00:00+00:00, port 8000, \
                     resync failed, server localhost"
                        .to_string()
                ),
            ]
        );
        assert!(rows
            .iter()
            .all(|(_, v)| !v.contains('{') && !v.contains('"')));
    }
}
