//! Sessions on PostgreSQL: `jars.listener_sessions`, one table every node writes to (listeners
//! and sources, for all its name), prepared by the embedded, idempotent
//! `migrations/postgres/sessions.sql` (bounded by [`MIGRATE_TIMEOUT`]: on an existing table it
//! may build an index). Two small pools: one (two connections) writes and reads what the
//! writer and resync need, every operation bounded by `[store] query_timeout`; one
//! ([`FIGURES_CONNECTIONS`]) aggregates figures, so that reports never hold up the rows,
//! bounded by [`FIGURES_TIMEOUT`] (a request's own timeout comes first). Both bounds hold on
//! the server too (`statement_timeout`), and a figures call dropped before it ends (its HTTP
//! request ended) cancels its statements and takes its connections out of the pool.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::query::QueryAs;
use sqlx::{Connection, PgConnection, Postgres, Row};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::figures::{self, Dialect, Group, Grouping, SERVER};
use super::row::{record_of, seconds, session_of, SESSION_COLUMNS};
use super::{EventFigures, Figures, GroupBy, OpenRow, SessionFilter, SessionRecord, SessionStore};
use crate::config::{redact_url, PostgresSettings};
use crate::domain::{ServerId, Session, SessionEnd, SessionOp};
use crate::rules;
use crate::store::StoreError;

/// The embedded migration of the session table.
pub const MIGRATION: &str = include_str!("../../../migrations/postgres/sessions.sql");

/// How long the migration may take: on a table of an earlier release it builds an index.
pub const MIGRATE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long figures may take at most (the server stops them then): a backstop, since a
/// request's own timeout drops, and so cancels, them first.
pub const FIGURES_TIMEOUT: Duration = Duration::from_secs(120);

/// Connections for figures: a call's three statements run at once, each on its own (the
/// server's cores share the work PostgreSQL would not split).
const FIGURES_CONNECTIONS: u32 = 3;

/// The open row of a key: `$1`–`$4` server, port, role, client.
const KEY: &str = "server = $1 AND port = $2 AND role = $3 AND client = $4 AND ended IS NULL";

/// [`SESSION_COLUMNS`] as [`super::row`] reads them: the event as text, the start in
/// microseconds.
const READ_SESSION: &str = "role, server, port, client, mount, event_uuid::text AS event_uuid, \
    ip, agent, referer, ticket, member, relay, \
    (EXTRACT(EPOCH FROM started) * 1000000)::bigint AS started, timelimit";

/// A row's end as [`super::row`] reads it.
const READ_END: &str = "(EXTRACT(EPOCH FROM ended) * 1000000)::bigint AS ended, duration, \
    end_reason, end_cause";

/// The session table of one PostgreSQL database.
pub struct PgSessions {
    pool: PgPool,
    /// [`FIGURES_CONNECTIONS`]: one figures call at a time, its statements at once.
    figures: PgPool,
    /// Whose turn it is to take figures connections.
    turn: tokio::sync::Mutex<()>,
    /// For the connection a cancel request goes on.
    options: PgConnectOptions,
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
        // The server stops a statement whose caller stopped waiting. No JIT: compiling the
        // figures' expressions costs more than it saves on a million rows.
        let pool = |size: u32, timeout: Duration, wait: Duration| {
            PgPoolOptions::new()
                .max_connections(size)
                .min_connections(0)
                .acquire_timeout(wait)
                .test_before_acquire(true)
                .idle_timeout(Some(Duration::from_secs(300)))
                .connect_lazy_with(options.clone().options([
                    (
                        "statement_timeout",
                        format!("{}ms", timeout.as_millis().max(1)),
                    ),
                    ("jit", "off".to_string()),
                ]))
        };
        Ok(PgSessions {
            pool: pool(2, settings.query_timeout, settings.acquire_timeout),
            // Figures wait their turn as long as their callers do.
            figures: pool(FIGURES_CONNECTIONS, FIGURES_TIMEOUT, FIGURES_TIMEOUT),
            turn: tokio::sync::Mutex::new(()),
            options,
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
        store.ensure_schema().await?;
        Ok(format!(
            "{}: jars.listener_sessions is up to date",
            store.label
        ))
    }

    /// Migrates (or, with `migrate = false`, finds) the table, once.
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        let work = async {
            self.schema
                .get_or_try_init(|| prepare(&self.pool, self.migrate))
                .await
                .map(|_| ())
        };
        let done = tokio::time::timeout(MIGRATE_TIMEOUT, work).await;
        self.outcome(MIGRATE_TIMEOUT, done)
    }

