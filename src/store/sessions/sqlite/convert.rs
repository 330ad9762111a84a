//! The session table's layout when the file is opened: the tables of an earlier release
//! converted into `sessions` and dropped, all in one transaction, then the schema created as
//! needed, so that opening the file again finds nothing to do. Two earlier layouts: the first
//! (`listener_sessions` with text times and one text column per key part) and the narrow one
//! (integer times, the mount and the reporting Icecast as keys into
//! `listener_session_mounts` and `listener_session_origins`, user agents and referers as keys
//! into `listener_session_texts`, `listener_session_spans` in place of an index). Both held
//! listeners only.

use sqlx::SqlitePool;

use super::SCHEMA;

/// The columns a converted row fills.
const COLUMNS: &str = "role, server, port, client, mount, event_uuid, ip, agent, referer, \
    ticket, member, started, timelimit, ended, duration, end_reason";

/// Every table of the earlier layouts.
const DROP_OLD: &str = "DROP TABLE listener_sessions;
    DROP TABLE IF EXISTS listener_session_mounts;
    DROP TABLE IF EXISTS listener_session_origins;
    DROP TABLE IF EXISTS listener_session_texts;
    DROP TABLE IF EXISTS listener_session_spans;";

/// A first-layout time (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC) as microseconds.
fn micros_of_text(column: &str) -> String {
    format!(
        "CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000 \
         + CAST(substr({column} || '.000000', 21, 6) AS INTEGER)"
    )
}

/// Converts a layout of an earlier release, if the file has one, and creates the table and
/// its indexes; how many rows it converted (`None`: nothing to convert).
pub(super) async fn prepare(writer: &SqlitePool) -> Result<Option<u64>, sqlx::Error> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let old: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('listener_sessions')")
            .fetch_all(&mut *tx)
            .await?;
    let has = |column: &str| old.iter().any(|c| c == column);
    let select = if old.is_empty() {
        None
    } else if has("event_uuid") {
        Some(format!(
            "SELECT 'listener', server, port, client, mount, event_uuid, nullif(ip, ''), agent, \
             referer, ticket, member, {}, timelimit, {}, duration, end_reason \
             FROM listener_sessions ORDER BY id",
            micros_of_text("started"),
            micros_of_text("ended"),
        ))
    } else if has("origin") {
        // Rows older than the texts table hold their agent and referer as text.
        let (agent, referer, texts) = if has("agent_key") {
            (
                "coalesce(ta.text, s.agent)",
                "coalesce(tr.text, s.referer)",
                "LEFT JOIN listener_session_texts ta ON ta.id = s.agent_key \
                 LEFT JOIN listener_session_texts tr ON tr.id = s.referer_key",
            )
        } else {
            ("s.agent", "s.referer", "")
        };
        Some(format!(
            "SELECT 'listener', o.server, o.port, CAST(s.client AS TEXT), m.mount, \
             nullif(m.event_uuid, ''), nullif(s.ip, ''), {agent}, {referer}, s.ticket, s.member, \
             s.started, s.timelimit, s.ended, s.duration, s.end_reason \
             FROM listener_sessions s JOIN listener_session_mounts m ON m.id = s.mount \
             JOIN listener_session_origins o ON o.id = s.origin {texts} ORDER BY s.id"
        ))
    } else {
        return Err(sqlx::Error::Protocol(format!(
            "listener_sessions has a layout jars does not know (columns {old:?})"
        )));
    };
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    let converted = match select {
        Some(select) => {
            let done = sqlx::query(&format!("INSERT INTO sessions ({COLUMNS}) {select}"))
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(DROP_OLD).execute(&mut *tx).await?;
            Some(done.rows_affected())
        }
        None => None,
    };
    tx.commit().await?;
    if converted.is_some() {
        // The conversion went through the WAL: give its space back now.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(writer)
            .await?;
    }
    Ok(converted)
}
