//! `[[icecast.servers]]`: the Icecast servers whose admin API jars may use, each named as it
//! reports itself in callbacks (`server` = its `<hostname>`, `port`), with where its admin API
//! answers and the admin credentials (a secret); and what `/listen` needs to send listeners
//! there: the address listeners use (`public_url`), its capacity (`max_listeners`), a `weight`
//! and a `region` label.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::super::describe::secret;
use super::super::{err, ConfigError};

/// One Icecast jars can act on through its admin API.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IcecastServer {
    /// The `server` field of that Icecast's callbacks: its `<hostname>`.
    pub server: String,
    /// The `port` field of its callbacks.
    pub port: u16,
    /// Where its admin API answers, e.g. `http://127.0.0.1:8000` (no credentials in it).
    pub admin_url: String,
    pub admin_user: String,
    #[serde(serialize_with = "secret")]
    pub admin_password: String,
    /// The most listeners it carries (its `<clients>` limit): what a resync reads of it at
    /// most, and its capacity when `/listen` places listeners.
    #[serde(default = "default_max_listeners")]
    pub max_listeners: u32,
    /// Where listeners reach it (`http://edge1.radio.example:8000`, no trailing `/`):
    /// `/listen` redirects there. Unset: `/listen` never sends listeners to it (a master that
    /// only feeds edges).
    #[serde(default)]
    pub public_url: Option<String>,
    /// How much `/listen` prefers it: its free room counts this many times. 0 sends it no new
    /// listeners (draining it for maintenance).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// A label of where it is (`"eu"`): `/listen?region=eu` prefers servers with this label
    /// while one of them has room.
    #[serde(default)]
    pub region: Option<String>,
}

/// `weight` when not given.
pub const DEFAULT_WEIGHT: u32 = 1;
/// The largest `weight` accepted.
pub const MAX_WEIGHT: u32 = 1_000;

fn default_weight() -> u32 {
    DEFAULT_WEIGHT
}

/// `max_listeners` when not given.
pub const DEFAULT_MAX_LISTENERS: u32 = 100_000;

fn default_max_listeners() -> u32 {
    DEFAULT_MAX_LISTENERS
}

impl IcecastServer {
    /// The server its callbacks name.
    pub fn id(&self) -> crate::domain::ServerId {
        crate::domain::ServerId::new(self.server.clone(), self.port.to_string())
    }

    /// Whether a session Icecast reported with these `server` and `port` fields is on it.
    pub fn reported_as(&self, server: &str, port: &str) -> bool {
        self.server == server && port.parse::<u16>() == Ok(self.port)
    }

    /// `server:port`, as logs, `/readyz` and metric labels name it.
    pub fn name(&self) -> String {
        format!("{}:{}", self.server, self.port)
    }
}

impl fmt::Debug for IcecastServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IcecastServer({}:{}, {}, {}, ***, public {:?}, max {}, weight {}, region {:?})",
            self.server,
            self.port,
            self.admin_url,
            self.admin_user,
            self.public_url,
            self.max_listeners,
            self.weight,
            self.region
        )
    }
}

