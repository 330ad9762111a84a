//! `[icecast]`: how Icecast callbacks are authenticated, which mounts are not events, which
//! relays are trusted (sources by credentials, edge servers' pulls by address), what decisions
//! do while the event store is down, and which Icecast servers jars uses (`[[icecast.servers]]`,
//! see [`servers`]) and how often it checks that they answer.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::describe::{display_list, duration, secret, secret_opt};
use super::{err, positive, ConfigError};

mod servers;
pub use servers::IcecastServer;

/// Who may reach a mount that is not an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Anybody.
    Public,
    /// Anybody with a valid user token.
    Members,
    /// Admins only.
    Admins,
}

/// A mount declared in `[[icecast.mounts]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticMount {
    pub name: String,
    pub access: Access,
}

/// Source credentials of a relay (`[[icecast.trusted_sources]]`).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedSource {
    pub user: String,
    #[serde(serialize_with = "secret")]
    pub password: String,
}

impl fmt::Debug for TrustedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedSource({}, ***)", self.user)
    }
}

/// An edge server's address (`[[icecast.trusted_relays]]`): its pulls of a master's mounts
/// reach the master's `listener_add` with empty credentials and Icecast's own user agent, so
/// only the address tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTrustedRelay {
    ip: String,
}

/// The `[icecast]` section: how callbacks are authenticated and decided.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct IcecastSettings {
    /// HTTP Basic credentials every callback must carry, when set.
    pub username: Option<String>,
    #[serde(serialize_with = "secret_opt")]
    pub password: Option<String>,
    /// Where callbacks may come from besides loopback: any address when the credentials are
    /// set and this is empty; otherwise loopback and these ranges only.
    #[serde(serialize_with = "display_list")]
    pub allowed_from: Vec<crate::net::IpNet>,
    pub token_params: Vec<String>,
    pub header_prefix: String,
    pub mounts: Vec<StaticMount>,
    pub trusted_sources: Vec<TrustedSource>,
    /// Edge servers pulling from this one (`[[icecast.trusted_relays]]`, addresses or ranges):
    /// their listener connections are allowed, never counted or capped, and open no session.
    #[serde(serialize_with = "display_list")]
    pub trusted_relays: Vec<crate::net::IpNet>,
    #[serde(serialize_with = "duration")]
    pub relay_window: Duration,
    /// How long after Icecast dropped a trusted relay's source that relay may reconnect to
    /// the same event without a new `/jars/connect` (zero: never).
    #[serde(serialize_with = "duration")]
    pub relay_reconnect: Duration,
    #[serde(serialize_with = "duration")]
    pub ticket_lifetime: Duration,
    /// `None`: unlimited.
    pub max_listeners_per_ticket: Option<u32>,
    /// What an event decision does when the event store fails.
    pub on_store_error: OnStoreError,
    /// The Icecast servers whose admin API jars uses (resync, dropping sessions).
    pub servers: Vec<IcecastServer>,
    /// How often live state is rebuilt from each server's admin API.
    #[serde(serialize_with = "duration")]
    pub resync: Duration,
    /// How often each server's admin API is asked whether it answers (and which mounts it
    /// carries, with how many listeners): what `/listen` and `/readyz` call its health.
    #[serde(serialize_with = "duration")]
    pub health_interval: Duration,
}

/// `[icecast] on_store_error`: how Icecast decisions behave while the event store is down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Decide on the last row this node read for the event (never for an expired event); deny
    /// events it never saw.
    #[default]
    Cached,
    /// Deny every decision that needs the store.
    Deny,
}

impl fmt::Display for OnStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnStoreError::Cached => "cached",
            OnStoreError::Deny => "deny",
        })
    }
}

impl fmt::Debug for IcecastSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IcecastSettings")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("allowed_from", &self.allowed_from)
            .field("token_params", &self.token_params)
            .field("header_prefix", &self.header_prefix)
            .field("mounts", &self.mounts)
            .field("trusted_sources", &self.trusted_sources)
            .field("trusted_relays", &self.trusted_relays)
            .field("relay_window", &self.relay_window)
            .field("relay_reconnect", &self.relay_reconnect)
            .field("ticket_lifetime", &self.ticket_lifetime)
            .field("max_listeners_per_ticket", &self.max_listeners_per_ticket)
            .field("on_store_error", &self.on_store_error)
            .field("servers", &self.servers)
            .field("resync", &self.resync)
            .field("health_interval", &self.health_interval)
            .finish()
    }
}

impl Default for IcecastSettings {
    fn default() -> Self {
        IcecastSettings {
            username: None,
            password: None,
            allowed_from: Vec::new(),
            token_params: vec!["token".into(), "jwt".into()],
            header_prefix: "ClientHeader.".into(),
            mounts: Vec::new(),
            trusted_sources: Vec::new(),
            trusted_relays: Vec::new(),
            relay_window: Duration::from_secs(60),
            relay_reconnect: Duration::from_secs(600),
            ticket_lifetime: Duration::from_secs(6 * 3600),
            max_listeners_per_ticket: None,
            on_store_error: OnStoreError::Cached,
            servers: Vec::new(),
            resync: Duration::from_secs(300),
            health_interval: Duration::from_secs(2),
        }
    }
}

/// `[icecast]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileIcecast {
    username: Option<String>,
    password: Option<String>,
    allowed_from: Vec<String>,
    token_params: Option<Vec<String>>,
    header_prefix: Option<String>,
    mounts: Vec<StaticMount>,
    trusted_sources: Vec<TrustedSource>,
    trusted_relays: Vec<FileTrustedRelay>,
    #[serde(with = "humantime_serde")]
    relay_window: Option<Duration>,
    #[serde(with = "humantime_serde")]
    relay_reconnect: Option<Duration>,
    #[serde(with = "humantime_serde")]
    ticket_lifetime: Option<Duration>,
    max_listeners_per_ticket: Option<u32>,
    on_store_error: Option<OnStoreError>,
    servers: Vec<IcecastServer>,
    #[serde(with = "humantime_serde")]
    resync: Option<Duration>,
    #[serde(with = "humantime_serde")]
    health_interval: Option<Duration>,
}

