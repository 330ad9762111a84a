//! User agents and referers, each stored once (`listener_session_texts`) and rows holding its
//! key: a station's listeners come through a few dozen players and pages, and a row's own copy
//! of both was most of its text (the writer's instructions per row: 7.9k with them as text).
//! Each text notes the last row that used it, written once per batch, so that a purge deletes
//! the texts no row left uses without reading the table.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};

// Keyed by listeners' own text: seeded per process, so that no one can choose colliding keys.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS listener_session_texts (
    id      INTEGER PRIMARY KEY,
    text    TEXT NOT NULL UNIQUE,
    last_id INTEGER NOT NULL
);
";

/// Texts whose keys the writer remembers, at most: enough for every player and page a
/// station sees; listeners sending a new agent each (the text is theirs to choose) make the
/// writer forget them all and look them up again, rather than grow.
const REMEMBERED: usize = 4096;

/// The keys of texts seen, and the last row each was given to since they were written.
#[derive(Default)]
pub(super) struct Texts {
    known: FastMap<Box<str>, Known>,
    /// Texts used since the last write: key and last row.
    used: Vec<(i64, i64)>,
}

struct Known {
    id: i64,
    /// Where in `used` this text's last row is, if it is there (checked by key).
    slot: usize,
}

impl Texts {
    /// The key of `text` for row `row` (greater than every row given one before), the text
    /// stored if it is new. One lookup by text, then none by key: the texts repeat on
    /// nearly every row.
    pub(super) fn key(
        &mut self,
        tx: &Transaction<'_>,
        text: &str,
        row: i64,
    ) -> rusqlite::Result<i64> {
        let known = match self.known.get_mut(text) {
            Some(known) => known,
            None => {
                let id = stored(tx, text, row)?;
                if self.known.len() >= REMEMBERED {
                    self.known.clear();
                }
                self.known.entry(text.into()).or_insert(Known {
                    id,
                    slot: usize::MAX,
                })
            }
        };
        match self.used.get_mut(known.slot) {
            Some(used) if used.0 == known.id => used.1 = row,
            _ => {
                known.slot = self.used.len();
                self.used.push((known.id, row));
            }
        }
        Ok(known.id)
    }

    /// Writes in `tx` the last row of each text used since the last call.
    pub(super) fn write(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if self.used.is_empty() {
            return Ok(());
        }
        let mut stmt =
            tx.prepare_cached("UPDATE listener_session_texts SET last_id = ?1 WHERE id = ?2")?;
        for (id, row) in self.used.drain(..) {
            stmt.execute(params![row, id])?;
        }
        Ok(())
    }
}

/// The key of `text`, stored now if it is not yet.
fn stored(tx: &Transaction<'_>, text: &str, row: i64) -> rusqlite::Result<i64> {
    let found = tx
        .prepare_cached("SELECT id FROM listener_session_texts WHERE text = ?1")?
        .query_row([text], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO listener_session_texts (text, last_id) VALUES (?1, ?2)")?
        .execute(params![text, row])?;
    Ok(tx.last_insert_rowid())
}

/// Deletes the texts no row uses any more: those whose last row is below every row left
/// (after a purge, which deletes the oldest rows).
pub(super) fn purge(tx: &Transaction<'_>) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM listener_session_texts WHERE last_id < \
         (SELECT coalesce(min(id), 9223372036854775807) FROM listener_sessions)",
        [],
    )
}
