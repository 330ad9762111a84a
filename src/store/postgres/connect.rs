//! `/jars/connect`'s write on PostgreSQL: one checking UPDATE for a lone connect, and one
//! statement for a batch of the connects queued meanwhile ([`super::super::group_commit`]): a
//! round trip to the server is what a connect costs here, so a batch makes one, not one each.

use std::sync::Arc;

use chrono::NaiveDateTime;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{member, to_db, Failure, Inner};
use crate::store::group_commit::CommitBatch;
use crate::store::{ConnectRequest, StoreError};

/// One `/jars/connect` write, in the table's types.
pub(super) struct ConnectJob {
    pub id: Uuid,
    pub by: i32,
    /// The connect rule's terms ([`crate::domain::ConnectTerms`]).
    pub unexpired_at: NaiveDateTime,
    pub owner: Option<i32>,
    pub at: NaiveDateTime,
}

impl ConnectJob {
    /// `request` in the table's types; `None` when its terms name an owner beyond INTEGER,
    /// who owns no row; `Err` (for the log) when the member id does not fit `connected_by`.
    pub fn new(request: ConnectRequest) -> Result<Option<ConnectJob>, String> {
        let by = member(request.by).map_err(|f| match f {
            Failure::Other(m) | Failure::Invalid(m) | Failure::Unreachable(m) => m,
        })?;
        let owner = match request.terms.owner.map(i32::try_from) {
            Some(Err(_)) => return Ok(None),
            owner => owner.and_then(Result::ok),
        };
        Ok(Some(ConnectJob {
            id: request.id,
            by,
            unexpired_at: to_db(request.terms.unexpired_at),
            owner,
            at: to_db(request.at),
        }))
    }
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

/// A batch in one statement. The terms read only `expires_time` and `created_by`, which a
/// connect never writes, so each connect is admitted by the row as the statement finds it,
/// whatever the others in the batch do; the row then holds the last admitted connect's values,
/// as if they had run one after the other. Answers the batch positions (`k`) that were admitted
/// and written.
const CONNECT_BATCH: &str = "WITH req AS ( \
      SELECT * FROM unnest($1::integer[], $2::uuid[], $3::integer[], $4::timestamp[], \
        $5::integer[], $6::timestamp[]) AS r(k, id, by_member, unexpired_at, owner, at)), \
    admitted AS ( \
      SELECT req.k, req.id, req.by_member, req.at FROM req \
      JOIN jars.events e ON e.event_uuid = req.id \
      WHERE e.expires_time > req.unexpired_at AND (req.owner IS NULL OR e.created_by = req.owner)), \
    last AS (SELECT DISTINCT ON (id) id, by_member, at FROM admitted ORDER BY id, k DESC), \
    written AS ( \
      UPDATE jars.events e SET connected = TRUE, connected_by = last.by_member, \
        last_connected_at = last.at \
      FROM last WHERE e.event_uuid = last.id RETURNING e.event_uuid) \
    SELECT k FROM admitted WHERE id IN (SELECT event_uuid FROM written)";

async fn connect_batch(jobs: &[ConnectJob], on: &mut PgConnection) -> Result<Vec<bool>, Failure> {
    let positions: Vec<i32> = (0..jobs.len())
        .map(|k| i32::try_from(k).expect("a batch is small"))
        .collect();
    let admitted: Vec<i32> = sqlx::query_scalar(CONNECT_BATCH)
        .bind(positions)
        .bind(jobs.iter().map(|j| j.id).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.by).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.unexpired_at).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.owner).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.at).collect::<Vec<_>>())
        .fetch_all(on)
        .await?;
    let mut done = vec![false; jobs.len()];
    for k in admitted {
        if let Some(d) = usize::try_from(k).ok().and_then(|k| done.get_mut(k)) {
            *d = true;
        }
    }
    Ok(done)
}

impl CommitBatch<ConnectJob, bool> for ConnectWriter {
    async fn commit(&mut self, jobs: Vec<ConnectJob>) -> Result<Vec<bool>, StoreError> {
        self.inner
            .run(|pool| async move {
                let mut conn = pool.acquire().await?;
                if let [job] = &jobs[..] {
                    return Ok(vec![connect(job, &mut conn).await?]);
                }
                connect_batch(&jobs, &mut conn).await
            })
            .await
    }
}
