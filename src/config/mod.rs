//! Configuration: the TOML file (every key optional), `JARS_*` overrides from the command line
//! and environment, and the original JARS `config.json`, resolved and validated before anything
//! is bound. Each section lives in its own module with one `resolve` from what the file says
//! to validated settings; this module holds the whole ([`Config`]) and the top-level keys.
//!
//! Precedence, highest first: command-line flag, environment variable, config file, default.

mod describe;
mod events;
mod icecast;
mod identity;
mod limits;
mod original;
mod placeholders;
mod sessions;
mod store;
mod tokens;
mod ui;
mod webcast;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use events::EventSettings;
pub use icecast::{
    Access, IcecastServer, IcecastSettings, OnStoreError, StaticMount, TrustedSource,
};
pub use identity::{IdentitySettings, MyRadioSettings};
pub use limits::{LimitSettings, DEFAULT_MAX_REQUESTS_PER_CLIENT};
pub use sessions::{IpMode, SessionSettings};
pub use store::{redact_url, PostgresSettings, StoreCacheSettings, StoreSettings};
pub use tokens::{KeyRef, RemoteKeySettings, TokenSettings};
pub use ui::{UiSettings, MOUNT_EXTENSIONS};
pub use webcast::WebcastSettings;

/// Exit code for a configuration or usage error (`EX_USAGE` from sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// Where jars listens when nothing says otherwise: loopback, the original's port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8888";
/// Where jars listens, when nothing says otherwise, with the original's `config.json`: where
/// the original listened (all interfaces), so replacing it changes nothing for its clients.
pub const ORIGINAL_LISTEN: &str = "0.0.0.0:8888";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./jars-data";

/// A configuration problem, rendered as one line naming the key or file at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// Values given on the command line or in the environment; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    /// The event store's URL (`--database-url`, env `JARS_DATABASE_URL`); beats `[store] url`.
    pub database_url: Option<String>,
}

/// The fully resolved configuration. Its serialisation (secrets redacted) is what
/// `jars check-config` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The file it was read from, if any.
    #[serde(rename = "config_file")]
    pub source: Option<PathBuf>,
    pub listen: SocketAddr,
    /// `listen` is [`ORIGINAL_LISTEN`] because the file is the original's `config.json` and
    /// neither `--listen` nor `JARS_LISTEN` said otherwise (logged at start-up).
    #[serde(skip)]
    pub listen_as_original: bool,
    /// Serve `/metrics` on this address instead of `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// The log filter when `RUST_LOG` is unset (`info`, `jars=debug,warn`, …).
    pub log_level: String,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(serialize_with = "describe::duration")]
    pub shutdown_grace: Duration,
    pub data_dir: PathBuf,
    pub tokens: TokenSettings,
    pub identity: IdentitySettings,
    pub store: StoreSettings,
    pub events: EventSettings,
    pub limits: LimitSettings,
    pub icecast: IcecastSettings,
    pub ui: UiSettings,
    pub store_cache: StoreCacheSettings,
    pub sessions: SessionSettings,
    /// `[webcast]`: jars' own webcast endpoint; `None`: not offered.
    pub webcast: Option<WebcastSettings>,
}

// ---------------------------------------------------------------------------------------------
// The TOML file as written. Every key optional; unknown keys are an error so typos are caught.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    /// Read from the original's `config.json`, not from TOML.
    #[serde(skip)]
    original: bool,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    metrics_listen: Option<String>,
    log_level: Option<String>,
    #[serde(with = "humantime_serde")]
    shutdown_grace: Option<Duration>,
    tokens: tokens::FileTokens,
    identity: identity::FileIdentity,
    store: store::FileStore,
    events: events::FileEvents,
    limits: limits::FileLimits,
    icecast: icecast::FileIcecast,
    sessions: sessions::FileSessions,
    ui: ui::FileUi,
    webcast: webcast::FileWebcast,
}

/// Parses `"24h"`, `"30s"`, `"10d"`, naming `key` when it fails.
pub fn parse_duration(key: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        err(format!(
            "{key}: \"{s}\" is not a duration like \"24h\" ({e})"
        ))
    })
}

