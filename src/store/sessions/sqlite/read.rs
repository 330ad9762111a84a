//! Reading the session tables back: the rows a report selects, and the open rows the
//! lost-session sweep looks at.

use chrono::{DateTime, Utc};
use rusqlite::types::{Type, ValueRef};
use rusqlite::{params, Connection, Row};
use uuid::Uuid;

use super::{micros, STATIC};
use crate::sessions::{EndReason, OpenRow, SessionFilter, SessionKey, SessionRecord};

fn time(row: &Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    let v: i64 = row.get(i)?;
    DateTime::from_timestamp_micros(v).ok_or(rusqlite::Error::IntegralValueOutOfRange(i, v))
}

fn unsigned(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<u64>> {
    Ok(row
        .get::<_, Option<i64>>(i)?
        .and_then(|v| u64::try_from(v).ok()))
}

/// The sessions `f` selects, oldest first. One event's are read from its mounts' spans of
/// row ids; a date range over every event reads the whole table.
pub(super) fn sessions(
    conn: &Connection,
    f: SessionFilter,
) -> rusqlite::Result<Vec<SessionRecord>> {
    // CROSS JOIN fixes the order (mounts, their spans, the rows in each span's id range) and
    // `+s.mount` keeps SQLite from indexing the whole table by mount for the query instead.
    let (from, which) = if f.event.is_some() {
        (
            "listener_session_mounts m CROSS JOIN listener_session_spans p ON p.mount = m.id \
             CROSS JOIN listener_sessions s ON s.id BETWEEN p.first_id AND p.last_id \
             AND +s.mount = m.id",
            "m.event_uuid = ?1",
        )
    } else {
        (
            "listener_sessions s JOIN listener_session_mounts m ON m.id = s.mount",
            "?1 IS NULL",
        )
    };
    // A row an older jars wrote holds its agent and referer as text, not keys.
    let mut stmt = conn.prepare(&format!(
        "SELECT m.event_uuid, m.mount, s.started, s.ended, s.duration, s.ticket, s.member, \
         s.ip, coalesce(ta.text, s.agent), coalesce(tr.text, s.referer), s.end_reason \
         FROM {from} \
         LEFT JOIN listener_session_texts ta ON ta.id = s.agent_key \
         LEFT JOIN listener_session_texts tr ON tr.id = s.referer_key \
         WHERE {which} AND s.started >= ?2 AND s.started < ?3 ORDER BY s.started, s.id"
    ))?;
    let rows = stmt.query_map(
        params![
            f.event.map(|e| e.to_string()),
            f.from.map_or(i64::MIN, micros),
            f.to.map_or(i64::MAX, micros),
        ],
        |row| {
            let event: String = row.get(0)?;
            let reason: Option<String> = row.get(10)?;
            Ok(SessionRecord {
                event: if event == STATIC {
                    None
                } else {
                    Uuid::try_parse(&event).ok()
                },
                mount: row.get(1)?,
                started: time(row, 2)?,
                ended: match row.get_ref(3)? {
                    ValueRef::Null => None,
                    _ => Some(time(row, 3)?),
                },
                duration: unsigned(row, 4)?,
                ticket: row.get(5)?,
                member: row.get(6)?,
                ip: row.get(7)?,
                agent: row.get(8)?,
                referer: row.get(9)?,
                end_reason: reason.as_deref().and_then(EndReason::parse),
            })
        },
    )?;
    rows.collect()
}

/// Open rows that started before `before`, or whose timelimit ran out before
/// `timelimit_before` (both microseconds).
pub(super) fn open_before(
    conn: &Connection,
    before: i64,
    timelimit_before: i64,
) -> rusqlite::Result<Vec<OpenRow>> {
    let mut stmt = conn.prepare(
        "SELECT s.id, o.server, o.port, s.client, s.started, s.timelimit \
         FROM listener_sessions s JOIN listener_session_origins o ON o.id = s.origin \
         WHERE s.ended IS NULL AND (s.started < ?1 \
         OR (s.timelimit IS NOT NULL AND s.started + s.timelimit * 1000000 < ?2))",
    )?;
    let rows = stmt.query_map([before, timelimit_before], |row| {
        let client = match row.get_ref(3)? {
            ValueRef::Integer(n) => n.to_string(),
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            _ => {
                return Err(rusqlite::Error::InvalidColumnType(
                    3,
                    "client".into(),
                    Type::Null,
                ))
            }
        };
        Ok(OpenRow {
            id: row.get(0)?,
            key: SessionKey {
                server: row.get(1)?,
                port: row.get(2)?,
                client,
            },
            started: time(row, 4)?,
            timelimit: unsigned(row, 5)?,
        })
    })?;
    rows.collect()
}
