//! The writer's lookup keys: the mount's and the reporting Icecast's rows in their lookup
//! tables, remembered by text; the open rows by session key, and the next row id; and how a
//! client id is stored.

use std::collections::{BTreeMap, HashMap};

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, ToSql, Transaction};
use uuid::Uuid;

use super::spans::Spans;
use super::texts::Texts;
use super::STATIC;

// Keyed by what Icecast reported and jars decided, never a listener's choice.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Lookup-table keys by text, so that a row's mount and origin cost a hash lookup (without
/// an allocation), not a statement; and the open rows by key, so that opening, closing or
/// kicking a session finds its row without an index on the key (one index fewer to write per
/// row: 15% of the writer's instructions, callgrind). Only the writer's connection writes
/// rows, so this stays true to the table while its batches commit and maintenance tells it
/// what it closed or deleted; the writer reads it again ([`Keys::load`]) after a batch failed
/// (its rows and lookup rows rolled back).
pub(super) struct Keys {
    /// By mount path: each event (or none) it was seen with, and the key.
    mounts: FastMap<String, Vec<(Option<Uuid>, i64)>>,
    /// By server: each port, and the key.
    origins: FastMap<String, Vec<(String, i64)>>,
    /// Open rows by origin and integer client id (Icecast's are), and their row ids. Ordered,
    /// not hashed: Icecast numbers its clients in order, so a new one goes in at the end,
    /// where the nodes are in the caches; a hash put each in a random place of a large table
    /// (with 1.7 million open rows, the writer's thread took 1.1 µs a row against 1.95, and
    /// jars held 110 MiB against 123).
    open: BTreeMap<(i64, i64), i64>,
    /// Open rows whose client id is text.
    open_text: FastMap<(i64, String), i64>,
    /// The id the next row gets: rows go in in the order they are written.
    next_id: i64,
    /// Where each mount's rows lie.
    spans: Spans,
    /// User agents' and referers' keys.
    texts: Texts,
}

impl Keys {
    /// The keys of the table as it is: its open rows (one pass over the table), its
    /// greatest id and its mounts' latest spans; lookup rows are found as they are needed.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Keys> {
        let mut keys = Keys {
            mounts: FastMap::default(),
            origins: FastMap::default(),
            open: BTreeMap::new(),
            open_text: FastMap::default(),
            next_id: 1,
            spans: Spans::load(conn)?,
            texts: Texts::default(),
        };
        let mut stmt = conn.prepare(
            "SELECT id, origin, client FROM listener_sessions WHERE ended IS NULL ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (id, origin): (i64, i64) = (row.get(0)?, row.get(1)?);
            match row.get_ref(2)? {
                ValueRef::Integer(n) => {
                    keys.open.insert((origin, n), id);
                }
                other => {
                    let text = String::from_utf8_lossy(other.as_bytes()?).into_owned();
                    keys.open_text.insert((origin, text), id);
                }
            }
        }
        keys.follow_table(conn)?;
        Ok(keys)
    }

    /// The next row's id: after the greatest in the table, as SQLite chooses it.
    pub(super) fn follow_table(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let max: Option<i64> =
            conn.query_row("SELECT max(id) FROM listener_sessions", [], |r| r.get(0))?;
        self.next_id = max.unwrap_or(0).saturating_add(1);
        Ok(())
    }

    /// After a purge: the next id as the table now has it (emptied, it gives ids again) and
    /// the spans it kept; texts looked up again (the purge may have deleted them).
    pub(super) fn after_purge(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.follow_table(conn)?;
        self.spans = Spans::load(conn)?;
        self.texts = Texts::default();
        Ok(())
    }

    /// Rows `ids` are no longer open (closed or deleted by maintenance).
    pub(super) fn forget(&mut self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let gone: std::collections::HashSet<i64> = ids.iter().copied().collect();
        self.open.retain(|_, id| !gone.contains(id));
        self.open_text.retain(|_, id| !gone.contains(id));
    }

    /// The id for a new row of `mount`.
    pub(super) fn new_row(&mut self, mount: i64) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.spans.note(mount, id);
        id
    }

    /// The key of user agent or referer `text` of new row `row`.
    pub(super) fn text(
        &mut self,
        tx: &Transaction<'_>,
        text: Option<&str>,
        row: i64,
    ) -> rusqlite::Result<Option<i64>> {
        text.map(|t| self.texts.key(tx, t, row)).transpose()
    }

    /// Writes what new rows changed: their mounts' spans, their texts' last rows.
    pub(super) fn write_back(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.spans.write(tx)?;
        self.texts.write(tx)
    }

    /// The open row of `client` of `origin`.
    pub(super) fn open_row(&self, origin: i64, client: &Client<'_>) -> Option<i64> {
        match client.integer {
            Some(n) => self.open.get(&(origin, n)).copied(),
            None => self
                .open_text
                .get(&(origin, client.text.to_string()))
                .copied(),
        }
    }

    /// Row `id` is now the open row of `client` of `origin`; the row that was, if any (one
    /// search of the map for both: a tenth of the writer's instructions, callgrind).
    pub(super) fn replace_open(
        &mut self,
        origin: i64,
        client: &Client<'_>,
        id: i64,
    ) -> Option<i64> {
        match client.integer {
            Some(n) => self.open.insert((origin, n), id),
            None => self.open_text.insert((origin, client.text.to_string()), id),
        }
    }

    /// The open row of `client` of `origin`, no longer open.
    pub(super) fn take_open(&mut self, origin: i64, client: &Client<'_>) -> Option<i64> {
        match client.integer {
            Some(n) => self.open.remove(&(origin, n)),
            None => self.open_text.remove(&(origin, client.text.to_string())),
        }
    }
}

