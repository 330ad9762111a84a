//! A stored row read back, the same way on both backends: each backend selects
//! [`SESSION_COLUMNS`]-named columns with times as integer microseconds since the Unix epoch
//! and the event as text, and [`session_of`] and [`record_of`] make the [`Session`] (and the
//! [`SessionRecord`]) of it.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};
use uuid::Uuid;

use super::SessionRecord;
use crate::domain::{EndReason, Role, ServerId, Session, SessionKey, Target};

/// The columns of a [`Session`], in the order the backends insert them.
pub(super) const SESSION_COLUMNS: &str = "role, server, port, client, mount, event_uuid, ip, \
    agent, referer, ticket, member, relay, started, timelimit";

/// Microseconds since the Unix epoch as a time.
pub(super) fn time(v: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| sqlx::Error::Decode(format!("time {v} out of range").into()))
}

/// Seconds (a duration, a timelimit) as stored: within what a row can add to a time.
pub(super) fn seconds(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v.min(super::MAX_SECONDS)).unwrap_or(i64::MAX))
}

fn unsigned(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

/// The session a row holds.
pub(super) fn session_of<R: Row>(row: &R) -> Result<Session, sqlx::Error>
where
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let role: String = row.try_get("role")?;
    let role = Role::parse(&role)
        .ok_or_else(|| sqlx::Error::Decode(format!("role {role:?} in sessions").into()))?;
    let mount: String = row.try_get("mount")?;
    let event: Option<String> = row.try_get("event_uuid")?;
    Ok(Session {
        key: SessionKey {
            server: ServerId::new(
                row.try_get::<String, _>("server")?,
                row.try_get::<String, _>("port")?,
            ),
            role,
            id: row.try_get("client")?,
        },
        // A static mount's row names no event: the mount is its name.
        target: match event.and_then(|e| Uuid::try_parse(&e).ok()) {
            Some(e) => Target::Event(e),
            None => Target::Static(mount.clone()),
        },
        mount,
        ip: row.try_get::<Option<String>, _>("ip")?.unwrap_or_default(),
        agent: row.try_get("agent")?,
        referer: row.try_get("referer")?,
        ticket: row.try_get("ticket")?,
        member: row.try_get("member")?,
        relay: row.try_get("relay")?,
        started: time(row.try_get("started")?)?,
        timelimit: unsigned(row.try_get("timelimit")?),
    })
}

/// The row as it is: its session and its end (`ended`, `duration`, `end_reason`,
/// `end_cause`).
pub(super) fn record_of<R: Row>(row: &R) -> Result<SessionRecord, sqlx::Error>
where
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let reason: Option<String> = row.try_get("end_reason")?;
    Ok(SessionRecord {
        session: session_of(row)?,
        ended: row
            .try_get::<Option<i64>, _>("ended")?
            .map(time)
            .transpose()?,
        duration: unsigned(row.try_get("duration")?),
        end_reason: reason.as_deref().and_then(EndReason::parse),
        end_cause: row.try_get("end_cause")?,
    })
}
