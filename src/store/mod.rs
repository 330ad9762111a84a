//! The event table: the [`EventStore`] trait every backend implements, and the [`Event`] row.
//! Columns are the original `jars.events` plus nullable additions of jars' own.

pub mod cache;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::config::StoreSettings;

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

/// What `/jars/create` asks for.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub created_by: i64,
    pub title: String,
    pub description: String,
    pub private: bool,
    pub lifetime: Duration,
}

/// Which events a listing includes.
#[derive(Debug, Clone, Copy)]
pub struct ListFilter {
    /// Include private events of this member (`None`: no private events, unless `all_private`).
    pub private_of: Option<i64>,
    /// Include every private event (admins).
    pub all_private: bool,
    /// Include expired events.
    pub include_expired: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or failed; the text is for the log only.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The event table, whatever holds it.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync {
    /// Inserts a new event and returns its row.
    async fn create(&self, new: NewEvent) -> Result<Event, StoreError>;
    /// One event by id, expired or not. May come from a cache (at most a few seconds old).
    async fn get(&self, id: Uuid) -> Result<Option<Event>, StoreError>;
    /// One event by id, read from the store itself, for decisions that must not act on a stale
    /// row.
    async fn get_fresh(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        self.get(id).await
    }
    /// Events matching `filter`, newest first.
    async fn list(&self, filter: ListFilter) -> Result<Vec<Event>, StoreError>;
    /// Marks the event connected, by `by` (or keeping the recorded `connected_by` when `None`,
    /// e.g. for a relay approved earlier); false if no such event.
    async fn mark_connected(
        &self,
        id: Uuid,
        by: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Marks the event disconnected, keeping `connected_by`; false if no such event.
    async fn mark_disconnected(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Answers when the store is reachable.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens the configured store, creating and migrating it as needed.
pub async fn open(settings: &StoreSettings) -> Result<Arc<dyn EventStore>, StoreError> {
    match settings {
        StoreSettings::Sqlite { path } => Ok(Arc::new(sqlite::SqliteStore::open(path).await?)),
        StoreSettings::Postgres { .. } => Err(StoreError::Unavailable(
            "the PostgreSQL store is not available in this version".into(),
        )),
    }
}
