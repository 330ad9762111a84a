//! Listener sessions in the embedded SQLite file, beside `events`. A row is kept narrow, since
//! every listener who joins writes one: times as integer microseconds, the mount and the Icecast
//! that reported the session as small keys into two lookup tables (`listener_session_mounts`,
//! `listener_session_origins`), the client id as an integer. One connection writes
//! ([`rusqlite`]: statements prepared once per batch, sixteen new rows per `INSERT`), owned by
//! a thread of its own (`jars-sessions`), which keeps the open rows' ids by key in memory
//! ([`keys`]) rather than an index on the key, and each mount's rows as spans of ids
//! ([`spans`]) rather than an index on the mount; user agents and referers are stored once
//! each, rows holding their keys ([`texts`]); reports read on connections of their own.
//! The tables are created when opened (any number of times); an older layout is converted in
//! place, in one transaction ([`layout`]).

mod bound;
mod keys;
mod layout;
mod read;
mod spans;
mod texts;

use bound::{Binder, Held};
use keys::{Client, Keys};

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Transaction};

use super::SessionStore;
use crate::sessions::{
    late_remove_window, OpenRow, OpenedSession, SessionFilter, SessionKey, SessionOp,
    SessionRecord, SessionText,
};
use crate::store::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS listener_session_mounts (
    id         INTEGER PRIMARY KEY,
    event_uuid TEXT NOT NULL,
    mount      TEXT NOT NULL,
    UNIQUE (mount, event_uuid)
);
CREATE TABLE IF NOT EXISTS listener_session_origins (
    id     INTEGER PRIMARY KEY,
    server TEXT NOT NULL,
    port   TEXT NOT NULL,
    UNIQUE (server, port)
);
CREATE TABLE IF NOT EXISTS listener_sessions (
    id         INTEGER PRIMARY KEY,
    mount      INTEGER NOT NULL,
    origin     INTEGER NOT NULL,
    client     NOT NULL,
    started    INTEGER NOT NULL,
    ended      INTEGER,
    duration   INTEGER,
    ticket     TEXT,
    member     INTEGER,
    ip         TEXT,
    agent      TEXT,    -- as text: rows an older jars wrote
    referer    TEXT,
    timelimit  INTEGER,
    end_reason TEXT,
    agent_key   INTEGER, -- listener_session_texts
    referer_key INTEGER
);
-- Open rows are found by key through the writer's memory (keys.rs), one mount's rows
-- through its spans of ids (spans.rs); this index finds the rows closed as `lost` for a late
-- `listener_remove`, and only those are in it.
DROP INDEX IF EXISTS listener_sessions_key;
CREATE INDEX IF NOT EXISTS listener_sessions_lost ON listener_sessions (origin, client)
    WHERE end_reason = 'lost';
";

// `event_uuid` of a static mount's row in `listener_session_mounts` ('' rather than NULL, so
// that the UNIQUE constraint holds for it too).
const STATIC: &str = "";

// OR FAIL rather than the default ABORT: a multi-row INSERT that may abort keeps a statement
// journal of every page it changes, to undo its own rows (4% of the writer's instructions,
// callgrind). Nothing it binds can break a constraint, and a failed batch is rolled back whole
// with its transaction anyway.
// The row's id is SQLite's (the greatest plus one, which [`Keys`] counts along with it and
// checks): binding it costs a seek per row (5% of the writer's instructions).
const INSERT: &str = "INSERT OR FAIL INTO listener_sessions (mount, origin, client, started, \
    ticket, member, ip, agent_key, referer_key, timelimit) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
/// The values [`INSERT`] binds per row.
const OPEN_VALUES: usize = 10;
/// Rows [`INSERT_MANY`] inserts at once: a statement's fixed cost (opening the table's and
/// indexes' cursors, halting) shared by this many rows.
const ROWS_PER_INSERT: usize = 16;
static INSERT_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let (head, _) = INSERT.split_once(" VALUES").expect("INSERT has VALUES");
    let row = format!("({})", ["?"; OPEN_VALUES].join(", "));
    format!("{head} VALUES {}", vec![row; ROWS_PER_INSERT].join(", "))
});
// Open rows by id (found in [`Keys`]); `ended IS NULL` all the same, so that a row closed
// meanwhile is never closed again.
const LOST: &str = "UPDATE listener_sessions SET ended = ?1, end_reason = 'lost' \
    WHERE id = ?2 AND ended IS NULL";
