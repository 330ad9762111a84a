//! Sessions on PostgreSQL (being rewritten).

use crate::config::PostgresSettings;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Figures, GroupBy, OpenRow, Point, SessionFilter, SessionStore};
use crate::domain::{ServerId, Session, SessionOp};
use crate::store::StoreError;

/// The session table of one SQLite file.
pub struct PgSessions;

impl PgSessions {
    pub async fn open(_settings: &PostgresSettings) -> Result<PgSessions, StoreError> {
        Ok(PgSessions)
    }

    pub async fn migrate(_settings: &PostgresSettings) -> Result<String, StoreError> {
        Ok(String::new())
    }
}

fn todo() -> StoreError {
    StoreError::Unavailable("postgres sessions: not written yet".into())
}

#[async_trait::async_trait]
impl SessionStore for PgSessions {
    async fn apply(&self, _ops: &[SessionOp]) -> Result<(), StoreError> {
        Err(todo())
    }
    async fn sessions(
        &self,
        _filter: SessionFilter,
        _limit: u32,
    ) -> Result<Vec<super::SessionRecord>, StoreError> {
        Err(todo())
    }
    async fn open_sessions(&self, _server: &ServerId) -> Result<Vec<Session>, StoreError> {
        Err(todo())
    }
    async fn event_figures(
        &self,
        _event: Uuid,
        _now: DateTime<Utc>,
        _max_points: usize,
    ) -> Result<(Figures, Vec<Point>), StoreError> {
        Err(todo())
    }
    async fn report(
        &self,
        _filter: SessionFilter,
        _by: GroupBy,
        _now: DateTime<Utc>,
    ) -> Result<Vec<(String, Figures)>, StoreError> {
        Err(todo())
    }
    async fn open_before(
        &self,
        _before: DateTime<Utc>,
        _timelimit_before: DateTime<Utc>,
    ) -> Result<Vec<OpenRow>, StoreError> {
        Err(todo())
    }
    async fn close_lost(&self, _ids: &[i64], _at: DateTime<Utc>) -> Result<u64, StoreError> {
        Err(todo())
    }
    async fn purge(&self, _before: DateTime<Utc>) -> Result<u64, StoreError> {
        Err(todo())
    }
}