/// Checks every entry (names, a plain http(s) admin URL, credentials, no server listed twice,
/// placement's keys) and drops a trailing `/` from `public_url`.
pub(super) fn validate(servers: &mut [IcecastServer]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for s in servers.iter_mut() {
        let name = format!("icecast.servers ({}:{})", s.server, s.port);
        if s.server.is_empty() || s.port == 0 {
            return Err(err(format!(
                "{name}: server (Icecast's <hostname>) and port (its listening port) are required"
            )));
        }
        let url = url::Url::parse(&s.admin_url).map_err(|e| {
            err(format!(
                "{name}: admin_url: \"{}\" is not a URL ({e}); write it with its scheme, e.g. \
                 \"http://127.0.0.1:8000\"",
                s.admin_url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
        {
            return Err(err(format!(
                "{name}: admin_url must be a plain http(s) URL like \"http://127.0.0.1:8000\" \
                 (credentials go in admin_user and admin_password)"
            )));
        }
        if s.admin_user.is_empty() || s.admin_user.contains(':') || s.admin_password.is_empty() {
            return Err(err(format!(
                "{name}: admin_user and admin_password are required; the user must not contain ':'"
            )));
        }
        if s.max_listeners == 0 {
            return Err(err(format!("{name}: max_listeners must be at least 1")));
        }
        if let Some(public) = &s.public_url {
            s.public_url = Some(super::super::ui::base_url(
                &format!("{name}: public_url"),
                public,
                &["http", "https"],
            )?);
        }
        if s.weight > MAX_WEIGHT {
            return Err(err(format!(
                "{name}: weight must be 0 (no new listeners) to {MAX_WEIGHT}"
            )));
        }
        if s.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(err(format!(
                "{name}: region must not be empty (leave it unset)"
            )));
        }
        if !seen.insert((s.server.clone(), s.port)) {
            return Err(err(format!("{name}: listed twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::super::toml_for_test as toml;
    use std::time::Duration;

    const ONE: &str = "[[icecast.servers]]\nserver = \"localhost\"\nport = 8000\n\
                       admin_url = \"http://127.0.0.1:8000\"\nadmin_user = \"admin\"\n\
                       admin_password = \"admin-secret-value\"\n";

    #[test]
    fn servers_are_validated_and_their_password_never_shown() {
        let c = toml(ONE).unwrap();
        let s = &c.icecast.servers[0];
        assert!(s.reported_as("localhost", "8000"));
        assert!(!s.reported_as("localhost", "8001"));
        assert!(!s.reported_as("other", "8000"));
        assert_eq!(c.icecast.resync, Duration::from_secs(300));
        assert!(!format!("{:?}", c.icecast).contains("admin-secret-value"));
        let described = c.describe();
        assert!(!described.contains("admin-secret-value"), "{described}");
        assert!(described.contains("http://127.0.0.1:8000"), "{described}");

        let e = toml(&format!("{ONE}{ONE}")).unwrap_err().0;
        assert!(e.contains("listed twice"), "{e}");
        let e = toml(&ONE.replace("http://127.0.0.1:8000", "http://admin:pw@127.0.0.1:8000"))
            .unwrap_err()
            .0;
        assert!(e.contains("admin_url") && !e.contains("pw@"), "{e}");
        let e = toml(&ONE.replace("http://127.0.0.1:8000", "127.0.0.1:8000"))
            .unwrap_err()
            .0;
        assert!(e.contains("admin_url"), "{e}");
        let e = toml(&ONE.replace("admin-secret-value", "")).unwrap_err().0;
        assert!(e.contains("admin_password"), "{e}");
        let e = toml(&ONE.replace("server = \"localhost\"", "server = \"\""))
            .unwrap_err()
            .0;
        assert!(e.contains("hostname"), "{e}");
        let e = toml(&ONE.replace("admin_user", "user")).unwrap_err().0;
        assert!(e.contains("unknown field"), "{e}");
        let e = toml("[icecast]\nresync = \"0s\"").unwrap_err().0;
        assert!(e.contains("icecast.resync"), "{e}");
    }

    #[test]
    fn placement_keys_have_defaults_and_are_checked() {
        let s = &toml(ONE).unwrap().icecast.servers[0];
        assert_eq!(s.public_url, None);
        assert_eq!((s.weight, s.region.as_deref()), (1, None));
        assert_eq!(s.name(), "localhost:8000");
        let placed = format!(
            "{ONE}public_url = \"http://edge1.radio.example:8000/\"\nweight = 0\nregion = \"eu\"\n"
        );
        let c = toml(&placed).unwrap();
        let s = &c.icecast.servers[0];
        assert_eq!(
            s.public_url.as_deref(),
            Some("http://edge1.radio.example:8000")
        );
        assert_eq!((s.weight, s.region.as_deref()), (0, Some("eu")));
        for (bad, key) in [
            ("public_url = \"edge1:8000\"", "public_url"),
            ("public_url = \"http://u:p@edge1:8000\"", "public_url"),
            ("weight = 1001", "weight"),
            ("region = \"\"", "region"),
        ] {
            let e = toml(&format!("{ONE}{bad}\n")).unwrap_err().0;
            assert!(
                e.contains(key) && e.contains("localhost:8000"),
                "{bad}: {e}"
            );
        }
        let c = toml("[[icecast.trusted_relays]]\nip = \"10.1.0.0/16\"\n").unwrap();
        assert!(c.icecast.trusted_relays[0].contains("10.1.2.3".parse().unwrap()));
        assert!(c.describe().contains("10.1.0.0/16"));
        let e = toml("[[icecast.trusted_relays]]\nip = \"edge1\"\n")
            .unwrap_err()
            .0;
        assert!(e.starts_with("icecast.trusted_relays"), "{e}");
        assert_eq!(c.icecast.health_interval, Duration::from_secs(2));
    }
}
