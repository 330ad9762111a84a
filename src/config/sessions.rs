//! `[sessions]`: whether listener sessions are stored, for how long, and how much of a
//! listener's address is kept.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::describe::duration;
use super::{err, positive, ConfigError};

/// How much of a listener's address a session row keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IpMode {
    /// The network only: IPv4 /24, IPv6 /48 (the default).
    #[default]
    Truncated,
    /// The address as Icecast reported it.
    Full,
    /// Nothing.
    None,
}

/// The resolved `[sessions]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSettings {
    /// Store one row per listener session.
    pub enabled: bool,
    /// Rows that started longer ago than this are deleted by the daemon.
    #[serde(serialize_with = "duration")]
    pub retention: Duration,
    pub ip: IpMode,
    /// An open row this node does not see live is closed as `lost` once it is older than this
    /// (or than its timelimit, when jars sent one).
    #[serde(serialize_with = "duration")]
    pub lost_after: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            enabled: true,
            retention: Duration::from_secs(400 * 86_400),
            ip: IpMode::Truncated,
            lost_after: Duration::from_secs(86_400),
        }
    }
}

/// `[sessions]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileSessions {
    enabled: Option<bool>,
    #[serde(with = "humantime_serde")]
    retention: Option<Duration>,
    ip: Option<String>,
    #[serde(with = "humantime_serde")]
    lost_after: Option<Duration>,
}

/// Validates `[sessions]` and fills in its defaults.
pub(super) fn resolve(f: FileSessions) -> Result<SessionSettings, ConfigError> {
    let d = SessionSettings::default();
    let ip = match f.ip.as_deref().map(str::trim) {
        None => d.ip,
        Some("truncated") => IpMode::Truncated,
        Some("full") => IpMode::Full,
        Some("none") => IpMode::None,
        Some(other) => {
            return Err(err(format!(
                "sessions.ip: \"{other}\" is not one of \"truncated\", \"full\", \"none\""
            )))
        }
    };
    Ok(SessionSettings {
        enabled: f.enabled.unwrap_or(d.enabled),
        retention: positive("sessions.retention", f.retention, d.retention)?,
        ip,
        lost_after: positive("sessions.lost_after", f.lost_after, d.lost_after)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::toml_for_test as toml;
    use super::*;

    #[test]
    fn sessions_section() {
        let c = toml("").unwrap();
        assert_eq!(c.sessions, SessionSettings::default());
        assert!(c.sessions.enabled);
        assert_eq!(c.sessions.retention, Duration::from_secs(400 * 86_400));
        let c = toml("[sessions]\nenabled = false\nip = \"full\"\nretention = \"30d\"").unwrap();
        assert!(!c.sessions.enabled);
        assert_eq!(c.sessions.ip, IpMode::Full);
        assert_eq!(c.sessions.retention, Duration::from_secs(30 * 86_400));
        let e = toml("[sessions]\nip = \"half\"").unwrap_err().0;
        assert!(e.starts_with("sessions.ip"), "{e}");
        let e = toml("[sessions]\nretention = \"0s\"").unwrap_err().0;
        assert!(e.starts_with("sessions.retention"), "{e}");
    }
}
