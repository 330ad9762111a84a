//! A live Icecast session — a listener or a source, on one server — as every layer sees it:
//! [`crate::live`] holds the live ones, the session store keeps one row each, and kicks,
//! resync, sanctions, reports and `/sessions` all read this one [`Session`]. [`Target`] is what
//! a mount is to jars; [`SessionEnd`] is how a session ended, as the row records it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::DenyReason;

/// What a mount is to jars: an event's, or one declared in `[[icecast.mounts]]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// An event mount (`/<event id>`, with an optional extension).
    Event(Uuid),
    /// A mount from `[[icecast.mounts]]`, by name.
    Static(String),
}

impl Target {
    /// The event, for an event mount.
    pub fn event(&self) -> Option<Uuid> {
        match self {
            Target::Event(id) => Some(*id),
            Target::Static(_) => None,
        }
    }
}

/// Whether a session is a listener or a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Listener,
    Source,
}

impl Role {
    /// The name stored in a row's `role` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Listener => "listener",
            Role::Source => "source",
        }
    }

    /// Reads [`Role::as_str`] back.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "listener" => Some(Role::Listener),
            "source" => Some(Role::Source),
            _ => None,
        }
    }
}

/// An Icecast server as its callbacks name it: the `server` field (its `<hostname>`) and the
/// `port` field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId {
    pub host: String,
    pub port: String,
}

impl ServerId {
    pub fn new(host: impl Into<String>, port: impl Into<String>) -> ServerId {
        ServerId {
            host: host.into(),
            port: port.into(),
        }
    }
}

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// What identifies a session across restarts and nodes: the server that reported it, and
/// there its client id (a listener; Icecast reuses ids only after it restarts) or its mount (a
/// source: Icecast's callbacks give a source no id, and a mount has one source at a time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub server: ServerId,
    pub role: Role,
    /// A listener's client id, or a source's mount as Icecast named it.
    pub id: String,
}

impl SessionKey {
    /// Listener `client` on `server`.
    pub fn listener(server: ServerId, client: impl Into<String>) -> SessionKey {
        SessionKey {
            server,
            role: Role::Listener,
            id: client.into(),
        }
    }

    /// The source of `mount` on `server`.
    pub fn source(server: ServerId, mount: impl Into<String>) -> SessionKey {
        SessionKey {
            server,
            role: Role::Source,
            id: mount.into(),
        }
    }
}

/// One live session as jars knows it: where Icecast reported it, what it is on, who it is and
/// what let it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub key: SessionKey,
    /// The mount as Icecast named it (`/<id>.mp3`, no query string): what `killclient` and
    /// `killsource` expect.
    pub mount: String,
    pub target: Target,
    /// The address Icecast reported (`ip`: the listener's, or the source's at `stream_auth`).
    pub ip: String,
    /// The user agent and referer, as stored: at most [`MAX_STORED_TEXT`] bytes each.
    pub agent: Option<String>,
    pub referer: Option<String>,
    /// The ticket (`jti`) that let it in: a listener ticket, or a guest's source ticket.
    pub ticket: Option<String>,
    /// The member whose token let it in; for a source ticket, the member who minted it; for a
    /// trusted relay, the member `/jars/connect` approved.
    pub member: Option<i64>,
    /// The trusted relay (`[[icecast.trusted_sources]]` user) a source came through.
    pub relay: Option<String>,
    pub started: DateTime<Utc>,
    /// The `icecast-auth-timelimit` jars answered, in seconds (listeners only).
    pub timelimit: Option<u64>,
}

impl Session {
    pub fn role(&self) -> Role {
        self.key.role
    }

    /// The event it is on, if its mount is an event's.
    pub fn event(&self) -> Option<Uuid> {
        self.target.event()
    }
}

/// User agents and referers are stored (and held live) up to this many bytes: a client picks
/// them, and every session keeps them for `[sessions] retention`.
pub const MAX_STORED_TEXT: usize = 512;

