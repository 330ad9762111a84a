//! Listener sessions in the embedded SQLite file: table `listener_sessions` beside `events`,
//! created when opened (`CREATE … IF NOT EXISTS`, so any number of times). Its own small pool:
//! a batch of session writes never takes a connection the event store's readers need.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use uuid::Uuid;

use super::SessionStore;
use crate::sessions::{
    late_remove_window, steps, EndReason, OpenRow, OpenedSession, SessionFilter, SessionKey,
    SessionOp, SessionRecord, Step,
};
use crate::store::sqlite::{from_text, to_text};
use crate::store::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS listener_sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_uuid TEXT,
    mount      TEXT    NOT NULL,
    server     TEXT    NOT NULL,
    port       TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    started    TEXT    NOT NULL,
    ended      TEXT,
    duration   INTEGER,
    ticket     TEXT,
    member     INTEGER,
    ip         TEXT,
    agent      TEXT,
    referer    TEXT,
    timelimit  INTEGER,
    end_reason TEXT
);
CREATE INDEX IF NOT EXISTS listener_sessions_open
    ON listener_sessions (server, port, client) WHERE ended IS NULL;
CREATE INDEX IF NOT EXISTS listener_sessions_started ON listener_sessions (started);
CREATE INDEX IF NOT EXISTS listener_sessions_event ON listener_sessions (event_uuid, started);
";

const KEY: &str = "server = ? AND port = ? AND client = ? AND ended IS NULL";

/// The session table of one SQLite file.
pub struct SqliteSessions {
    pool: SqlitePool,
}

impl SqliteSessions {
    /// Opens the file at `path` (the event store's), creating the table if needed.
    pub async fn open(path: &Path) -> Result<SqliteSessions, StoreError> {
        crate::atomic_file::create_private_file(path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // Checkpoint after 16,000 WAL pages (~64 MiB), not SQLite's 1,000: the batches
            // rewrite the same rightmost pages of the table and its indexes, and checkpointing
            // them every few batches doubled the writer's CPU per row as the table grew.
            .pragma("wal_autocheckpoint", "16000");
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "creating listener_sessions in {}: {e}",
                path.display()
            ))
        })?;
        Ok(SqliteSessions { pool })
    }
}

/// Opens `rows` (distinct keys) in two statements: open rows with their keys closed as `lost`
/// at the new start, then one multi-row insert.
async fn open_rows(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[&OpenedSession],
) -> Result<(), sqlx::Error> {
    let started: Vec<String> = rows.iter().map(|s| to_text(s.started)).collect();
    let mut lost = QueryBuilder::<Sqlite>::new(
        "UPDATE listener_sessions SET ended = v.column4, end_reason = 'lost' FROM (",
    );
    lost.push_values(rows.iter().zip(&started), |mut b, (s, started)| {
        b.push_bind(&s.key.server)
            .push_bind(&s.key.port)
            .push_bind(&s.key.client)
            .push_bind(started);
    });
    lost.push(
        ") AS v WHERE ended IS NULL AND server = v.column1 AND port = v.column2 \
         AND client = v.column3",
    );
    lost.build().execute(&mut **tx).await?;
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO listener_sessions (event_uuid, mount, server, port, client, started, \
         ticket, member, ip, agent, referer, timelimit) ",
    );
    insert.push_values(rows.iter().zip(&started), |mut b, (s, started)| {
        b.push_bind(s.event.map(|e| e.to_string()))
            .push_bind(&s.mount)
            .push_bind(&s.key.server)
            .push_bind(&s.key.port)
            .push_bind(&s.key.client)
            .push_bind(started)
            .push_bind(&s.ticket)
            .push_bind(s.member)
            .push_bind(&s.ip)
            .push_bind(&s.agent)
            .push_bind(&s.referer)
            .push_bind(s.timelimit.and_then(|t| i64::try_from(t).ok()));
    });
    insert.build().execute(&mut **tx).await?;
    Ok(())
}

