//! [`SanctionStore`] on PostgreSQL: every write bumps `jars.sanctions_version` and sends
//! `NOTIFY jars_sanctions` in its own transaction, so listeners hear of it only once it is
//! committed.

use chrono::{DateTime, NaiveDateTime, Utc};
use std::sync::Weak;

use sqlx::postgres::{PgListener, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::Notify;

use super::{to_db, Failure, PostgresStore};
use crate::store::sanctions::{
    Ban, EventEnd, NewBan, RevokedTicket, SanctionRows, SanctionStore, TicketCutoff, ENDS_KEPT,
};
use crate::store::StoreError;

/// The channel every sanction write notifies.
pub const CHANNEL: &str = "jars_sanctions";

const BAN_COLUMNS: &str =
    "id, ip, member, member_name, event_uuid, reason, created_by, created, expires";

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn row_to_ban(row: &PgRow) -> Result<Ban, sqlx::Error> {
    Ok(Ban {
        id: row.try_get("id")?,
        ip: row.try_get("ip")?,
        member: row.try_get("member")?,
        member_name: row.try_get("member_name")?,
        event: row.try_get("event_uuid")?,
        reason: row.try_get("reason")?,
        created_by: row.try_get("created_by")?,
        created: utc(row.try_get("created")?),
        expires: row.try_get::<Option<NaiveDateTime>, _>("expires")?.map(utc),
    })
}

async fn bump(tx: &mut Transaction<'_, Postgres>) -> Result<(), Failure> {
    sqlx::query(
        "WITH v AS (UPDATE jars.sanctions_version SET version = version + 1 WHERE id = 1 \
         RETURNING version) SELECT pg_notify($1, version::text) FROM v",
    )
    .bind(CHANNEL)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn unexpired_bans(
    now: DateTime<Utc>,
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Vec<Ban>, Failure> {
    let rows = sqlx::query(&format!(
        "SELECT {BAN_COLUMNS} FROM jars.bans WHERE expires IS NULL OR expires > $1 ORDER BY id"
    ))
    .bind(to_db(now))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().map(row_to_ban).collect::<Result<_, _>>()?)
}

#[async_trait::async_trait]
impl SanctionStore for PostgresStore {
    async fn version(&self) -> Result<i64, StoreError> {
        self.run(|pool| async move {
            Ok(
                sqlx::query_scalar("SELECT version FROM jars.sanctions_version WHERE id = 1")
                    .fetch_one(&pool)
                    .await?,
            )
        })
        .await
    }

    async fn load(&self, now: DateTime<Utc>) -> Result<SanctionRows, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            // One snapshot for the rows and the version.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            let version: i64 =
                sqlx::query_scalar("SELECT version FROM jars.sanctions_version WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
            let bans = unexpired_bans(now, &mut tx).await?;
            let tickets = sqlx::query(
                "SELECT jti, event_uuid, expires, created_by, created FROM jars.revoked_tickets \
                 WHERE expires > $1",
            )
            .bind(to_db(now))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| {
                Ok(RevokedTicket {
                    jti: r.try_get("jti")?,
                    event: r.try_get("event_uuid")?,
                    expires: utc(r.try_get("expires")?),
                    created_by: r.try_get("created_by")?,
                    created: utc(r.try_get("created")?),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let cutoffs = sqlx::query("SELECT event_uuid, before FROM jars.ticket_cutoffs")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    Ok(TicketCutoff {
                        event: r.try_get("event_uuid")?,
                        before: utc(r.try_get("before")?),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let ends =
                sqlx::query("SELECT event_uuid, ended_at FROM jars.event_ends WHERE ended_at > $1")
                    .bind(to_db(now - ENDS_KEPT))
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(EventEnd {
                            event: r.try_get("event_uuid")?,
                            at: utc(r.try_get("ended_at")?),
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
            tx.commit().await?;
            Ok(SanctionRows {
                version,
                bans,
                tickets,
                cutoffs,
                ends,
            })
        })
        .await
    }

    async fn add_ban(&self, ban: NewBan) -> Result<Ban, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(&format!(
                "INSERT INTO jars.bans (ip, member, member_name, event_uuid, reason, created_by, \
                 created, expires) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 RETURNING {BAN_COLUMNS}"
            ))
            .bind(&ban.ip)
            .bind(ban.member)
            .bind(&ban.member_name)
            .bind(ban.event)
            .bind(&ban.reason)
            .bind(ban.created_by)
            .bind(to_db(ban.created))
            .bind(ban.expires.map(to_db))
            .fetch_one(&mut *tx)
            .await?;
            let ban = row_to_ban(&row)?;
            bump(&mut tx).await?;
            tx.commit().await?;
            Ok(ban)
        })
        .await
    }

    async fn bans(&self, now: DateTime<Utc>) -> Result<Vec<Ban>, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let bans = unexpired_bans(now, &mut tx).await?;
            tx.commit().await?;
            Ok(bans)
        })
        .await
    }

    async fn remove_ban(&self, id: i64) -> Result<bool, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("DELETE FROM jars.bans WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            bump(&mut tx).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn revoke_ticket(&self, t: RevokedTicket) -> Result<bool, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "INSERT INTO jars.revoked_tickets (jti, event_uuid, expires, created_by, created) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jti) DO NOTHING",
            )
            .bind(&t.jti)
            .bind(t.event)
            .bind(to_db(t.expires))
            .bind(t.created_by)
            .bind(to_db(t.created))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            bump(&mut tx).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn revoke_event_tickets(&self, c: TicketCutoff, by: i64) -> Result<(), StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO jars.ticket_cutoffs (event_uuid, before, created_by) \
                 VALUES ($1, $2, $3) ON CONFLICT (event_uuid) DO UPDATE \
                 SET before = GREATEST(jars.ticket_cutoffs.before, excluded.before), \
                 created_by = excluded.created_by",
            )
            .bind(c.event)
            .bind(to_db(c.before))
            .bind(by)
            .execute(&mut *tx)
            .await?;
            bump(&mut tx).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn end_event(&self, end: EventEnd) -> Result<bool, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE jars.events SET expires_time = LEAST(expires_time, $1) \
                 WHERE event_uuid = $2",
            )
            .bind(to_db(end.at))
            .bind(end.event)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO jars.event_ends (event_uuid, ended_at) VALUES ($1, $2) \
                 ON CONFLICT (event_uuid) DO UPDATE \
                 SET ended_at = LEAST(jars.event_ends.ended_at, excluded.ended_at)",
            )
            .bind(end.event)
            .bind(to_db(end.at))
            .execute(&mut *tx)
            .await?;
            bump(&mut tx).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    fn push_changes_to(&self, wake: Weak<Notify>) {
        let options = self.inner.options.clone();
        let label = self.inner.label.clone();
        tokio::spawn(async move {
            // One connection of its own, outside the pool; reconnects while `wake` lives.
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(options);
            let mut reported = false;
            while wake.strong_count() > 0 {
                match listen(&pool, &wake).await {
                    Ok(()) => return,
                    Err(e) => {
                        if !reported {
                            tracing::warn!(store = %label, error = %e,
                                "LISTEN jars_sanctions failed; polling alone until it works");
                            reported = true;
                        }
                    }
                }
                // The poll catches up meanwhile; the next change is pushed once back.
                if let Some(w) = wake.upgrade() {
                    w.notify_one();
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
}

/// Whether the migration's tables of sanctions exist already (for `jars migrate`'s report).
pub(super) async fn tables_exist(pool: &sqlx::PgPool) -> Result<bool, Failure> {
    Ok(
        sqlx::query_scalar("SELECT to_regclass('jars.sanctions_version') IS NOT NULL")
            .fetch_one(pool)
            .await?,
    )
}

/// Listens until `wake` is gone (`Ok`) or the connection fails.
async fn listen(pool: &sqlx::PgPool, wake: &Weak<Notify>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv()).await;
        let Some(wake) = wake.upgrade() else {
            return Ok(());
        };
        match next {
            Ok(Ok(_)) => wake.notify_one(),
            Ok(Err(e)) => return Err(e),
            // Nothing for a while: look whether `wake` still lives.
            Err(_) => {}
        }
    }
}
