//! [`SanctionStore`] on the embedded SQLite file: every write, its version bump and the
//! version stamped on the rows it writes in one transaction on the one writer; loads read the
//! rows and the version in one snapshot (WAL), whole or only the rows written since a version.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use super::{from_text, to_text, SqliteStore};
use crate::store::sanctions::{
    Ban, EventEnd, NewBan, Purged, RevokedTicket, SanctionRows, SanctionStore, TicketCutoff,
    ENDS_KEPT,
};
use crate::store::StoreError;

const BAN_COLUMNS: &str =
    "id, ip, member, member_name, event_uuid, reason, created_by, created, expires";

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text)
        .map_err(|e| StoreError::Unavailable(format!("bad uuid {text:?} in store: {e}")))
}

fn row_to_ban(row: &SqliteRow) -> Result<Ban, StoreError> {
    Ok(Ban {
        id: row.try_get("id")?,
        ip: row.try_get("ip")?,
        member: row.try_get("member")?,
        member_name: row.try_get("member_name")?,
        event: row
            .try_get::<Option<String>, _>("event_uuid")?
            .map(|e| uuid(&e))
            .transpose()?,
        reason: row.try_get("reason")?,
        created_by: row.try_get("created_by")?,
        created: from_text(&row.try_get::<String, _>("created")?)?,
        expires: row
            .try_get::<Option<String>, _>("expires")?
            .map(|t| from_text(&t))
            .transpose()?,
    })
}

fn row_to_ticket(r: &SqliteRow) -> Result<RevokedTicket, StoreError> {
    Ok(RevokedTicket {
        jti: r.try_get("jti")?,
        event: uuid(&r.try_get::<String, _>("event_uuid")?)?,
        expires: from_text(&r.try_get::<String, _>("expires")?)?,
        created_by: r.try_get("created_by")?,
        created: from_text(&r.try_get::<String, _>("created")?)?,
    })
}

fn row_to_cutoff(r: &SqliteRow) -> Result<TicketCutoff, StoreError> {
    Ok(TicketCutoff {
        event: uuid(&r.try_get::<String, _>("event_uuid")?)?,
        before: from_text(&r.try_get::<String, _>("before")?)?,
    })
}

fn row_to_end(r: &SqliteRow) -> Result<EventEnd, StoreError> {
    Ok(EventEnd {
        event: uuid(&r.try_get::<String, _>("event_uuid")?)?,
        at: from_text(&r.try_get::<String, _>("ended_at")?)?,
    })
}

