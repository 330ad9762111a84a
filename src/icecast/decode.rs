//! Icecast URL-auth callbacks, decoded: the form-encoded POST bodies Icecast 2.4.4 (and
//! Icecast-KH) send for `stream_auth`, `mount_add`, `mount_remove`, `listener_add` and
//! `listener_remove`, turned into a typed [`Callback`]. Pure data, no HTTP types, so the decoder
//! can be fuzzed on its own.
//!
//! Icecast escapes every byte but `[A-Za-z0-9]` (`mount=%2flive`); Icecast-KH escapes the
//! `action` value too (`listener%5fadd`). A real form decoder handles both.
//!
//! This is the hot path of every listener join, so a [`Callback`] borrows from the body: a
//! field is decoded only if its action reads it, and only a field with escapes in it is copied
//! (in practice the mount, which carries a listener's ticket, once).

use std::borrow::Cow;

use uuid::Uuid;

use crate::form;

/// Audio extensions an event mount may carry: `/<uuid>.mp3`.
pub const EVENT_EXTENSIONS: [&str; 4] = ["mp3", "ogg", "aac", "opus"];

/// A mount name without its audio extension (`<id>.mp3` → `<id>`, any case of
/// [`EVENT_EXTENSIONS`]); the name itself when it has no extension; `None` for another one.
pub fn without_extension(name: &str) -> Option<&str> {
    match name.rsplit_once('.') {
        Some((stem, ext))
            if EVENT_EXTENSIONS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(ext)) =>
        {
            Some(stem)
        }
        Some(_) => None,
        None => Some(name),
    }
}

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

impl From<form::NotUtf8> for DecodeError {
    fn from(_: form::NotUtf8) -> Self {
        DecodeError::Encoding
    }
}

/// The mount a callback is about. For listeners Icecast sends the raw request URI, so the
/// query string (where a ticket travels) follows the path; its parameters are decoded only
/// when asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount<'a> {
    /// The decoded `mount` field: the path, then `?` and the query, if any.
    uri: Cow<'a, str>,
    /// Where the path ends in `uri`.
    path_len: usize,
}

impl<'a> Mount<'a> {
    /// Splits a decoded `mount` value at its first `?`.
    pub fn new(uri: impl Into<Cow<'a, str>>) -> Mount<'a> {
        let uri = uri.into();
        let path_len = uri.find('?').unwrap_or(uri.len());
        Mount { uri, path_len }
    }

    /// The path, e.g. `/5e0b9230-086c-406f-a26c-13ff3a8d3880.mp3`.
    pub fn path(&self) -> &str {
        &self.uri[..self.path_len]
    }

    /// The listener's query string, still encoded (empty when there is none).
    pub fn query(&self) -> &str {
        self.uri.get(self.path_len + 1..).unwrap_or_default()
    }

    /// The event id if this is an event mount: `/<uuid v4>` with an optional audio extension.
    pub fn event_id(&self) -> Option<Uuid> {
        let stem = without_extension(self.path().strip_prefix('/')?)?;
        // Only the canonical hyphenated form: Icecast mount names are compared literally.
        if stem.len() != 36 {
            return None;
        }
        Uuid::try_parse(stem)
            .ok()
            .filter(|u| u.get_version_num() == 4)
    }

    /// The last non-empty value of query parameter `name`. A value that is not UTF-8 once
    /// decoded counts as absent: it cannot be a token.
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        form::raw_pairs(self.query().as_bytes())
            .filter(|(k, v)| !v.is_empty() && form::decode_component(k).is_ok_and(|k| k == name))
            .last()
            .and_then(|(_, v)| form::decode_component(v).ok())
    }
}

/// Where a callback came from: Icecast's `server` and `port` fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Origin<'a> {
    pub server: Cow<'a, str>,
    pub port: Cow<'a, str>,
}

impl Origin<'_> {
    /// The server these fields name.
    pub fn server_id(&self) -> crate::domain::ServerId {
        crate::domain::ServerId::new(self.server.as_ref(), self.port.as_ref())
    }
}

/// Credentials a client gave Icecast (source password, or a listener's Basic auth).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials<'a> {
    pub user: Cow<'a, str>,
    pub pass: Cow<'a, str>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords are tokens here: never print them.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pass", &if self.pass.is_empty() { "" } else { "***" })
            .finish()
    }
}

/// A decoded callback, borrowing from the body it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback<'a> {
    /// A source wants to stream to `mount` (or, with `admin`, to update its metadata).
    StreamAuth {
        mount: Mount<'a>,
        origin: Origin<'a>,
        ip: Cow<'a, str>,
        credentials: Credentials<'a>,
        admin: bool,
    },
    /// A source is now streaming to `mount`.
    MountAdd {
        mount: Mount<'a>,
        origin: Origin<'a>,
    },
    /// The source of `mount` has gone.
    MountRemove {
        mount: Mount<'a>,
        origin: Origin<'a>,
    },
    /// A listener wants to listen.
    ListenerAdd {
        mount: Mount<'a>,
        origin: Origin<'a>,
        client: Cow<'a, str>,
        ip: Cow<'a, str>,
        credentials: Credentials<'a>,
        /// The listener's `User-Agent`, still encoded: only a stored session row reads it
        /// (see [`Agent::text`]).
        agent: Option<Agent<'a>>,
        /// Forwarded request headers: names without the prefix, as sent; see [`header`].
        headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    },
    /// A listener has gone after `duration` seconds.
    ListenerRemove {
        mount: Mount<'a>,
        origin: Origin<'a>,
        client: Cow<'a, str>,
        duration: Option<u64>,
    },
}

