//! `[ui]`: the station page jars serves at `/` (on or off), and the public addresses it shows
//! members for going live and for listener links.

use serde::{Deserialize, Serialize};

use super::{err, ConfigError};

/// The mount extensions an event mount may carry (as `/jars/connect` and Icecast accept them).
pub const MOUNT_EXTENSIONS: [&str; 5] = ["", ".mp3", ".ogg", ".aac", ".opus"];

/// The resolved `[ui]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UiSettings {
    /// Serve the page at `/` (and its files under `/ui/`).
    pub enabled: bool,
    /// Icecast's public base URL as listeners and sources reach it (`https://radio.example`,
    /// `http://icecast.example:8000`), without a trailing `/`. Unset: the page shows mounts only.
    pub icecast_url: Option<String>,
    /// webcaster-relay's public base URL (`wss://relay.example:7443`), without a trailing `/`.
    pub relay_url: Option<String>,
    /// What the page appends to an event id to name its mount (`.mp3`): the station's format.
    pub mount_extension: String,
}

/// `[ui]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileUi {
    enabled: Option<bool>,
    icecast_url: Option<String>,
    relay_url: Option<String>,
    mount_extension: Option<String>,
}

/// Validates `[ui]` and fills in its defaults.
pub(super) fn resolve(f: FileUi) -> Result<UiSettings, ConfigError> {
    let mount_extension = f.mount_extension.unwrap_or_else(|| ".mp3".into());
    if !MOUNT_EXTENSIONS.contains(&mount_extension.as_str()) {
        return Err(err(format!(
            "ui.mount_extension: \"{mount_extension}\" is not one of \"\", \".mp3\", \".ogg\", \
             \".aac\", \".opus\""
        )));
    }
    Ok(UiSettings {
        enabled: f.enabled.unwrap_or(true),
        icecast_url: f
            .icecast_url
            .map(|u| base_url("ui.icecast_url", &u, &["http", "https"]))
            .transpose()?,
        relay_url: f
            .relay_url
            .map(|u| base_url("ui.relay_url", &u, &["ws", "wss", "http", "https"]))
            .transpose()?,
        mount_extension,
    })
}

/// `text` as an absolute URL of one of `schemes`, with a host and nothing after its path
/// (no credentials, query or fragment), its trailing `/` removed.
pub(super) fn base_url(key: &str, text: &str, schemes: &[&str]) -> Result<String, ConfigError> {
    let bad = |why: &str| {
        err(format!(
            "{key}: \"{text}\" {why} (e.g. \"{}://radio.example:8000\")",
            schemes[0]
        ))
    };
    let url = url::Url::parse(text.trim()).map_err(|_| bad("is not a URL"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(bad(&format!(
            "must start with {}://",
            schemes.join("://, ")
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::super::toml_for_test as toml;

    #[test]
    fn defaults_serve_the_page_without_addresses() {
        let ui = toml("").unwrap().ui;
        assert!(ui.enabled);
        assert_eq!(ui.icecast_url, None);
        assert_eq!(ui.relay_url, None);
        assert_eq!(ui.mount_extension, ".mp3");
    }

    #[test]
    fn addresses_lose_their_trailing_slash() {
        let ui = toml(
            "[ui]\nenabled = false\nicecast_url = \"https://radio.example/\"\n\
             relay_url = \"wss://relay.example:7443\"\nmount_extension = \".ogg\"",
        )
        .unwrap()
        .ui;
        assert!(!ui.enabled);
        assert_eq!(ui.icecast_url.as_deref(), Some("https://radio.example"));
        assert_eq!(ui.relay_url.as_deref(), Some("wss://relay.example:7443"));
        assert_eq!(ui.mount_extension, ".ogg");
        let ui = toml("[ui]\nicecast_url = \"http://10.0.0.5:8000/radio/\"")
            .unwrap()
            .ui;
        assert_eq!(
            ui.icecast_url.as_deref(),
            Some("http://10.0.0.5:8000/radio")
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            ("icecast_url = \"radio.example:8000\"", "ui.icecast_url"),
            ("icecast_url = \"ftp://radio.example\"", "ui.icecast_url"),
            (
                "icecast_url = \"http://u:p@radio.example\"",
                "ui.icecast_url",
            ),
            (
                "icecast_url = \"http://radio.example/?x=1\"",
                "ui.icecast_url",
            ),
            ("relay_url = \"wss://\"", "ui.relay_url"),
            ("mount_extension = \"mp3\"", "ui.mount_extension"),
            ("enabled = \"yes\"", "line 2"),
        ] {
            let e = toml(&format!("[ui]\n{text}")).unwrap_err().0;
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
