//! What a report shows of the store's [`Figures`]: the columns of `jars report` ([`Summary`])
//! and the body of `GET /jars/events/{id}/stats` ([`EventStats`]). The figures themselves are
//! aggregated by the store (see [`crate::store::sessions`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use crate::store::sessions::GroupBy;
use crate::store::sessions::{EventFigures, Figures};

/// At most this many points in a series (about a month of minutes).
pub const MAX_SERIES_POINTS: usize = 45_000;

/// The report's columns for a set of sessions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub sessions: u64,
    pub unique_listeners: u64,
    pub listening_hours: f64,
    pub mean_session_seconds: f64,
    pub peak_listeners: u32,
    pub first_start: Option<DateTime<Utc>>,
    pub last_end: Option<DateTime<Utc>>,
    /// Sessions whose end never came (closed as `lost`).
    pub lost: u64,
    /// Sessions jars had Icecast drop (revoked, banned, event ended, dropped by hand).
    pub kicked: u64,
}

impl Summary {
    pub fn of(f: &Figures) -> Summary {
        Summary {
            sessions: f.sessions,
            unique_listeners: f.unique_listeners,
            listening_hours: hours(f.listening_seconds),
            mean_session_seconds: if f.sessions == 0 {
                0.0
            } else {
                f.listening_seconds as f64 / f.sessions as f64
            },
            peak_listeners: f.peak_listeners,
            first_start: f.first_start,
            last_end: f.last_end,
            lost: f.lost,
            kicked: f.kicked,
        }
    }
}

/// One point of the series: the most listeners at once during the minute starting at `t`.
#[derive(Debug, Serialize)]
pub struct SeriesPoint {
    pub t: DateTime<Utc>,
    pub listeners: u32,
}

/// One Icecast server's share of an event's listening.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerShare {
    /// `server:port`, as its callbacks name it.
    pub server: String,
    pub sessions: u64,
    pub listening_hours: f64,
    pub peak_listeners: u32,
}

/// The body of `GET /jars/events/{id}/stats`.
#[derive(Debug, Serialize)]
pub struct EventStats {
    pub event: Uuid,
    #[serde(flatten)]
    pub summary: Summary,
    pub series: Vec<SeriesPoint>,
    /// Per Icecast server the event was listened on.
    pub servers: Vec<ServerShare>,
}

impl EventStats {
    /// What the store aggregated of the event `event`.
    pub fn of(event: Uuid, figures: EventFigures) -> EventStats {
        EventStats {
            event,
            servers: figures
                .servers
                .into_iter()
                .map(|s| ServerShare {
                    server: s.server,
                    sessions: s.sessions,
                    listening_hours: hours(s.listening_seconds),
                    peak_listeners: s.peak_listeners,
                })
                .collect(),
            summary: Summary::of(&figures.figures),
            series: figures
                .series
                .into_iter()
                .map(|p| SeriesPoint {
                    t: p.t,
                    listeners: p.listeners,
                })
                .collect(),
        }
    }
}

/// Seconds as hours.
fn hours(seconds: u64) -> f64 {
    seconds as f64 / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_mean_from_seconds() {
        let f = Figures {
            sessions: 4,
            listening_seconds: 7_200,
            ..Figures::default()
        };
        let s = Summary::of(&f);
        assert_eq!(s.listening_hours, 2.0);
        assert_eq!(s.mean_session_seconds, 1_800.0);
        assert_eq!(Summary::of(&Figures::default()).mean_session_seconds, 0.0);
    }
}
