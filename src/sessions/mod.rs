//! Listener sessions kept for reports: one row per session Icecast reported (who, which mount,
//! from when to when, why it ended), written off the callback path by [`writer`], read back
//! by `jars report` and `GET /jars/events/{id}/stats` through [`report`]'s pure maths.
//! [`ip`] decides how much of a listener's address is kept. The rows live in a
//! [`crate::store::sessions::SessionStore`].

pub mod ip;
pub mod report;
pub mod writer;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use writer::SessionWriter;

/// What identifies a session across restarts and nodes: the Icecast that reported it (its
/// `server` and `port` callback fields) and its client id there. Icecast reuses client ids
/// only after it restarts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub server: String,
    pub port: String,
    pub client: String,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The listener went away (Icecast's `listener_remove`).
    Left,
    /// Icecast cut it off at the timelimit jars sent.
    Timelimit,
    /// jars asked Icecast to drop it (a revocation or ban).
    Kicked,
    /// Its end never came: Icecast reused its client id, or it outlived any plausible session.
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

/// A session's text as it opens, borrowed: what [`OpenedSession`] packs, and gives back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionText<'a> {
    /// The Icecast that reported it (`server`, `port`) and its client id there.
    pub server: &'a str,
    pub port: &'a str,
    pub client: &'a str,
    /// The mount as Icecast named it (`/<id>.mp3`, `/studio`), without the query string.
    pub mount: &'a str,
    /// The ticket (`jti`) that admitted the listener.
    pub ticket: Option<&'a str>,
    /// The address as `[sessions] ip` keeps it.
    pub ip: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub referer: Option<&'a str>,
}

/// A session as it opens (`listener_add` allowed). Its [`SessionText`] is packed into one
/// allocation: a row is made on the callback path and freed on the writer's thread, and its
/// eight strings, each allocated on one thread and freed on another, cost the callbacks about
/// half a microsecond a row at 64 connections (measured, BENCHMARKS.md run F).
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedSession {
    /// The text's parts, back to back, in [`SessionText`]'s order (an absent one empty).
    packed: Box<str>,
    /// Where each part ends in `packed`.
    ends: [usize; 8],
    /// Which optional parts are present: bit 0 the ticket, then ip, agent, referer.
    present: u8,
    /// The event listened to (`None`: a static mount).
    pub event: Option<Uuid>,
    pub started: DateTime<Utc>,
    /// The member whose token admitted the listener.
    pub member: Option<i64>,
    /// The `icecast-auth-timelimit` jars answered, in seconds.
    pub timelimit: Option<u64>,
}

impl OpenedSession {
    /// The session with `text`, packed.
    pub fn new(
        text: SessionText<'_>,
        event: Option<Uuid>,
        started: DateTime<Utc>,
        member: Option<i64>,
        timelimit: Option<u64>,
    ) -> OpenedSession {
        let optional = [text.ticket, text.ip, text.agent, text.referer];
        let [ticket, ip, agent, referer] = optional.map(Option::unwrap_or_default);
        let parts = [
            text.server,
            text.port,
            text.client,
            text.mount,
            ticket,
            ip,
            agent,
            referer,
        ];
        let mut packed = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0; 8];
        for (end, part) in ends.iter_mut().zip(parts) {
            packed.push_str(part);
            *end = packed.len();
        }
        let present = optional
            .iter()
            .enumerate()
            .filter(|(_, part)| part.is_some())
            .fold(0, |bits, (i, _)| bits | 1 << i);
        OpenedSession {
            packed: packed.into_boxed_str(),
            ends,
            present,
            event,
            started,
            member,
            timelimit,
        }
    }

    /// The session's text.
    pub fn text(&self) -> SessionText<'_> {
        let part =
            |i: usize| &self.packed[i.checked_sub(1).map_or(0, |p| self.ends[p])..self.ends[i]];
        let optional = |i: usize| (self.present & 1 << (i - 4) != 0).then(|| part(i));
        SessionText {
            server: part(0),
            port: part(1),
            client: part(2),
            mount: part(3),
            ticket: optional(4),
            ip: optional(5),
            agent: optional(6),
            referer: optional(7),
        }
    }
}

impl std::fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSession")
            .field("text", &self.text())
            .field("event", &self.event)
            .field("started", &self.started)
            .field("member", &self.member)
            .field("timelimit", &self.timelimit)
            .finish()
    }
}

/// One write to the session table; a batch of them is applied in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOp {
    /// Opens a row; an open row with the same key is first closed as `lost` at `started` (the
    /// client id was reused: the old session's end never came).
    Open(OpenedSession),
    /// Closes the open row with this key (opened by any node, before or after a restart):
    /// `kicked` if so marked, `timelimit` when the duration reached the row's timelimit (less
    /// a second), else `left`. `duration` is Icecast's own, when it sent one. With no open row,
    /// a `lost` row of this key that started in [`late_remove_window`] gets this end instead.
    Close {
        key: SessionKey,
        ended: DateTime<Utc>,
        duration: Option<u64>,
    },
    /// Marks the open row with this key as ended by a kick (its close comes later).
    Kicked { key: SessionKey },
}

