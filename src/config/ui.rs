//! `[ui]`: the station page jars serves at `/` (on or off), the public addresses it shows
//! members for going live and for listener links, and how the station presents itself to
//! listeners (its name, a line about it, a logo read from a file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use super::{err, ConfigError};

/// The longest `station_name`, in characters.
pub const MAX_STATION_NAME: usize = 80;
/// The longest `station_description`, in characters.
pub const MAX_STATION_DESCRIPTION: usize = 300;
/// The largest logo file, in bytes: it is held in memory and sent to every visitor.
pub const MAX_LOGO_BYTES: usize = 512 * 1024;

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
    /// The station's name, shown as the page's heading and title.
    pub station_name: Option<String>,
    /// A line about the station, shown under its name.
    pub station_description: Option<String>,
    /// The station's logo, read from its file when the configuration is loaded.
    pub logo: Option<Logo>,
}

/// An image file the page shows as the station's logo (served at `/ui/logo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its media type, from its extension, checked against its first bytes.
    pub content_type: &'static str,
    pub bytes: Arc<[u8]>,
}

impl Serialize for Logo {
    /// `jars check-config` shows the file, not its bytes.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.path.display())
    }
}

/// `[ui]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileUi {
    enabled: Option<bool>,
    icecast_url: Option<String>,
    relay_url: Option<String>,
    mount_extension: Option<String>,
    station_name: Option<String>,
    station_description: Option<String>,
    logo: Option<PathBuf>,
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
        station_name: f
            .station_name
            .map(|t| one_line("ui.station_name", &t, MAX_STATION_NAME))
            .transpose()?
            .flatten(),
        station_description: f
            .station_description
            .map(|t| one_line("ui.station_description", &t, MAX_STATION_DESCRIPTION))
            .transpose()?
            .flatten(),
        logo: f.logo.as_deref().map(logo).transpose()?,
    })
}

/// `text` trimmed, when it is one line of at most `max` characters; empty is unset.
fn one_line(key: &str, text: &str, max: usize) -> Result<Option<String>, ConfigError> {
    let text = text.trim();
    if text.chars().any(char::is_control) {
        return Err(err(format!(
            "{key}: must be one line of text, without control characters"
        )));
    }
    if text.chars().count() > max {
        return Err(err(format!("{key}: at most {max} characters")));
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// The image types a logo may be: extension, media type, and how such a file begins.
const LOGO_TYPES: [(&str, &str, &[u8]); 6] = [
    ("png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("jpg", "image/jpeg", b"\xff\xd8\xff"),
    ("jpeg", "image/jpeg", b"\xff\xd8\xff"),
    ("gif", "image/gif", b"GIF8"),
    ("webp", "image/webp", b"RIFF"),
    ("svg", "image/svg+xml", b""),
];

/// Reads the logo at `path`: a PNG, JPEG, GIF, WebP or SVG file of at most
/// [`MAX_LOGO_BYTES`], whose first bytes agree with its extension.
fn logo(path: &Path) -> Result<Logo, ConfigError> {
    let shown = path.display();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let Some(&(_, content_type, magic)) = LOGO_TYPES.iter().find(|(e, _, _)| *e == ext) else {
        return Err(err(format!(
            "ui.logo: \"{shown}\" must end in .png, .jpg, .jpeg, .gif, .webp or .svg"
        )));
    };
    let meta = std::fs::metadata(path)
        .map_err(|e| err(format!("ui.logo: cannot read \"{shown}\": {e}")))?;
    if meta.len() > MAX_LOGO_BYTES as u64 {
        return Err(err(format!(
            "ui.logo: \"{shown}\" is larger than {} KiB",
            MAX_LOGO_BYTES / 1024
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| err(format!("ui.logo: cannot read \"{shown}\": {e}")))?;
    let looks_right = if ext == "svg" {
        String::from_utf8_lossy(&bytes).contains("<svg")
    } else {
        bytes.starts_with(magic) && (ext != "webp" || bytes.get(8..12) == Some(b"WEBP"))
    };
    if !looks_right {
        return Err(err(format!(
            "ui.logo: \"{shown}\" is not a {ext} image (its first bytes say otherwise)"
        )));
    }
    Ok(Logo {
        path: path.to_path_buf(),
        content_type,
        bytes: bytes.into(),
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
        assert_eq!(ui.station_name, None);
        assert_eq!(ui.station_description, None);
        assert_eq!(ui.logo, None);
    }

    #[test]
    fn the_station_presents_itself_with_a_name_a_line_and_a_logo() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("Logo.PNG");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\nrest of the image").unwrap();
        let ui = toml(&format!(
            "[ui]\nstation_name = \" Radio Example \"\nstation_description = \"Student radio, live every evening\"\nlogo = \"{}\"",
            png.display()
        ))
        .unwrap()
        .ui;
        assert_eq!(ui.station_name.as_deref(), Some("Radio Example"));
        assert_eq!(
            ui.station_description.as_deref(),
            Some("Student radio, live every evening")
        );
        let logo = ui.logo.unwrap();
        assert_eq!(logo.content_type, "image/png");
        assert_eq!(&logo.bytes[..4], b"\x89PNG");
        let svg = dir.path().join("logo.svg");
        std::fs::write(&svg, "<?xml version=\"1.0\"?>\n<svg xmlns=\"…\"></svg>").unwrap();
        let ui = toml(&format!(
            "[ui]\nlogo = \"{}\"\nstation_name = \"\"",
            svg.display()
        ))
        .unwrap()
        .ui;
        assert_eq!(ui.logo.unwrap().content_type, "image/svg+xml");
        assert_eq!(ui.station_name, None, "empty is unset");
    }

    #[test]
    fn a_logo_must_be_a_small_image_of_the_type_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p.display().to_string()
        };
        let cases = [
            (write("logo.png", b"GIF89a"), "is not a png image"),
            (write("logo.txt", b"hello"), "must end in .png"),
            (write("logo.svg", b"<html></html>"), "is not a svg image"),
            (
                write("big.jpg", &[0xff; super::MAX_LOGO_BYTES + 1]),
                "larger than 512 KiB",
            ),
            (
                dir.path().join("absent.png").display().to_string(),
                "cannot read",
            ),
        ];
        for (path, why) in cases {
            let e = toml(&format!("[ui]\nlogo = \"{path}\"")).unwrap_err().0;
            assert!(e.starts_with("ui.logo: ") && e.contains(why), "{path}: {e}");
        }
        let e = toml("[ui]\nstation_name = \"two\\nlines\"").unwrap_err().0;
        assert!(e.starts_with("ui.station_name: "), "{e}");
        let long = "x".repeat(super::MAX_STATION_DESCRIPTION + 1);
        let e = toml(&format!("[ui]\nstation_description = \"{long}\""))
            .unwrap_err()
            .0;
        assert!(e.starts_with("ui.station_description: at most 300"), "{e}");
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
