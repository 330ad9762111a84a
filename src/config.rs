//! Configuration: the TOML file (every key optional), `JARS_*` overrides from the command line
//! and environment, and the original JARS `config.json`, resolved and validated before anything
//! is bound.
//!
//! Precedence, highest first: command-line flag, environment variable, config file, default.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Exit code for a configuration or usage error (`EX_USAGE` from sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// The address the original service listened on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8888";
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

/// The fully resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
    pub listen: SocketAddr,
    /// Serve `/metrics` on this address instead of `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// The log filter when `RUST_LOG` is unset (`info`, `jars=debug,warn`, …).
    pub log_level: String,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    pub data_dir: PathBuf,
    pub tokens: TokenSettings,
    pub identity: IdentitySettings,
    pub store: StoreSettings,
    pub events: EventSettings,
    pub limits: LimitSettings,
    pub icecast: IcecastSettings,
    pub store_cache: StoreCacheSettings,
}

/// How long event rows are trusted without asking the store (`[store] cache_ttl`,
/// `negative_cache_ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreCacheSettings {
    pub ttl: Duration,
    pub negative_ttl: Duration,
}

/// Who may reach a mount that is not an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticMount {
    pub name: String,
    pub access: Access,
}

/// Source credentials of a relay (`[[icecast.trusted_sources]]`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedSource {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for TrustedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedSource({}, ***)", self.user)
    }
}

/// The `[icecast]` section: how callbacks are authenticated and decided.
#[derive(Clone)]
pub struct IcecastSettings {
    /// HTTP Basic credentials every callback must carry, when set.
    pub username: Option<String>,
    pub password: Option<String>,
    pub token_params: Vec<String>,
    pub header_prefix: String,
    pub mounts: Vec<StaticMount>,
    pub trusted_sources: Vec<TrustedSource>,
    pub relay_window: Duration,
    pub ticket_lifetime: Duration,
    pub max_listeners_per_ticket: Option<u32>,
    /// What an event decision does when the event store fails.
    pub on_store_error: OnStoreError,
}

/// `[icecast] on_store_error`: how Icecast decisions behave while the event store is down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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
            .field("token_params", &self.token_params)
            .field("header_prefix", &self.header_prefix)
            .field("mounts", &self.mounts)
            .field("trusted_sources", &self.trusted_sources)
            .field("relay_window", &self.relay_window)
            .field("ticket_lifetime", &self.ticket_lifetime)
            .field("max_listeners_per_ticket", &self.max_listeners_per_ticket)
            .field("on_store_error", &self.on_store_error)
            .finish()
    }
}

impl Default for IcecastSettings {
    fn default() -> Self {
        IcecastSettings {
            username: None,
            password: None,
            token_params: vec!["token".into(), "jwt".into()],
            header_prefix: "ClientHeader.".into(),
            mounts: Vec::new(),
            trusted_sources: Vec::new(),
            relay_window: Duration::from_secs(60),
            ticket_lifetime: Duration::from_secs(6 * 3600),
            max_listeners_per_ticket: None,
            on_store_error: OnStoreError::Cached,
        }
    }
}

/// Rate limits of `/jars/token` (per client address and per user name), load shedding, and
/// whose `X-Forwarded-For` to believe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    pub token_per_minute: u32,
    pub token_burst: u32,
    /// Requests to the management API (everything but Icecast callbacks and health) in
    /// progress at once; more are answered 503 at once instead of queueing.
    pub max_concurrent_requests: usize,
    /// Icecast callbacks in progress at once; kept apart so the API cannot starve them.
    pub max_concurrent_callbacks: usize,
    /// Peers whose `X-Forwarded-For` names the client (reverse proxies).
    pub trusted_proxies: Vec<crate::limits::IpNet>,
    /// Events one member may create per hour (`/jars/create`), all at once at most.
    pub create_per_hour: u32,
    /// Listener tickets one member may mint per minute (`/jars/ticket`), all at once at most.
    pub tickets_per_minute: u32,
    /// `/jars/events` listings reading the store at once; more wait their turn.
    pub max_concurrent_lists: usize,
}

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

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub lifetime: Duration,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteKeySettings {
    pub url: String,
    /// `true` for a JWKS document, `false` for a PEM public key.
    pub jwks: bool,
    pub refresh: Duration,
    pub refetch_min_interval: Duration,
    pub max_stale: Duration,
}

