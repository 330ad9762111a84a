//! What a prepared statement's parameters hold, so that a value equal to the one bound
//! already is not bound again: SQLite keeps a statement's bindings from one execution to the
//! next, and most of a new row's values (its Icecast, mount, agent, referer, timelimit) are
//! those of the row before. Binding a value cost the writer ~75 instructions, a text value
//! ~350 (SQLite copies it), callgrind.

use rusqlite::Statement;

/// One parameter's value as last bound in this batch; `Unknown` until bound here.
#[derive(Clone, Default, PartialEq)]
pub(super) enum Held {
    #[default]
    Unknown,
    Null,
    Integer(i64),
    Text(String),
}

/// Binds values to `stmt`, skipping those `held` (one per parameter, from the first) says
/// it holds already.
pub(super) struct Binder<'a, 's> {
    pub stmt: &'a mut Statement<'s>,
    pub held: &'a mut [Held],
}

impl Binder<'_, '_> {
    /// Parameter `i` (1-based) to `v`, or NULL.
    pub(super) fn integer(&mut self, i: usize, v: Option<i64>) -> rusqlite::Result<()> {
        let held = &mut self.held[i - 1];
        let same = match (v, &*held) {
            (Some(v), Held::Integer(h)) => v == *h,
            (None, Held::Null) => true,
            _ => false,
        };
        if !same {
            self.stmt.raw_bind_parameter(i, v)?;
            *held = v.map_or(Held::Null, Held::Integer);
        }
        Ok(())
    }

    /// Parameter `i` (1-based) to text `v`, or NULL.
    pub(super) fn text(&mut self, i: usize, v: Option<&str>) -> rusqlite::Result<()> {
        let held = &mut self.held[i - 1];
        match (v, &mut *held) {
            (Some(v), Held::Text(h)) if h == v => {}
            (None, Held::Null) => {}
            (Some(v), Held::Text(h)) => {
                self.stmt.raw_bind_parameter(i, v)?;
                // The held text's buffer is reused.
                h.clear();
                h.push_str(v);
            }
            (v, held) => {
                self.stmt.raw_bind_parameter(i, v)?;
                *held = v.map_or(Held::Null, |v| Held::Text(v.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Each execution inserts what was bound, the skipped values as well.
    #[test]
    fn skipped_values_are_the_ones_sqlite_still_holds() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a, b)").unwrap();
        let mut stmt = conn
            .prepare("INSERT INTO t (a, b) VALUES (?1, ?2)")
            .unwrap();
        let mut held = vec![Held::Unknown; 2];
        let rows: [(Option<i64>, Option<&str>); 6] = [
            (Some(1), Some("x")),
            (Some(1), Some("x")),
            (None, Some("yy")),
            (None, None),
            (Some(2), None),
            (Some(2), Some("x")),
        ];
        for (a, b) in rows {
            let mut bind = Binder {
                stmt: &mut stmt,
                held: &mut held,
            };
            bind.integer(1, a).unwrap();
            bind.text(2, b).unwrap();
            stmt.raw_execute().unwrap();
        }
        drop(stmt);
        let stored: Vec<(Option<i64>, Option<String>)> = conn
            .prepare("SELECT a, b FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected: Vec<_> = rows
            .iter()
            .map(|(a, b)| (*a, b.map(str::to_string)))
            .collect();
        assert_eq!(stored, expected);
        assert!(held[1] == Held::Text("x".into()));
    }
}
