//! The listener session table: the [`SessionStore`] trait and its two backends, [`sqlite`]
//! (a table beside the events in the embedded file) and [`postgres`] (`jars.listener_sessions`,
//! one table every node writes to). Each prepares its own table, idempotently, when opened
//! (and on `jars migrate`), apart from the event table's migrations.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::config::StoreSettings;
use crate::sessions::{OpenRow, SessionFilter, SessionOp, SessionRecord};

/// Where listener sessions are stored.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// Applies the ops of `chunks`, in order, in one transaction: all or none.
    async fn apply_chunks(&self, chunks: Vec<Vec<SessionOp>>) -> Result<(), StoreError>;
    /// Applies `ops` in order, in one transaction: all or none.
    async fn apply(&self, ops: Vec<SessionOp>) -> Result<(), StoreError> {
        self.apply_chunks(vec![ops]).await
    }
    /// The sessions `filter` selects, oldest first.
    async fn sessions(&self, filter: SessionFilter) -> Result<Vec<SessionRecord>, StoreError>;
    /// Open rows that started before `before`, or whose timelimit ran out before
    /// `timelimit_before` (start + timelimit): the only rows the lost-session sweep may close,
    /// found by the store rather than every open row read back.
    async fn open_before(
        &self,
        before: DateTime<Utc>,
        timelimit_before: DateTime<Utc>,
    ) -> Result<Vec<OpenRow>, StoreError>;
    /// Closes the rows `ids` (if still open) as `lost`, ended `at`; how many it closed.
    async fn close_lost(&self, ids: &[i64], at: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Deletes the rows that started before `before`; how many.
    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Opens the session table of the configured store, creating it as needed (PostgreSQL: unless
/// `[store] migrate = false`, then it must exist).
pub async fn open(settings: &StoreSettings) -> Result<Arc<dyn SessionStore>, StoreError> {
    match settings {
        StoreSettings::Sqlite { path } => Ok(Arc::new(sqlite::SqliteSessions::open(path).await?)),
        StoreSettings::Postgres(pg) => Ok(Arc::new(postgres::PgSessions::open(pg).await?)),
    }
}

/// Creates the session table whatever `[store] migrate` says (`jars migrate`); describes it.
pub async fn migrate(settings: &StoreSettings) -> Result<String, StoreError> {
    match settings {
        StoreSettings::Sqlite { path } => {
            sqlite::SqliteSessions::open(path).await?;
            Ok("listener_sessions: up to date".into())
        }
        StoreSettings::Postgres(pg) => postgres::PgSessions::migrate(pg).await,
    }
}
