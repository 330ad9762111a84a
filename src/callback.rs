//! Icecast URL-auth callbacks, decoded: the form-encoded POST bodies Icecast 2.4.4 (and
//! Icecast-KH) send for `stream_auth`, `mount_add`, `mount_remove`, `listener_add` and
//! `listener_remove`, turned into a typed [`Callback`]. Pure data, no HTTP types, so the decoder
//! can be fuzzed on its own.
//!
//! Icecast escapes every byte but `[A-Za-z0-9]` (`mount=%2flive`); Icecast-KH escapes the
//! `action` value too (`listener%5fadd`). A real form decoder handles both.

use uuid::Uuid;

/// Audio extensions an event mount may carry: `/<uuid>.mp3`.
pub const EVENT_EXTENSIONS: [&str; 4] = ["mp3", "ogg", "aac", "opus"];

/// Why a callback body is not a callback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("no action")]
    MissingAction,
    #[error("unknown action")]
    UnknownAction,
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("field is not UTF-8 once decoded")]
    Encoding,
}

/// The mount a callback is about. For listeners Icecast sends the raw request URI, so the
/// query string (where a ticket travels) is split off here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The path, e.g. `/5e0b9230-086c-406f-a26c-13ff3a8d3880.mp3`.
    pub path: String,
    /// Decoded query parameters of the listener's URL.
    pub query: Vec<(String, String)>,
}

impl Mount {
    pub fn parse(raw: &str) -> Result<Mount, DecodeError> {
        let (path, query) = match raw.split_once('?') {
            Some((p, q)) => (p, parse_form(q.as_bytes())?),
            None => (raw, Vec::new()),
        };
        Ok(Mount {
            path: path.to_string(),
            query,
        })
    }

    /// The event id if this is an event mount: `/<uuid v4>` with an optional audio extension.
    pub fn event_id(&self) -> Option<Uuid> {
        let name = self.path.strip_prefix('/')?;
        let stem = match name.rsplit_once('.') {
            Some((stem, ext)) if EVENT_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) => {
                stem
            }
            Some(_) => return None,
            None => name,
        };
        // Only the canonical hyphenated form: Icecast mount names are compared literally.
        if stem.len() != 36 {
            return None;
        }
        Uuid::try_parse(stem)
            .ok()
            .filter(|u| u.get_version_num() == 4)
    }

    /// The last non-empty value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        crate::form::last(&self.query, name)
    }
}

/// Where a callback came from: Icecast's `server` and `port` fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub server: String,
    pub port: String,
}

/// Credentials a client gave Icecast (source password, or a listener's Basic auth).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords are tokens here: never print them.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pass", &if self.pass.is_empty() { "" } else { "***" })
            .finish()
    }
}

/// A decoded callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// A source wants to stream to `mount` (or, with `admin`, to update its metadata).
    StreamAuth {
        mount: Mount,
        origin: Origin,
        ip: String,
        credentials: Credentials,
        admin: bool,
    },
    /// A source is now streaming to `mount`.
    MountAdd { mount: Mount, origin: Origin },
    /// The source of `mount` has gone.
    MountRemove { mount: Mount, origin: Origin },
    /// A listener wants to listen.
    ListenerAdd {
        mount: Mount,
        origin: Origin,
        client: String,
        ip: String,
        credentials: Credentials,
        /// Forwarded request headers, lower-case names without the prefix.
        headers: Vec<(String, String)>,
    },
    /// A listener has gone after `duration` seconds.
    ListenerRemove {
        mount: Mount,
        origin: Origin,
        client: String,
        duration: Option<u64>,
    },
}