/// Moves the version inside `tx` and returns it, for the rows `tx` writes: readers see the
/// rows and the new version together. First in every write, so writes take versions in the
/// order they commit.
async fn bump(tx: &mut Transaction<'_, Sqlite>) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE sanctions_version SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// The rows of `table` matching `filter` (an SQL condition on one bound value), parsed.
async fn rows<T>(
    tx: &mut Transaction<'_, Sqlite>,
    sql: &str,
    bound: Bound,
    parse: fn(&SqliteRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let query = sqlx::query(sql);
    let query = match bound {
        Bound::Time(t) => query.bind(to_text(t)),
        Bound::Version(v) => query.bind(v),
        Bound::Nothing => query,
    };
    query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(parse)
        .collect()
}

/// The one value a load's condition binds.
#[derive(Clone, Copy)]
enum Bound {
    Time(DateTime<Utc>),
    Version(i64),
    Nothing,
}

impl SqliteStore {
    async fn unexpired_bans(
        &self,
        now: DateTime<Utc>,
        tx: &mut Transaction<'_, Sqlite>,
    ) -> Result<Vec<Ban>, StoreError> {
        let sql = format!(
            "SELECT {BAN_COLUMNS} FROM bans WHERE lifted = 0 AND (expires IS NULL OR expires > ?) \
             ORDER BY id"
        );
        rows(tx, &sql, Bound::Time(now), row_to_ban).await
    }

    /// Every sanction in force at `now`.
    async fn load_whole(
        &self,
        version: i64,
        now: DateTime<Utc>,
        tx: &mut Transaction<'_, Sqlite>,
    ) -> Result<SanctionRows, StoreError> {
        Ok(SanctionRows {
            version,
            complete: true,
            bans: self.unexpired_bans(now, tx).await?,
            lifted: Vec::new(),
            versions_seen: 0,
            tickets: rows(
                tx,
                "SELECT jti, event_uuid, expires, created_by, created FROM revoked_tickets \
                 WHERE expires > ?",
                Bound::Time(now),
                row_to_ticket,
            )
            .await?,
            cutoffs: rows(
                tx,
                "SELECT event_uuid, before FROM ticket_cutoffs",
                Bound::Nothing,
                row_to_cutoff,
            )
            .await?,
            ends: rows(
                tx,
                "SELECT event_uuid, ended_at FROM event_ends WHERE ended_at > ?",
                Bound::Time(now - ENDS_KEPT),
                row_to_end,
            )
            .await?,
        })
    }

    /// The rows written after version `since`.
    async fn load_changes(
        &self,
        version: i64,
        since: i64,
        tx: &mut Transaction<'_, Sqlite>,
    ) -> Result<SanctionRows, StoreError> {
        let after = Bound::Version(since);
        let versions_seen: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT version FROM bans WHERE version > ?1 \
             UNION SELECT version FROM revoked_tickets WHERE version > ?1 \
             UNION SELECT version FROM ticket_cutoffs WHERE version > ?1 \
             UNION SELECT version FROM event_ends WHERE version > ?1)",
        )
        .bind(since)
        .fetch_one(&mut **tx)
        .await?;
        let mut bans = Vec::new();
        let mut lifted = Vec::new();
        let sql = format!("SELECT {BAN_COLUMNS}, lifted FROM bans WHERE version > ? ORDER BY id");
        for row in sqlx::query(&sql).bind(since).fetch_all(&mut **tx).await? {
            if row.try_get::<i64, _>("lifted")? != 0 {
                lifted.push(row.try_get("id")?);
            } else {
                bans.push(row_to_ban(&row)?);
            }
        }
        Ok(SanctionRows {
            version,
            complete: false,
            bans,
            lifted,
            versions_seen,
            tickets: rows(
                tx,
                "SELECT jti, event_uuid, expires, created_by, created FROM revoked_tickets \
                 WHERE version > ?",
                after,
                row_to_ticket,
            )
            .await?,
            cutoffs: rows(
                tx,
                "SELECT event_uuid, before FROM ticket_cutoffs WHERE version > ?",
                after,
                row_to_cutoff,
            )
            .await?,
            ends: rows(
                tx,
                "SELECT event_uuid, ended_at FROM event_ends WHERE version > ?",
                after,
                row_to_end,
            )
            .await?,
        })
    }
}

#[async_trait::async_trait]
impl SanctionStore for SqliteStore {
    async fn version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT version FROM sanctions_version WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn load(
        &self,
        since: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<SanctionRows, StoreError> {
        // One read transaction: the rows and the version are one snapshot (WAL).
        let mut tx = self.pool.begin().await?;
        let (version, horizon): (i64, i64) =
            sqlx::query_as("SELECT version, horizon FROM sanctions_version WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let rows = match since {
            // Rows were purged after `since`, or the store is not the one `since` came from.
            Some(since) if since >= horizon && since <= version => {
                self.load_changes(version, since, &mut tx).await?
            }
            _ => self.load_whole(version, now, &mut tx).await?,
        };
        tx.commit().await?;
        Ok(rows)
    }

    async fn add_ban(&self, ban: NewBan) -> Result<Ban, StoreError> {
        let mut tx = self.writer.begin().await?;
        let version = bump(&mut tx).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO bans (ip, member, member_name, event_uuid, reason, created_by, created, \
             expires, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {BAN_COLUMNS}"
        ))
        .bind(&ban.ip)
        .bind(ban.member)
        .bind(&ban.member_name)
        .bind(ban.event.map(|e| e.to_string()))
        .bind(&ban.reason)
        .bind(ban.created_by)
        .bind(to_text(ban.created))
        .bind(ban.expires.map(to_text))
        .bind(version)
        .fetch_one(&mut *tx)
        .await?;
        let ban = row_to_ban(&row)?;
        tx.commit().await?;
        Ok(ban)
    }

