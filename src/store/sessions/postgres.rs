//! Listener sessions on PostgreSQL: `jars.listener_sessions`, one table every node writes to,
//! prepared by the embedded, idempotent `migrations/postgres/sessions.sql`. A small pool of its
//! own (two connections), every operation bounded by `[store] query_timeout`; a database that
//! is down fails the operation (the writer drops and counts the batch), nothing waits longer.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
use tokio::sync::OnceCell;

use super::SessionStore;
use crate::config::{redact_url, PostgresSettings};
use crate::sessions::{
    late_remove_window, steps, EndReason, OpenRow, OpenedSession, SessionFilter, SessionKey,
    SessionOp, SessionRecord, Step,
};
use crate::store::StoreError;

/// The embedded migration of the session table.
pub const MIGRATION: &str = include_str!("../../../migrations/postgres/sessions.sql");

const KEY: &str = "server = $1 AND port = $2 AND client = $3 AND ended IS NULL";

/// The session table of one PostgreSQL database.
pub struct PgSessions {
    pool: PgPool,
    label: String,
    migrate: bool,
    query_timeout: Duration,
    /// Set once the table is migrated (or, with `migrate = false`, found).
    schema: OnceCell<()>,
}

fn db_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

impl PgSessions {
    fn new(settings: &PostgresSettings) -> Result<PgSessions, StoreError> {
        let label = redact_url(&settings.url);
        let options: PgConnectOptions = settings
            .url
            .parse::<PgConnectOptions>()
            .map_err(|e| StoreError::Unavailable(format!("{label}: {e}")))?
            .application_name("jars-sessions");
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(settings.acquire_timeout)
            .test_before_acquire(true)
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy_with(options);
        Ok(PgSessions {
            pool,
            label,
            migrate: settings.migrate,
            query_timeout: settings.query_timeout,
            schema: OnceCell::new(),
        })
    }

    /// Prepares the table lazily: a database down at start-up is not fatal, the first batch
    /// that reaches it migrates.
    pub async fn open(settings: &PostgresSettings) -> Result<PgSessions, StoreError> {
        Self::new(settings)
    }

    /// Runs the migration whatever `migrate` says, and describes it.
    pub async fn migrate(settings: &PostgresSettings) -> Result<String, StoreError> {
        let store = Self::new(&PostgresSettings {
            migrate: true,
            ..settings.clone()
        })?;
        store.run(|_| async { Ok(()) }).await?;
        Ok(format!(
            "{}: jars.listener_sessions is up to date",
            store.label
        ))
    }

    async fn ensure_schema(&self) -> Result<(), sqlx::Error> {
        self.schema
            .get_or_try_init(|| async {
                if self.migrate {
                    sqlx::raw_sql(MIGRATION).execute(&self.pool).await?;
                }
                sqlx::query("SELECT id FROM jars.listener_sessions LIMIT 0")
                    .execute(&self.pool)
                    .await?;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// One operation, with the table prepared, within `query_timeout`.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let work = async {
            self.ensure_schema().await?;
            op(self.pool.clone()).await
        };
        match tokio::time::timeout(self.query_timeout, work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!(
                "PostgreSQL {} (listener sessions): {e}",
                self.label
            ))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL {} (listener sessions): no answer within {}",
                self.label,
                humantime::format_duration(self.query_timeout)
            ))),
        }
    }
}

/// Opens `rows` (distinct keys) in two statements: open rows with their keys closed as `lost`
/// at the new start, then one multi-row insert.
async fn open_rows(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[&OpenedSession],
) -> Result<(), sqlx::Error> {
    let mut lost = QueryBuilder::<Postgres>::new(
        "UPDATE jars.listener_sessions s SET ended = v.started, end_reason = 'lost' FROM (",
    );
    lost.push_values(rows, |mut b, r| {
        let t = r.text();
        b.push_bind(t.server)
            .push_bind(t.port)
            .push_bind(t.client)
            .push_bind(db_time(r.started));
    });
    lost.push(
        ") AS v(server, port, client, started) WHERE s.ended IS NULL AND s.server = v.server \
         AND s.port = v.port AND s.client = v.client",
    );
    lost.build().execute(&mut **tx).await?;
    let mut insert = QueryBuilder::<Postgres>::new(
        "INSERT INTO jars.listener_sessions (event_uuid, mount, server, port, client, started, \
         ticket, member, ip, agent, referer, timelimit) ",
    );
    insert.push_values(rows, |mut b, r| {
        let t = r.text();
        b.push_bind(r.event)
            .push_bind(t.mount)
            .push_bind(t.server)
            .push_bind(t.port)
            .push_bind(t.client)
            .push_bind(db_time(r.started))
            .push_bind(t.ticket)
            .push_bind(r.member)
            .push_bind(t.ip)
            .push_bind(t.agent)
            .push_bind(t.referer)
            .push_bind(r.timelimit.and_then(|t| i64::try_from(t).ok()));
    });
    insert.build().execute(&mut **tx).await?;
    Ok(())
}

