//! `[limits]`: rate limits of `/jars/token` and of members' writes, load shedding, which
//! proxies to believe (loopback unless told otherwise) in which header, and the station's
//! listener licence (`max_listeners`, held across every server and node sharing the store, each
//! node named by `node_name` in the shared counts).

use serde::{Deserialize, Serialize};

use super::describe::display_list;
use super::{err, ConfigError};

/// API requests one client address may have in progress when
/// `max_requests_per_client` is not set.
pub const DEFAULT_MAX_REQUESTS_PER_CLIENT: usize = 16;

/// Rate limits of `/jars/token` (per client address and per user name), load shedding, and
/// whose `X-Forwarded-For` to believe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitSettings {
    pub token_per_minute: u32,
    pub token_burst: u32,
    /// Requests to the management API (everything but Icecast callbacks and health) in
    /// progress at once; more are answered 503 at once instead of queueing.
    pub max_concurrent_requests: usize,
    /// Icecast callbacks in progress at once; kept apart so the API cannot starve them.
    pub max_concurrent_callbacks: usize,
    /// API requests in progress per client address (body read included); beyond, 429.
    pub max_requests_per_client: usize,
    /// Peers whose forwarding header names the client (reverse proxies). Unset: loopback (a
    /// proxy on the same host); `[]`: nobody.
    #[serde(serialize_with = "display_list")]
    pub trusted_proxies: Vec<crate::net::IpNet>,
    /// The header trusted proxies name the client in.
    pub forwarded_header: crate::net::ForwardedHeader,
    /// Events one member may create per hour (`/jars/create`), all at once at most.
    pub create_per_hour: u32,
    /// Listener tickets one member may mint per minute (`/jars/ticket`), all at once at most.
    pub tickets_per_minute: u32,
    /// Revocations one member may make per minute (`/jars/tickets/revoke`), all at once at
    /// most.
    pub revoke_per_minute: u32,
    /// `/jars/events` listings reading the store at once; more wait their turn.
    pub max_concurrent_lists: usize,
    /// The station's listener licence: listeners at once over every server and node sharing
    /// the store (`None`: no limit). Edge servers' pulls never count.
    pub max_listeners: Option<u32>,
    /// This node's name in the listener counts nodes share through PostgreSQL (`None`: its
    /// host name and listening port). Must differ between nodes and stay the same across
    /// restarts.
    pub node_name: Option<String>,
}

/// `[limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileLimits {
    token_per_minute: Option<u32>,
    token_burst: Option<u32>,
    max_concurrent_requests: Option<usize>,
    max_concurrent_callbacks: Option<usize>,
    max_requests_per_client: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
    forwarded_header: Option<String>,
    create_per_hour: Option<u32>,
    tickets_per_minute: Option<u32>,
    revoke_per_minute: Option<u32>,
    max_concurrent_lists: Option<usize>,
    max_listeners: Option<u32>,
    node_name: Option<String>,
}

