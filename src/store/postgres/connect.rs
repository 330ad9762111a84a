//! `/jars/connect`'s write on PostgreSQL: one checking UPDATE per connect, the connects queued
//! meanwhile committed in one transaction ([`super::super::group_commit`]).

use std::sync::Arc;

use chrono::NaiveDateTime;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Failure, Inner};
use crate::store::group_commit::CommitBatch;
use crate::store::StoreError;

/// One `/jars/connect` write, in the table's types.
pub(super) struct ConnectJob {
    pub id: Uuid,
    pub by: i32,
    /// The connect rule's terms ([`crate::rules::ConnectTerms`]).
    pub unexpired_at: NaiveDateTime,
    pub owner: Option<i32>,
    pub at: NaiveDateTime,
}

/// Commits batches of connects through the store's pool, within its `query_timeout`.
pub(super) struct ConnectWriter {
    pub inner: Arc<Inner>,
}

/// The terms and the write, in one statement.
const CONNECT: &str = "UPDATE jars.events SET connected = TRUE, connected_by = $1, \
    last_connected_at = $2 WHERE event_uuid = $3 AND expires_time > $4 \
    AND ($5::integer IS NULL OR created_by = $5)";

async fn connect(job: &ConnectJob, on: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(CONNECT)
        .bind(job.by)
        .bind(job.at)
        .bind(job.id)
        .bind(job.unexpired_at)
        .bind(job.owner)
        .execute(on)
        .await?;
    Ok(done.rows_affected() == 1)
}

impl CommitBatch<ConnectJob, bool> for ConnectWriter {
    async fn commit(&mut self, jobs: Vec<ConnectJob>) -> Result<Vec<bool>, StoreError> {
        self.inner
            .run(|pool| async move {
                let mut conn = pool.acquire().await?;
                if let [job] = &jobs[..] {
                    // Alone: the statement commits itself.
                    return Ok(vec![connect(job, &mut conn).await?]);
                }
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let mut done = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    done.push(connect(job, &mut tx).await?);
                }
                tx.commit().await?;
                Ok::<_, Failure>(done)
            })
            .await
    }
}
