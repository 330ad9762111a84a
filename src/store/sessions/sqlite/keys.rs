//! The writer's lookup keys: the mount's and the reporting Icecast's rows in their lookup
//! tables, remembered by text, and whether a client id may already have an open row; and how a
//! client id is stored.

use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, OptionalExtension, ToSql, Transaction};
use uuid::Uuid;

use super::STATIC;

// Keyed by what Icecast reported and jars decided, never a listener's choice.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Lookup-table keys by text, so that a row's mount and origin cost a hash lookup (without
/// an allocation), not a statement. Rows of those tables are never deleted, so an entry
/// never goes stale.
#[derive(Default)]
pub(super) struct Keys {
    /// By mount path: each event (or none) it was seen with, and the key.
    mounts: FastMap<String, Vec<(Option<Uuid>, i64)>>,
    /// By server: each port, and the key.
    origins: FastMap<String, Vec<(String, i64)>>,
    /// By origin: no open row has an integer client id above this one. Icecast counts client ids
    /// up from 1 and reuses them only after it restarts, so a new session's id is almost
    /// always above it, and then no open row can have its key: the `lost` update, an index
    /// probe per row, is skipped. Only this connection writes rows, and every row it opens
    /// goes through [`Keys::may_exist`], so the bound stays safe.
    max_client: FastMap<i64, i64>,
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

impl Keys {
    /// Whether a row with `client` of `origin` may exist; records `client` as written.
    pub(super) fn may_exist(
        &mut self,
        tx: &Transaction<'_>,
        origin: i64,
        client: &Client<'_>,
    ) -> rusqlite::Result<bool> {
        let Some(id) = client.integer() else {
            return Ok(true);
        };
        let max = match self.max_client.get(&origin) {
            Some(max) => *max,
            None => {
                // Integers sort below any text in SQLite: the greatest integer id, one index
                // seek.
                let max: Option<i64> = tx
                    .prepare_cached(
                        "SELECT client FROM listener_sessions WHERE origin = ?1 AND client < '' \
                         ORDER BY client DESC LIMIT 1",
                    )?
                    .query_row([origin], |r| r.get(0))
                    .optional()?;
                max.unwrap_or(i64::MIN)
            }
        };
        self.max_client.insert(origin, max.max(id));
        Ok(id <= max)
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

    /// The id as an integer, when it is written as one.
    fn integer(&self) -> Option<i64> {
        self.integer
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