    /// The outcome of work bounded by `limit`, its failure described.
    fn outcome<T>(
        &self,
        limit: Duration,
        done: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        match done {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!(
                "PostgreSQL {} (sessions): {e}",
                self.label
            ))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL {} (sessions): no answer within {}",
                self.label,
                humantime::format_duration(limit)
            ))),
        }
    }

    /// One operation on the writing pool, with the table prepared, within `query_timeout`.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        self.ensure_schema().await?;
        let work = async { op(self.pool.clone()).await };
        let done = tokio::time::timeout(self.query_timeout, work).await;
        self.outcome(self.query_timeout, done)
    }

    /// The totals and the listeners of the listeners' sessions (of the event `$2` when
    /// `event`), grouped by `groups` (in that order), and the rows of `last` (more figures of
    /// the same): the three at once, each on a connection of the figures pool that is
    /// cancelled if this is dropped.
    async fn aggregate<O>(
        &self,
        groups: [Group; 2],
        event: bool,
        binds: Binds,
        last: String,
    ) -> Result<(Vec<figures::Totals>, Vec<figures::PerGroup>, Vec<O>), StoreError>
    where
        O: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        self.ensure_schema().await?;
        let work = async {
            // A call takes its connections in its turn, so that calls never hold some each and
            // wait for the rest.
            let (mut a, mut b, mut c) = {
                let _turn = self.turn.lock().await;
                let acquire = || Cancelling::acquire(&self.figures, self.options.clone());
                (acquire().await?, acquire().await?, acquire().await?)
            };
            let totals = figures::totals(&SQL, groups[0], event);
            let listeners = figures::listeners(&SQL, groups[1], event);
            let (totals, listeners, more) = tokio::try_join!(
                all(a.get(), &totals, binds),
                all(b.get(), &listeners, binds),
                all(c.get(), &last, binds),
            )?;
            for conn in [a, b, c] {
                conn.done();
            }
            Ok((totals, listeners, more))
        };
        let done = tokio::time::timeout(FIGURES_TIMEOUT, work).await;
        self.outcome(FIGURES_TIMEOUT, done)
    }
}

/// The rows of the figures query `sql`, with `binds`.
async fn all<O>(conn: &mut PgConnection, sql: &str, binds: Binds) -> Result<Vec<O>, sqlx::Error>
where
    O: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    binds.on(sqlx::query_as(sql)).fetch_all(conn).await
}

/// The figures' SQL on this table: times as timestamps, seconds from their epoch (as
/// `double precision`: `EXTRACT` would compute in `numeric`, several times slower).
const SQL: Dialect = Dialect {
    grouping: Grouping::Hashed,
    table: "jars.listener_sessions",
    event: "event_uuid = $2",
    any_event: "$2::uuid IS NULL",
    range: "($3::timestamp IS NULL OR started >= $3) AND ($4::timestamp IS NULL OR started < $4)",
    second: "floor(date_part('epoch', started))::bigint",
    secs: "COALESCE(duration, \
        GREATEST(0, trunc(date_part('epoch', COALESCE(ended, $1) - started)))::bigint)",
    until: "started + COALESCE(duration, \
        GREATEST(0, trunc(date_part('epoch', COALESCE(ended, $1) - started)))::bigint) \
        * interval '1 second'",
    micros,
};

/// Runs the migration (when `migrate`) and finds the table.
async fn prepare(pool: &PgPool, migrate: bool) -> Result<(), sqlx::Error> {
    if migrate {
        // Bounded by MIGRATE_TIMEOUT, not the pool's statement_timeout.
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *tx)
            .await?;
        sqlx::query(MIGRATION)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    sqlx::query("SELECT id, role, relay, end_cause FROM jars.listener_sessions LIMIT 0")
        .execute(pool)
        .await?;
    Ok(())
}

