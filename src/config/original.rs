//! The original service's `/etc/jars/config.json`, mapped onto the TOML file's shape so both
//! share one resolution. Unknown keys are tolerated: the file must be accepted unchanged,
//! whatever else an installation put in it. Without `--listen`, jars then listens where the
//! original did: all interfaces, port 8888.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::identity::FileMyRadio;
use super::{err, parse_duration, ConfigError, FileConfig};

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
    standard_user_permission: Option<Number<i64>>,
    super_user_permission: Option<Number<i64>>,
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
    port: Option<Number<u16>>,
    #[serde(alias = "username")]
    user: Option<String>,
    password: Option<String>,
    #[serde(alias = "dbname", alias = "name")]
    database: Option<String>,
}

/// A duration in the original file: a number of seconds (`86400` or `"86400"`), or a string
/// such as `"24h"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(f64),
    Text(String),
}

/// A number the original (Python) also took as a string: `5432` or `"5432"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number<T> {
    Number(T),
    Text(String),
}

impl<T: std::str::FromStr> Number<T> {
    fn get(self, key: &str) -> Result<T, ConfigError> {
        match self {
            Number::Number(n) => Ok(n),
            Number::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| err(format!("{key}: \"{s}\" is not a number in range"))),
        }
    }
}

impl Seconds {
    fn to_duration(&self, key: &str) -> Result<Duration, ConfigError> {
        match self {
            Seconds::Number(n) if n.is_finite() && *n > 0.0 => Ok(Duration::from_secs_f64(*n)),
            Seconds::Number(n) => Err(err(format!(
                "{key}: {n} is not a positive number of seconds"
            ))),
            // "86400" is seconds, as the original read it; "24h" is accepted too.
            Seconds::Text(s) => match s.trim().parse::<f64>() {
                Ok(n) => Seconds::Number(n).to_duration(key),
                Err(_) => parse_duration(key, s),
            },
        }
    }
}

/// Parses the original JSON document into the TOML file's shape.
pub(super) fn parse(text: &str) -> Result<FileConfig, ConfigError> {
    let original: OriginalConfig = serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg);
        err(format!("line {}: {msg}", e.line()))
    })?;
    original.into_file_config()
}

impl OriginalConfig {
    /// Maps the original keys onto the TOML shape.
    fn into_file_config(self) -> Result<FileConfig, ConfigError> {
        let mut file = FileConfig {
            original: true,
            ..FileConfig::default()
        };
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
                standard_user_permission: m
                    .standard_user_permission
                    .map(|p| p.get("myradio.standard_user_permission"))
                    .transpose()?,
                super_user_permission: m
                    .super_user_permission
                    .map(|p| p.get("myradio.super_user_permission"))
                    .transpose()?,
                timeout: m
                    .timeout
                    .map(|t| t.to_duration("myradio.timeout"))
                    .transpose()?,
            };
        }
        if let Some(db) = self.db {
            file.store.url = Some(db.into_url()?);
        }
        Ok(file)
    }
}

impl OriginalDb {
    fn into_url(self) -> Result<String, ConfigError> {
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
            url.push_str(&format!(":{}", port.get("db.port")?));
        }
        url.push('/');
        url.push_str(&enc(self.database.as_deref().unwrap_or("jars")));
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        resolve, IdentitySettings, KeyRef, Overrides, PostgresSettings, StoreSettings,
    };
    use super::*;

    #[test]
    fn original_config_json_is_mapped() {
        let json = r#"{
            "jwt": {"public_key": "/etc/jars/service.pem", "private_key": "/etc/jars/service.key",
                    "token_lifetime": 3600},
            "myradio": {"api_url": "https://myradio.example/api/v2/", "api_key": "k"},
            "events": {"lifetime": 86400},
            "something_else": true
        }"#;
        let c = resolve(parse(json).unwrap(), &Overrides::default()).unwrap();
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
        assert!(c.describe().contains("(set)"));
    }

    #[test]
    fn original_db_section_names_postgres() {
        let json =
            r#"{"db": {"host": "db", "user": "jars", "password": "p@ss", "database": "radio"}}"#;
        let file = parse(json).unwrap();
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
    fn bad_json_names_the_line() {
        let e = parse("{\n\"jwt\": {\"token_lifetime\": -1}}")
            .unwrap_err()
            .0;
        assert!(e.starts_with("jwt.token_lifetime"), "{e}");
        let e = parse("{\n\"db\": 3}").unwrap_err().0;
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn the_original_sample_config_is_accepted_as_shipped() {
        // Numbers as strings ("port": "5432") included, as the original tolerated them.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/jars-original-config.sample.json"
        );
        let c = resolve(
            parse(&std::fs::read_to_string(path).unwrap()).unwrap(),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            c.store,
            StoreSettings::Postgres(PostgresSettings::new(
                "postgres://jars:jars@localhost:5432/jars"
            ))
        );
        let IdentitySettings::MyRadio(m) = &c.identity else {
            panic!("expected myradio, got {:?}", c.identity)
        };
        assert_eq!(
            (m.standard_user_permission, m.super_user_permission),
            (-1, -2)
        );
        assert_eq!(m.api_key, "q1w2e3r4t5");
        assert_eq!(c.tokens.lifetime, Duration::from_secs(86400));
        assert_eq!(c.events.lifetime, Duration::from_secs(864000));
        assert_eq!(
            c.listen.to_string(),
            "0.0.0.0:8888",
            "where the original listened"
        );
        assert_eq!(
            c.tokens.public_key,
            Some(KeyRef::File("/etc/jars/sample_service.pem".into()))
        );
    }

    #[test]
    fn an_original_config_listens_where_the_original_did_unless_told_otherwise() {
        let c = resolve(parse("{}").unwrap(), &Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8888");
        assert!(c.listen_as_original);
        let o = Overrides {
            listen: Some("127.0.0.1:9".into()),
            ..Overrides::default()
        };
        let c = resolve(parse("{}").unwrap(), &o).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9");
        assert!(!c.listen_as_original);
        // A TOML file keeps the loopback default.
        let c = super::super::toml_for_test("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8888");
        assert!(!c.listen_as_original);
    }

    #[test]
    fn numbers_as_strings() {
        let json = r#"{"db": {"port": " 6543 "},
            "myradio": {"api_url": "https://m/api", "api_key": "k",
                        "standard_user_permission": "7", "super_user_permission": 8,
                        "timeout": "2.5"}}"#;
        let c = resolve(parse(json).unwrap(), &Overrides::default()).unwrap();
        let StoreSettings::Postgres(pg) = &c.store else {
            panic!("expected postgres")
        };
        assert_eq!(pg.url, "postgres://localhost:6543/jars");
        let IdentitySettings::MyRadio(m) = &c.identity else {
            panic!("expected myradio")
        };
        assert_eq!(
            (m.standard_user_permission, m.super_user_permission),
            (7, 8)
        );
        let e = parse(r#"{"db": {"port": "99999"}}"#).unwrap_err().0;
        assert!(e.starts_with("db.port"), "{e}");
        let e = parse(r#"{"jwt": {"token_lifetime": "soon"}}"#)
            .unwrap_err()
            .0;
        assert!(e.starts_with("jwt.token_lifetime"), "{e}");
    }
}