#[derive(Debug, Clone)]
pub enum IdentitySettings {
    UsersFile { path: PathBuf },
    MyRadio(MyRadioSettings),
}

#[derive(Clone)]
pub struct MyRadioSettings {
    pub api_url: String,
    pub api_key: String,
    pub standard_user_permission: i64,
    pub super_user_permission: i64,
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

#[derive(Clone, PartialEq, Eq)]
pub enum StoreSettings {
    Sqlite { path: PathBuf },
    Postgres(PostgresSettings),
}

impl fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSettings::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
            StoreSettings::Postgres(pg) => write!(f, "{}", redact_url(&pg.url)),
        }
    }
}

/// A PostgreSQL event store (`[store] url = "postgres://…"` and its pool keys).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// The connection URL; may hold a password, so print it with [`redact_url`] only.
    pub url: String,
    /// Whether `serve` (and the other commands) run the embedded migrations when they open the
    /// store (`[store] migrate`, default true). `jars migrate` runs them regardless.
    pub migrate: bool,
    /// Pool size (`[store] max_connections`, default 8).
    pub max_connections: u32,
    /// How long a request waits for a pooled connection, connecting included
    /// (`[store] acquire_timeout`, default 1.5 s).
    pub acquire_timeout: Duration,
    /// Bound on one whole store operation, waiting for a connection included
    /// (`[store] query_timeout`, default 2 s).
    pub query_timeout: Duration,
}

impl PostgresSettings {
    /// The defaults for `url`.
    pub fn new(url: impl Into<String>) -> PostgresSettings {
        PostgresSettings {
            url: url.into(),
            migrate: true,
            max_connections: 8,
            acquire_timeout: Duration::from_millis(1500),
            query_timeout: Duration::from_secs(2),
        }
    }
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &redact_url(&self.url))
            .field("migrate", &self.migrate)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("query_timeout", &self.query_timeout)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for printing.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct EventSettings {
    pub lifetime: Duration,
}

