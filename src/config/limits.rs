//! `[limits]`: rate limits of `/jars/token`, load shedding, and which proxies to believe.

use serde::{Deserialize, Serialize};

use super::describe::display_list;
use super::{err, ConfigError};

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
    /// Peers whose `X-Forwarded-For` names the client (reverse proxies).
    #[serde(serialize_with = "display_list")]
    pub trusted_proxies: Vec<crate::net::IpNet>,
    /// Events one member may create per hour (`/jars/create`), all at once at most.
    pub create_per_hour: u32,
    /// Listener tickets one member may mint per minute (`/jars/ticket`), all at once at most.
    pub tickets_per_minute: u32,
    /// Revocations one member may make per minute (`/jars/tickets/revoke`), all at once at
    /// most.
    pub revoke_per_minute: u32,
    /// `/jars/events` listings reading the store at once; more wait their turn.
    pub max_concurrent_lists: usize,
}

/// `[limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileLimits {
    token_per_minute: Option<u32>,
    token_burst: Option<u32>,
    max_concurrent_requests: Option<usize>,
    max_concurrent_callbacks: Option<usize>,
    trusted_proxies: Vec<String>,
    create_per_hour: Option<u32>,
    tickets_per_minute: Option<u32>,
    revoke_per_minute: Option<u32>,
    max_concurrent_lists: Option<usize>,
}

/// Validates `[limits]` and fills in its defaults.
pub(super) fn resolve(f: FileLimits) -> Result<LimitSettings, ConfigError> {
    let limits = LimitSettings {
        token_per_minute: f.token_per_minute.unwrap_or(10),
        token_burst: f.token_burst.unwrap_or(5),
        max_concurrent_requests: f.max_concurrent_requests.unwrap_or(256),
        max_concurrent_callbacks: f.max_concurrent_callbacks.unwrap_or(1024),
        trusted_proxies: f
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|e| err(format!("limits.trusted_proxies: {e}")))
            })
            .collect::<Result<_, _>>()?,
        create_per_hour: f.create_per_hour.unwrap_or(60),
        tickets_per_minute: f.tickets_per_minute.unwrap_or(60),
        revoke_per_minute: f.revoke_per_minute.unwrap_or(30),
        max_concurrent_lists: f.max_concurrent_lists.unwrap_or(2),
    };
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
    if limits.max_concurrent_requests == 0 || limits.max_concurrent_callbacks == 0 {
        return Err(err(
            "limits.max_concurrent_requests, limits.max_concurrent_callbacks: must be at least 1",
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
    }
}
