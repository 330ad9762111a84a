//! The embedded event store: one SQLite file in the data directory, WAL mode, migrations
//! embedded in the binary. The `jars` CLI and `jars serve` may use the file at the same time.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use uuid::Uuid;

use super::group_commit::{CommitBatch, GroupCommit};
use super::{Connect, ConnectRequest, Event, EventStore, ListFilter, NewEvent, StoreError};

/// Timestamps are stored as fixed-width UTC text so that string order is time order.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// `t` as [`TIME_FORMAT`] writes it.
pub(crate) fn to_text(t: DateTime<Utc>) -> String {
    t.format(TIME_FORMAT).to_string()
}

pub(crate) fn from_text(s: &str) -> Result<DateTime<Utc>, StoreError> {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .map(|t| t.and_utc())
        .map_err(|e| StoreError::Unavailable(format!("bad timestamp {s:?} in store: {e}")))
}

/// How every pool opens the file at `path` (its directory and the file created private first):
/// WAL, `synchronous = NORMAL`, a 5 s busy timeout, foreign keys on.
pub(crate) fn file_options(path: &Path) -> Result<SqliteConnectOptions, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::atomic_file::create_private_dir(dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
    }
    // SQLite creates its -wal and -shm files with the database file's mode: 0600 for all.
    crate::atomic_file::create_private_file(path)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
    Ok(SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // With WAL, NORMAL loses nothing on a process crash (only on power loss); every
        // acknowledged write survives SIGKILL.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true))
}

pub struct SqliteStore {
    /// Readers of single rows (what Icecast callbacks need): WAL lets them run beside the
    /// writer.
    pool: SqlitePool,
    /// Listings (`/jars/events`, `jars event list`) read on connections of their own, so any
    /// number of them can never hold the connections the callbacks' row reads need.
    lists: SqlitePool,
    /// The one writer. SQLite takes one write at a time anyway; with writes spread over the
    /// readers' pool, concurrent writers waited in SQLite's busy handler, which sleeps
    /// (~1 ms each time, `strace`), while here they queue for the connection and go in turn.
    writer: SqlitePool,
    /// `/jars/connect`'s writes, committed in batches on `writer`.
    connects: GroupCommit<ConnectRequest, bool>,
}

/// Commits queued connects on the writer: one checking UPDATE each, one transaction for all.
struct ConnectWriter {
    writer: SqlitePool,
}

/// The connect rule's terms ([`crate::rules::connect_terms`]) and the write, in one statement.
const CONNECT: &str = "UPDATE events SET connected = TRUE, connected_by = ?1, \
    last_connected_at = ?2 WHERE event_uuid = ?3 AND expires_time > ?4 \
    AND (?5 IS NULL OR created_by = ?5)";

impl ConnectWriter {
    async fn connect<'c, E>(job: &ConnectRequest, on: E) -> Result<bool, sqlx::Error>
    where
        E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
    {
        let done = sqlx::query(CONNECT)
            .bind(job.by)
            .bind(to_text(job.at))
            .bind(job.id.to_string())
            .bind(to_text(job.terms.unexpired_at))
            .bind(job.terms.owner)
            .execute(on)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl CommitBatch<ConnectRequest, bool> for ConnectWriter {
    async fn commit(&mut self, jobs: Vec<ConnectRequest>) -> Result<Vec<bool>, StoreError> {
        if let [job] = &jobs[..] {
            // Alone: the statement commits itself.
            return Ok(vec![Self::connect(job, &self.writer).await?]);
        }
        let mut tx = self.writer.begin().await?;
        let mut done = Vec::with_capacity(jobs.len());
        for job in &jobs {
            done.push(Self::connect(job, &mut *tx).await?);
        }
        tx.commit().await?;
        Ok(done)
    }
}

/// Connections for listings; more listings wait their turn.
const LIST_CONNECTIONS: u32 = 2;

const COLUMNS: &str = "event_uuid, created_time, created_by, connected, connected_by, \
    expires_time, title, description, private, relation_id, last_connected_at, \
    last_disconnected_at, max_listeners";

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database file at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = file_options(path)?;
        let writer = SqlitePoolOptions::new()
            // A local file: nothing to find dead before use (a ping is a trip to its thread).
            .test_before_acquire(false)
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        // Migrated before any reader opens, so readers see the final schema.
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating {}: {e}", path.display())))?;
        let pool = SqlitePoolOptions::new()
            // A local file: nothing to find dead before use (a ping is a trip to its thread).
            .test_before_acquire(false)
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        let lists = SqlitePoolOptions::new()
            // A local file: nothing to find dead before use (a ping is a trip to its thread).
            .test_before_acquire(false)
            .max_connections(LIST_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            pool,
            lists,
            writer,
            connects: GroupCommit::new(),
        })
    }
}