impl Callback {
    /// The action name, for logs and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Callback::StreamAuth { .. } => "stream_auth",
            Callback::MountAdd { .. } => "mount_add",
            Callback::MountRemove { .. } => "mount_remove",
            Callback::ListenerAdd { .. } => "listener_add",
            Callback::ListenerRemove { .. } => "listener_remove",
        }
    }

    pub fn mount(&self) -> &Mount {
        match self {
            Callback::StreamAuth { mount, .. }
            | Callback::MountAdd { mount, .. }
            | Callback::MountRemove { mount, .. }
            | Callback::ListenerAdd { mount, .. }
            | Callback::ListenerRemove { mount, .. } => mount,
        }
    }

    /// Decodes a callback body. `header_prefixes` are the prefixes of forwarded-header fields
    /// (Icecast's `header_prefix` option), compared case-insensitively.
    pub fn decode(body: &[u8], header_prefixes: &[&str]) -> Result<Callback, DecodeError> {
        let fields = parse_form(body)?;
        let get = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let need = |name: &'static str| get(name).ok_or(DecodeError::MissingField(name));
        let text = |name: &str| get(name).unwrap_or_default().to_string();
        let action = get("action").ok_or(DecodeError::MissingAction)?;
        let mount = Mount::parse(need("mount")?)?;
        let origin = Origin {
            server: text("server"),
            port: text("port"),
        };
        let credentials = || Credentials {
            user: text("user"),
            pass: text("pass"),
        };
        Ok(match action {
            "stream_auth" => Callback::StreamAuth {
                mount,
                origin,
                ip: text("ip"),
                credentials: credentials(),
                admin: get("admin").is_some_and(|v| v == "1"),
            },
            "mount_add" => Callback::MountAdd { mount, origin },
            "mount_remove" => Callback::MountRemove { mount, origin },
            "listener_add" => Callback::ListenerAdd {
                mount,
                origin,
                client: need("client")?.to_string(),
                ip: text("ip"),
                credentials: credentials(),
                headers: fields
                    .iter()
                    .filter_map(|(k, v)| {
                        let lower = k.to_ascii_lowercase();
                        header_prefixes.iter().find_map(|p| {
                            lower
                                .strip_prefix(&p.to_ascii_lowercase())
                                .filter(|name| !name.is_empty())
                                .map(|name| (name.to_string(), v.clone()))
                        })
                    })
                    .collect(),
            },
            "listener_remove" => Callback::ListenerRemove {
                mount,
                origin,
                client: need("client")?.to_string(),
                duration: get("duration").and_then(|d| d.parse().ok()),
            },
            _ => return Err(DecodeError::UnknownAction),
        })
    }
}

