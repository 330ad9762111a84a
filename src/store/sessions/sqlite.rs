//! Sessions in the embedded SQLite file: table `sessions` beside the events
//! (`migrations/sqlite/sessions.sql`), one row per session, times as integer microseconds
//! since the Unix epoch so that the figures aggregate integers. One connection writes (SQLite
//! takes one writer at a time); reads have connections of their own, and a read whose caller
//! went away (an HTTP request that ended) is interrupted at once by a progress handler.
//! Opening creates the table (any number of times) after converting the tables of an earlier
//! layout ([`convert`]).

mod convert;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::figures::{self, Dialect, Group, Grouping, SERVER};
use super::row::{record_of, seconds, session_of, time, SESSION_COLUMNS};
use super::{EventFigures, Figures, GroupBy, OpenRow, SessionFilter, SessionRecord, SessionStore};
use crate::domain::{ServerId, Session, SessionEnd, SessionOp};
use crate::rules;
use crate::store::StoreError;

/// The table, its indexes: run whenever the file is opened.
pub const SCHEMA: &str = include_str!("../../../migrations/sqlite/sessions.sql");

/// Connections for reads: more readers wait their turn.
const READ_CONNECTIONS: u32 = 2;

/// How long a read waits for a connection at most.
const READ_WAIT: Duration = Duration::from_secs(60);

/// SQLite virtual-machine steps between two looks at whether a read's caller is still there.
const STEPS_PER_CHECK: i32 = 10_000;

/// The open row of a key: `$1`–`$4` server, port, role, client.
const KEY: &str = "server = $1 AND port = $2 AND role = $3 AND client = $4 AND ended IS NULL";

/// The session table of one SQLite file.
pub struct SqliteSessions {
    writer: SqlitePool,
    reads: SqlitePool,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn unavailable(path: &Path) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| StoreError::Unavailable(format!("sessions in {}: {e}", path.display()))
}

impl SqliteSessions {
    /// Opens the file at `path` (the event store's), converting an earlier layout and creating
    /// the table as needed; reads nothing else.
    pub async fn open(path: &Path) -> Result<SqliteSessions, StoreError> {
        Ok(Self::prepare(path).await?.0)
    }

    /// Opens the file and describes what it did (`jars migrate`).
    pub async fn migrate(path: &Path) -> Result<String, StoreError> {
        let (_, converted) = Self::prepare(path).await?;
        Ok(match converted {
            Some(rows) => format!(
                "{}: sessions: {rows} rows of the previous layout converted",
                path.display()
            ),
            None => format!("{}: sessions are up to date", path.display()),
        })
    }

    async fn prepare(path: &Path) -> Result<(SqliteSessions, Option<u64>), StoreError> {
        let options = crate::store::sqlite::file_options(path)?;
        let pool = |max, wait| {
            SqlitePoolOptions::new()
                // A local file: nothing to find dead before use (a ping is a trip to its thread).
                .test_before_acquire(false)
                .max_connections(max)
                .acquire_timeout(wait)
        };
        let writer = pool(1, Duration::from_secs(5))
            .connect_with(options.clone())
            .await
            .map_err(unavailable(path))?;
        let converted = convert::prepare(&writer).await.map_err(unavailable(path))?;
        // A read waits its turn as long as its caller does (a request ends with its 408).
        let reads = pool(READ_CONNECTIONS, READ_WAIT).connect_lazy_with(options);
        Ok((SqliteSessions { writer, reads }, converted))
    }

    /// A read connection whose statements stop once the returned token is dropped: the
    /// caller's future holds it, so a dropped call interrupts its statement and frees the
    /// connection.
    async fn reader(&self) -> Result<(PoolConnection<Sqlite>, Arc<()>), sqlx::Error> {
        let mut conn = self.reads.acquire().await?;
        let caller = Arc::new(());
        let watch = Arc::downgrade(&caller);
        conn.lock_handle()
            .await?
            .set_progress_handler(STEPS_PER_CHECK, move || watch.strong_count() > 0);
        Ok((conn, caller))
    }
}

/// The values a figures query binds, `$1`–`$4`.
#[derive(Clone, Copy)]
struct Binds {
    now: i64,
    event: Option<Uuid>,
    from: i64,
    to: i64,
}

impl Binds {
    fn on<'q, O>(
        self,
        q: sqlx::query::QueryAs<'q, Sqlite, O, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, Sqlite, O, sqlx::sqlite::SqliteArguments<'q>> {
        q.bind(self.now)
            .bind(self.event.map(|e| e.to_string()))
            .bind(self.from)
            .bind(self.to)
    }
}