impl Keys {
    pub(super) fn mount(
        &mut self,
        tx: &Transaction<'_>,
        event: Option<Uuid>,
        mount: &str,
    ) -> rusqlite::Result<i64> {
        let known = self
            .mounts
            .get(mount)
            .and_then(|seen| seen.iter().find(|(e, _)| *e == event).map(|(_, id)| *id));
        if let Some(id) = known {
            return Ok(id);
        }
        let uuid = event.map_or(STATIC.to_string(), |e| e.to_string());
        tx.prepare_cached(
            "INSERT INTO listener_session_mounts (event_uuid, mount) VALUES (?1, ?2) \
             ON CONFLICT (mount, event_uuid) DO NOTHING",
        )?
        .execute(params![uuid, mount])?;
        let id = tx
            .prepare_cached(
                "SELECT id FROM listener_session_mounts WHERE event_uuid = ?1 AND mount = ?2",
            )?
            .query_row(params![uuid, mount], |r| r.get(0))?;
        self.mounts
            .entry(mount.to_string())
            .or_default()
            .push((event, id));
        Ok(id)
    }

    /// The key of `server:port`; `None` when `create` is false and none exists (no row can
    /// then have it).
    pub(super) fn origin(
        &mut self,
        tx: &Transaction<'_>,
        server: &str,
        port: &str,
        create: bool,
    ) -> rusqlite::Result<Option<i64>> {
        let known = self
            .origins
            .get(server)
            .and_then(|seen| seen.iter().find(|(p, _)| p == port).map(|(_, id)| *id));
        if known.is_some() {
            return Ok(known);
        }
        if create {
            tx.prepare_cached(
                "INSERT INTO listener_session_origins (server, port) VALUES (?1, ?2) \
                 ON CONFLICT (server, port) DO NOTHING",
            )?
            .execute(params![server, port])?;
        }
        let id: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM listener_session_origins WHERE server = ?1 AND port = ?2",
            )?
            .query_row(params![server, port], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            self.origins
                .entry(server.to_string())
                .or_default()
                .push((port.to_string(), id));
        }
        Ok(id)
    }
}

/// A client id as stored: an integer when it is one (Icecast's always are), else its text.
/// Parsed once: a row's id is both looked up and bound.
#[derive(Clone, Copy)]
pub(super) struct Client<'a> {
    text: &'a str,
    integer: Option<i64>,
}

impl<'a> Client<'a> {
    pub(super) fn new(text: &'a str) -> Client<'a> {
        // An integer only when written as one (no sign, no leading zero), so that it reads
        // back as the same text.
        let b = text.as_bytes();
        let canonical =
            !b.is_empty() && b.iter().all(u8::is_ascii_digit) && (b[0] != b'0' || b.len() == 1);
        Client {
            text,
            integer: canonical.then(|| text.parse().ok()).flatten(),
        }
    }
}

impl Client<'_> {
    /// The id as an integer, when it is one.
    pub(super) fn integer(&self) -> Option<i64> {
        self.integer
    }

    /// The id as Icecast sent it.
    pub(super) fn text(&self) -> &str {
        self.text
    }
}

impl ToSql for Client<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.integer {
            Some(n) => ToSqlOutput::Owned(Value::Integer(n)),
            None => ToSqlOutput::Borrowed(ValueRef::Text(self.text.as_bytes())),
        })
    }
}
