//! [`SanctionStore`] on the embedded SQLite file: every write and its version bump in one
//! transaction on the one writer.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use super::{from_text, to_text, SqliteStore};
use crate::store::sanctions::{
    Ban, EventEnd, NewBan, RevokedTicket, SanctionRows, SanctionStore, TicketCutoff, ENDS_KEPT,
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

/// Moves the version inside `tx`, so readers see the change and the new version together.
async fn bump(tx: &mut Transaction<'_, Sqlite>) -> Result<(), StoreError> {
    sqlx::query("UPDATE sanctions_version SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl SqliteStore {
    async fn unexpired_bans(
        &self,
        now: DateTime<Utc>,
        tx: &mut Transaction<'_, Sqlite>,
    ) -> Result<Vec<Ban>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {BAN_COLUMNS} FROM bans WHERE expires IS NULL OR expires > ? ORDER BY id"
        ))
        .bind(to_text(now))
        .fetch_all(&mut **tx)
        .await?;
        rows.iter().map(row_to_ban).collect()
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

    async fn load(&self, now: DateTime<Utc>) -> Result<SanctionRows, StoreError> {
        // One read transaction: the rows and the version are one snapshot (WAL).
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM sanctions_version WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let bans = self.unexpired_bans(now, &mut tx).await?;
        let tickets = sqlx::query(
            "SELECT jti, event_uuid, expires, created_by, created FROM revoked_tickets \
             WHERE expires > ?",
        )
        .bind(to_text(now))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(RevokedTicket {
                jti: r.try_get("jti")?,
                event: uuid(&r.try_get::<String, _>("event_uuid")?)?,
                expires: from_text(&r.try_get::<String, _>("expires")?)?,
                created_by: r.try_get("created_by")?,
                created: from_text(&r.try_get::<String, _>("created")?)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let cutoffs = sqlx::query("SELECT event_uuid, before FROM ticket_cutoffs")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| {
                Ok(TicketCutoff {
                    event: uuid(&r.try_get::<String, _>("event_uuid")?)?,
                    before: from_text(&r.try_get::<String, _>("before")?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let ends = sqlx::query("SELECT event_uuid, ended_at FROM event_ends WHERE ended_at > ?")
            .bind(to_text(now - ENDS_KEPT))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| {
                Ok(EventEnd {
                    event: uuid(&r.try_get::<String, _>("event_uuid")?)?,
                    at: from_text(&r.try_get::<String, _>("ended_at")?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        Ok(SanctionRows {
            version,
            bans,
            tickets,
            cutoffs,
            ends,
        })
    }

    async fn add_ban(&self, ban: NewBan) -> Result<Ban, StoreError> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO bans (ip, member, member_name, event_uuid, reason, created_by, created, \
             expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {BAN_COLUMNS}"
        ))
        .bind(&ban.ip)
        .bind(ban.member)
        .bind(&ban.member_name)
        .bind(ban.event.map(|e| e.to_string()))
        .bind(&ban.reason)
        .bind(ban.created_by)
        .bind(to_text(ban.created))
        .bind(ban.expires.map(to_text))
        .fetch_one(&mut *tx)
        .await?;
        let ban = row_to_ban(&row)?;
        bump(&mut tx).await?;
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
        let done = sqlx::query("DELETE FROM bans WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_ticket(&self, t: RevokedTicket) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "INSERT INTO revoked_tickets (jti, event_uuid, expires, created_by, created) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(&t.jti)
        .bind(t.event.to_string())
        .bind(to_text(t.expires))
        .bind(t.created_by)
        .bind(to_text(t.created))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_event_tickets(&self, c: TicketCutoff, by: i64) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO ticket_cutoffs (event_uuid, before, created_by) VALUES (?, ?, ?) \
             ON CONFLICT (event_uuid) DO UPDATE SET before = MAX(before, excluded.before), \
             created_by = excluded.created_by",
        )
        .bind(c.event.to_string())
        .bind(to_text(c.before))
        .bind(by)
        .execute(&mut *tx)
        .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn end_event(&self, end: EventEnd) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
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
            "INSERT INTO event_ends (event_uuid, ended_at) VALUES (?, ?) \
             ON CONFLICT (event_uuid) DO UPDATE SET ended_at = MIN(ended_at, excluded.ended_at)",
        )
        .bind(end.event.to_string())
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }
}