/// Validates `[icecast]` and fills in its defaults.
pub(super) fn resolve(mut f: FileIcecast) -> Result<IcecastSettings, ConfigError> {
    let d = IcecastSettings::default();
    match (&f.username, &f.password) {
        (Some(_), None) | (None, Some(_)) => {
            return Err(err(
                "icecast.username, icecast.password: set both (callbacks must carry them) or neither",
            ))
        }
        (Some(u), Some(p)) if u.is_empty() || p.is_empty() || u.contains(':') => {
            return Err(err(
                "icecast.username, icecast.password: must not be empty; the user name must not contain ':'",
            ))
        }
        _ => {}
    }
    let allowed_from = f
        .allowed_from
        .iter()
        .map(|n| {
            n.parse()
                .map_err(|e| err(format!("icecast.allowed_from: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let token_params = f.token_params.unwrap_or(d.token_params);
    if token_params.iter().any(|p| p.is_empty()) {
        return Err(err("icecast.token_params: names must not be empty"));
    }
    let mut seen = std::collections::HashSet::new();
    for m in &f.mounts {
        if !m.name.starts_with('/') || m.name.contains('?') || m.name.len() < 2 {
            return Err(err(format!(
                "icecast.mounts: \"{}\" is not a mount name like \"/studio\"",
                m.name
            )));
        }
        if !seen.insert(m.name.as_str()) {
            return Err(err(format!(
                "icecast.mounts: \"{}\" is declared twice",
                m.name
            )));
        }
    }
    for t in &f.trusted_sources {
        if t.user.is_empty() || t.password.len() < 8 {
            return Err(err(format!(
                "icecast.trusted_sources: \"{}\" needs a user name and a password of at least 8 characters",
                t.user
            )));
        }
    }
    if f.max_listeners_per_ticket == Some(0) {
        return Err(err(
            "icecast.max_listeners_per_ticket: at least 1 (leave unset for no limit)",
        ));
    }
    servers::validate(&mut f.servers)?;
    let trusted_relays = f
        .trusted_relays
        .iter()
        .map(|r| {
            r.ip.parse()
                .map_err(|e| err(format!("icecast.trusted_relays: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(IcecastSettings {
        username: f.username,
        password: f.password,
        allowed_from,
        token_params,
        header_prefix: f.header_prefix.unwrap_or(d.header_prefix),
        mounts: f.mounts,
        trusted_sources: f.trusted_sources,
        trusted_relays,
        relay_window: positive("icecast.relay_window", f.relay_window, d.relay_window)?,
        relay_reconnect: f.relay_reconnect.unwrap_or(d.relay_reconnect),
        ticket_lifetime: positive(
            "icecast.ticket_lifetime",
            f.ticket_lifetime,
            d.ticket_lifetime,
        )?,
        max_listeners_per_ticket: f.max_listeners_per_ticket,
        on_store_error: f.on_store_error.unwrap_or_default(),
        servers: f.servers,
        resync: positive("icecast.resync", f.resync, d.resync)?,
        health_interval: positive(
            "icecast.health_interval",
            f.health_interval,
            d.health_interval,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::toml_for_test as toml;
    use super::*;

    #[test]
    fn icecast_section() {
        let c = toml(
            r#"
            [icecast]
            username = "icecast"
            password = "cb-secret"
            ticket_lifetime = "1h"
            max_listeners_per_ticket = 3
            [[icecast.mounts]]
            name = "/studio"
            access = "members"
            [[icecast.trusted_sources]]
            user = "relay"
            password = "relay-secret"
        "#,
        )
        .unwrap();
        assert_eq!(c.icecast.token_params, ["token", "jwt"]);
        assert!(c.icecast.allowed_from.is_empty());
        assert_eq!(c.icecast.relay_window, Duration::from_secs(60));
        assert_eq!(c.icecast.ticket_lifetime, Duration::from_secs(3600));
        assert_eq!(c.icecast.mounts[0].access, Access::Members);
        assert!(!format!("{:?}", c.icecast).contains("relay-secret"));
        let described = c.describe();
        assert!(!described.contains("cb-secret"), "{described}");
        assert!(!described.contains("relay-secret"), "{described}");
        let c = toml("[icecast]\nallowed_from = [\"192.0.2.0/24\", \"::1\"]").unwrap();
        assert_eq!(
            c.icecast.allowed_from,
            ["192.0.2.0/24".parse().unwrap(), "::1".parse().unwrap()]
        );
        assert!(c.describe().contains("192.0.2.0/24, ::1/128"));
        let e = toml("[icecast]\nallowed_from = [\"icecast.local\"]")
            .unwrap_err()
            .0;
        assert!(e.starts_with("icecast.allowed_from"), "{e}");
        let e = toml("[icecast]\nusername = \"x\"").unwrap_err().0;
        assert!(e.contains("set both"), "{e}");
        let e = toml("[[icecast.mounts]]\nname = \"studio\"\naccess = \"public\"")
            .unwrap_err()
            .0;
        assert!(e.contains("/studio"), "{e}");
        let e = toml("[[icecast.mounts]]\nname = \"/s\"\naccess = \"everyone\"")
            .unwrap_err()
            .0;
        assert!(e.contains("line"), "{e}");
    }
}
