//! The event table: the [`EventStore`] trait every backend implements, and the [`Event`] row.
//! Columns are the original `jars.events` plus nullable additions of jars' own.
//!
//! Backends: [`sqlite`] (the embedded default, one file in the data directory) and
//! [`postgres`] (the original JARS schema, shared by several nodes). [`cache`] sits in front of
//! either in `serve`.

pub mod cache;
pub mod group_commit;
pub mod listener_counts;
pub mod metered;
pub mod postgres;
pub mod sanctions;
pub mod sessions;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::StoreSettings;
pub use crate::domain::event::{ConnectTerms, Event, EventCursor, ListFilter};
use listener_counts::{Alone, ListenerCounts};
use sanctions::SanctionStore;

/// What `/jars/create` asks for.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub created_by: i64,
    pub title: String,
    pub description: String,
    pub private: bool,
    pub lifetime: Duration,
    /// The creation time; the event expires `lifetime` after it.
    pub now: DateTime<Utc>,
    /// The event's own listener cap (an admin's choice; `None`: none).
    pub max_listeners: Option<u32>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or failed; the text is for the log only.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The store refused a value the client sent (too long, not storable): the client's
    /// fault, not an outage. The text is for the log only.
    #[error("event store refused a value: {0}")]
    InvalidInput(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if refuses_value(&e) {
            StoreError::InvalidInput(e.to_string())
        } else {
            StoreError::Unavailable(e.to_string())
        }
    }
}

/// Whether `e` is the database refusing a value rather than failing: PostgreSQL's SQLSTATE
/// class 22 ("data exception": bad encoding, value too long, …), SQLite's `TOOBIG` (18) and
/// `MISMATCH` (20), or a value the driver could not encode.
pub fn refuses_value(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Encode(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            let c = c.as_ref();
            (c.len() == 5 && c.starts_with("22")) || matches!(c, "18" | "20")
        }),
        _ => false,
    }
}

/// `/jars/connect`'s write ([`EventStore::connect`]): mark event `id` connected by member
/// `by` at `at`, if `terms` admit its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRequest {
    pub id: Uuid,
    pub by: i64,
    pub terms: ConnectTerms,
    pub at: DateTime<Utc>,
}

/// What [`EventStore::connect`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connect {
    /// The event is marked connected.
    Done,
    /// Nothing was written: the terms did not admit the row, which is this as read just after
    /// (`None`: no such event), for the rule to say why.
    Refused(Option<Event>),
}

