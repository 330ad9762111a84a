//! The session tables' layout: created when missing, and an older one converted in one
//! transaction, so that opening the file again finds it done: a table of the first layout
//! (times as text, one text column per key part, three indexes) to the narrow one, rows and
//! ids' order kept; an index on the mount to [`spans`]; agent and referer columns gain keys
//! into [`texts`] (rows written before keep their text).

use rusqlite::types::Type;
use rusqlite::{Connection, Row, TransactionBehavior};
use uuid::Uuid;

use super::bound::{Binder, Held};
use super::keys::{Client, Keys};
use super::{
    bind_open, micros, seconds, spans, texts, PendingOpen, Statements, OPEN_VALUES, SCHEMA,
};
use crate::sessions::{EndReason, OpenedSession, SessionText};
use crate::store::sqlite::from_text;

/// Creates the tables (idempotently), converting a first-layout table if there is one.
pub(super) fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let first_layout = tx
        .prepare("SELECT 1 FROM pragma_table_info('listener_sessions') WHERE name = 'event_uuid'")?
        .exists([])?;
    if first_layout {
        // Its indexes keep their names when the table is renamed: drop them, so that the new
        // table's can be created.
        tx.execute_batch(
            "DROP INDEX IF EXISTS listener_sessions_open;
             DROP INDEX IF EXISTS listener_sessions_started;
             DROP INDEX IF EXISTS listener_sessions_event;
             ALTER TABLE listener_sessions RENAME TO listener_sessions_text;",
        )?;
    }
    let mount_index = tx
        .prepare(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'listener_sessions_mount'",
        )?
        .exists([])?;
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(spans::SCHEMA)?;
    tx.execute_batch(texts::SCHEMA)?;
    // Rows written since hold their agent and referer as keys; older ones keep their text.
    let text_keys = tx
        .prepare("SELECT 1 FROM pragma_table_info('listener_sessions') WHERE name = 'agent_key'")?
        .exists([])?;
    if !text_keys {
        tx.execute_batch(
            "ALTER TABLE listener_sessions ADD COLUMN agent_key INTEGER;
             ALTER TABLE listener_sessions ADD COLUMN referer_key INTEGER;",
        )?;
    }
    if mount_index {
        spans::build(&tx)?;
        tx.execute_batch("DROP INDEX listener_sessions_mount")?;
    }
    if first_layout {
        let mut keys = Keys::load(&tx)?;
        let mut run = Statements::prepare(&tx)?;
        let mut old = tx.prepare(
            "SELECT event_uuid, mount, server, port, client, started, ended, duration, ticket, \
             member, ip, agent, referer, timelimit, end_reason FROM listener_sessions_text \
             ORDER BY id",
        )?;
        let mut rows = old.query([])?;
        while let Some(row) = rows.next()? {
            let (opened, ended, duration, end_reason) = first_layout_row(row)?;
            if ended.is_some() {
                insert_closed(
                    &mut run,
                    &mut keys,
                    &NewRow {
                        opened: &opened,
                        ended,
                        duration,
                        end_reason,
                    },
                )?;
            } else {
                // One at a time: the row it borrows lives only for this turn.
                let mut one = Vec::with_capacity(1);
                run.open(&mut keys, &opened, &mut one)?;
                run.flush(&mut one)?;
            }
        }
        drop(rows);
        drop(old);
        drop(run);
        keys.write_back(&tx)?;
        tx.execute_batch("DROP TABLE listener_sessions_text")?;
    }
    tx.commit()
}

// A closed row: its end as well.
const INSERT_CLOSED: &str = "INSERT INTO listener_sessions (mount, origin, client, started, \
    ticket, member, ip, agent_key, referer_key, timelimit, ended, duration, end_reason) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// A closed row of the first layout, as written to the new one.
struct NewRow<'a> {
    opened: &'a OpenedSession,
    ended: Option<chrono::DateTime<chrono::Utc>>,
    duration: Option<u64>,
    end_reason: Option<EndReason>,
}

/// Inserts a closed row.
fn insert_closed(
    run: &mut Statements<'_>,
    keys: &mut Keys,
    row: &NewRow<'_>,
) -> rusqlite::Result<()> {
    let (s, text) = (row.opened, row.opened.text());
    let (mount, origin) = run.lookup_keys(keys, s.event, &text)?;
    let id = keys.new_row(mount);
    let (agent, referer) = (
        keys.text(run.tx, text.agent, id)?,
        keys.text(run.tx, text.referer, id)?,
    );
    let mut stmt = run.tx.prepare_cached(INSERT_CLOSED)?;
    bind_open(
        &mut Binder {
            stmt: &mut stmt,
            held: &mut [const { Held::Unknown }; OPEN_VALUES],
        },
        0,
        &PendingOpen {
            id,
            mount,
            origin,
            agent,
            referer,
            s,
            text,
            client: Client::new(text.client),
        },
    )?;
    stmt.raw_bind_parameter(OPEN_VALUES + 1, row.ended.map(micros))?;
    stmt.raw_bind_parameter(OPEN_VALUES + 2, seconds(row.duration))?;
    stmt.raw_bind_parameter(OPEN_VALUES + 3, row.end_reason.map(EndReason::as_str))?;
    stmt.raw_execute()?;
    run.inserted(id)?;
    Ok(())
}

type FirstLayoutRow = (
    OpenedSession,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<u64>,
    Option<EndReason>,
);

fn first_layout_row(row: &Row<'_>) -> rusqlite::Result<FirstLayoutRow> {
    let time = |i: usize, text: String| {
        from_text(&text)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
    };
    let unsigned = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    let event: Option<String> = row.get(0)?;
    let text = |i: usize| row.get::<_, String>(i);
    let optional = |i: usize| row.get::<_, Option<String>>(i);
    let (server, port, client, mount) = (text(2)?, text(3)?, text(4)?, text(1)?);
    let (ticket, ip, agent, referer) = (optional(8)?, optional(10)?, optional(11)?, optional(12)?);
    let opened = OpenedSession::new(
        SessionText {
            server: &server,
            port: &port,
            client: &client,
            mount: &mount,
            ticket: ticket.as_deref(),
            ip: ip.as_deref(),
            agent: agent.as_deref(),
            referer: referer.as_deref(),
        },
        event.and_then(|e| Uuid::try_parse(&e).ok()),
        time(5, row.get(5)?)?,
        row.get(9)?,
        unsigned(row.get(13)?),
    );
    let ended = row
        .get::<_, Option<String>>(6)?
        .map(|t| time(6, t))
        .transpose()?;
    let reason: Option<String> = row.get(14)?;
    Ok((
        opened,
        ended,
        unsigned(row.get(7)?),
        reason.as_deref().and_then(EndReason::parse),
    ))
}