/// Validates `[limits]` and fills in its defaults.
pub(super) fn resolve(f: FileLimits) -> Result<LimitSettings, ConfigError> {
    let limits = LimitSettings {
        token_per_minute: f.token_per_minute.unwrap_or(10),
        token_burst: f.token_burst.unwrap_or(5),
        max_concurrent_requests: f.max_concurrent_requests.unwrap_or(256),
        max_concurrent_callbacks: f.max_concurrent_callbacks.unwrap_or(1024),
        max_requests_per_client: f
            .max_requests_per_client
            .unwrap_or(DEFAULT_MAX_REQUESTS_PER_CLIENT),
        trusted_proxies: match &f.trusted_proxies {
            None => crate::net::loopback_proxies(),
            Some(list) => list
                .iter()
                .map(|p| {
                    p.parse()
                        .map_err(|e| err(format!("limits.trusted_proxies: {e}")))
                })
                .collect::<Result<_, _>>()?,
        },
        forwarded_header: match &f.forwarded_header {
            None => crate::net::ForwardedHeader::default(),
            Some(h) => crate::net::ForwardedHeader::parse(h).ok_or_else(|| {
                err(format!(
                    "limits.forwarded_header: \"{h}\" is neither \"x-forwarded-for\" nor \
                     \"forwarded\""
                ))
            })?,
        },
        create_per_hour: f.create_per_hour.unwrap_or(60),
        tickets_per_minute: f.tickets_per_minute.unwrap_or(60),
        revoke_per_minute: f.revoke_per_minute.unwrap_or(30),
        max_concurrent_lists: f.max_concurrent_lists.unwrap_or(2),
        max_listeners: f.max_listeners,
        node_name: f.node_name,
    };
    if limits.max_listeners == Some(0) {
        return Err(err(
            "limits.max_listeners: at least 1 (leave unset for no limit)",
        ));
    }
    if limits
        .node_name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.len() > 128)
    {
        return Err(err(
            "limits.node_name: 1 to 128 characters (leave unset for host:port)",
        ));
    }
    if limits.create_per_hour == 0
        || limits.tickets_per_minute == 0
        || limits.revoke_per_minute == 0
        || limits.max_concurrent_lists == 0
    {
        return Err(err(
            "limits.create_per_hour, limits.tickets_per_minute, limits.revoke_per_minute, \
             limits.max_concurrent_lists: must be at least 1",
        ));
    }
    if limits.max_concurrent_requests == 0
        || limits.max_concurrent_callbacks == 0
        || limits.max_requests_per_client == 0
    {
        return Err(err(
            "limits.max_concurrent_requests, limits.max_concurrent_callbacks, \
             limits.max_requests_per_client: must be at least 1",
        ));
    }
    if limits.token_per_minute == 0 || limits.token_burst == 0 {
        return Err(err(
            "limits.token_per_minute, limits.token_burst: must be at least 1",
        ));
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::super::toml_for_test as toml;

    #[test]
    fn limits_section() {
        let c = toml("[limits]\ntrusted_proxies = [\"10.0.0.0/8\"]\ntoken_burst = 2").unwrap();
        assert_eq!(c.limits.token_burst, 2);
        assert_eq!(c.limits.token_per_minute, 10);
        assert_eq!(c.limits.trusted_proxies, ["10.0.0.0/8".parse().unwrap()]);
        let e = toml("[limits]\ntoken_burst = 0").unwrap_err().0;
        assert!(e.contains("limits.token_burst"), "{e}");
        let e = toml("[limits]\ntrusted_proxies = [\"nowhere\"]")
            .unwrap_err()
            .0;
        assert!(e.starts_with("limits.trusted_proxies"), "{e}");
        assert_eq!(c.limits.max_listeners, None);
        let c = toml("[limits]\nmax_listeners = 250\nnode_name = \"jars-a\"").unwrap();
        assert_eq!(c.limits.max_listeners, Some(250));
        assert_eq!(c.limits.node_name.as_deref(), Some("jars-a"));
        let e = toml("[limits]\nmax_listeners = 0").unwrap_err().0;
        assert!(e.starts_with("limits.max_listeners"), "{e}");
        let e = toml("[limits]\nnode_name = \" \"").unwrap_err().0;
        assert!(e.starts_with("limits.node_name"), "{e}");
    }

    /// Issue 28, item 11: a proxy on the same host is believed unless told otherwise; the
    /// per-client cap and the revocation limit are settings.
    #[test]
    fn proxies_on_loopback_are_trusted_by_default() {
        let c = toml("").unwrap();
        assert_eq!(c.limits.trusted_proxies, crate::net::loopback_proxies());
        assert_eq!(
            c.limits.forwarded_header,
            crate::net::ForwardedHeader::XForwardedFor
        );
        assert_eq!(c.limits.max_requests_per_client, 16);
        assert_eq!(c.limits.revoke_per_minute, 30);
        let c = toml(
            "[limits]\ntrusted_proxies = []\nforwarded_header = \"Forwarded\"\n\
                      max_requests_per_client = 4\nrevoke_per_minute = 5",
        )
        .unwrap();
        assert!(c.limits.trusted_proxies.is_empty(), "nobody, when told so");
        assert_eq!(
            c.limits.forwarded_header,
            crate::net::ForwardedHeader::Forwarded
        );
        assert_eq!(c.limits.max_requests_per_client, 4);
        assert_eq!(c.limits.revoke_per_minute, 5);
        for bad in [
            "forwarded_header = \"x-real-ip\"",
            "max_requests_per_client = 0",
        ] {
            let e = toml(&format!("[limits]\n{bad}")).unwrap_err().0;
            assert!(e.contains(bad.split(' ').next().unwrap()), "{e}");
        }
    }
}