/// The value of forwarded header `name` (any case) among a `listener_add`'s `headers`.
pub fn header<'h>(headers: &'h [(Cow<'_, str>, Cow<'_, str>)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

/// A `listener_add`'s `agent` field as sent: decoded only when read, since only a stored
/// session row needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent<'a>(&'a [u8]);

impl<'a> Agent<'a> {
    /// The user agent; `None` when empty or not UTF-8 (it never refuses a callback).
    pub fn text(&self) -> Option<Cow<'a, str>> {
        form::decode_component(self.0)
            .ok()
            .filter(|a| !a.is_empty())
    }
}

/// The still-encoded values of the fields jars reads, the last of each name.
#[derive(Default)]
struct RawFields<'a> {
    action: Option<&'a [u8]>,
    mount: Option<&'a [u8]>,
    server: Option<&'a [u8]>,
    port: Option<&'a [u8]>,
    client: Option<&'a [u8]>,
    ip: Option<&'a [u8]>,
    user: Option<&'a [u8]>,
    pass: Option<&'a [u8]>,
    admin: Option<&'a [u8]>,
    duration: Option<&'a [u8]>,
    agent: Option<&'a [u8]>,
    /// Forwarded headers: the name without its prefix, and the encoded value.
    headers: Vec<(Cow<'a, str>, &'a [u8])>,
}

impl<'a> RawFields<'a> {
    fn split(body: &'a [u8], header_prefixes: &[&str]) -> Result<RawFields<'a>, DecodeError> {
        let mut f = RawFields::default();
        for (raw_key, value) in form::raw_pairs(body) {
            // Icecast sends its own field names unescaped: compare those as they are.
            let slot = match raw_key {
                b"action" => &mut f.action,
                b"mount" => &mut f.mount,
                b"server" => &mut f.server,
                b"port" => &mut f.port,
                b"client" => &mut f.client,
                b"ip" => &mut f.ip,
                b"user" => &mut f.user,
                b"pass" => &mut f.pass,
                b"admin" => &mut f.admin,
                b"duration" => &mut f.duration,
                b"agent" => &mut f.agent,
                _ => {
                    let key = form::decode_component(raw_key)?;
                    match Self::known(&key, &mut f) {
                        Some(slot) => slot,
                        None => {
                            let prefix = header_prefixes.iter().find(|p| {
                                key.len() > p.len()
                                    && key.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
                            });
                            if let Some(p) = prefix {
                                f.headers.push((without_prefix(key, p.len()), value));
                            }
                            continue;
                        }
                    }
                }
            };
            *slot = Some(value);
        }
        Ok(f)
    }
}

impl RawFields<'_> {
    /// The slot of an escaped name that decodes to a field name (`%61ction`).
    fn known<'s, 'a>(key: &str, f: &'s mut RawFields<'a>) -> Option<&'s mut Option<&'a [u8]>> {
        Some(match key {
            "action" => &mut f.action,
            "mount" => &mut f.mount,
            "server" => &mut f.server,
            "port" => &mut f.port,
            "client" => &mut f.client,
            "ip" => &mut f.ip,
            "user" => &mut f.user,
            "pass" => &mut f.pass,
            "admin" => &mut f.admin,
            "duration" => &mut f.duration,
            "agent" => &mut f.agent,
            _ => return None,
        })
    }
}

/// `key` without its first `n` bytes (a prefix of ASCII bytes, so a char boundary).
fn without_prefix(key: Cow<'_, str>, n: usize) -> Cow<'_, str> {
    match key {
        Cow::Borrowed(k) => Cow::Borrowed(&k[n..]),
        Cow::Owned(mut k) => {
            k.drain(..n);
            Cow::Owned(k)
        }
    }
}

/// A decoded field, empty when absent.
fn text(raw: Option<&[u8]>) -> Result<Cow<'_, str>, DecodeError> {
    Ok(form::decode_component(raw.unwrap_or_default())?)
}

/// A decoded field that must be present.
fn required<'a>(raw: Option<&'a [u8]>, name: &'static str) -> Result<Cow<'a, str>, DecodeError> {
    text(Some(raw.ok_or(DecodeError::MissingField(name))?))
}

impl<'a> Callback<'a> {
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

