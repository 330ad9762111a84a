//! `[store]`: where events are kept (SQLite in the data directory, or PostgreSQL), the
//! PostgreSQL pool, and how long rows are cached in front of it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::describe::duration;
use super::{err, positive, ConfigError, Overrides};

/// How long event rows are trusted without asking the store (`[store] cache_ttl`,
/// `negative_cache_ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoreCacheSettings {
    #[serde(serialize_with = "duration")]
    pub ttl: Duration,
    #[serde(serialize_with = "duration")]
    pub negative_ttl: Duration,
}

/// The event store in use.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
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
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct PostgresSettings {
    /// The connection URL; may hold a password, so print it with [`redact_url`] only.
    #[serde(serialize_with = "redacted_url")]
    pub url: String,
    /// Whether `serve` (and the other commands) run the embedded migrations when they open the
    /// store (`[store] migrate`, default true). `jars migrate` runs them regardless.
    pub migrate: bool,
    /// Pool size (`[store] max_connections`, default 8).
    pub max_connections: u32,
    /// How long a request waits for a pooled connection, connecting included
    /// (`[store] acquire_timeout`, default 1.5 s).
    #[serde(serialize_with = "duration")]
    pub acquire_timeout: Duration,
    /// Bound on one whole store operation, waiting for a connection included
    /// (`[store] query_timeout`, default 2 s).
    #[serde(serialize_with = "duration")]
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

fn redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// `[store]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileStore {
    pub(super) url: Option<String>,
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

/// Validates `[store]`: the URL (`JARS_DATABASE_URL` / `--database-url` first, else SQLite in
/// `data_dir`), the pool keys (PostgreSQL only) and the row cache.
pub(super) fn resolve(
    f: FileStore,
    o: &Overrides,
    data_dir: &Path,
) -> Result<(StoreSettings, StoreCacheSettings), ConfigError> {
    let cache = StoreCacheSettings {
        ttl: positive("store.cache_ttl", f.cache_ttl, Duration::from_secs(2))?,
        negative_ttl: positive(
            "store.negative_cache_ttl",
            f.negative_cache_ttl,
            Duration::from_secs(1),
        )?,
    };
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
    Ok((store, cache))
}

fn parse_store_url(url: &str) -> Result<StoreSettings, ConfigError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // A URL the driver cannot read is a config error (exit 64), not an outage at start-up.
        if let Err(e) = url.parse::<sqlx::postgres::PgConnectOptions>() {
            return Err(err(format!("store.url: {}: {e}", redact_url(url))));
        }
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
    use super::super::{toml_for_test as toml, Config, OnStoreError};
    use super::*;

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
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
    }
}