impl Config {
    /// Reads the config file named in `overrides` (if any), applies the overrides and defaults,
    /// and validates the result.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let file = match &overrides.config {
            None => FileConfig::default(),
            Some(path) => read_file(path)?,
        };
        resolve(file, overrides)
    }

    /// Parses a TOML document (for tests and `check-config`).
    pub fn from_toml_str(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        resolve(parse_toml(text, Path::new("(inline)"))?, overrides)
    }

    /// The users file, when that backend is in use.
    pub fn users_file(&self) -> Option<&Path> {
        match &self.identity {
            IdentitySettings::UsersFile { path } => Some(path),
            IdentitySettings::MyRadio(_) => None,
        }
    }

    /// A human-readable summary for `jars check-config`, one `key value` line per setting;
    /// never prints secrets.
    pub fn describe(&self) -> String {
        describe::lines(self)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("config file {}: {e}", path.display())))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{');
    if is_json {
        original::parse(&text).map_err(|e| err(format!("config file {}: {e}", path.display())))
    } else {
        parse_toml(&text, path)
    }
}

fn parse_toml(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let mut msg = e.message().trim().replace('\n', " ");
        if msg.ends_with("expected a duration") {
            // serde says only the type it wanted: say how one is written.
            msg.push_str(" written like \"30s\", \"6h\" or \"10d\" (a number alone has no unit)");
        }
        match line {
            Some(l) => {
                // The key: TOML's message does not name it. Not the value, which may be secret.
                let key = text
                    .lines()
                    .nth(l - 1)
                    .and_then(|line| line.split('=').next())
                    .unwrap_or("")
                    .trim();
                // serde quotes the value it refused: not when it may be a secret.
                let secret = ["password", "key", "secret", "url"]
                    .iter()
                    .any(|s| key.to_ascii_lowercase().contains(s));
                let msg = if secret { without_values(&msg) } else { msg };
                err(format!(
                    "config file {}: line {l} ({key}): {msg}",
                    path.display()
                ))
            }
            None => err(format!("config file {}: {msg}", path.display())),
        }
    })
}

/// `msg` with whatever it quotes (serde's `` `12345678` `` or `"hunter2"`) replaced by `…`.
fn without_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut quote = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => {
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    out.push('…');
                    quote = Some(c);
                }
            }
        }
    }
    out
}

/// `d`, or `default` when unset; zero is refused, naming `key`.
fn positive(key: &str, d: Option<Duration>, default: Duration) -> Result<Duration, ConfigError> {
    match d {
        Some(d) if d.is_zero() => Err(err(format!("{key}: must be longer than zero"))),
        Some(d) => Ok(d),
        None => Ok(default),
    }
}

fn resolve(file: FileConfig, o: &Overrides) -> Result<Config, ConfigError> {
    let listen_as_original = file.original && o.listen.is_none() && file.listen.is_none();
    let listen_text = o.listen.clone().or(file.listen).unwrap_or_else(|| {
        if listen_as_original {
            ORIGINAL_LISTEN.into()
        } else {
            DEFAULT_LISTEN.into()
        }
    });
    let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
        err(format!(
            "listen: \"{listen_text}\" is not an address like 127.0.0.1:8888 or [::1]:8888"
        ))
    })?;

    let metrics_listen = file
        .metrics_listen
        .map(|m| {
            m.trim().parse::<SocketAddr>().map_err(|_| {
                err(format!(
                    "metrics_listen: \"{m}\" is not an address like 127.0.0.1:9090"
                ))
            })
        })
        .transpose()?;
    if metrics_listen == Some(listen) {
        return Err(err(
            "metrics_listen: must differ from listen (leave it unset to serve /metrics on listen)",
        ));
    }
    let log_level = file.log_level.unwrap_or_else(|| "info".into());
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        return Err(err(format!(
            "log_level: \"{log_level}\" is not a filter like \"info\" or \"jars=debug,warn\""
        )));
    }
    let shutdown_grace = file.shutdown_grace.unwrap_or(Duration::from_secs(10));

    let data_dir = o
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    if data_dir.as_os_str().is_empty() {
        return Err(err("data_dir: must not be empty"));
    }

    let (store, store_cache) = store::resolve(file.store, o, &data_dir)?;
    let icecast = icecast::resolve(file.icecast)?;
    let webcast = webcast::resolve(file.webcast, &icecast.trusted_sources)?;
    Ok(Config {
        tokens: tokens::resolve(file.tokens)?,
        identity: identity::resolve(file.identity, &data_dir)?,
        store,
        store_cache,
        events: events::resolve(file.events)?,
        limits: limits::resolve(file.limits)?,
        icecast,
        webcast,
        sessions: sessions::resolve(file.sessions)?,
        ui: ui::resolve(file.ui)?,
        metrics_listen,
        log_level,
        shutdown_grace,
        source: o.config.clone(),
        listen,
        listen_as_original,
        data_dir,
    })
}

