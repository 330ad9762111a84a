//! The event row ([`Event`]) as every layer sees it, the listing's filter and cursor, and the
//! connect rule's terms ([`ConnectTerms`]) that a store checks in the statement that writes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// One row of the event table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    #[serde(rename = "event_id")]
    pub id: Uuid,
    pub title: Option<String>,
    pub description: Option<String>,
    pub private: bool,
    pub created_by: i64,
    #[serde(serialize_with = "unix_seconds")]
    pub created_time: DateTime<Utc>,
    #[serde(serialize_with = "unix_seconds")]
    pub expires_time: DateTime<Utc>,
    pub connected: bool,
    pub connected_by: Option<i64>,
    #[serde(serialize_with = "opt_unix_seconds")]
    pub last_connected_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "opt_unix_seconds")]
    pub last_disconnected_at: Option<DateTime<Utc>>,
    pub relation_id: Option<i32>,
    /// The event's own listener cap over every server and node (`None`: none); set by an
    /// admin.
    pub max_listeners: Option<u32>,
}

fn unix_seconds<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(t.timestamp())
}

fn opt_unix_seconds<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_i64(t.timestamp()),
        None => s.serialize_none(),
    }
}

impl Event {
    /// Whether the event has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_time <= now
    }
}

/// Which events a listing includes, and which page of them.
#[derive(Debug, Clone, Copy)]
pub struct ListFilter {
    /// Include private events of this member (`None`: no private events, unless `all_private`).
    pub private_of: Option<i64>,
    /// Include every private event (admins).
    pub all_private: bool,
    /// Include expired events.
    pub include_expired: bool,
    /// What "expired" is measured against.
    pub now: DateTime<Utc>,
    /// At most this many events (`None`: all of them, for operator commands only).
    pub limit: Option<u32>,
    /// Only events after this one in listing order: the next page.
    pub after: Option<EventCursor>,
}

/// A position in a listing: the last event of a page. Listings run newest first by
/// `created_time`, then by id (descending), so the order is total and a page boundary never
/// skips or repeats an event, however many share a creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub created_time: DateTime<Utc>,
    pub id: Uuid,
}

impl EventCursor {
    /// The position just after `event`.
    pub fn after(event: &Event) -> EventCursor {
        EventCursor {
            created_time: event.created_time,
            id: event.id,
        }
    }

    /// The cursor as opaque, URL-safe text (microseconds and id, base64url).
    pub fn encode(&self) -> String {
        use base64::Engine;
        let plain = format!(
            "{}.{}",
            self.created_time.timestamp_micros(),
            self.id.simple()
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plain)
    }

    /// Reads [`EventCursor::encode`]'s text back; `None` for anything else.
    pub fn decode(text: &str) -> Option<EventCursor> {
        use base64::Engine;
        // Far longer than any cursor: not worth decoding.
        if text.len() > 128 {
            return None;
        }
        let plain = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let (micros, id) = std::str::from_utf8(&plain).ok()?.split_once('.')?;
        Some(EventCursor {
            created_time: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::try_parse(id).ok()?,
        })
    }
}

/// The connect rule as conditions on the event's row, for a store to check in the same
/// statement that marks the event connected (`EventStore::connect`):
/// `rules::may_connect` allows exactly the rows these terms admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectTerms {
    /// The event must expire after this instant.
    pub unexpired_at: DateTime<Utc>,
    /// The event must have been created by this member; `None`: by anyone (an admin).
    pub owner: Option<i64>,
}

impl ConnectTerms {
    /// Whether the row has not expired at the terms' instant.
    pub fn unexpired(&self, event: &Event) -> bool {
        !event.is_expired(self.unexpired_at)
    }

    /// Whether the row belongs to whom the terms require.
    pub fn owned(&self, event: &Event) -> bool {
        self.owner.is_none_or(|owner| event.created_by == owner)
    }

    /// Whether the terms admit the row.
    pub fn admit(&self, event: &Event) -> bool {
        self.unexpired(event) && self.owned(event)
    }
}