/// `t` (a timestamp expression) as integer microseconds since the Unix epoch.
fn micros(t: &str) -> String {
    format!("(EXTRACT(EPOCH FROM {t}) * 1000000)::bigint")
}

/// The values a figures query binds, `$1`–`$4`.
#[derive(Clone, Copy)]
struct Binds {
    now: DateTime<Utc>,
    event: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Binds {
    fn on<'q, O>(
        self,
        q: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> QueryAs<'q, Postgres, O, PgArguments> {
        q.bind(db_time(self.now))
            .bind(self.event)
            .bind(self.from.map(db_time))
            .bind(self.to.map(db_time))
    }
}

/// A pooled connection whose statement is cancelled when this is dropped before
/// [`Cancelling::done`]: the connection leaves the pool (so nothing else gets it while its
/// statement is being cancelled) and a cancel request goes to its backend on a connection of
/// its own.
struct Cancelling {
    conn: Option<PoolConnection<Postgres>>,
    backend: i32,
    options: PgConnectOptions,
}

impl Cancelling {
    async fn acquire(pool: &PgPool, options: PgConnectOptions) -> Result<Cancelling, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        let backend = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await?;
        Ok(Cancelling {
            conn: Some(conn),
            backend,
            options,
        })
    }

    fn get(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("present until done or dropped")
    }

    /// The statements ended: the connection goes back to the pool.
    fn done(mut self) {
        self.conn.take();
    }
}

