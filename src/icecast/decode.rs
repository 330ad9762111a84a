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
mod tests;