// ---------------------------------------------------------------------------------------------
// The TOML file as written. Every key optional; unknown keys are an error so typos are caught.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    metrics_listen: Option<String>,
    log_level: Option<String>,
    #[serde(with = "humantime_serde")]
    shutdown_grace: Option<Duration>,
    tokens: FileTokens,
    identity: FileIdentity,
    store: FileStore,
    events: FileEvents,
    limits: FileLimits,
    icecast: FileIcecast,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileIcecast {
    username: Option<String>,
    password: Option<String>,
    token_params: Option<Vec<String>>,
    header_prefix: Option<String>,
    mounts: Vec<StaticMount>,
    trusted_sources: Vec<TrustedSource>,
    #[serde(with = "humantime_serde")]
    relay_window: Option<Duration>,
    #[serde(with = "humantime_serde")]
    ticket_lifetime: Option<Duration>,
    max_listeners_per_ticket: Option<u32>,
    on_store_error: Option<OnStoreError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileLimits {
    token_per_minute: Option<u32>,
    token_burst: Option<u32>,
    max_concurrent_requests: Option<usize>,
    max_concurrent_callbacks: Option<usize>,
    trusted_proxies: Vec<String>,
    create_per_hour: Option<u32>,
    tickets_per_minute: Option<u32>,
    max_concurrent_lists: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileTokens {
    #[serde(with = "humantime_serde")]
    lifetime: Option<Duration>,
    #[serde(with = "humantime_serde")]
    leeway: Option<Duration>,
    issuer: Option<String>,
    audience: Option<String>,
    private_key: Option<PathBuf>,
    public_key: Option<PathBuf>,
    jwks_url: Option<String>,
    public_key_url: Option<String>,
    #[serde(with = "humantime_serde")]
    refresh: Option<Duration>,
    #[serde(with = "humantime_serde")]
    refetch_min_interval: Option<Duration>,
    #[serde(with = "humantime_serde")]
    max_stale: Option<Duration>,
    #[serde(skip)]
    inline_private_key: Option<String>,
    #[serde(skip)]
    inline_public_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileIdentity {
    backend: Option<String>,
    users_file: Option<PathBuf>,
    myradio: FileMyRadio,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileMyRadio {
    api_url: Option<String>,
    api_key: Option<String>,
    standard_user_permission: Option<i64>,
    super_user_permission: Option<i64>,
    #[serde(with = "humantime_serde")]
    timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileStore {
    url: Option<String>,
    #[serde(with = "humantime_serde")]
    cache_ttl: Option<Duration>,
    #[serde(with = "humantime_serde")]
    negative_cache_ttl: Option<Duration>,
    migrate: Option<bool>,
    max_connections: Option<u32>,
    #[serde(with = "humantime_serde")]
    acquire_timeout: Option<Duration>,
    #[serde(with = "humantime_serde")]
    query_timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileEvents {
    #[serde(with = "humantime_serde")]
    lifetime: Option<Duration>,
}

// ---------------------------------------------------------------------------------------------
// The original service's /etc/jars/config.json. Unknown keys are tolerated: the file must be
// accepted unchanged, whatever else an installation put in it.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OriginalConfig {
    jwt: OriginalJwt,
    myradio: Option<OriginalMyRadio>,
    events: OriginalEvents,
    db: Option<OriginalDb>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OriginalJwt {
    public_key: Option<String>,
    private_key: Option<String>,
    token_lifetime: Option<Seconds>,
    issuer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OriginalMyRadio {
    api_url: Option<String>,
    api_key: Option<String>,
    standard_user_permission: Option<i64>,
    super_user_permission: Option<i64>,
    timeout: Option<Seconds>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OriginalEvents {
    lifetime: Option<Seconds>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OriginalDb {
    host: Option<String>,
    port: Option<u16>,
    #[serde(alias = "username")]
    user: Option<String>,
    password: Option<String>,
    #[serde(alias = "dbname", alias = "name")]
    database: Option<String>,
}

/// A duration in the original file: a number of seconds, or a string such as `"24h"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(f64),
    Text(String),
}

impl Seconds {
    fn to_duration(&self, key: &str) -> Result<Duration, ConfigError> {
        match self {
            Seconds::Number(n) if n.is_finite() && *n > 0.0 => Ok(Duration::from_secs_f64(*n)),
            Seconds::Number(n) => Err(err(format!(
                "{key}: {n} is not a positive number of seconds"
            ))),
            Seconds::Text(s) => parse_duration(key, s),
        }
    }
}

/// Parses `"24h"`, `"30s"`, `"10d"`, naming `key` when it fails.
pub fn parse_duration(key: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        err(format!(
            "{key}: \"{s}\" is not a duration like \"24h\" ({e})"
        ))
    })
}

impl OriginalConfig {
    /// Maps the original keys onto the TOML shape, so both share one resolution.
    fn into_file_config(self) -> Result<FileConfig, ConfigError> {
        let mut file = FileConfig::default();
        let key_ref = |v: String, inline: &mut Option<String>, path: &mut Option<PathBuf>| {
            if v.trim_start().starts_with("-----BEGIN") {
                *inline = Some(v);
            } else {
                *path = Some(PathBuf::from(v));
            }
        };
        if let Some(v) = self.jwt.private_key {
            key_ref(
                v,
                &mut file.tokens.inline_private_key,
                &mut file.tokens.private_key,
            );
        }
        if let Some(v) = self.jwt.public_key {
            key_ref(
                v,
                &mut file.tokens.inline_public_key,
                &mut file.tokens.public_key,
            );
        }
        if let Some(l) = self.jwt.token_lifetime {
            file.tokens.lifetime = Some(l.to_duration("jwt.token_lifetime")?);
        }
        file.tokens.issuer = self.jwt.issuer;
        if let Some(l) = self.events.lifetime {
            file.events.lifetime = Some(l.to_duration("events.lifetime")?);
        }
        if let Some(m) = self.myradio {
            file.identity.backend = Some("myradio".into());
            file.identity.myradio = FileMyRadio {
                api_url: m.api_url,
                api_key: m.api_key,
                standard_user_permission: m.standard_user_permission,
                super_user_permission: m.super_user_permission,
                timeout: m
                    .timeout
                    .map(|t| t.to_duration("myradio.timeout"))
                    .transpose()?,
            };
        }
        if let Some(db) = self.db {
            file.store.url = Some(db.to_url());
        }
        Ok(file)
    }
}

impl OriginalDb {
    fn to_url(&self) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut url = String::from("postgres://");
        if let Some(user) = &self.user {
            url.push_str(&enc(user));
            if let Some(pw) = &self.password {
                url.push(':');
                url.push_str(&enc(pw));
            }
            url.push('@');
        }
        url.push_str(self.host.as_deref().unwrap_or("localhost"));
        if let Some(port) = self.port {
            url.push_str(&format!(":{port}"));
        }
        url.push('/');
        url.push_str(&enc(self.database.as_deref().unwrap_or("jars")));
        url
    }
}

// ---------------------------------------------------------------------------------------------

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

    /// A human-readable summary for `jars check-config`; never prints secrets.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<28} {v}\n"));
        line(
            "config file",
            self.source
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(none: built-in defaults)".into()),
        );
        line("listen", self.listen.to_string());
        line(
            "metrics_listen",
            self.metrics_listen
                .map(|a| a.to_string())
                .unwrap_or_else(|| "(unset: /metrics on listen)".into()),
        );
        line("log_level", self.log_level.clone());
        line(
            "shutdown_grace",
            humantime::format_duration(self.shutdown_grace).to_string(),
        );
        line("data_dir", self.data_dir.display().to_string());
        line(
            "tokens.lifetime",
            humantime::format_duration(self.tokens.lifetime).to_string(),
        );
        line(
            "tokens.leeway",
            humantime::format_duration(self.tokens.leeway).to_string(),
        );
        line("tokens.issuer", self.tokens.issuer.clone());
        line(
            "tokens.audience",
            self.tokens
                .audience
                .clone()
                .unwrap_or_else(|| "(unset)".into()),
        );
        line(
            "tokens.private_key",
            self.tokens
                .private_key
                .as_ref()
                .map(|k| k.to_string())
                .unwrap_or_else(|| "(generated in data_dir)".into()),
        );
        if let Some(r) = &self.tokens.remote {
            line(
                if r.jwks {
                    "tokens.jwks_url"
                } else {
                    "tokens.public_key_url"
                },
                format!(
                    "{} (verify-only; refresh {}, refetch at most every {}, fail closed after {})",
                    r.url,
                    humantime::format_duration(r.refresh),
                    humantime::format_duration(r.refetch_min_interval),
                    humantime::format_duration(r.max_stale)
                ),
            );
        }
        line(
            "tokens.public_key",
            self.tokens
                .public_key
                .as_ref()
                .map(|k| k.to_string())
                .unwrap_or_else(|| "(derived from the private key)".into()),
        );
        match &self.identity {
            IdentitySettings::UsersFile { path } => {
                line("identity.backend", "users_file".into());
                line("identity.users_file", path.display().to_string());
            }
            IdentitySettings::MyRadio(m) => {
                line("identity.backend", "myradio".into());
                line("identity.myradio.api_url", m.api_url.clone());
                line("identity.myradio.api_key", "(set)".into());
                line(
                    "identity.myradio.standard_user_permission",
                    m.standard_user_permission.to_string(),
                );
                line(
                    "identity.myradio.super_user_permission",
                    m.super_user_permission.to_string(),
                );
                line(
                    "identity.myradio.timeout",
                    humantime::format_duration(m.timeout).to_string(),
                );
            }
        }
        line("store.url", format!("{:?}", self.store));
        if let StoreSettings::Postgres(pg) = &self.store {
            line("store.migrate", pg.migrate.to_string());
            line("store.max_connections", pg.max_connections.to_string());
            line(
                "store.acquire_timeout",
                humantime::format_duration(pg.acquire_timeout).to_string(),
            );
            line(
                "store.query_timeout",
                humantime::format_duration(pg.query_timeout).to_string(),
            );
        }
        line(
            "store.cache_ttl",
            humantime::format_duration(self.store_cache.ttl).to_string(),
        );
        line(
            "store.negative_cache_ttl",
            humantime::format_duration(self.store_cache.negative_ttl).to_string(),
        );
        line(
            "events.lifetime",
            humantime::format_duration(self.events.lifetime).to_string(),
        );
        line(
            "limits.token_per_minute",
            self.limits.token_per_minute.to_string(),
        );
        line("limits.token_burst", self.limits.token_burst.to_string());
        line(
            "limits.max_concurrent_requests",
            self.limits.max_concurrent_requests.to_string(),
        );
        line(
            "limits.max_concurrent_callbacks",
            self.limits.max_concurrent_callbacks.to_string(),
        );
        line(
            "limits.trusted_proxies",
            format!("{:?}", self.limits.trusted_proxies),
        );
        line(
            "limits.create_per_hour",
            self.limits.create_per_hour.to_string(),
        );
        line(
            "limits.tickets_per_minute",
            self.limits.tickets_per_minute.to_string(),
        );
        line(
            "limits.max_concurrent_lists",
            self.limits.max_concurrent_lists.to_string(),
        );
        let ic = &self.icecast;
        line(
            "icecast.username",
            ic.username
                .clone()
                .unwrap_or_else(|| "(unset: callbacks not authenticated)".into()),
        );
        line(
            "icecast.password",
            if ic.password.is_some() {
                "(set)"
            } else {
                "(unset)"
            }
            .into(),
        );
        line("icecast.token_params", ic.token_params.join(", "));
        line("icecast.header_prefix", ic.header_prefix.clone());
        for m in &ic.mounts {
            line("icecast.mounts", format!("{} ({:?})", m.name, m.access));
        }
        for t in &ic.trusted_sources {
            line(
                "icecast.trusted_sources",
                format!("{} (password set)", t.user),
            );
        }
        line(
            "icecast.relay_window",
            humantime::format_duration(ic.relay_window).to_string(),
        );
        line(
            "icecast.ticket_lifetime",
            humantime::format_duration(ic.ticket_lifetime).to_string(),
        );
        line(
            "icecast.max_listeners_per_ticket",
            ic.max_listeners_per_ticket
                .map(|n| n.to_string())
                .unwrap_or_else(|| "(unlimited)".into()),
        );
        line("icecast.on_store_error", ic.on_store_error.to_string());
        out
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
        let original: OriginalConfig = serde_json::from_str(&text).map_err(|e| {
            err(format!(
                "config file {}: line {}: {}",
                path.display(),
                e.line(),
                strip_position(&e.to_string())
            ))
        })?;
        original
            .into_file_config()
            .map_err(|e| err(format!("config file {}: {e}", path.display())))
    } else {
        parse_toml(&text, path)
    }
}

fn strip_position(msg: &str) -> &str {
    msg.split(" at line ").next().unwrap_or(msg)
}

fn parse_toml(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = e.message().trim().replace('\n', " ");
        match line {
            Some(l) => err(format!("config file {}: line {l}: {msg}", path.display())),
            None => err(format!("config file {}: {msg}", path.display())),
        }
    })
}

fn positive(key: &str, d: Option<Duration>, default: Duration) -> Result<Duration, ConfigError> {
    match d {
        Some(d) if d.is_zero() => Err(err(format!("{key}: must be longer than zero"))),
        Some(d) => Ok(d),
        None => Ok(default),
    }
}

fn resolve(file: FileConfig, o: &Overrides) -> Result<Config, ConfigError> {
    let listen_text = o
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
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

    let t = file.tokens;
    let issuer = t.issuer.unwrap_or_else(|| "jars".into());
    if issuer.trim().is_empty() {
        return Err(err("tokens.issuer: must not be empty"));
    }
    if t.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
        return Err(err("tokens.audience: must not be empty when set"));
    }
    let leeway = t.leeway.unwrap_or(Duration::from_secs(30));
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
    let tokens = TokenSettings {
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
    };

    let id = file.identity;
    let identity =
        match id.backend.as_deref().unwrap_or("users_file") {
            "users_file" => IdentitySettings::UsersFile {
                path: id.users_file.unwrap_or_else(|| data_dir.join("users.toml")),
            },
            "myradio" => {
                let m = id.myradio;
                let api_url = m.api_url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
                    err("identity.myradio.api_url: required by the myradio backend")
                })?;
                if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
                    return Err(err(format!(
                    "identity.myradio.api_url: \"{api_url}\" must start with http:// or https://"
                )));
                }
                let api_key = m.api_key.filter(|k| !k.is_empty()).ok_or_else(|| {
                    err("identity.myradio.api_key: required by the myradio backend")
                })?;
                IdentitySettings::MyRadio(MyRadioSettings {
                    api_url: api_url.trim_end_matches('/').to_string(),
                    api_key,
                    standard_user_permission: m.standard_user_permission.unwrap_or(-1),
                    super_user_permission: m.super_user_permission.unwrap_or(-2),
                    timeout: positive(
                        "identity.myradio.timeout",
                        m.timeout,
                        Duration::from_secs(5),
                    )?,
                })
            }
            other => {
                return Err(err(format!(
                    "identity.backend: \"{other}\" is not one of \"users_file\", \"myradio\""
                )))
            }
        };

    let store_cache = StoreCacheSettings {
        ttl: positive(
            "store.cache_ttl",
            file.store.cache_ttl,
            Duration::from_secs(2),
        )?,
        negative_ttl: positive(
            "store.negative_cache_ttl",
            file.store.negative_cache_ttl,
            Duration::from_secs(1),
        )?,
    };
    let store = resolve_store(file.store, o, &data_dir)?;

    let events = EventSettings {
        lifetime: positive(
            "events.lifetime",
            file.events.lifetime,
            Duration::from_secs(10 * 24 * 3600),
        )?,
    };

    let limits = LimitSettings {
        token_per_minute: file.limits.token_per_minute.unwrap_or(10),
        token_burst: file.limits.token_burst.unwrap_or(5),
        max_concurrent_requests: file.limits.max_concurrent_requests.unwrap_or(256),
        max_concurrent_callbacks: file.limits.max_concurrent_callbacks.unwrap_or(1024),
        trusted_proxies: file
            .limits
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|e| err(format!("limits.trusted_proxies: {e}")))
            })
            .collect::<Result<_, _>>()?,
        create_per_hour: file.limits.create_per_hour.unwrap_or(60),
        tickets_per_minute: file.limits.tickets_per_minute.unwrap_or(60),
        max_concurrent_lists: file.limits.max_concurrent_lists.unwrap_or(2),
    };
    if limits.create_per_hour == 0
        || limits.tickets_per_minute == 0
        || limits.max_concurrent_lists == 0
    {
        return Err(err(
            "limits.create_per_hour, limits.tickets_per_minute, limits.max_concurrent_lists: \
             must be at least 1",
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

    let icecast = resolve_icecast(file.icecast)?;

    Ok(Config {
        metrics_listen,
        log_level,
        shutdown_grace,
        source: o.config.clone(),
        store_cache,
        icecast,
        limits,
        listen,
        data_dir,
        tokens,
        identity,
        store,
        events,
    })
}

fn resolve_icecast(f: FileIcecast) -> Result<IcecastSettings, ConfigError> {
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
    Ok(IcecastSettings {
        username: f.username,
        password: f.password,
        token_params,
        header_prefix: f.header_prefix.unwrap_or(d.header_prefix),
        mounts: f.mounts,
        trusted_sources: f.trusted_sources,
        relay_window: positive("icecast.relay_window", f.relay_window, d.relay_window)?,
        ticket_lifetime: positive(
            "icecast.ticket_lifetime",
            f.ticket_lifetime,
            d.ticket_lifetime,
        )?,
        max_listeners_per_ticket: f.max_listeners_per_ticket,
        on_store_error: f.on_store_error.unwrap_or_default(),
    })
}

/// `[store]`: the URL (`JARS_DATABASE_URL` / `--database-url` first) and the pool keys, which
/// apply to a PostgreSQL store only.
fn resolve_store(
    f: FileStore,
    o: &Overrides,
    data_dir: &Path,
) -> Result<StoreSettings, ConfigError> {
    let url = o
        .database_url
        .clone()
        .filter(|u| !u.trim().is_empty())
        .or(f.url);
    let mut store = match url {
        None => StoreSettings::Sqlite {
            path: data_dir.join("jars.sqlite3"),
        },
        Some(url) => parse_store_url(&url)?,
    };
    if let StoreSettings::Postgres(pg) = &mut store {
        pg.migrate = f.migrate.unwrap_or(pg.migrate);
        pg.max_connections = f.max_connections.unwrap_or(pg.max_connections);
        if !(1..=1000).contains(&pg.max_connections) {
            return Err(err("store.max_connections: between 1 and 1000"));
        }
        pg.acquire_timeout = positive(
            "store.acquire_timeout",
            f.acquire_timeout,
            pg.acquire_timeout,
        )?;
        pg.query_timeout = positive("store.query_timeout", f.query_timeout, pg.query_timeout)?;
    }
    Ok(store)
}

fn parse_store_url(url: &str) -> Result<StoreSettings, ConfigError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(StoreSettings::Postgres(PostgresSettings::new(url)))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err(err("store.url: a sqlite: URL needs a file path"));
        }
        Ok(StoreSettings::Sqlite { path: path.into() })
    } else {
        Err(err(format!(
            "store.url: \"{}\" is neither sqlite:PATH nor postgres://…",
            redact_url(url)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, &Overrides::default())
    }

    #[test]
    fn empty_config_gives_documented_defaults() {
        let c = toml("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8888");
        assert_eq!(c.data_dir, PathBuf::from("./jars-data"));
        assert_eq!(c.tokens.lifetime, Duration::from_secs(86400));
        assert_eq!(c.tokens.leeway, Duration::from_secs(30));
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
        let c = toml(text).unwrap();
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
        let e = toml("[tokens]\nlifetime = \"soon\"").unwrap_err().0;
        assert!(e.contains("line 2"), "{e}");
        let e = toml("listen = \"nowhere\"").unwrap_err().0;
        assert!(e.starts_with("listen:"), "{e}");
        let e = toml("[tokens]\nlifetime = \"0s\"").unwrap_err().0;
        assert!(e.starts_with("tokens.lifetime"), "{e}");
        let e = toml("[identity]\nbackend = \"ldap\"").unwrap_err().0;
        assert!(e.starts_with("identity.backend"), "{e}");
        let e = toml("[identity]\nbackend = \"myradio\"").unwrap_err().0;
        assert!(e.contains("api_url"), "{e}");
        let e = toml("lisen = \"127.0.0.1:1\"").unwrap_err().0;
        assert!(e.contains("lisen"), "{e}");
        let e = toml("[store]\nurl = \"mysql://x\"").unwrap_err().0;
        assert!(e.starts_with("store.url"), "{e}");
    }

    #[test]
    fn original_config_json_is_mapped() {
        let json = r#"{
            "jwt": {"public_key": "/etc/jars/service.pem", "private_key": "/etc/jars/service.key",
                    "token_lifetime": 3600},
            "myradio": {"api_url": "https://myradio.example/api/v2/", "api_key": "k"},
            "events": {"lifetime": 86400},
            "something_else": true
        }"#;
        let file = serde_json::from_str::<OriginalConfig>(json)
            .unwrap()
            .into_file_config()
            .unwrap();
        let c = resolve(file, &Overrides::default()).unwrap();
        assert_eq!(c.tokens.lifetime, Duration::from_secs(3600));
        assert_eq!(c.events.lifetime, Duration::from_secs(86400));
        assert_eq!(
            c.tokens.private_key,
            Some(KeyRef::File("/etc/jars/service.key".into()))
        );
        match &c.identity {
            IdentitySettings::MyRadio(m) => {
                assert_eq!(m.api_url, "https://myradio.example/api/v2");
                assert_eq!(m.super_user_permission, -2);
                assert_eq!(m.standard_user_permission, -1);
            }
            other => panic!("expected myradio, got {other:?}"),
        }
        assert!(!c.describe().contains("\"k\""));
    }

    #[test]
    fn original_db_section_names_postgres() {
        let json =
            r#"{"db": {"host": "db", "user": "jars", "password": "p@ss", "database": "radio"}}"#;
        let file = serde_json::from_str::<OriginalConfig>(json)
            .unwrap()
            .into_file_config()
            .unwrap();
        assert_eq!(
            file.store.url.as_deref(),
            Some("postgres://jars:p%40ss@db/radio")
        );
        let c = resolve(file, &Overrides::default()).unwrap();
        assert_eq!(
            c.store,
            StoreSettings::Postgres(PostgresSettings::new("postgres://jars:p%40ss@db/radio"))
        );
        assert!(!c.describe().contains("p%40ss"), "password leaked");
        assert!(
            !format!("{:?}", c.store).contains("p%40ss"),
            "password leaked"
        );
    }

    #[test]
    fn postgres_store_keys_and_env_override() {
        let text = r#"
            [store]
            url = "postgres://jars:secret@db.example/jars"
            migrate = false
            max_connections = 3
            acquire_timeout = "500ms"
            query_timeout = "1s"
            [icecast]
            on_store_error = "deny"
        "#;
        let c = toml(text).unwrap();
        let StoreSettings::Postgres(pg) = &c.store else {
            panic!("expected postgres, got {:?}", c.store)
        };
        assert!(!pg.migrate);
        assert_eq!(pg.max_connections, 3);
        assert_eq!(pg.acquire_timeout, Duration::from_millis(500));
        assert_eq!(pg.query_timeout, Duration::from_secs(1));
        assert_eq!(c.icecast.on_store_error, OnStoreError::Deny);
        assert!(!c.describe().contains("secret"));
        assert!(c.describe().contains("postgres://jars:***@db.example/jars"));

        // Defaults.
        let c = toml("[store]\nurl = \"postgresql://db/jars\"").unwrap();
        assert_eq!(
            c.store,
            StoreSettings::Postgres(PostgresSettings::new("postgresql://db/jars"))
        );
        assert_eq!(c.icecast.on_store_error, OnStoreError::Cached);
        assert_eq!(c.store_cache.ttl, Duration::from_secs(2));
        assert_eq!(c.store_cache.negative_ttl, Duration::from_secs(1));

        // JARS_DATABASE_URL / --database-url beats the file.
        let o = Overrides {
            database_url: Some("postgres://other/db".into()),
            ..Overrides::default()
        };
        let c = Config::from_toml_str(text, &o).unwrap();
        let StoreSettings::Postgres(pg) = &c.store else {
            panic!("expected postgres")
        };
        assert_eq!(pg.url, "postgres://other/db");
        assert_eq!(pg.max_connections, 3, "the file's pool keys still apply");
        let o = Overrides {
            database_url: Some("sqlite:/tmp/e.sqlite3".into()),
            ..Overrides::default()
        };
        let c = Config::from_toml_str(text, &o).unwrap();
        assert_eq!(
            c.store,
            StoreSettings::Sqlite {
                path: "/tmp/e.sqlite3".into()
            }
        );

        let e = toml("[store]\nurl = \"postgres://h/d\"\nmax_connections = 0")
            .unwrap_err()
            .0;
        assert!(e.starts_with("store.max_connections"), "{e}");
        let e = toml("[store]\nurl = \"postgres://h/d\"\nquery_timeout = \"0s\"")
            .unwrap_err()
            .0;
        assert!(e.starts_with("store.query_timeout"), "{e}");
        let e = toml("[icecast]\non_store_error = \"allow\"").unwrap_err().0;
        assert!(e.contains("line 2"), "{e}");
    }

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
        assert_eq!(c.icecast.relay_window, Duration::from_secs(60));
        assert_eq!(c.icecast.ticket_lifetime, Duration::from_secs(3600));
        assert_eq!(c.icecast.mounts[0].access, Access::Members);
        assert!(!format!("{:?}", c.icecast).contains("relay-secret"));
        assert!(!c.describe().contains("cb-secret"));
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

    #[test]
    fn verify_only_and_operations_keys() {
        let c = toml(
            "metrics_listen = \"127.0.0.1:9100\"\nlog_level = \"jars=debug,warn\"\n\
             shutdown_grace = \"3s\"\n[tokens]\njwks_url = \"https://issuer.example/jars/jwks.json\"\n",
        )
        .unwrap();
        let r = c.tokens.remote.unwrap();
        assert!(r.jwks);
        assert_eq!(r.refresh, Duration::from_secs(600));
        assert_eq!(r.refetch_min_interval, Duration::from_secs(30));
        assert_eq!(r.max_stale, Duration::from_secs(86400));
        assert_eq!(c.metrics_listen.unwrap().port(), 9100);
        assert_eq!(c.shutdown_grace, Duration::from_secs(3));
        let e = toml("[tokens]\njwks_url = \"https://a/\"\npublic_key_url = \"https://b/\"")
            .unwrap_err()
            .0;
        assert!(e.contains("not both"), "{e}");
        let e = toml("[tokens]\njwks_url = \"https://a/\"\nprivate_key = \"/k.pem\"")
            .unwrap_err()
            .0;
        assert!(e.contains("verify-only"), "{e}");
        let e = toml("log_level = \"[[[\"").unwrap_err().0;
        assert!(e.starts_with("log_level"), "{e}");
    }

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
    }
}
