//! `[tokens]`: lifetime and checks of the tokens jars issues and verifies, where the RS256 keys
//! come from, or the URL a verify-only node fetches them from.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::describe::duration;
use super::{err, positive, ConfigError};

/// Where a PEM key comes from: a file, or (in the original `config.json`) the PEM text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    File(PathBuf),
    Inline(String),
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRef::File(p) => write!(f, "{}", p.display()),
            // Never print key material.
            KeyRef::Inline(_) => f.write_str("(inline PEM)"),
        }
    }
}

impl Serialize for KeyRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The resolved `[tokens]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenSettings {
    #[serde(serialize_with = "duration")]
    pub lifetime: Duration,
    #[serde(serialize_with = "duration")]
    pub leeway: Duration,
    pub issuer: String,
    pub audience: Option<String>,
    /// Signing key; `None` means the generated pair in the data directory.
    pub private_key: Option<KeyRef>,
    /// Verification key; `None` means derived from the private key.
    pub public_key: Option<KeyRef>,
    /// A remote key set: this node only verifies.
    pub remote: Option<RemoteKeySettings>,
}

/// `[tokens] jwks_url` / `public_key_url` and how the fetched set is kept fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteKeySettings {
    pub url: String,
    /// `true` for a JWKS document, `false` for a PEM public key.
    pub jwks: bool,
    #[serde(serialize_with = "duration")]
    pub refresh: Duration,
    #[serde(serialize_with = "duration")]
    pub refetch_min_interval: Duration,
    #[serde(serialize_with = "duration")]
    pub max_stale: Duration,
}

/// `[tokens]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileTokens {
    #[serde(with = "humantime_serde")]
    pub(super) lifetime: Option<Duration>,
    #[serde(with = "humantime_serde")]
    leeway: Option<Duration>,
    pub(super) issuer: Option<String>,
    audience: Option<String>,
    pub(super) private_key: Option<PathBuf>,
    pub(super) public_key: Option<PathBuf>,
    jwks_url: Option<String>,
    public_key_url: Option<String>,
    #[serde(with = "humantime_serde")]
    refresh: Option<Duration>,
    #[serde(with = "humantime_serde")]
    refetch_min_interval: Option<Duration>,
    #[serde(with = "humantime_serde")]
    max_stale: Option<Duration>,
    /// PEM text given in place of a path (original `config.json` only).
    #[serde(skip)]
    pub(super) inline_private_key: Option<String>,
    #[serde(skip)]
    pub(super) inline_public_key: Option<String>,
}

/// Validates `[tokens]` and fills in its defaults.
pub(super) fn resolve(t: FileTokens) -> Result<TokenSettings, ConfigError> {
    let issuer = t.issuer.unwrap_or_else(|| "jars".into());
    if issuer.trim().is_empty() {
        return Err(err("tokens.issuer: must not be empty"));
    }
    if t.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
        return Err(err("tokens.audience: must not be empty when set"));
    }
    // None, as the original (PyJWT 1.7.1 without a leeway): a player reconnecting with an
    // expired ticket must not get in. Give some for clocks known to drift.
    let leeway = t.leeway.unwrap_or(Duration::ZERO);
    if leeway > Duration::from_secs(3600) {
        return Err(err(
            "tokens.leeway: at most 1h; clock skew beyond that is a broken clock",
        ));
    }
    let remote = match (t.jwks_url, t.public_key_url) {
        (Some(_), Some(_)) => {
            return Err(err(
                "tokens.jwks_url, tokens.public_key_url: set one, not both",
            ))
        }
        (Some(url), None) => Some((url, true)),
        (None, Some(url)) => Some((url, false)),
        (None, None) => None,
    };
    let remote = match remote {
        None => None,
        Some((url, jwks)) => {
            let key = if jwks {
                "tokens.jwks_url"
            } else {
                "tokens.public_key_url"
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(format!(
                    "{key}: \"{url}\" must start with http:// or https://"
                )));
            }
            if t.private_key.is_some() || t.inline_private_key.is_some() || t.public_key.is_some() {
                return Err(err(format!(
                    "{key}: a verify-only node takes its keys from the URL; remove tokens.private_key/public_key"
                )));
            }
            Some(RemoteKeySettings {
                url,
                jwks,
                refresh: positive("tokens.refresh", t.refresh, Duration::from_secs(600))?,
                refetch_min_interval: positive(
                    "tokens.refetch_min_interval",
                    t.refetch_min_interval,
                    Duration::from_secs(30),
                )?,
                max_stale: positive(
                    "tokens.max_stale",
                    t.max_stale,
                    Duration::from_secs(24 * 3600),
                )?,
            })
        }
    };
    Ok(TokenSettings {
        remote,
        lifetime: positive(
            "tokens.lifetime",
            t.lifetime,
            Duration::from_secs(24 * 3600),
        )?,
        leeway,
        issuer,
        audience: t.audience,
        private_key: t
            .inline_private_key
            .map(KeyRef::Inline)
            .or(t.private_key.map(KeyRef::File)),
        public_key: t
            .inline_public_key
            .map(KeyRef::Inline)
            .or(t.public_key.map(KeyRef::File)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::toml_for_test as toml;
    use super::*;

    #[test]
    fn verify_only_keys() {
        let c = toml("[tokens]\njwks_url = \"https://issuer.example/jars/jwks.json\"\n").unwrap();
        let r = c.tokens.remote.unwrap();
        assert!(r.jwks);
        assert_eq!(r.refresh, Duration::from_secs(600));
        assert_eq!(r.refetch_min_interval, Duration::from_secs(30));
        assert_eq!(r.max_stale, Duration::from_secs(86400));
        let e = toml("[tokens]\njwks_url = \"https://a/\"\npublic_key_url = \"https://b/\"")
            .unwrap_err()
            .0;
        assert!(e.contains("not both"), "{e}");
        let e = toml("[tokens]\njwks_url = \"https://a/\"\nprivate_key = \"/k.pem\"")
            .unwrap_err()
            .0;
        assert!(e.contains("verify-only"), "{e}");
        let e = toml("[tokens]\nleeway = \"2h\"").unwrap_err().0;
        assert!(e.starts_with("tokens.leeway"), "{e}");
    }
}