// ?1 ended, ?2 Icecast's duration; the reason is the kick's if marked, else whether the
// session lasted (within a second) as long as the timelimit jars sent.
const CLOSE: &str = "UPDATE listener_sessions SET ended = ?1, duration = ?2, \
    end_reason = COALESCE(end_reason, CASE WHEN timelimit IS NOT NULL \
    AND COALESCE(?2, (?1 - started + 500000) / 1000000) >= timelimit - 1 \
    THEN 'timelimit' ELSE 'left' END) \
    WHERE id = ?3 AND ended IS NULL";
const LATE_CLOSE: &str = "UPDATE listener_sessions SET ended = ?1, duration = ?2, \
    end_reason = CASE WHEN timelimit IS NOT NULL AND ?2 >= timelimit - 1 THEN 'timelimit' \
    ELSE 'left' END WHERE id = (SELECT id FROM listener_sessions WHERE origin = ?3 \
    AND client = ?4 AND started >= ?5 AND started <= ?6 AND end_reason = 'lost' \
    ORDER BY started DESC LIMIT 1)";
const KICKED: &str = "UPDATE listener_sessions SET end_reason = 'kicked' \
    WHERE id = ?1 AND ended IS NULL";

/// The session tables of one SQLite file.
pub struct SqliteSessions {
    path: PathBuf,
    /// Work for the writing connection's thread (`jars-sessions`), which owns it; the thread
    /// ends when this is dropped.
    writer: std::sync::mpsc::Sender<WriterJob>,
}

type WriterJob = Box<dyn FnOnce(&mut Writer) + Send>;

/// The writing connection and its [`Keys`] (`None`: to be read from the table before the
/// next batch).
struct Writer {
    conn: Connection,
    keys: Option<Keys>,
}

/// `t` as stored: microseconds since the Unix epoch.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn seconds(v: Option<u64>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}

/// The statements a batch runs, prepared once for it (`prepare_cached` hashes and compares
/// the whole SQL text on every call: a tenth of the writer's time when called per row).
struct Statements<'t> {
    tx: &'t Transaction<'t>,
    insert: CachedStatement<'t>,
    insert_many: CachedStatement<'t>,
    /// What `insert`'s and `insert_many`'s parameters hold.
    held_one: Vec<Held>,
    held_many: Vec<Held>,
    lost: CachedStatement<'t>,
    close: CachedStatement<'t>,
    late_close: CachedStatement<'t>,
    kicked: CachedStatement<'t>,
}

/// An open row waiting to be inserted with others, its id and lookup keys found.
struct PendingOpen<'o> {
    id: i64,
    mount: i64,
    origin: i64,
    agent: Option<i64>,
    referer: Option<i64>,
    s: &'o OpenedSession,
    text: SessionText<'o>,
    client: Client<'o>,
}

/// Binds `p`'s [`OPEN_VALUES`] values after the first `at` parameters of `b`'s statement.
fn bind_open(b: &mut Binder<'_, '_>, at: usize, p: &PendingOpen<'_>) -> rusqlite::Result<()> {
    let (s, t) = (p.s, &p.text);
    b.integer(at + 1, Some(p.mount))?;
    b.integer(at + 2, Some(p.origin))?;
    match p.client.integer() {
        Some(n) => b.integer(at + 3, Some(n))?,
        None => b.text(at + 3, Some(p.client.text()))?,
    }
    b.integer(at + 4, Some(micros(s.started)))?;
    b.text(at + 5, t.ticket)?;
    b.integer(at + 6, s.member)?;
    b.text(at + 7, t.ip)?;
    b.integer(at + 8, p.agent)?;
    b.integer(at + 9, p.referer)?;
    b.integer(at + 10, seconds(s.timelimit))?;
    Ok(())
}

