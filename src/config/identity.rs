//! `[identity]`: who users are — the local users file, or the station's MyRadio API.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use super::describe::{duration, secret};
use super::{err, positive, ConfigError};

/// How long a login waits on MyRadio by default: generous, since the original waited without
/// bound and a slow MyRadio is no reason to refuse a member.
pub const DEFAULT_MYRADIO_TIMEOUT: Duration = Duration::from_secs(30);

/// The resolved `[identity]` section: which backend, and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySettings {
    UsersFile { path: PathBuf },
    MyRadio(MyRadioSettings),
}

// By hand so it reads like the file: `backend`, then `users_file` or the `myradio` table.
impl Serialize for IdentitySettings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("IdentitySettings", 2)?;
        match self {
            IdentitySettings::UsersFile { path } => {
                st.serialize_field("backend", "users_file")?;
                st.serialize_field("users_file", path)?;
            }
            IdentitySettings::MyRadio(m) => {
                st.serialize_field("backend", "myradio")?;
                st.serialize_field("myradio", m)?;
            }
        }
        st.end()
    }
}

/// `[identity.myradio]`. Equality compares the API key too, so a reload notices it changed.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct MyRadioSettings {
    pub api_url: String,
    #[serde(serialize_with = "secret")]
    pub api_key: String,
    pub standard_user_permission: i64,
    pub super_user_permission: i64,
    #[serde(serialize_with = "duration")]
    pub timeout: Duration,
}

impl fmt::Debug for MyRadioSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MyRadioSettings")
            .field("api_url", &self.api_url)
            .field("api_key", &"(set)")
            .field("standard_user_permission", &self.standard_user_permission)
            .field("super_user_permission", &self.super_user_permission)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `[identity]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileIdentity {
    pub(super) backend: Option<String>,
    users_file: Option<PathBuf>,
    pub(super) myradio: FileMyRadio,
}

/// `[identity.myradio]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileMyRadio {
    pub(super) api_url: Option<String>,
    pub(super) api_key: Option<String>,
    pub(super) standard_user_permission: Option<i64>,
    pub(super) super_user_permission: Option<i64>,
    #[serde(with = "humantime_serde")]
    pub(super) timeout: Option<Duration>,
}

/// Validates `[identity]`; the users file defaults to `users.toml` in `data_dir`.
pub(super) fn resolve(id: FileIdentity, data_dir: &Path) -> Result<IdentitySettings, ConfigError> {
    match id.backend.as_deref().unwrap_or("users_file") {
        "users_file" => Ok(IdentitySettings::UsersFile {
            path: id.users_file.unwrap_or_else(|| data_dir.join("users.toml")),
        }),
        "myradio" => {
            let m = id.myradio;
            let api_url = m
                .api_url
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| err("identity.myradio.api_url: required by the myradio backend"))?;
            if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
                return Err(err(format!(
                    "identity.myradio.api_url: \"{api_url}\" must start with http:// or https://"
                )));
            }
            let api_key = m
                .api_key
                .filter(|k| !k.is_empty())
                .ok_or_else(|| err("identity.myradio.api_key: required by the myradio backend"))?;
            Ok(IdentitySettings::MyRadio(MyRadioSettings {
                api_url: api_url.trim_end_matches('/').to_string(),
                api_key,
                standard_user_permission: m.standard_user_permission.unwrap_or(-1),
                super_user_permission: m.super_user_permission.unwrap_or(-2),
                timeout: positive(
                    "identity.myradio.timeout",
                    m.timeout,
                    DEFAULT_MYRADIO_TIMEOUT,
                )?,
            }))
        }
        other => Err(err(format!(
            "identity.backend: \"{other}\" is not one of \"users_file\", \"myradio\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::toml_for_test as toml;
    use super::*;

    const MYRADIO: &str = "[identity]\nbackend = \"myradio\"\n[identity.myradio]\n\
                           api_url = \"https://myradio.example/api/v2/\"\n";

    #[test]
    fn myradio_backend() {
        let c = toml(&format!("{MYRADIO}api_key = \"key-one\"\ntimeout = \"2s\"")).unwrap();
        let IdentitySettings::MyRadio(m) = &c.identity else {
            panic!("expected myradio, got {:?}", c.identity)
        };
        assert_eq!(m.api_url, "https://myradio.example/api/v2");
        assert_eq!(m.timeout, Duration::from_secs(2));
        assert_eq!(
            (m.standard_user_permission, m.super_user_permission),
            (-1, -2)
        );
        assert!(!format!("{:?}", c.identity).contains("key-one"));
        let e = toml(MYRADIO).unwrap_err().0;
        assert!(e.starts_with("identity.myradio.api_key"), "{e}");
        let c = toml(&format!("{MYRADIO}api_key = \"k\"")).unwrap();
        let IdentitySettings::MyRadio(m) = &c.identity else {
            panic!("expected myradio")
        };
        assert_eq!(m.timeout, Duration::from_secs(30), "generous by default");
    }

    #[test]
    fn settings_differing_only_in_the_api_key_are_not_equal() {
        let one = toml(&format!("{MYRADIO}api_key = \"key-one\"")).unwrap();
        let two = toml(&format!("{MYRADIO}api_key = \"key-two\"")).unwrap();
        assert_ne!(one.identity, two.identity);
        assert_eq!(one.identity, one.clone().identity);
    }
}
