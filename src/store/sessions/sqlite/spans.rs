//! Where each mount's rows lie, in place of an index on the mount: spans of row ids
//! (`listener_session_spans`). Rows go in in id order, so a mount's rows come in runs; its
//! latest span grows while its next row comes within [`GAP`] ids of its last one. A busy mount
//! thus has one span per busy stretch, written once per batch, where an index took an entry
//! per row (a fifth of the writer's instructions, callgrind). One event's rows are read from
//! its mounts' spans, other mounts' rows in them skipped.

use std::collections::HashMap;

use rusqlite::{params, Connection, Transaction};

// Keyed by the writer's own mount keys.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// How far past its last row a mount's span grows to take a new row: the other mounts' rows
/// a reading of the mount may step over, at most, per row of its own.
pub(super) const GAP: i64 = 1024;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS listener_session_spans (
    mount    INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    last_id  INTEGER NOT NULL,
    PRIMARY KEY (mount, first_id)
) WITHOUT ROWID;
";

/// Ids `first..=last`, holding every row of one mount in that range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub mount: i64,
    pub first: i64,
    pub last: i64,
}

/// Each mount's latest span, and the spans changed since they were last written.
#[derive(Default)]
pub(super) struct Spans {
    latest: FastMap<i64, Latest>,
    /// Spans that ended before they were written.
    ended: Vec<Span>,
    /// Mounts whose latest span is to be written.
    dirty: Vec<i64>,
}

struct Latest {
    span: Span,
    /// Changed since written (its mount is in `Spans::dirty`).
    dirty: bool,
}

impl Spans {
    /// The latest span of each mount, as stored.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Spans> {
        let mut spans = Spans::default();
        // SQLite: with max(), the bare column comes from the row holding the maximum.
        let mut stmt = conn.prepare(
            "SELECT mount, max(first_id), last_id FROM listener_session_spans GROUP BY mount",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let span = Span {
                mount: r.get(0)?,
                first: r.get(1)?,
                last: r.get(2)?,
            };
            spans
                .latest
                .insert(span.mount, Latest { span, dirty: false });
        }
        Ok(spans)
    }

    /// Row `id` (greater than every id noted before) is `mount`'s.
    pub(super) fn note(&mut self, mount: i64, id: i64) {
        let new = Span {
            mount,
            first: id,
            last: id,
        };
        let latest = self.latest.entry(mount).or_insert(Latest {
            span: new,
            dirty: false,
        });
        if id > latest.span.last && id - latest.span.last <= GAP {
            latest.span.last = id;
        } else {
            if latest.dirty {
                self.ended.push(latest.span);
            }
            latest.span = new;
        }
        if !latest.dirty {
            latest.dirty = true;
            self.dirty.push(mount);
        }
    }

    /// The spans changed since the last call, to be written; forgotten by this call.
    pub(super) fn take_changed(&mut self) -> Vec<Span> {
        let mut out = std::mem::take(&mut self.ended);
        for mount in self.dirty.drain(..) {
            if let Some(latest) = self.latest.get_mut(&mount) {
                latest.dirty = false;
                out.push(latest.span);
            }
        }
        out
    }

    /// Writes the changed spans in `tx`.
    pub(super) fn write(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        write_spans(tx, &self.take_changed())
    }
}

/// Spans for every row of the table, in place of any it has (one that kept its rows' mounts
/// in an index, written to by an older jars since): read in id order, as the writer would
/// have noted them.
pub(super) fn build(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM listener_session_spans", [])?;
    let mut spans = Spans::default();
    {
        let mut stmt = tx.prepare("SELECT id, mount FROM listener_sessions ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            spans.note(r.get(1)?, r.get(0)?);
            // Keep memory flat on a large table.
            if spans.ended.len() >= 4096 {
                write_spans(tx, &std::mem::take(&mut spans.ended))?;
            }
        }
    }
    spans.write(tx)
}

/// Stores `spans`, a span already stored (same mount and first id) grown to its new end.
fn write_spans(tx: &Transaction<'_>, spans: &[Span]) -> rusqlite::Result<()> {
    if spans.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO listener_session_spans (mount, first_id, last_id) VALUES (?1, ?2, ?3) \
         ON CONFLICT (mount, first_id) DO UPDATE SET last_id = excluded.last_id",
    )?;
    for s in spans {
        stmt.execute(params![s.mount, s.first, s.last])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(mount: i64, first: i64, last: i64) -> Span {
        Span { mount, first, last }
    }

    #[test]
    fn a_mount_span_grows_within_the_gap_and_a_new_one_starts_past_it() {
        let mut s = Spans::default();
        s.note(1, 1);
        s.note(2, 2);
        s.note(1, 3);
        let mut changed = s.take_changed();
        changed.sort_by_key(|s| s.mount);
        assert_eq!(changed, [span(1, 1, 3), span(2, 2, 2)]);
        assert!(s.take_changed().is_empty(), "written once");
        // Mount 1 again, just within the gap: the same span grows.
        s.note(1, 3 + GAP);
        assert_eq!(s.take_changed(), [span(1, 1, 3 + GAP)]);
        // Past the gap: a new span; the old one was written already.
        s.note(1, 4 + 2 * GAP);
        assert_eq!(s.take_changed(), [span(1, 4 + 2 * GAP, 4 + 2 * GAP)]);
    }

    #[test]
    fn a_span_ended_before_it_was_written_is_written_as_it_ended() {
        let mut s = Spans::default();
        s.note(1, 1);
        s.note(1, 2);
        s.note(1, 3 + GAP);
        s.note(1, 4 + GAP);
        assert_eq!(s.take_changed(), [span(1, 1, 2), span(1, 3 + GAP, 4 + GAP)]);
    }
}
