//! The listener counts nodes share (issue 30): each node writes, per Icecast server it hears
//! callbacks from, how many listeners it counts there — for the whole station and per event —
//! and reads the other nodes' counts, so that a licence cap holds over every server and node.
//! [`ListenerCounts`] is what both backends implement: PostgreSQL keeps `jars.listener_counts`;
//! the embedded SQLite store serves one node only, which has nobody to share with.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// What a count is of: every listener of the station, or one event's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Station,
    Event(Uuid),
}

impl Scope {
    /// The `scope` column: `station`, or the event's id.
    pub fn key(&self) -> String {
        match self {
            Scope::Station => "station".into(),
            Scope::Event(id) => id.to_string(),
        }
    }

    /// Reads [`Scope::key`] back.
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "station" => Some(Scope::Station),
            id => Uuid::try_parse(id).ok().map(Scope::Event),
        }
    }
}

/// One count: listeners of `scope` on `server` (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub server: String,
    pub scope: Scope,
    pub listeners: u32,
}

/// What this node publishes of one server it hears callbacks from: when it last did, and its
/// counts there (the station's, then each event's with listeners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCounts {
    pub server: String,
    /// `None`: known only from its listing (a resync).
    pub heard: Option<DateTime<Utc>>,
    pub station: u32,
    pub events: Vec<(Uuid, u32)>,
}

/// What the other nodes published, as fresh as the store's rows (rows of a node silent for
/// [`ROW_HOLD`] are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Others {
    /// The largest count any other node gives each (scope, server).
    pub counts: Vec<Count>,
    /// The last callback any other node heard from each server.
    pub heard: Vec<(String, DateTime<Utc>)>,
}

/// How long a node's rows count after it last wrote them: a node that stopped (crashed,
/// partitioned) keeps its listeners counted this long, since they may still be on Icecast.
pub const ROW_HOLD: std::time::Duration = std::time::Duration::from_secs(600);

/// The shared counts.
#[async_trait::async_trait]
pub trait ListenerCounts: Send + Sync {
    /// Writes this node's counts of `server` for `mine` (a listener being admitted included)
    /// and returns the other nodes' counts of those scopes on every server: one round trip,
    /// on the callback path of a capped admission.
    async fn claim(
        &self,
        node: &str,
        server: &str,
        heard: DateTime<Utc>,
        mine: &[(Scope, u32)],
    ) -> Result<Vec<Count>, StoreError>;

    /// Replaces every count this node published by `servers`, and returns the other nodes'.
    async fn publish(&self, node: &str, servers: &[ServerCounts]) -> Result<Others, StoreError>;

    /// Whether other nodes can share this store (a database server, not a file of one node's).
    fn shared(&self) -> bool;
}

/// One node alone (the embedded store): there is nobody else to count.
#[derive(Debug, Default)]
pub struct Alone;

#[async_trait::async_trait]
impl ListenerCounts for Alone {
    async fn claim(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
        _: &[(Scope, u32)],
    ) -> Result<Vec<Count>, StoreError> {
        Ok(Vec::new())
    }

    async fn publish(&self, _: &str, _: &[ServerCounts]) -> Result<Others, StoreError> {
        Ok(Others::default())
    }

    fn shared(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_back() {
        let id = Uuid::new_v4();
        for s in [Scope::Station, Scope::Event(id)] {
            assert_eq!(Scope::parse(&s.key()), Some(s));
        }
        assert_eq!(Scope::parse("nonsense"), None);
    }
}