impl<'t> Statements<'t> {
    fn prepare(tx: &'t Transaction<'t>) -> rusqlite::Result<Statements<'t>> {
        Ok(Statements {
            tx,
            insert: tx.prepare_cached(INSERT)?,
            insert_many: tx.prepare_cached(&INSERT_MANY)?,
            held_one: vec![Held::Unknown; OPEN_VALUES],
            held_many: vec![Held::Unknown; OPEN_VALUES * ROWS_PER_INSERT],
            lost: tx.prepare_cached(LOST)?,
            close: tx.prepare_cached(CLOSE)?,
            late_close: tx.prepare_cached(LATE_CLOSE)?,
            kicked: tx.prepare_cached(KICKED)?,
        })
    }

    /// Opens `s`: queued in `pending` to go in with others in one statement; a row with its
    /// key that may be open is closed as `lost` first (after inserting the pending rows, when
    /// one of them has that key).
    fn open<'o>(
        &mut self,
        keys: &mut Keys,
        s: &'o OpenedSession,
        pending: &mut Vec<PendingOpen<'o>>,
    ) -> rusqlite::Result<()> {
        let text = s.text();
        let (mount, origin) = self.lookup_keys(keys, s.event, &text)?;
        let client = Client::new(text.client);
        let id = keys.new_row(mount);
        if let Some(old) = keys.replace_open(origin, &client, id) {
            // The row it closes must be in the table first.
            if pending.iter().any(|p| p.id == old) {
                self.flush(pending)?;
            }
            // An open row with this key: the client id was reused, its end never came.
            self.lost.execute(params![micros(s.started), old])?;
        }
        pending.push(PendingOpen {
            id,
            mount,
            origin,
            agent: keys.text(self.tx, text.agent, id)?,
            referer: keys.text(self.tx, text.referer, id)?,
            s,
            text,
            client,
        });
        if pending.len() == ROWS_PER_INSERT {
            self.flush(pending)?;
        }
        Ok(())
    }

    /// The keys of a row's mount and origin in their lookup tables, created as needed.
    fn lookup_keys(
        &self,
        keys: &mut Keys,
        event: Option<uuid::Uuid>,
        text: &SessionText<'_>,
    ) -> rusqlite::Result<(i64, i64)> {
        let mount = keys.mount(self.tx, event, text.mount)?;
        let origin = keys
            .origin(self.tx, text.server, text.port, true)?
            .expect("created above");
        Ok((mount, origin))
    }

    /// Inserts the `pending` opens: a full set in one statement, fewer one by one.
    fn flush(&mut self, pending: &mut Vec<PendingOpen<'_>>) -> rusqlite::Result<()> {
        if pending.len() == ROWS_PER_INSERT {
            let mut bind = Binder {
                stmt: &mut self.insert_many,
                held: &mut self.held_many,
            };
            for (i, p) in pending.iter().enumerate() {
                bind_open(&mut bind, i * OPEN_VALUES, p)?;
            }
            self.insert_many.raw_execute()?;
            self.inserted(pending[ROWS_PER_INSERT - 1].id)?;
        } else {
            for p in pending.iter() {
                let mut bind = Binder {
                    stmt: &mut self.insert,
                    held: &mut self.held_one,
                };
                bind_open(&mut bind, 0, p)?;
                self.insert.raw_execute()?;
                self.inserted(p.id)?;
            }
        }
        pending.clear();
        Ok(())
    }

    /// Checks that the row just inserted got `id`, the one [`Keys`] gave it (a new row's id is
    /// the greatest plus one, and only this connection writes rows): should it not, the batch
    /// fails, rolled back, rather than closing some other row later.
    fn inserted(&self, id: i64) -> rusqlite::Result<()> {
        if self.tx.last_insert_rowid() == id {
            return Ok(());
        }
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERNAL),
            Some(format!(
                "listener_sessions: row {} inserted where {id} was expected",
                self.tx.last_insert_rowid()
            )),
        ))
    }

    fn close(
        &mut self,
        keys: &mut Keys,
        key: &SessionKey,
        ended: DateTime<Utc>,
        duration: Option<u64>,
    ) -> rusqlite::Result<()> {
        let Some(origin) = keys.origin(self.tx, &key.server, &key.port, false)? else {
            return Ok(());
        };
        let client = Client::new(&key.client);
        let (ended_at, secs) = (micros(ended), seconds(duration));
        let done = match keys.take_open(origin, &client) {
            Some(id) => self.close.execute(params![ended_at, secs, id])?,
            None => 0,
        };
        if let (0, Some(d)) = (done, duration) {
            let (from, to) = late_remove_window(ended, d);
            self.late_close.execute(params![
                ended_at,
                secs,
                origin,
                client,
                micros(from),
                micros(to)
            ])?;
        }
        Ok(())
    }

    fn kicked(&mut self, keys: &mut Keys, key: &SessionKey) -> rusqlite::Result<()> {
        let origin = keys.origin(self.tx, &key.server, &key.port, false)?;
        if let Some(id) = origin.and_then(|o| keys.open_row(o, &Client::new(&key.client))) {
            self.kicked.execute([id])?;
        }
        Ok(())
    }
}