impl Drop for Cancelling {
    fn drop(&mut self) {
        let (Some(conn), Ok(runtime)) = (self.conn.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let conn = conn.detach();
        let (backend, options) = (self.backend, self.options.clone());
        runtime.spawn(async move {
            if let Ok(mut other) = PgConnection::connect_with(&options).await {
                let _ = sqlx::query("SELECT pg_cancel_backend($1)")
                    .bind(backend)
                    .execute(&mut other)
                    .await;
                let _ = other.close().await;
            }
            drop(conn);
        });
    }
}

async fn open_row(conn: &mut PgConnection, s: &Session) -> Result<(), sqlx::Error> {
    let k = &s.key;
    sqlx::query(&format!(
        "UPDATE jars.listener_sessions SET ended = $5, end_reason = 'lost' WHERE {KEY}"
    ))
    .bind(&k.server.host)
    .bind(&k.server.port)
    .bind(k.role.as_str())
    .bind(&k.id)
    .bind(db_time(s.started))
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO jars.listener_sessions ({SESSION_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(k.role.as_str())
    .bind(&k.server.host)
    .bind(&k.server.port)
    .bind(&k.id)
    .bind(&s.mount)
    .bind(s.event())
    .bind(Some(&s.ip).filter(|ip| !ip.is_empty()))
    .bind(&s.agent)
    .bind(&s.referer)
    .bind(&s.ticket)
    .bind(s.member)
    .bind(&s.relay)
    .bind(db_time(s.started))
    .bind(seconds(s.timelimit))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn close_row(conn: &mut PgConnection, end: &SessionEnd) -> Result<(), sqlx::Error> {
    let k = &end.key;
    let open: Vec<(i64, NaiveDateTime, Option<i64>)> = sqlx::query_as(&format!(
        "SELECT id, started, timelimit FROM jars.listener_sessions WHERE {KEY}"
    ))
    .bind(&k.server.host)
    .bind(&k.server.port)
    .bind(k.role.as_str())
    .bind(&k.id)
    .fetch_all(&mut *conn)
    .await?;
    for (id, started, timelimit) in open {
        let timelimit = timelimit.and_then(|t| u64::try_from(t).ok());
        let (reason, cause) = rules::sessions::end_of(
            started.and_utc(),
            timelimit,
            end.at,
            end.duration,
            end.ending,
        );
        sqlx::query(
            "UPDATE jars.listener_sessions SET ended = $1, duration = $2, end_reason = $3, \
             end_cause = $4 WHERE id = $5",
        )
        .bind(db_time(end.at))
        .bind(seconds(end.duration))
        .bind(reason.as_str())
        .bind(cause.map(|c| c.label()))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl SessionStore for PgSessions {
    async fn apply(&self, ops: &[SessionOp]) -> Result<(), StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            for op in ops {
                match op {
                    SessionOp::Open(s) => open_row(&mut tx, s).await?,
                    SessionOp::Close(end) => close_row(&mut tx, end).await?,
                }
            }
            tx.commit().await
        })
        .await
    }

    async fn sessions(
        &self,
        filter: SessionFilter,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.run(|pool| async move {
            sqlx::query(&format!(
                "SELECT {READ_SESSION}, {READ_END} FROM jars.listener_sessions WHERE ($1::uuid IS NULL OR event_uuid = $1) \
                 AND ($2::timestamp IS NULL OR started >= $2) \
                 AND ($3::timestamp IS NULL OR started < $3) ORDER BY started, id LIMIT $4"
            ))
            .bind(filter.event)
            .bind(filter.from.map(db_time))
            .bind(filter.to.map(db_time))
            .bind(i64::from(limit))
            .try_map(|row: PgRow| record_of(&row))
            .fetch_all(&pool)
            .await
        })
        .await
    }

    async fn open_sessions(&self, server: &ServerId) -> Result<Vec<Session>, StoreError> {
        self.run(|pool| async move {
            sqlx::query(&format!(
                "SELECT {READ_SESSION} FROM jars.listener_sessions \
                 WHERE server = $1 AND port = $2 AND ended IS NULL"
            ))
            .bind(&server.host)
            .bind(&server.port)
            .try_map(|row: PgRow| session_of(&row))
            .fetch_all(&pool)
            .await
        })
        .await
    }

    async fn event_figures(
        &self,
        event: Uuid,
        now: DateTime<Utc>,
        max_points: usize,
    ) -> Result<EventFigures, StoreError> {
        let binds = Binds {
            now,
            event: Some(event),
            from: None,
            to: None,
        };
        let (totals, listeners, minutes) = self
            .aggregate(
                [SERVER, Group::by("event_uuid")],
                true,
                binds,
                figures::series(&SQL),
            )
            .await?;
        Ok(figures::of_event(totals, listeners, minutes, max_points))
    }

    async fn report(
        &self,
        filter: SessionFilter,
        by: GroupBy,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Figures)>, StoreError> {
        let group = match by {
            GroupBy::Event => Group::by("COALESCE(event_uuid::text, mount)"),
            GroupBy::Day => Group::by("to_char(started, 'YYYY-MM-DD')"),
            GroupBy::Server => SERVER,
        };
        let binds = Binds {
            now,
            event: filter.event,
            from: filter.from,
            to: filter.to,
        };
        let event = filter.event.is_some();
        let (totals, listeners, peaks) = self
            .aggregate([group; 2], event, binds, figures::peaks(&SQL, group, event))
            .await?;
        Ok(figures::of_groups(totals, listeners, peaks))
    }

    async fn open_before(
        &self,
        before: DateTime<Utc>,
        timelimit_before: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OpenRow>, StoreError> {
        self.run(|pool| async move {
            sqlx::query(&format!(
                "SELECT id, {READ_SESSION} FROM jars.listener_sessions \
                 WHERE ended IS NULL AND (started < $1 OR (timelimit IS NOT NULL \
                 AND started + timelimit * interval '1 second' < $2)) AND id > $3 \
                 ORDER BY id LIMIT $4"
            ))
            .bind(db_time(before))
            .bind(db_time(timelimit_before))
            .bind(after)
            .bind(i64::from(limit))
            .try_map(|row: PgRow| {
                let s = session_of(&row)?;
                Ok(OpenRow {
                    id: row.try_get("id")?,
                    key: s.key,
                    started: s.started,
                    timelimit: s.timelimit,
                })
            })
            .fetch_all(&pool)
            .await
        })
        .await
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