/// How far a `lost` row's start may be from where a late `listener_remove` puts it (its end
/// less its duration) for the remove to be that row's real end.
pub const LATE_REMOVE_SLACK: chrono::Duration = chrono::Duration::seconds(60);

/// When the session a `listener_remove` ends (at `ended`, after `duration` seconds) started,
/// give or take [`LATE_REMOVE_SLACK`]: a row closed as `lost` (by the sweep, while jars could
/// not know) that started in this window and has the same key is corrected to the real end.
pub fn late_remove_window(ended: DateTime<Utc>, duration: u64) -> (DateTime<Utc>, DateTime<Utc>) {
    let secs = i64::try_from(duration).unwrap_or(i64::MAX / 2_000);
    let started = ended - chrono::Duration::seconds(secs.min(100 * 365 * 86_400));
    (started - LATE_REMOVE_SLACK, started + LATE_REMOVE_SLACK)
}

/// How a batch of ops is applied: runs of opens with distinct keys in one statement each (at
/// most [`MAX_OPENS_PER_STATEMENT`]), every other op on its own, in the batch's order.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    Opens(Vec<&'a OpenedSession>),
    One(&'a SessionOp),
}

/// Rows one multi-row `INSERT` writes at most (12 values each, well under SQLite's 32,766).
pub const MAX_OPENS_PER_STATEMENT: usize = 256;

/// `ops` as [`Step`]s. A run of opens is cut where a key repeats (the second open must close
/// the first as `lost`, so the first must be in the table by then).
pub fn steps<'a>(ops: impl IntoIterator<Item = &'a SessionOp>) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    let mut run: Vec<&OpenedSession> = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        match op {
            SessionOp::Open(s) => {
                let t = s.text();
                let key = (t.server, t.port, t.client);
                if run.len() == MAX_OPENS_PER_STATEMENT || !keys.insert(key) {
                    steps.push(Step::Opens(std::mem::take(&mut run)));
                    keys.clear();
                    keys.insert(key);
                }
                run.push(s);
            }
            other => {
                if !run.is_empty() {
                    steps.push(Step::Opens(std::mem::take(&mut run)));
                    keys.clear();
                }
                steps.push(Step::One(other));
            }
        }
    }
    if !run.is_empty() {
        steps.push(Step::Opens(run));
    }
    steps
}

/// A stored session, as reports read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub event: Option<Uuid>,
    pub mount: String,
    pub started: DateTime<Utc>,
    /// `None` while open.
    pub ended: Option<DateTime<Utc>>,
    /// Icecast's own duration, in seconds, when it sent one.
    pub duration: Option<u64>,
    pub ticket: Option<String>,
    pub member: Option<i64>,
    pub ip: Option<String>,
    pub agent: Option<String>,
    pub referer: Option<String>,
    pub end_reason: Option<EndReason>,
}

/// An open row, as the lost-session sweep reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRow {
    pub id: i64,
    pub key: SessionKey,
    pub started: DateTime<Utc>,
    pub timelimit: Option<u64>,
}

/// Which sessions a report reads: those that started in `[from, to)`, of one event or all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub event: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(client: &str) -> SessionOp {
        SessionOp::Open(OpenedSession::new(
            SessionText {
                server: "s",
                port: "1",
                client,
                mount: "/m",
                ..SessionText::default()
            },
            None,
            DateTime::UNIX_EPOCH,
            None,
            None,
        ))
    }

    fn shape(steps: &[Step<'_>]) -> Vec<usize> {
        steps
            .iter()
            .map(|s| match s {
                Step::Opens(v) => v.len(),
                Step::One(_) => 0,
            })
            .collect()
    }

    #[test]
    fn opens_run_together_until_a_key_repeats_or_another_op() {
        let kicked = SessionOp::Kicked {
            key: SessionKey {
                server: "s".into(),
                port: "1".into(),
                client: "1".into(),
            },
        };
        let ops = [
            open("1"),
            open("2"),
            open("1"),
            kicked,
            open("3"),
            open("4"),
        ];
        assert_eq!(shape(&steps(&ops)), [2, 1, 0, 2]);
        let many: Vec<SessionOp> = (0..600).map(|i| open(&i.to_string())).collect();
        assert_eq!(shape(&steps(&many)), [256, 256, 88]);
        assert!(steps(&[] as &[SessionOp]).is_empty());
    }

    #[test]
    fn a_packed_session_gives_back_its_text_absent_and_empty_parts_apart() {
        let text = SessionText {
            server: "ice.example",
            port: "8000",
            client: "42",
            mount: "/studio",
            ticket: Some(""),
            ip: None,
            agent: Some("VLC/3.0.18 «ö»"),
            referer: Some("https://radio.example/player"),
        };
        let s = OpenedSession::new(text, None, DateTime::UNIX_EPOCH, Some(7), Some(60));
        assert_eq!(s.text(), text);
        assert_eq!(s.text().client, "42");
        let bare = SessionText::default();
        assert_eq!(
            OpenedSession::new(bare, None, DateTime::UNIX_EPOCH, None, None).text(),
            bare
        );
    }
}