/// The figures' SQL on this table: times in microseconds.
const SQL: Dialect = Dialect {
    grouping: Grouping::InIndexOrder {
        // As in the index sessions_event_ends, which holds closed rows in this order.
        closed_end: "started / 1000000 + coalesce(duration, max(0, (ended - started) / 1000000))",
        open_rows: "sessions INDEXED BY sessions_event_open",
    },
    table: "sessions",
    event: "event_uuid = $2",
    any_event: "$2 IS NULL",
    range: "started >= $3 AND started < $4",
    second: "started / 1000000",
    secs: "coalesce(duration, max(0, (coalesce(ended, $1) - started) / 1000000))",
    until: "started \
        + coalesce(duration, max(0, (coalesce(ended, $1) - started) / 1000000)) * 1000000",
    micros: as_is,
};

fn as_is(t: &str) -> String {
    t.to_string()
}

/// The rows of the figures query `sql`, with `binds`.
async fn all<O>(conn: &mut SqliteConnection, sql: &str, binds: Binds) -> Result<Vec<O>, sqlx::Error>
where
    O: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
{
    binds.on(sqlx::query_as(sql)).fetch_all(conn).await
}

async fn open_row(conn: &mut SqliteConnection, s: &Session) -> Result<(), sqlx::Error> {
    let k = &s.key;
    sqlx::query(&format!(
        "UPDATE sessions SET ended = $5, end_reason = 'lost' WHERE {KEY}"
    ))
    .bind(&k.server.host)
    .bind(&k.server.port)
    .bind(k.role.as_str())
    .bind(&k.id)
    .bind(micros(s.started))
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO sessions ({SESSION_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(k.role.as_str())
    .bind(&k.server.host)
    .bind(&k.server.port)
    .bind(&k.id)
    .bind(&s.mount)
    .bind(s.event().map(|e| e.to_string()))
    .bind(Some(&s.ip).filter(|ip| !ip.is_empty()))
    .bind(&s.agent)
    .bind(&s.referer)
    .bind(&s.ticket)
    .bind(s.member)
    .bind(&s.relay)
    .bind(micros(s.started))
    .bind(seconds(s.timelimit))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn close_row(conn: &mut SqliteConnection, end: &SessionEnd) -> Result<(), sqlx::Error> {
    let k = &end.key;
    let open: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(&format!(
        "SELECT id, started, timelimit FROM sessions WHERE {KEY}"
    ))
    .bind(&k.server.host)
    .bind(&k.server.port)
    .bind(k.role.as_str())
    .bind(&k.id)
    .fetch_all(&mut *conn)
    .await?;
    for (id, started, timelimit) in open {
        let timelimit = timelimit.and_then(|t| u64::try_from(t).ok());
        let (reason, cause) =
            rules::sessions::end_of(time(started)?, timelimit, end.at, end.duration, end.ending);
        sqlx::query(
            "UPDATE sessions SET ended = $1, duration = $2, end_reason = $3, end_cause = $4 \
             WHERE id = $5",
        )
        .bind(micros(end.at))
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
impl SessionStore for SqliteSessions {
    async fn apply(&self, ops: &[SessionOp]) -> Result<(), StoreError> {
        // IMMEDIATE: a close reads before it writes, and another writer of the file
        // committing in between would fail the upgrade.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for op in ops {
            match op {
                SessionOp::Open(s) => open_row(&mut tx, s).await?,
                SessionOp::Close(end) => close_row(&mut tx, end).await?,
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sessions(
        &self,
        filter: SessionFilter,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let (mut conn, _caller) = self.reader().await?;
        Ok(sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS}, ended, duration, end_reason, end_cause FROM sessions \
             WHERE ($1 IS NULL OR event_uuid = $1) AND started >= $2 AND started < $3 \
             ORDER BY started, id LIMIT $4"
        ))
        .bind(filter.event.map(|e| e.to_string()))
        .bind(filter.from.map_or(i64::MIN, micros))
        .bind(filter.to.map_or(i64::MAX, micros))
        .bind(limit)
        .try_map(|row: SqliteRow| record_of(&row))
        .fetch_all(&mut *conn)
        .await?)
    }

    async fn open_sessions(&self, server: &ServerId) -> Result<Vec<Session>, StoreError> {
        let (mut conn, _caller) = self.reader().await?;
        Ok(sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE server = $1 AND port = $2 AND ended IS NULL"
        ))
        .bind(&server.host)
        .bind(&server.port)
        .try_map(|row: SqliteRow| session_of(&row))
        .fetch_all(&mut *conn)
        .await?)
    }

    async fn event_figures(
        &self,
        event: Uuid,
        now: DateTime<Utc>,
        max_points: usize,
    ) -> Result<EventFigures, StoreError> {
        let binds = Binds {
            now: micros(now),
            event: Some(event),
            from: i64::MIN,
            to: i64::MAX,
        };
        // The series on one reader, the rest on the other: each reads the rows once, and the
        // two take about as long.
        let minutes = async {
            let (mut conn, _caller) = self.reader().await?;
            all(&mut conn, &figures::series(&SQL), binds).await
        };
        let rest = async {
            let (mut conn, _caller) = self.reader().await?;
            let totals = all(&mut conn, &figures::totals(&SQL, SERVER, true), binds).await?;
            let who = Group::by("event_uuid");
            let listeners = all(&mut conn, &figures::listeners(&SQL, who, true), binds).await?;
            Ok::<_, sqlx::Error>((totals, listeners))
        };
        let (minutes, (totals, listeners)) = tokio::try_join!(minutes, rest)?;
        Ok(figures::of_event(totals, listeners, minutes, max_points))
    }

    async fn report(
        &self,
        filter: SessionFilter,
        by: GroupBy,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Figures)>, StoreError> {
        let group = match by {
            GroupBy::Event => Group::by("coalesce(event_uuid, mount)"),
            GroupBy::Day => Group::by("date(started / 1000000, 'unixepoch')"),
            GroupBy::Server => SERVER,
        };
        let binds = Binds {
            now: micros(now),
            event: filter.event,
            from: filter.from.map_or(i64::MIN, micros),
            to: filter.to.map_or(i64::MAX, micros),
        };
        let event = filter.event.is_some();
        let (mut conn, _caller) = self.reader().await?;
        let totals = all(&mut conn, &figures::totals(&SQL, group, event), binds).await?;
        let listeners = all(&mut conn, &figures::listeners(&SQL, group, event), binds).await?;
        let peaks = all(&mut conn, &figures::peaks(&SQL, group, event), binds).await?;
        Ok(figures::of_groups(totals, listeners, peaks))
    }

    async fn open_before(
        &self,
        before: DateTime<Utc>,
        timelimit_before: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OpenRow>, StoreError> {
        let (mut conn, _caller) = self.reader().await?;
        Ok(sqlx::query(&format!(
            "SELECT id, {SESSION_COLUMNS} FROM sessions WHERE ended IS NULL AND (started < $1 \
             OR (timelimit IS NOT NULL AND started + timelimit * 1000000 < $2)) AND id > $3 \
             ORDER BY id LIMIT $4"
        ))
        .bind(micros(before))
        .bind(micros(timelimit_before))
        .bind(after)
        .bind(limit)
        .try_map(|row: SqliteRow| {
            let s = session_of(&row)?;
            Ok(OpenRow {
                id: row.try_get("id")?,
                key: s.key,
                started: s.started,
                timelimit: s.timelimit,
            })
        })
        .fetch_all(&mut *conn)
        .await?)
    }

    async fn close_lost(&self, ids: &[i64], at: DateTime<Utc>) -> Result<u64, StoreError> {
        let ids = serde_json::to_string(ids).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let done = sqlx::query(
            "UPDATE sessions SET ended = $1, end_reason = 'lost' \
             WHERE id IN (SELECT value FROM json_each($2)) AND ended IS NULL",
        )
        .bind(micros(at))
        .bind(ids)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE started < $1")
            .bind(micros(before))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps of `sql`'s plan on an empty table, bound as an event's figures bind.
    async fn plan(store: &SqliteSessions, sql: &str) -> Vec<String> {
        let binds = Binds {
            now: 0,
            event: Some(Uuid::nil()),
            from: i64::MIN,
            to: i64::MAX,
        };
        let q = format!("EXPLAIN QUERY PLAN {sql}");
        let steps: Vec<(i64, i64, i64, String)> = binds
            .on(sqlx::query_as(&q))
            .fetch_all(&store.reads)
            .await
            .unwrap();
        steps.into_iter().map(|(_, _, _, step)| step).collect()
    }

    /// An event's figures read only its listeners' indexes, each in the order its statement
    /// groups by: no statement sorts the rows, only the few open ones (their ends are now's,
    /// read from an index of open rows alone) and the rows per server and second and per
    /// minute the database made of them.
    #[tokio::test]
    async fn an_events_figures_read_its_indexes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteSessions::open(&dir.path().join("jars.sqlite3"))
            .await
            .unwrap();
        for sql in [
            figures::totals(&SQL, SERVER, true),
            figures::listeners(&SQL, Group::by("event_uuid"), true),
            figures::series(&SQL),
        ] {
            let steps = plan(&store, &sql).await;
            let reads: Vec<usize> = (0..steps.len())
                .filter(|&i| steps[i].contains(" sessions "))
                .collect();
            assert!(!reads.is_empty(), "{steps:#?}");
            for i in reads {
                let read = &steps[i];
                assert!(
                    read.starts_with("SEARCH sessions USING COVERING INDEX sessions_event"),
                    "{read} in {steps:#?}"
                );
                let sorted = steps.get(i + 1).is_some_and(|s| s.contains("TEMP B-TREE"));
                assert!(
                    !sorted || read.contains("INDEX sessions_event_open "),
                    "the rows of {read} are sorted: {steps:#?}"
                );
            }
        }
    }
}