/// The event table, whatever holds it.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync {
    /// Inserts a new event and returns its row.
    async fn create(&self, new: NewEvent) -> Result<Event, StoreError>;
    /// One event by id, expired or not. May come from a cache (at most a few seconds old).
    async fn get(&self, id: Uuid) -> Result<Option<Event>, StoreError>;
    /// [`EventStore::get`], shared: a cache answers without copying the row.
    async fn get_shared(&self, id: Uuid) -> Result<Option<Arc<Event>>, StoreError> {
        Ok(self.get(id).await?.map(Arc::new))
    }
    /// One event by id, read from the store itself, for decisions that must not act on a stale
    /// row.
    async fn get_fresh(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        self.get(id).await
    }
    /// Events matching `filter`, newest first (by `created_time`, then id descending), at most
    /// `filter.limit` of them, after `filter.after`.
    async fn list(&self, filter: ListFilter) -> Result<Vec<Event>, StoreError>;
    /// Marks the event connected, by `by` (or keeping the recorded `connected_by` when `None`,
    /// e.g. for a relay approved earlier); false if no such event.
    async fn mark_connected(
        &self,
        id: Uuid,
        by: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// `/jars/connect`'s write: marks the event connected if the request's terms admit its
    /// row, checked and written in one step. Backends do it in one statement, committed
    /// together with the other connects queued meanwhile ([`group_commit`]); this default
    /// reads, then writes.
    async fn connect(&self, request: ConnectRequest) -> Result<Connect, StoreError> {
        let ConnectRequest { id, by, terms, at } = request;
        match self.get_fresh(id).await? {
            Some(row) if terms.admit(&row) => Ok(if self.mark_connected(id, Some(by), at).await? {
                Connect::Done
            } else {
                Connect::Refused(None)
            }),
            row => Ok(Connect::Refused(row)),
        }
    }
    /// Marks the event disconnected, keeping `connected_by`; false if no such event.
    async fn mark_disconnected(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Sets (or with `None` removes) the event's own listener cap; false if no such event.
    async fn set_max_listeners(&self, id: Uuid, max: Option<u32>) -> Result<bool, StoreError>;
    /// Answers when the store is reachable.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The last row this process read for `id`, however old, unless the event has expired:
    /// what Icecast decisions fall back on while the store is unreachable
    /// (`[icecast] on_store_error = "cached"`). Never used for writes. Stores without such a
    /// memory answer `None`.
    async fn last_known(&self, id: Uuid) -> Option<Event> {
        let _ = id;
        None
    }
}

/// Opens the configured store, creating and migrating it as needed (PostgreSQL: unless
/// `[store] migrate = false`). Fails when the store cannot be reached: for the one-shot
/// commands.
pub async fn open(settings: &StoreSettings) -> Result<Arc<dyn EventStore>, StoreError> {
    match settings {
        StoreSettings::Sqlite { path } => Ok(Arc::new(sqlite::SqliteStore::open(path).await?)),
        StoreSettings::Postgres(pg) => Ok(Arc::new(postgres::PostgresStore::open(pg).await?)),
    }
}

/// Opens the store for `serve`: as [`open`], except that a PostgreSQL server which cannot be
/// reached at start-up is not fatal. The store then answers `Unavailable` at once until the
/// database is back (it keeps trying in the background), and migrates on first contact.
/// Anything else (a refused password, a missing database, a migration the role may not run)
/// still fails.
pub async fn open_for_serve(settings: &StoreSettings) -> Result<Arc<dyn EventStore>, StoreError> {
    match settings {
        StoreSettings::Sqlite { path } => Ok(Arc::new(sqlite::SqliteStore::open(path).await?)),
        StoreSettings::Postgres(pg) => {
            Ok(Arc::new(postgres::PostgresStore::open_tolerant(pg).await?))
        }
    }
}

/// One backend seen as each of its tables: events, sanctions (issue 16) and the listener
/// counts nodes share (issue 30; the embedded store has nobody to share them with).
#[derive(Clone)]
pub struct Opened {
    pub events: Arc<dyn EventStore>,
    pub sanctions: Arc<dyn SanctionStore>,
    pub counts: Arc<dyn ListenerCounts>,
}

impl Opened {
    fn of<S: EventStore + SanctionStore + 'static>(
        store: S,
        counts: impl FnOnce(&Arc<S>) -> Arc<dyn ListenerCounts>,
    ) -> Opened {
        let store = Arc::new(store);
        Opened {
            counts: counts(&store),
            events: store.clone(),
            sanctions: store,
        }
    }

    fn sqlite(store: sqlite::SqliteStore) -> Opened {
        Opened::of(store, |_| Arc::new(Alone))
    }

    fn postgres(store: postgres::PostgresStore) -> Opened {
        Opened::of(store, |s| s.clone())
    }
}

/// As [`open`], with the sanctions' side of the same backend (one pool).
pub async fn open_with_sanctions(settings: &StoreSettings) -> Result<Opened, StoreError> {
    match settings {
        StoreSettings::Sqlite { path } => {
            Ok(Opened::sqlite(sqlite::SqliteStore::open(path).await?))
        }
        StoreSettings::Postgres(pg) => {
            Ok(Opened::postgres(postgres::PostgresStore::open(pg).await?))
        }
    }
}

/// As [`open_for_serve`], with the sanctions' side of the same backend (one pool).
pub async fn open_with_sanctions_for_serve(settings: &StoreSettings) -> Result<Opened, StoreError> {
    match settings {
        StoreSettings::Sqlite { path } => {
            Ok(Opened::sqlite(sqlite::SqliteStore::open(path).await?))
        }
        StoreSettings::Postgres(pg) => Ok(Opened::postgres(
            postgres::PostgresStore::open_tolerant(pg).await?,
        )),
    }
}

/// The largest listener cap an event row holds (the original schema's columns are `INTEGER`).
pub const MAX_EVENT_LISTENERS: u32 = i32::MAX as u32;

/// Runs the store's migrations whatever `[store] migrate` says (`jars migrate`), and describes
/// what they did.
pub async fn migrate(settings: &StoreSettings) -> Result<String, StoreError> {
    match settings {
        StoreSettings::Sqlite { path } => {
            sqlite::SqliteStore::open(path).await?;
            Ok(format!(
                "sqlite:{}: schema up to date (the embedded store migrates itself)",
                path.display()
            ))
        }
        StoreSettings::Postgres(pg) => postgres::PostgresStore::migrate(pg).await,
    }
}