    pub fn mount(&self) -> &Mount<'a> {
        match self {
            Callback::StreamAuth { mount, .. }
            | Callback::MountAdd { mount, .. }
            | Callback::MountRemove { mount, .. }
            | Callback::ListenerAdd { mount, .. }
            | Callback::ListenerRemove { mount, .. } => mount,
        }
    }

    /// Decodes a callback body. `header_prefixes` are the prefixes of forwarded-header fields
    /// (Icecast's `header_prefix` option), compared case-insensitively. Every field name must
    /// decode; of the values, those the action reads (an unknown field is never decoded; an
    /// `agent` that is not UTF-8 is dropped, not refused).
    pub fn decode(body: &'a [u8], header_prefixes: &[&str]) -> Result<Callback<'a>, DecodeError> {
        let f = RawFields::split(body, header_prefixes)?;
        let action = text(Some(f.action.ok_or(DecodeError::MissingAction)?))?;
        let mount = Mount::new(required(f.mount, "mount")?);
        let origin = || -> Result<Origin<'a>, DecodeError> {
            Ok(Origin {
                server: text(f.server)?,
                port: text(f.port)?,
            })
        };
        let credentials = || -> Result<Credentials<'a>, DecodeError> {
            Ok(Credentials {
                user: text(f.user)?,
                pass: text(f.pass)?,
            })
        };
        Ok(match &*action {
            "stream_auth" => Callback::StreamAuth {
                mount,
                origin: origin()?,
                ip: text(f.ip)?,
                credentials: credentials()?,
                admin: text(f.admin)? == "1",
            },
            "mount_add" => Callback::MountAdd {
                mount,
                origin: origin()?,
            },
            "mount_remove" => Callback::MountRemove {
                mount,
                origin: origin()?,
            },
            "listener_add" => Callback::ListenerAdd {
                mount,
                origin: origin()?,
                client: required(f.client, "client")?,
                ip: text(f.ip)?,
                credentials: credentials()?,
                agent: f.agent.map(Agent),
                headers: f
                    .headers
                    .into_iter()
                    .map(|(name, value)| Ok((name, form::decode_component(value)?)))
                    .collect::<Result<_, form::NotUtf8>>()?,
            },
            "listener_remove" => Callback::ListenerRemove {
                mount,
                origin: origin()?,
                client: required(f.client, "client")?,
                duration: text(f.duration)?.parse().ok(),
            },
            _ => return Err(DecodeError::UnknownAction),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIXES: [&str; 2] = ["ClientHeader.", "ClientHeader-"];

    /// The bodies of every request in the captured fixture file.
    fn fixture_bodies() -> Vec<String> {
        let text = include_str!("../../tests/fixtures/icecast-2.4.4-callbacks.txt");
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
                assert_eq!(mount.path(), "/live");
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
                agent,
                ..
            } => {
                assert_eq!(mount.path(), "/live");
                assert_eq!(mount.param("token").as_deref(), Some("abc.def.ghi"));
                assert_eq!(mount.param("x").as_deref(), Some("1"));
                assert_eq!(client, "1");
                assert_eq!(
                    header(headers, "Referer"),
                    Some("http://example.org/player")
                );
                assert_eq!(header(headers, "x-forwarded-for"), Some("1.2.3.4"));
                assert_eq!(header(headers, "agent"), None);
                assert_eq!(agent.and_then(|a| a.text()).as_deref(), Some("curl/7.88.1"));
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
                assert_eq!(mount.param("x").as_deref(), Some("1 2"));
                assert_eq!(mount.param("token").as_deref(), Some("abc"));
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
        // A field name escaped is still that field.
        assert_eq!(
            Callback::decode(b"%61ction=mount%5fadd&m%6funt=%2fa", &PREFIXES)
                .unwrap()
                .mount()
                .path(),
            "/a"
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
    fn decodes_only_what_the_action_reads_and_borrows_what_is_unescaped() {
        // Junk in `agent` is dropped, it does not refuse the callback. A forwarded header is read.
        let body = b"action=listener_add&server=s&port=1&client=7&mount=%2fa%3fx%3d%25ff%26token%3dt%2e1&user=&pass=&ip=1&agent=%ff";
        let cb = Callback::decode(body, &PREFIXES).unwrap();
        let Callback::ListenerAdd {
            mount,
            client,
            agent,
            ..
        } = &cb
        else {
            panic!("{cb:?}")
        };
        assert_eq!(agent.and_then(|a| a.text()), None);
        assert!(matches!(client, Cow::Borrowed("7")));
        assert_eq!(mount.path(), "/a");
        assert_eq!(mount.query(), "x=%ff&token=t.1");
        // A parameter that is not UTF-8 is absent; the others are still there.
        assert_eq!(mount.param("x"), None);
        assert_eq!(mount.param("token").as_deref(), Some("t.1"));
        assert_eq!(mount.param("missing"), None);
        let bad_header = b"action=listener_add&client=7&mount=%2fa&clientheader.referer=%ff";
        assert_eq!(
            Callback::decode(bad_header, &PREFIXES),
            Err(DecodeError::Encoding)
        );
        // The last of repeated fields wins; empty parameters count as absent.
        let m = Mount::new("/a?token=1&token=&token=2&jwt=");
        assert_eq!(m.param("token").as_deref(), Some("2"));
        assert_eq!(m.param("jwt"), None);
        assert_eq!(Mount::new("/a").query(), "");
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
            let m = Mount::new(format!("{path}?token=x"));
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
            assert_eq!(Mount::new(path.as_str()).event_id(), None, "{path}");
        }
    }
}