/// What marks a text cut at [`MAX_STORED_TEXT`].
pub const CUT_MARK: char = '…';

/// `text` as stored: whole when it fits in [`MAX_STORED_TEXT`] bytes, else cut on a character
/// boundary and ended with [`CUT_MARK`] (within the limit).
pub fn stored_text(text: &str) -> String {
    if text.len() <= MAX_STORED_TEXT {
        return text.to_string();
    }
    let mut end = MAX_STORED_TEXT - CUT_MARK.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = String::with_capacity(end + CUT_MARK.len_utf8());
    cut.push_str(&text[..end]);
    cut.push(CUT_MARK);
    cut
}

/// Whether a mount has a source, as far as this node can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Airing {
    Live,
    /// Known to have none: its source went away, or the server that reports it was listed by
    /// a resync without it.
    Off,
    /// Nothing seen since this node started (no resync of that server either).
    Unknown,
}

/// Why a session ended, as stored and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The listener or source went away by itself.
    Left,
    /// Icecast cut a listener off at the timelimit jars sent.
    Timelimit,
    /// jars asked Icecast to drop it (a revocation, ban, ended event, lost rights, a drop).
    Kicked,
    /// Its end never came: Icecast stopped listing it, reused its id, or it outlived any
    /// plausible session.
    Lost,
}

impl EndReason {
    /// The name stored and reported.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Left => "left",
            EndReason::Timelimit => "timelimit",
            EndReason::Kicked => "kicked",
            EndReason::Lost => "lost",
        }
    }

    /// Reads [`EndReason::as_str`] back.
    pub fn parse(text: &str) -> Option<EndReason> {
        Some(match text {
            "left" => EndReason::Left,
            "timelimit" => EndReason::Timelimit,
            "kicked" => EndReason::Kicked,
            "lost" => EndReason::Lost,
            _ => return None,
        })
    }
}

/// How jars learnt that a session is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Icecast said so: `listener_remove` or `mount_remove`.
    Reported,
    /// Icecast said so after jars asked it to drop the session, for this reason.
    Kicked(DenyReason),
    /// Icecast no longer lists it (a resync), or reused its key: its end was never reported.
    Vanished,
}

/// A session's end, as handed to the store: which open row, when, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    pub key: SessionKey,
    pub at: DateTime<Utc>,
    /// Icecast's own `duration` (seconds), when it sent one.
    pub duration: Option<u64>,
    pub ending: Ending,
}

/// One write to the session store; a batch of them is applied in one transaction, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOp {
    /// Opens a row for the session; an open row with the same key is first closed as `lost`
    /// (its end never came).
    Open(Arc<Session>),
    /// Closes the open row with this key, if there is one: its end reason comes from
    /// [`crate::rules::sessions::end_of`] with the row's start and timelimit.
    Close(SessionEnd),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_keeps_what_fits_and_marks_a_cut_on_a_char_boundary() {
        assert_eq!(stored_text("VLC/3.0"), "VLC/3.0");
        let fits = "a".repeat(MAX_STORED_TEXT);
        assert_eq!(stored_text(&fits), fits);
        let long = "é".repeat(MAX_STORED_TEXT);
        let cut = stored_text(&long);
        assert!(cut.len() <= MAX_STORED_TEXT, "{}", cut.len());
        assert!(cut.ends_with(CUT_MARK));
        assert!(cut.trim_end_matches(CUT_MARK).chars().all(|c| c == 'é'));
        let ascii = stored_text(&"x".repeat(12_000));
        assert_eq!(ascii.len(), MAX_STORED_TEXT);
    }

    #[test]
    fn role_and_end_reason_read_back() {
        for r in [Role::Listener, Role::Source] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for e in [
            EndReason::Left,
            EndReason::Timelimit,
            EndReason::Kicked,
            EndReason::Lost,
        ] {
            assert_eq!(EndReason::parse(e.as_str()), Some(e));
        }
        assert_eq!(Role::parse("dj"), None);
    }
}