impl Writer {
    /// Applies `ops` in one transaction; after a failure, the keys are read again (the
    /// rollback undid rows and lookup rows they hold).
    fn apply<'o>(&mut self, ops: impl Iterator<Item = &'o SessionOp>) -> rusqlite::Result<()> {
        let applied = self.try_apply(ops);
        if applied.is_err() {
            self.keys = None;
        }
        applied
    }

    fn try_apply<'o>(&mut self, ops: impl Iterator<Item = &'o SessionOp>) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let keys = match &mut self.keys {
            Some(keys) => keys,
            None => self.keys.insert(Keys::load(&tx)?),
        };
        let mut run = Statements::prepare(&tx)?;
        let mut pending = Vec::with_capacity(ROWS_PER_INSERT);
        for op in ops {
            if !matches!(op, SessionOp::Open(_)) {
                run.flush(&mut pending)?;
            }
            match op {
                SessionOp::Open(s) => run.open(keys, s, &mut pending)?,
                SessionOp::Close {
                    key,
                    ended,
                    duration,
                } => run.close(keys, key, *ended, *duration)?,
                SessionOp::Kicked { key } => run.kicked(keys, key)?,
            }
        }
        run.flush(&mut pending)?;
        drop(run);
        keys.write_back(&tx)?;
        tx.commit()
    }
}

fn failed(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what} in {}: {e}", path.display()))
}

/// A connection to `path` as every session connection is set up.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL, as the event store sets it; NORMAL: a crash may lose the last batches, never
    // corrupt the file. Checkpoint after 16,000 WAL pages (~64 MiB), not SQLite's 1,000:
    // every batch rewrites the same rightmost pages of the table and its indexes, and
    // checkpointing them every few batches doubled the writer's CPU per row.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA wal_autocheckpoint = 16000;",
    )?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