fn parse_form(input: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    crate::form::parse(input).map_err(|_| DecodeError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIXES: [&str; 2] = ["ClientHeader.", "ClientHeader-"];

    /// The bodies of every request in the captured fixture file.
    fn fixture_bodies() -> Vec<String> {
        let text = include_str!("../tests/fixtures/icecast-2.4.4-callbacks.txt");
        text.split("\n---\n")
            .filter_map(|req| {
                let request = &req[req.find("POST ")?..];
                let (_head, body) = request.split_once("\n\n")?;
                Some(body.trim().to_string())
            })
            .collect()
    }

    #[test]
    fn decodes_every_captured_request() {
        let bodies = fixture_bodies();
        assert_eq!(bodies.len(), 13);
        let decoded: Vec<Callback> = bodies
            .iter()
            .map(|b| Callback::decode(b.as_bytes(), &PREFIXES).unwrap())
            .collect();
        let actions: Vec<&str> = decoded.iter().map(Callback::action).collect();
        assert_eq!(
            actions,
            [
                "stream_auth",
                "mount_add",
                "listener_add",
                "listener_remove",
                "listener_add",
                "mount_remove",
                "stream_auth",
                "mount_add",
                "listener_add",
                "listener_remove",
                "listener_add",
                "listener_remove",
                "mount_remove",
            ]
        );
        match &decoded[0] {
            Callback::StreamAuth {
                mount,
                ip,
                credentials,
                admin,
                origin,
            } => {
                assert_eq!(mount.path, "/live");
                assert_eq!(ip, "127.0.0.1");
                assert_eq!(credentials.user, "dj123");
                assert_eq!(credentials.pass, "eyJfake.jwt.token");
                assert!(!admin);
                assert_eq!(origin.port, "8000");
            }
            other => panic!("{other:?}"),
        }
        match &decoded[2] {
            Callback::ListenerAdd {
                mount,
                client,
                headers,
                ..
            } => {
                assert_eq!(mount.path, "/live");
                assert_eq!(mount.param("token"), Some("abc.def.ghi"));
                assert_eq!(mount.param("x"), Some("1"));
                assert_eq!(client, "1");
                assert!(headers.contains(&("referer".into(), "http://example.org/player".into())));
                assert!(headers.contains(&("x-forwarded-for".into(), "1.2.3.4".into())));
            }
            other => panic!("{other:?}"),
        }
        match &decoded[3] {
            Callback::ListenerRemove {
                duration, client, ..
            } => {
                assert_eq!(*duration, Some(2));
                assert_eq!(client, "1");
            }
            other => panic!("{other:?}"),
        }
        // The listener with Basic credentials and a query value holding an escaped space.
        match &decoded[8] {
            Callback::ListenerAdd {
                mount,
                credentials,
                origin,
                ..
            } => {
                assert_eq!(credentials.user, "bob");
                assert_eq!(credentials.pass, "s3cr3t pw");
                assert_eq!(mount.param("x"), Some("1 2"));
                assert_eq!(mount.param("token"), Some("abc"));
                assert_eq!(origin.server, "ice.example-host.org");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn icecast_kh_escaped_actions_and_malformed_bodies() {
        let kh = b"action=listener%5fadd&server=x&port=1&client=9&mount=%2fa&user=&pass=&ip=1%2e2%2e3%2e4";
        assert_eq!(
            Callback::decode(kh, &PREFIXES).unwrap().action(),
            "listener_add"
        );
        assert_eq!(
            Callback::decode(b"mount=%2fa", &PREFIXES),
            Err(DecodeError::MissingAction)
        );
        assert_eq!(
            Callback::decode(b"action=listener_fly&mount=%2fa", &PREFIXES),
            Err(DecodeError::UnknownAction)
        );
        assert_eq!(
            Callback::decode(b"action=mount_add", &PREFIXES),
            Err(DecodeError::MissingField("mount"))
        );
        assert_eq!(
            Callback::decode(b"action=listener_add&mount=%2fa", &PREFIXES),
            Err(DecodeError::MissingField("client"))
        );
        assert_eq!(
            Callback::decode(b"action=mount_add&mount=%ff", &PREFIXES),
            Err(DecodeError::Encoding)
        );
        let admin = b"action=stream_auth&mount=%2fa&ip=&server=x&port=1&user=&pass=&admin=1";
        match Callback::decode(admin, &PREFIXES).unwrap() {
            Callback::StreamAuth {
                admin, credentials, ..
            } => {
                assert!(admin);
                assert!(credentials.pass.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn event_mounts() {
        let id = "5e0b9230-086c-406f-a26c-13ff3a8d3880";
        for path in [
            format!("/{id}"),
            format!("/{id}.mp3"),
            format!("/{id}.OGG"),
            format!("/{id}.opus"),
        ] {
            let m = Mount::parse(&format!("{path}?token=x")).unwrap();
            assert_eq!(m.event_id().unwrap().to_string(), id, "{path}");
        }
        for path in [
            "/live".to_string(),
            format!("/{id}.exe"),
            id.to_string(),
            format!("/{id}/x"),
            "/5e0b9230-086c-106f-a26c-13ff3a8d3880".to_string(),
            "/5e0b9230086c406fa26c13ff3a8d3880".to_string(),
            "/admin/stats".to_string(),
        ] {
            assert_eq!(Mount::parse(&path).unwrap().event_id(), None, "{path}");
        }
    }
}