async fn close_row(
    tx: &mut Transaction<'_, Sqlite>,
    key: &SessionKey,
    ended: DateTime<Utc>,
    duration: Option<u64>,
) -> Result<(), sqlx::Error> {
    // ?1 ended, ?2 Icecast's duration; the reason is the kick's if marked, else whether the
    // session lasted (within a second) as long as the timelimit jars sent.
    let done = sqlx::query(
        "UPDATE listener_sessions SET ended = ?1, duration = ?2, end_reason = COALESCE(end_reason, \
         CASE WHEN timelimit IS NOT NULL AND COALESCE(?2, \
         CAST(ROUND((julianday(?1) - julianday(started)) * 86400) AS INTEGER)) >= timelimit - 1 \
         THEN 'timelimit' ELSE 'left' END) \
         WHERE server = ?3 AND port = ?4 AND client = ?5 AND ended IS NULL",
    )
    .bind(to_text(ended))
    .bind(duration.and_then(|d| i64::try_from(d).ok()))
    .bind(&key.server)
    .bind(&key.port)
    .bind(&key.client)
    .execute(&mut **tx)
    .await?;
    if let (0, Some(d)) = (done.rows_affected(), duration) {
        let (from, to) = late_remove_window(ended, d);
        sqlx::query(
            "UPDATE listener_sessions SET ended = ?1, duration = ?2, end_reason = \
             CASE WHEN timelimit IS NOT NULL AND ?2 >= timelimit - 1 THEN 'timelimit' \
             ELSE 'left' END WHERE id = (SELECT id FROM listener_sessions \
             WHERE started >= ?6 AND started <= ?7 AND server = ?3 AND port = ?4 \
             AND client = ?5 AND end_reason = 'lost' ORDER BY started DESC LIMIT 1)",
        )
        .bind(to_text(ended))
        .bind(i64::try_from(d).ok())
        .bind(&key.server)
        .bind(&key.port)
        .bind(&key.client)
        .bind(to_text(from))
        .bind(to_text(to))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl SessionStore for SqliteSessions {
    async fn apply(&self, ops: &[SessionOp]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for step in steps(ops) {
            match step {
                Step::Opens(rows) => open_rows(&mut tx, &rows).await?,
                Step::One(SessionOp::Close {
                    key,
                    ended,
                    duration,
                }) => close_row(&mut tx, key, *ended, *duration).await?,
                Step::One(SessionOp::Kicked { key }) => {
                    sqlx::query(&format!(
                        "UPDATE listener_sessions SET end_reason = 'kicked' WHERE {KEY}"
                    ))
                    .bind(&key.server)
                    .bind(&key.port)
                    .bind(&key.client)
                    .execute(&mut *tx)
                    .await?;
                }
                Step::One(SessionOp::Open(s)) => open_rows(&mut tx, &[s]).await?,
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sessions(&self, f: SessionFilter) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_uuid, mount, started, ended, duration, ticket, member, ip, agent, \
             referer, end_reason FROM listener_sessions \
             WHERE (?1 IS NULL OR event_uuid = ?1) AND (?2 IS NULL OR started >= ?2) \
             AND (?3 IS NULL OR started < ?3) ORDER BY started, id",
        )
        .bind(f.event.map(|e| e.to_string()))
        .bind(f.from.map(to_text))
        .bind(f.to.map(to_text))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let event: Option<String> = row.try_get("event_uuid")?;
                let ended: Option<String> = row.try_get("ended")?;
                let reason: Option<String> = row.try_get("end_reason")?;
                Ok(SessionRecord {
                    event: event.and_then(|e| Uuid::try_parse(&e).ok()),
                    mount: row.try_get("mount")?,
                    started: from_text(&row.try_get::<String, _>("started")?)?,
                    ended: ended.as_deref().map(from_text).transpose()?,
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
            .collect()
    }

    async fn open_before(&self, before: DateTime<Utc>) -> Result<Vec<OpenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, server, port, client, started, timelimit FROM listener_sessions \
             WHERE ended IS NULL AND started < ?",
        )
        .bind(to_text(before))
        .fetch_all(&self.pool)
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
                    started: from_text(&row.try_get::<String, _>("started")?)?,
                    timelimit: row
                        .try_get::<Option<i64>, _>("timelimit")?
                        .and_then(|t| u64::try_from(t).ok()),
                })
            })
            .collect()
    }

    async fn close_lost(&self, ids: &[i64], at: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut closed = 0;
        for id in ids {
            closed += sqlx::query(
                "UPDATE listener_sessions SET ended = ?, end_reason = 'lost' \
                 WHERE id = ? AND ended IS NULL",
            )
            .bind(to_text(at))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(closed)
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM listener_sessions WHERE started < ?")
            .bind(to_text(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