fn row_to_event(row: &SqliteRow) -> Result<Event, StoreError> {
    let id: String = row.try_get("event_uuid")?;
    let opt_time = |col: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        row.try_get::<Option<String>, _>(col)?
            .map(|s| from_text(&s))
            .transpose()
    };
    Ok(Event {
        id: Uuid::parse_str(&id)
            .map_err(|e| StoreError::Unavailable(format!("bad uuid {id:?} in store: {e}")))?,
        created_time: from_text(&row.try_get::<String, _>("created_time")?)?,
        created_by: row.try_get("created_by")?,
        connected: row.try_get("connected")?,
        connected_by: row.try_get("connected_by")?,
        expires_time: from_text(&row.try_get::<String, _>("expires_time")?)?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        private: row.try_get("private")?,
        relation_id: row.try_get("relation_id")?,
        last_connected_at: opt_time("last_connected_at")?,
        last_disconnected_at: opt_time("last_disconnected_at")?,
        max_listeners: row
            .try_get::<Option<i64>, _>("max_listeners")?
            .and_then(|n| u32::try_from(n).ok()),
    })
}

#[async_trait::async_trait]
impl EventStore for SqliteStore {
    async fn create(&self, new: NewEvent) -> Result<Event, StoreError> {
        let now = new.now;
        let lifetime = chrono::Duration::from_std(new.lifetime)
            .map_err(|e| StoreError::Unavailable(format!("event lifetime: {e}")))?;
        let event = Event {
            id: Uuid::new_v4(),
            title: Some(new.title),
            description: Some(new.description),
            private: new.private,
            created_by: new.created_by,
            created_time: now,
            expires_time: now + lifetime,
            connected: false,
            connected_by: None,
            last_connected_at: None,
            last_disconnected_at: None,
            relation_id: None,
            max_listeners: new.max_listeners,
        };
        sqlx::query(
            "INSERT INTO events (event_uuid, created_time, created_by, expires_time, title, \
             description, private, max_listeners) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(event.id.to_string())
        .bind(to_text(event.created_time))
        .bind(event.created_by)
        .bind(to_text(event.expires_time))
        .bind(&event.title)
        .bind(&event.description)
        .bind(event.private)
        .bind(event.max_listeners)
        .execute(&self.writer)
        .await?;
        Ok(event)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE event_uuid = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    async fn list(&self, f: ListFilter) -> Result<Vec<Event>, StoreError> {
        // Keyset pagination: rows strictly after the cursor in (created_time, id) order.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events \
             WHERE (?1 OR expires_time > ?2) AND (NOT private OR ?3 OR created_by = ?4) \
             AND (?5 IS NULL OR created_time < ?5 OR (created_time = ?5 AND event_uuid < ?6)) \
             ORDER BY created_time DESC, event_uuid DESC LIMIT ?7"
        ))
        .bind(f.include_expired)
        .bind(to_text(f.now))
        .bind(f.all_private)
        .bind(f.private_of)
        .bind(f.after.map(|c| to_text(c.created_time)))
        .bind(f.after.map(|c| c.id.to_string()))
        // -1: no limit.
        .bind(f.limit.map_or(-1, i64::from))
        .fetch_all(&self.lists)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn mark_connected(
        &self,
        id: Uuid,
        by: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE events SET connected = TRUE, connected_by = COALESCE(?, connected_by), \
             last_connected_at = ? \
             WHERE event_uuid = ?",
        )
        .bind(by)
        .bind(to_text(at))
        .bind(id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn connect(&self, request: ConnectRequest) -> Result<Connect, StoreError> {
        let id = request.id;
        let writer = || ConnectWriter {
            writer: self.writer.clone(),
        };
        if self.connects.submit(request, writer).await? {
            Ok(Connect::Done)
        } else {
            Ok(Connect::Refused(self.get(id).await?))
        }
    }

    async fn mark_disconnected(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE events SET connected = FALSE, last_disconnected_at = ? WHERE event_uuid = ?",
        )
        .bind(to_text(at))
        .bind(id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_max_listeners(&self, id: Uuid, max: Option<u32>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE events SET max_listeners = ? WHERE event_uuid = ?")
            .bind(max)
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

mod sanctions;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_text_writes_time_format() {
        use chrono::TimeZone;
        let times = [
            Utc.with_ymd_and_hms(2026, 11, 30, 8, 5, 9).unwrap(),
            Utc.with_ymd_and_hms(1999, 1, 2, 23, 59, 59).unwrap()
                + chrono::Duration::nanoseconds(123_456_789),
            Utc.with_ymd_and_hms(12026, 1, 1, 0, 0, 0).unwrap(),
            DateTime::UNIX_EPOCH + chrono::Duration::microseconds(1),
            Utc::now(),
        ];
        assert_eq!(to_text(times[0]), "2026-11-30 08:05:09.000000");
        assert_eq!(to_text(times[1]), "1999-01-02 23:59:59.123456");
        for t in times {
            assert_eq!(
                from_text(&to_text(t)).unwrap().timestamp_micros(),
                t.timestamp_micros()
            );
        }
    }

    fn new_event(by: i64, private: bool, lifetime: Duration) -> NewEvent {
        NewEvent {
            created_by: by,
            title: format!("show of {by}"),
            description: "d".into(),
            private,
            lifetime,
            now: Utc::now(),
            max_listeners: None,
        }
    }

    #[tokio::test]
    async fn create_get_connect_disconnect() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("e.sqlite3"))
            .await
            .unwrap();
        let e = store
            .create(new_event(7, false, Duration::from_secs(3600)))
            .await
            .unwrap();
        let got = store.get(e.id).await.unwrap().unwrap();
        assert_eq!(got.title.as_deref(), Some("show of 7"));
        assert_eq!(got.created_time.timestamp(), e.created_time.timestamp());
        assert!(!got.connected);
        let at = Utc::now();
        assert!(store.mark_connected(e.id, Some(9), at).await.unwrap());
        let got = store.get(e.id).await.unwrap().unwrap();
        assert!(got.connected);
        assert_eq!(got.connected_by, Some(9));
        assert_eq!(got.last_connected_at.unwrap().timestamp(), at.timestamp());
        assert!(store.mark_disconnected(e.id, Utc::now()).await.unwrap());
        let got = store.get(e.id).await.unwrap().unwrap();
        assert!(!got.connected);
        assert_eq!(got.connected_by, Some(9), "last connected user is kept");
        assert!(got.last_disconnected_at.is_some());
        assert!(!store
            .mark_connected(Uuid::new_v4(), Some(1), at)
            .await
            .unwrap());
        assert!(store.get(Uuid::new_v4()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn list_filters_private_and_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("e.sqlite3"))
            .await
            .unwrap();
        let public = store
            .create(new_event(1, false, Duration::from_secs(3600)))
            .await
            .unwrap();
        let private = store
            .create(new_event(2, true, Duration::from_secs(3600)))
            .await
            .unwrap();
        let expired = store
            .create(new_event(1, false, Duration::from_millis(1)))
            .await
            .unwrap();
        // A second later the 1 ms event has expired; the others have not.
        let later = Utc::now() + chrono::Duration::seconds(1);
        let ids = |v: Vec<Event>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        let anon = ListFilter {
            private_of: None,
            all_private: false,
            include_expired: false,
            now: later,
            limit: None,
            after: None,
        };
        assert_eq!(ids(store.list(anon).await.unwrap()), vec![public.id]);
        let owner = ListFilter {
            private_of: Some(2),
            ..anon
        };
        let got = ids(store.list(owner).await.unwrap());
        assert!(got.contains(&private.id) && got.contains(&public.id) && got.len() == 2);
        let admin_all = ListFilter {
            private_of: None,
            all_private: true,
            include_expired: true,
            now: later,
            limit: None,
            after: None,
        };
        let got = ids(store.list(admin_all).await.unwrap());
        assert_eq!(got.len(), 3);
        assert!(got.contains(&expired.id));
    }
}
