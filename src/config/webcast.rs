//! `[webcast]`: jars' own webcast endpoint (`/webcast/{mount}`), which relays a DJ's browser
//! stream to Icecast as a source: where Icecast is, the source credentials jars uses (one of
//! `[[icecast.trusted_sources]]`, a secret) and how much audio it keeps while Icecast is away.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::describe::{duration, secret};
use super::{err, ConfigError, TrustedSource};

/// The resolved `[webcast]` section; absent: the endpoint answers 404.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct WebcastSettings {
    /// Icecast's base URL as jars reaches it, `http://host:port` (plain HTTP: jars speaks the
    /// source protocol itself).
    pub icecast_url: String,
    /// Where [`Self::icecast_url`] points: `host:port`.
    #[serde(skip)]
    pub icecast_addr: String,
    pub user: String,
    #[serde(serialize_with = "secret")]
    pub password: String,
    /// Audio kept for Icecast while it is away, at the DJ's bitrate (bounded in bytes too).
    #[serde(serialize_with = "duration")]
    pub buffer: Duration,
}

impl fmt::Debug for WebcastSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WebcastSettings({}, {}, ***, {:?})",
            self.icecast_url, self.user, self.buffer
        )
    }
}

/// `[webcast]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileWebcast {
    icecast_url: Option<String>,
    user: Option<String>,
    password: Option<String>,
    #[serde(with = "humantime_serde")]
    buffer: Option<Duration>,
}

impl FileWebcast {
    fn is_empty(&self) -> bool {
        self.icecast_url.is_none()
            && self.user.is_none()
            && self.password.is_none()
            && self.buffer.is_none()
    }
}

/// The most audio `buffer` may keep.
pub const MAX_BUFFER: Duration = Duration::from_secs(30);

/// Validates `[webcast]` against the trusted sources Icecast's `stream_auth` admits.
pub(super) fn resolve(
    f: FileWebcast,
    trusted: &[TrustedSource],
) -> Result<Option<WebcastSettings>, ConfigError> {
    if f.is_empty() {
        return Ok(None);
    }
    let text = f
        .icecast_url
        .ok_or_else(|| err("webcast.icecast_url: required, e.g. \"http://127.0.0.1:8000\""))?;
    let bad = |why: &str| {
        err(format!(
            "webcast.icecast_url: \"{text}\" {why} (e.g. \"http://127.0.0.1:8000\")"
        ))
    };
    let url = url::Url::parse(text.trim()).map_err(|_| bad("is not a URL"))?;
    if url.scheme() != "http" {
        return Err(bad(
            "must start with http:// (jars sends the source over plain HTTP)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry credentials (they go in user and password)",
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must be a base URL without a path"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let (user, password) =
        match (f.user, f.password) {
            (Some(u), Some(p)) if !u.is_empty() && !u.contains(':') && !p.is_empty() => (u, p),
            _ => return Err(err(
                "webcast.user and webcast.password: required (the user without ':'), and equal \
                 to one [[icecast.trusted_sources]] entry",
            )),
        };
    if !trusted
        .iter()
        .any(|t| t.user == user && t.password == password)
    {
        return Err(err(format!(
            "webcast.user \"{user}\" and webcast.password: must equal one \
             [[icecast.trusted_sources]] entry, so that Icecast's stream_auth admits jars as the \
             relay it is"
        )));
    }
    let buffer = f.buffer.unwrap_or(Duration::from_secs(5));
    if buffer.is_zero() || buffer > MAX_BUFFER {
        return Err(err("webcast.buffer: between \"1s\" and \"30s\""));
    }
    Ok(Some(WebcastSettings {
        icecast_url: format!("http://{}", url.authority()),
        icecast_addr: format!("{host}:{port}"),
        user,
        password,
        buffer,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::toml_for_test as toml;

    const TRUSTED: &str =
        "[[icecast.trusted_sources]]\nuser = \"relay\"\npassword = \"relay-secret-value\"\n";

    fn with(webcast: &str) -> Result<super::super::Config, super::super::ConfigError> {
        toml(&format!("{TRUSTED}[webcast]\n{webcast}"))
    }

    #[test]
    fn webcast_is_validated_against_the_trusted_sources_and_its_password_never_shown() {
        assert_eq!(toml(TRUSTED).unwrap().webcast, None);
        let ok = "icecast_url = \"http://127.0.0.1:8000\"\nuser = \"relay\"\n\
                  password = \"relay-secret-value\"\n";
        let c = with(ok).unwrap();
        let w = c.webcast.as_ref().unwrap();
        assert_eq!(w.icecast_url, "http://127.0.0.1:8000");
        assert_eq!(w.icecast_addr, "127.0.0.1:8000");
        assert_eq!(w.buffer, std::time::Duration::from_secs(5));
        assert!(!format!("{c:?}").contains("relay-secret-value"));
        let described = c.describe();
        assert!(described.contains("webcast.password"), "{described}");
        assert!(!described.contains("relay-secret-value"), "{described}");
        let port80 = with(&ok.replace(":8000", "")).unwrap();
        assert_eq!(port80.webcast.unwrap().icecast_addr, "127.0.0.1:80");

        for (change, key) in [
            (
                ok.replace("relay-secret-value", "another-secret"),
                "trusted_sources",
            ),
            (ok.replace("user = \"relay\"\n", ""), "webcast.user"),
            (
                ok.replace("http://127.0.0.1:8000", "https://127.0.0.1:8000"),
                "http://",
            ),
            (
                ok.replace("http://127.0.0.1:8000", "http://a:b@127.0.0.1:8000"),
                "credentials",
            ),
            (
                ok.replace("http://127.0.0.1:8000", "http://127.0.0.1:8000/x"),
                "path",
            ),
            (
                ok.replace("icecast_url = \"http://127.0.0.1:8000\"\n", ""),
                "required",
            ),
            (format!("{ok}buffer = \"0s\"\n"), "webcast.buffer"),
            (format!("{ok}buffer = \"1m\"\n"), "webcast.buffer"),
            (format!("{ok}mount = \"/x\"\n"), "unknown field"),
        ] {
            let e = with(&change).unwrap_err().0;
            assert!(e.contains(key), "{change}: {e}");
            assert!(!e.contains("relay-secret-value"), "{e}");
        }
    }
}
