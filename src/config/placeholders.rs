//! Placeholder secrets: the example configs' `change-me-…` values, which every deployment must
//! replace. Warned about while jars listens on loopback only, refused beyond it.

use std::net::SocketAddr;

use super::{err, Config, ConfigError, IdentitySettings, StoreSettings};

/// What every placeholder in the shipped examples starts with.
const PLACEHOLDER: &str = "change-me";

impl Config {
    /// The settings whose secret is still a placeholder (starts with `change-me`), by name;
    /// never their values.
    pub fn placeholder_secrets(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut check = |name: String, value: &str| {
            if value.starts_with(PLACEHOLDER) {
                found.push(name);
            }
        };
        if let Some(p) = &self.icecast.password {
            check("icecast.password".into(), p);
        }
        for t in &self.icecast.trusted_sources {
            check(
                format!("icecast.trusted_sources ({}) password", t.user),
                &t.password,
            );
        }
        for s in &self.icecast.servers {
            check(
                format!("icecast.servers ({}:{}) admin_password", s.server, s.port),
                &s.admin_password,
            );
        }
        if let IdentitySettings::MyRadio(m) = &self.identity {
            check("identity.myradio.api_key".into(), &m.api_key);
        }
        if let StoreSettings::Postgres(pg) = &self.store {
            if let Some(pw) = url::Url::parse(&pg.url)
                .ok()
                .and_then(|u| u.password().map(|p| p.to_string()))
            {
                check("store.url password".into(), &pw);
            }
        }
        found
    }

    /// An error naming the placeholder secrets when `listen` is beyond loopback, where anybody
    /// who has read the example config knows them.
    pub fn refuse_placeholder_secrets(&self) -> Result<(), ConfigError> {
        self.refuse_placeholder_secrets_on(self.listen)
    }

    /// As [`Config::refuse_placeholder_secrets`] for the address jars actually listens on (a
    /// socket systemd passed may differ from `listen`).
    pub fn refuse_placeholder_secrets_on(&self, listen: SocketAddr) -> Result<(), ConfigError> {
        let found = self.placeholder_secrets();
        if found.is_empty() || listen.ip().is_loopback() {
            return Ok(());
        }
        Err(err(format!(
            "{}: still the example's change-me… placeholder, and jars listens on {listen}, \
             beyond loopback; set real secrets",
            found.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Overrides;
    use super::*;

    fn config(listen: &str) -> Config {
        let text = format!(
            "listen = \"{listen}\"\n[icecast]\nusername = \"icecast\"\n\
             password = \"change-me-callback-secret\"\n\
             [[icecast.trusted_sources]]\nuser = \"relay\"\npassword = \"a-real-long-secret\"\n\
             [store]\nurl = \"postgres://jars:change-me@db/jars\"\n"
        );
        Config::from_toml_str(&text, &Overrides::default()).unwrap()
    }

    #[test]
    fn placeholders_are_named_not_shown_and_refused_beyond_loopback() {
        let local = config("127.0.0.1:8888");
        assert_eq!(
            local.placeholder_secrets(),
            ["icecast.password", "store.url password"]
        );
        assert!(local.refuse_placeholder_secrets().is_ok());
        let e = config("0.0.0.0:8888")
            .refuse_placeholder_secrets()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("icecast.password") && e.contains("0.0.0.0:8888"),
            "{e}"
        );
        assert!(!e.contains("change-me-callback-secret"), "{e}");
    }
}