/// Parses `text` as a TOML config with no overrides, for the sections' tests.
#[cfg(test)]
fn toml_for_test(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, &Overrides::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_documented_defaults() {
        let c = toml_for_test("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8888");
        assert_eq!(c.data_dir, PathBuf::from("./jars-data"));
        assert_eq!(c.tokens.lifetime, Duration::from_secs(86400));
        assert_eq!(c.tokens.leeway, Duration::ZERO);
        assert_eq!(c.tokens.issuer, "jars");
        assert_eq!(c.tokens.audience, None);
        assert_eq!(c.events.lifetime, Duration::from_secs(864000));
        assert_eq!(c.users_file(), Some(Path::new("./jars-data/users.toml")));
        assert_eq!(
            c.store,
            StoreSettings::Sqlite {
                path: "./jars-data/jars.sqlite3".into()
            }
        );
    }

    #[test]
    fn toml_values_and_overrides() {
        let text = r#"
            listen = "0.0.0.0:9000"
            data_dir = "/var/lib/jars"
            [tokens]
            lifetime = "2h"
            leeway = "5s"
            issuer = "station"
            audience = "icecast"
            [events]
            lifetime = "3d"
        "#;
        let c = toml_for_test(text).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.tokens.lifetime, Duration::from_secs(7200));
        assert_eq!(c.tokens.audience.as_deref(), Some("icecast"));
        assert_eq!(c.events.lifetime, Duration::from_secs(3 * 86400));
        let o = Overrides {
            listen: Some("127.0.0.1:1".into()),
            data_dir: Some("/tmp/x".into()),
            config: None,
            database_url: None,
        };
        let c = Config::from_toml_str(text, &o).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:1");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = toml_for_test("[tokens]\nlifetime = \"soon\"")
            .unwrap_err()
            .0;
        assert!(e.contains("line 2"), "{e}");
        let e = toml_for_test("listen = \"nowhere\"").unwrap_err().0;
        assert!(e.starts_with("listen:"), "{e}");
        let e = toml_for_test("[tokens]\nlifetime = \"0s\"").unwrap_err().0;
        assert!(e.starts_with("tokens.lifetime"), "{e}");
        let e = toml_for_test("[identity]\nbackend = \"ldap\"")
            .unwrap_err()
            .0;
        assert!(e.starts_with("identity.backend"), "{e}");
        let e = toml_for_test("[identity]\nbackend = \"myradio\"")
            .unwrap_err()
            .0;
        assert!(e.contains("api_url"), "{e}");
        let e = toml_for_test("lisen = \"127.0.0.1:1\"").unwrap_err().0;
        assert!(e.contains("lisen"), "{e}");
        let e = toml_for_test("[store]\nurl = \"mysql://x\"").unwrap_err().0;
        assert!(e.starts_with("store.url"), "{e}");
        let e = toml_for_test("log_level = \"[[[\"").unwrap_err().0;
        assert!(e.starts_with("log_level"), "{e}");
    }

    #[test]
    fn operations_keys() {
        let c = toml_for_test(
            "metrics_listen = \"127.0.0.1:9100\"\nlog_level = \"jars=debug,warn\"\n\
             shutdown_grace = \"3s\"\n",
        )
        .unwrap();
        assert_eq!(c.metrics_listen.unwrap().port(), 9100);
        assert_eq!(c.log_level, "jars=debug,warn");
        assert_eq!(c.shutdown_grace, Duration::from_secs(3));
        let e = toml_for_test("listen = \"127.0.0.1:1\"\nmetrics_listen = \"127.0.0.1:1\"")
            .unwrap_err()
            .0;
        assert!(e.starts_with("metrics_listen"), "{e}");
    }
}