async fn close_row(
    tx: &mut Transaction<'_, Postgres>,
    key: &SessionKey,
    ended: DateTime<Utc>,
    duration: Option<u64>,
) -> Result<(), sqlx::Error> {
    // See the SQLite twin: the kick's reason if marked, else timelimit or left.
    let done = sqlx::query(&format!(
        "UPDATE jars.listener_sessions SET ended = $4, duration = $5, \
         end_reason = COALESCE(end_reason, CASE WHEN timelimit IS NOT NULL AND \
         COALESCE($5, ROUND(EXTRACT(EPOCH FROM ($4 - started)))::BIGINT) >= timelimit - 1 \
         THEN 'timelimit' ELSE 'left' END) WHERE {KEY}"
    ))
    .bind(&key.server)
    .bind(&key.port)
    .bind(&key.client)
    .bind(db_time(ended))
    .bind(duration.and_then(|d| i64::try_from(d).ok()))
    .execute(&mut **tx)
    .await?;
    if let (0, Some(d)) = (done.rows_affected(), duration) {
        let (from, to) = late_remove_window(ended, d);
        sqlx::query(
            "UPDATE jars.listener_sessions SET ended = $4, duration = $5, end_reason = \
             CASE WHEN timelimit IS NOT NULL AND $5 >= timelimit - 1 THEN 'timelimit' \
             ELSE 'left' END WHERE id = (SELECT id FROM jars.listener_sessions \
             WHERE started BETWEEN $6 AND $7 AND server = $1 AND port = $2 \
             AND client = $3 AND end_reason = 'lost' ORDER BY started DESC LIMIT 1)",
        )
        .bind(&key.server)
        .bind(&key.port)
        .bind(&key.client)
        .bind(db_time(ended))
        .bind(i64::try_from(d).ok())
        .bind(db_time(from))
        .bind(db_time(to))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl SessionStore for PgSessions {
    async fn apply_chunks(&self, chunks: Vec<Vec<SessionOp>>) -> Result<(), StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            for step in steps(chunks.iter().flatten()) {
                match step {
                    Step::Opens(rows) => open_rows(&mut tx, &rows).await?,
                    Step::One(SessionOp::Close {
                        key,
                        ended,
                        duration,
                    }) => close_row(&mut tx, key, *ended, *duration).await?,
                    Step::One(SessionOp::Kicked { key }) => {
                        sqlx::query(&format!(
                            "UPDATE jars.listener_sessions SET end_reason = 'kicked' WHERE {KEY}"
                        ))
                        .bind(&key.server)
                        .bind(&key.port)
                        .bind(&key.client)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Step::One(SessionOp::Open(r)) => open_rows(&mut tx, &[r]).await?,
                }
            }
            tx.commit().await
        })
        .await
    }

    async fn sessions(&self, f: SessionFilter) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = self
            .run(|pool| async move {
                sqlx::query(
                    "SELECT event_uuid, mount, started, ended, duration, ticket, member, ip, \
                     agent, referer, end_reason FROM jars.listener_sessions \
                     WHERE ($1::uuid IS NULL OR event_uuid = $1) \
                     AND ($2::timestamp IS NULL OR started >= $2) \
                     AND ($3::timestamp IS NULL OR started < $3) ORDER BY started, id",
                )
                .bind(f.event)
                .bind(f.from.map(db_time))
                .bind(f.to.map(db_time))
                .fetch_all(&pool)
                .await
            })
            .await?;
        rows.iter()
            .map(|row| {
                let reason: Option<String> = row.try_get("end_reason")?;
                Ok(SessionRecord {
                    event: row.try_get("event_uuid")?,
                    mount: row.try_get("mount")?,
                    started: row.try_get::<NaiveDateTime, _>("started")?.and_utc(),
                    ended: row
                        .try_get::<Option<NaiveDateTime>, _>("ended")?
                        .map(|t| t.and_utc()),
                    duration: row
                        .try_get::<Option<i64>, _>("duration")?
                        .and_then(|d| u64::try_from(d).ok()),
                    ticket: row.try_get("ticket")?,
                    member: row.try_get("member")?,
                    ip: row.try_get("ip")?,
                    agent: row.try_get("agent")?,
                    referer: row.try_get("referer")?,
                    end_reason: reason.as_deref().and_then(EndReason::parse),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn open_before(
        &self,
        before: DateTime<Utc>,
        timelimit_before: DateTime<Utc>,
    ) -> Result<Vec<OpenRow>, StoreError> {
        let rows = self
            .run(|pool| async move {
                sqlx::query(
                    "SELECT id, server, port, client, started, timelimit \
                     FROM jars.listener_sessions WHERE ended IS NULL AND (started < $1 \
                     OR (timelimit IS NOT NULL \
                     AND started + timelimit * interval '1 second' < $2))",
                )
                .bind(db_time(before))
                .bind(db_time(timelimit_before))
                .fetch_all(&pool)
                .await
            })
            .await?;
        rows.iter()
            .map(|row| {
                Ok(OpenRow {
                    id: row.try_get("id")?,
                    key: SessionKey {
                        server: row.try_get("server")?,
                        port: row.try_get("port")?,
                        client: row.try_get("client")?,
                    },
                    started: row.try_get::<NaiveDateTime, _>("started")?.and_utc(),
                    timelimit: row
                        .try_get::<Option<i64>, _>("timelimit")?
                        .and_then(|t| u64::try_from(t).ok()),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn close_lost(&self, ids: &[i64], at: DateTime<Utc>) -> Result<u64, StoreError> {
        self.run(|pool| async move {
            let done = sqlx::query(
                "UPDATE jars.listener_sessions SET ended = $1, end_reason = 'lost' \
                 WHERE id = ANY($2) AND ended IS NULL",
            )
            .bind(db_time(at))
            .bind(ids)
            .execute(&pool)
            .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.run(|pool| async move {
            let done = sqlx::query("DELETE FROM jars.listener_sessions WHERE started < $1")
                .bind(db_time(before))
                .execute(&pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }
}
