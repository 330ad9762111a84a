//! The session table: the [`SessionStore`] trait and its two backends, [`sqlite`] (a table
//! beside the events in the embedded file) and [`postgres`] (`jars.listener_sessions`, one
//! table every node writes to), both through sqlx, in the same plain shape: one row per
//! session (listeners and sources), its indexes, a migration. Figures for reports are
//! aggregated by the database ([`figures`]: the same SQL on both), never by reading every row
//! into memory, and a call whose caller went away stops its query.

mod figures;
pub mod postgres;
mod row;
pub mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::config::StoreSettings;
use crate::domain::{EndReason, ServerId, Session, SessionKey, SessionOp};

/// Which sessions a report reads: listeners' sessions that started in `[from, to)`, of one
/// event or all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub event: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// How report figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// One group per event (a static mount by its name).
    Event,
    /// One group per UTC day a session started on.
    Day,
    /// One group per Icecast server (`server:port`, as its callbacks name it).
    Server,
}

/// The listening figures of a set of listeners' sessions, at `now` (open sessions count up
/// to it). A session counts the whole seconds of Icecast's own `duration` when it sent one,
/// else from its start to its end, from its start on. Concurrency is counted at one-second
/// resolution: a session listens during the seconds from its start's second for as many
/// seconds as it counts, and within a second ends come before starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub sessions: u64,
    /// Distinct listeners: by member, else ticket, else stored address; a session none of
    /// these tell counts as its own listener.
    pub unique_listeners: u64,
    pub listening_seconds: u64,
    pub peak_listeners: u32,
    pub first_start: Option<DateTime<Utc>>,
    pub last_end: Option<DateTime<Utc>>,
    /// Sessions closed as `lost` (their end never came).
    pub lost: u64,
    /// Sessions jars had Icecast drop (`kicked`).
    pub kicked: u64,
}

/// One point of a series: the most listeners at once during the minute starting at `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub t: DateTime<Utc>,
    pub listeners: u32,
}

/// One Icecast server's share of an event's listeners' sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFigures {
    /// `server:port`, as its callbacks name it.
    pub server: String,
    pub sessions: u64,
    pub listening_seconds: u64,
    /// The most of the event's listeners on it at once.
    pub peak_listeners: u32,
}

/// One event's figures: the whole, a [`Point`] a minute and each server's share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFigures {
    pub figures: Figures,
    pub series: Vec<Point>,
    /// By `server:port`, in byte order.
    pub servers: Vec<ServerFigures>,
}

/// A stored session, as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session: Session,
    /// `None` while open.
    pub ended: Option<DateTime<Utc>>,
    /// Icecast's own duration, in seconds, when it sent one.
    pub duration: Option<u64>,
    pub end_reason: Option<EndReason>,
    /// Why jars had it dropped (a deny reason's label), for `kicked`.
    pub end_cause: Option<String>,
}

/// An open row, as the lost-session sweep reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRow {
    pub id: i64,
    pub key: SessionKey,
    pub started: DateTime<Utc>,
    pub timelimit: Option<u64>,
}

/// Seconds (a duration, a timelimit) are stored up to this (about a century): what a row adds
/// to a time stays a time.
pub const MAX_SECONDS: u64 = 100 * 366 * 86_400;

/// Where sessions are stored. Reads stop when their future is dropped (the HTTP request
/// ended): SQLite interrupts the statement, PostgreSQL cancels it.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// Applies `ops` in order, in one transaction: all or none.
    async fn apply(&self, ops: &[SessionOp]) -> Result<(), StoreError>;
    /// The stored sessions (listeners and sources) that started in `filter`'s range, of its
    /// event, oldest first, at most `limit`: rows as they are, for tests and inspection.
    async fn sessions(
        &self,
        filter: SessionFilter,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError>;
    /// The sessions `server` has open rows for (listeners and sources), as stored: what a
    /// restarted node joins with what that server's admin API lists.
    async fn open_sessions(&self, server: &ServerId) -> Result<Vec<Session>, StoreError>;
    /// The figures of the listeners' sessions of `event`, one [`Point`] a minute from the
    /// first start's minute to the last end's (at most `max_points`) and each server's share,
    /// at `now`, aggregated by the database (see [`Figures`] for how sessions and concurrency
    /// count): three statements, each reading the event's rows once.
    async fn event_figures(
        &self,
        event: Uuid,
        now: DateTime<Utc>,
        max_points: usize,
    ) -> Result<EventFigures, StoreError>;
    /// The figures of the listeners' sessions `filter` selects, one per group (events by id,
    /// static mounts by name, UTC dates `YYYY-MM-DD`, or servers `server:port`), in the
    /// groups' order, at `now`.
    async fn report(
        &self,
        filter: SessionFilter,
        by: GroupBy,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Figures)>, StoreError>;
    /// Open rows that started before `before`, or whose timelimit ran out before
    /// `timelimit_before` (start + timelimit): the only rows the lost-session sweep may close.
    /// A page of them: in id order, ids above `after`, at most `limit`.
    async fn open_before(
        &self,
        before: DateTime<Utc>,
        timelimit_before: DateTime<Utc>,
        after: i64,
        limit: u32,
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

/// Creates the session table whatever `[store] migrate` says (`jars migrate`); describes what
/// it did.
pub async fn migrate(settings: &StoreSettings) -> Result<String, StoreError> {
    match settings {
        StoreSettings::Sqlite { path } => sqlite::SqliteSessions::migrate(path).await,
        StoreSettings::Postgres(pg) => postgres::PgSessions::migrate(pg).await,
    }
}