    async fn bans(&self, now: DateTime<Utc>) -> Result<Vec<Ban>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let bans = self.unexpired_bans(now, &mut tx).await?;
        tx.commit().await?;
        Ok(bans)
    }

    async fn remove_ban(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let version = bump(&mut tx).await?;
        // Marked, not deleted, so that nodes loading changes see it go; purged later.
        let done =
            sqlx::query("UPDATE bans SET lifted = 1, version = ? WHERE id = ? AND lifted = 0")
                .bind(version)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            // Dropped without commit: the version does not move.
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_ticket(&self, t: RevokedTicket) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let version = bump(&mut tx).await?;
        let done = sqlx::query(
            "INSERT INTO revoked_tickets (jti, event_uuid, expires, created_by, created, version) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (jti, event_uuid) DO NOTHING",
        )
        .bind(&t.jti)
        .bind(t.event.to_string())
        .bind(to_text(t.expires))
        .bind(t.created_by)
        .bind(to_text(t.created))
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_event_tickets(&self, c: TicketCutoff, by: i64) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        let version = bump(&mut tx).await?;
        sqlx::query(
            "INSERT INTO ticket_cutoffs (event_uuid, before, created_by, version) \
             VALUES (?, ?, ?, ?) ON CONFLICT (event_uuid) DO UPDATE \
             SET before = MAX(before, excluded.before), created_by = excluded.created_by, \
             version = excluded.version",
        )
        .bind(c.event.to_string())
        .bind(to_text(c.before))
        .bind(by)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn end_event(&self, end: EventEnd) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let version = bump(&mut tx).await?;
        let at = to_text(end.at);
        let done = sqlx::query(
            "UPDATE events SET expires_time = MIN(expires_time, ?) WHERE event_uuid = ?",
        )
        .bind(&at)
        .bind(end.event.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO event_ends (event_uuid, ended_at, version) VALUES (?, ?, ?) \
             ON CONFLICT (event_uuid) DO UPDATE SET ended_at = MIN(ended_at, excluded.ended_at), \
             version = excluded.version",
        )
        .bind(end.event.to_string())
        .bind(&at)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<Purged, StoreError> {
        let mut tx = self.writer.begin().await?;
        // First, as in every write; undone with the rest when nothing is deleted.
        let version = bump(&mut tx).await?;
        let at = to_text(now);
        let purged = Purged {
            bans: delete(
                &mut tx,
                "DELETE FROM bans WHERE lifted = 1 OR expires <= ?",
                &at,
            )
            .await?,
            tickets: delete(
                &mut tx,
                "DELETE FROM revoked_tickets WHERE expires <= ?",
                &at,
            )
            .await?,
            // No ticket outlives its event: once it has ended, its cut-off matters no more.
            cutoffs: delete(
                &mut tx,
                "DELETE FROM ticket_cutoffs WHERE NOT EXISTS (SELECT 1 FROM events e \
                 WHERE e.event_uuid = ticket_cutoffs.event_uuid AND e.expires_time > ?)",
                &at,
            )
            .await?,
            ends: delete(
                &mut tx,
                "DELETE FROM event_ends WHERE ended_at <= ?",
                &to_text(now - ENDS_KEPT),
            )
            .await?,
        };
        if purged.total() == 0 {
            return Ok(purged);
        }
        // Nodes that loaded before this hold rows it deleted: they load everything again.
        sqlx::query("UPDATE sanctions_version SET horizon = ? WHERE id = 1")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(purged)
    }
}

/// Runs a `DELETE` binding `at`; the rows it deleted.
async fn delete(tx: &mut Transaction<'_, Sqlite>, sql: &str, at: &str) -> Result<u64, StoreError> {
    Ok(sqlx::query(sql)
        .bind(at)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}