impl SqliteSessions {
    /// Opens the file at `path` (the event store's), creating the tables if needed and
    /// converting a table of the first layout.
    pub async fn open(path: &Path) -> Result<SqliteSessions, StoreError> {
        crate::atomic_file::create_private_file(path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        let owned = path.to_path_buf();
        // The open rows' keys are read now, before the daemon is ready: read by the first
        // batch instead, under tens of thousands of joins a second, the queue overflowed while
        // a large table was read (measured: bench/run, its table of a million open rows).
        let (conn, keys) = tokio::task::spawn_blocking(move || {
            let mut conn = connect(&owned).map_err(|e| failed("opening", &owned, e))?;
            layout::prepare(&mut conn)
                .map_err(|e| failed("creating listener_sessions", &owned, e))?;
            let keys =
                Keys::load(&conn).map_err(|e| failed("reading listener_sessions", &owned, e))?;
            Ok::<_, StoreError>((conn, keys))
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        // A thread of its own, rather than tokio's blocking pool: one long-lived owner of the
        // connection, and its CPU shows apart in per-thread accounts.
        let (tx, rx) = std::sync::mpsc::channel::<WriterJob>();
        std::thread::Builder::new()
            .name("jars-sessions".into())
            .spawn(move || {
                let mut writer = Writer {
                    conn,
                    keys: Some(keys),
                };
                for job in rx {
                    job(&mut writer);
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("starting the session writer: {e}")))?;
        Ok(SqliteSessions {
            path: path.to_path_buf(),
            writer: tx,
        })
    }

    /// Runs `f` on the writing connection, on its thread.
    async fn write<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Writer) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let path = self.path.clone();
        let job: WriterJob = Box::new(move |w| {
            let _ = done.send(f(w).map_err(|e| failed(what, &path, e)));
        });
        let gone = || StoreError::Unavailable("the session writer has stopped".into());
        self.writer.send(job).map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }

    /// Runs `f` on a reading connection of its own, on the blocking pool: a long report never
    /// holds up the writer.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = connect(&path).map_err(|e| failed("opening", &path, e))?;
            f(&conn).map_err(|e| failed("reading listener_sessions", &path, e))
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteSessions {
    async fn apply_chunks(&self, chunks: Vec<Vec<SessionOp>>) -> Result<(), StoreError> {
        self.write("writing listener_sessions", move |w| {
            w.apply(chunks.iter().flatten())
        })
        .await
    }

    async fn sessions(&self, f: SessionFilter) -> Result<Vec<SessionRecord>, StoreError> {
        self.read(move |conn| read::sessions(conn, f)).await
    }

    async fn open_before(
        &self,
        before: DateTime<Utc>,
        timelimit_before: DateTime<Utc>,
    ) -> Result<Vec<OpenRow>, StoreError> {
        self.read(move |conn| read::open_before(conn, micros(before), micros(timelimit_before)))
            .await
    }

    async fn close_lost(&self, ids: &[i64], at: DateTime<Utc>) -> Result<u64, StoreError> {
        let ids = ids.to_vec();
        self.write("closing lost listener sessions", move |w| {
            let tx = w.conn.transaction()?;
            let mut closed = 0;
            for id in &ids {
                closed += tx
                    .prepare_cached(
                        "UPDATE listener_sessions SET ended = ?1, end_reason = 'lost' \
                         WHERE id = ?2 AND ended IS NULL",
                    )?
                    .execute(params![micros(at), id])? as u64;
            }
            tx.commit()?;
            if let Some(keys) = &mut w.keys {
                keys.forget(&ids);
            }
            Ok(closed)
        })
        .await
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // Rows go in in the order their sessions started, so the old ones are a range of ids
        // at the start: found from the first row new enough (read in id order, no index on
        // the start needed), then deleted by id. A row older than one before it (a clock set
        // back) waits until that one is purged too.
        self.write("purging listener_sessions", move |w| {
            let cut = micros(before);
            let first_kept: Option<i64> = w
                .conn
                .query_row(
                    "SELECT id FROM listener_sessions WHERE started >= ?1 ORDER BY id LIMIT 1",
                    [cut],
                    |r| r.get(0),
                )
                .optional()?;
            let range = params![first_kept.unwrap_or(i64::MAX), cut];
            let tx = w.conn.transaction()?;
            // Open rows among them leave the keys too (their ids may be given again).
            let open: Vec<i64> = tx
                .prepare(
                    "SELECT id FROM listener_sessions WHERE id < ?1 AND started < ?2 \
                     AND ended IS NULL",
                )?
                .query_map(range, |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let deleted = tx.execute(
                "DELETE FROM listener_sessions WHERE id < ?1 AND started < ?2",
                range,
            )?;
            // Spans below every row left hold none; texts last used there are used by none.
            tx.execute(
                "DELETE FROM listener_session_spans WHERE last_id < \
                 (SELECT coalesce(min(id), 9223372036854775807) FROM listener_sessions)",
                [],
            )?;
            texts::purge(&tx)?;
            tx.commit()?;
            if let Some(keys) = &mut w.keys {
                keys.forget(&open);
                keys.after_purge(&w.conn)?;
            }
            Ok(deleted as u64)
        })
        .await
    }
}
