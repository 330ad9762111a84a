//! [`SanctionStore`] on PostgreSQL: every write bumps `jars.sanctions_version` first (its row
//! lock orders concurrent writers), stamps the rows it writes with the new version and sends
//! `NOTIFY jars_sanctions` in its own transaction, so listeners hear of it only once it is
//! committed. Loads read the rows and the version in one snapshot, whole or only the rows
//! written since a version.

use chrono::{DateTime, NaiveDateTime, Utc};
use std::sync::Weak;

use sqlx::postgres::{PgListener, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::Notify;

use super::{to_db, Failure, PostgresStore};
use crate::store::sanctions::{
    Ban, EventEnd, NewBan, Purged, RevokedTicket, SanctionRows, SanctionStore, TicketCutoff,
    ENDS_KEPT,
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

fn row_to_ticket(r: &PgRow) -> Result<RevokedTicket, sqlx::Error> {
    Ok(RevokedTicket {
        jti: r.try_get("jti")?,
        event: r.try_get("event_uuid")?,
        expires: utc(r.try_get("expires")?),
        created_by: r.try_get("created_by")?,
        created: utc(r.try_get("created")?),
    })
}

fn row_to_cutoff(r: &PgRow) -> Result<TicketCutoff, sqlx::Error> {
    Ok(TicketCutoff {
        event: r.try_get("event_uuid")?,
        before: utc(r.try_get("before")?),
    })
}

fn row_to_end(r: &PgRow) -> Result<EventEnd, sqlx::Error> {
    Ok(EventEnd {
        event: r.try_get("event_uuid")?,
        at: utc(r.try_get("ended_at")?),
    })
}

/// Moves the version inside `tx` and returns it, for the rows `tx` writes; notifies on
/// commit. First in every write: the version row's lock makes concurrent writers take
/// versions in the order they commit, so a snapshot that sees a version sees every row
/// stamped with it or less.
async fn bump(tx: &mut Transaction<'_, Postgres>) -> Result<i64, Failure> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE jars.sanctions_version SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(version.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(version)
}

async fn unexpired_bans(
    now: DateTime<Utc>,
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Vec<Ban>, Failure> {
    let rows = sqlx::query(&format!(
        "SELECT {BAN_COLUMNS} FROM jars.bans \
         WHERE NOT lifted AND (expires IS NULL OR expires > $1) ORDER BY id"
    ))
    .bind(to_db(now))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().map(row_to_ban).collect::<Result<_, _>>()?)
}

/// The rows `sql` selects with `$1` bound to `value`, parsed.
async fn rows<T, V>(
    tx: &mut Transaction<'_, Postgres>,
    sql: &str,
    value: V,
    parse: fn(&PgRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, Failure>
where
    V: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
{
    let rows = sqlx::query(sql).bind(value).fetch_all(&mut **tx).await?;
    Ok(rows.iter().map(parse).collect::<Result<_, _>>()?)
}

/// Every sanction in force at `now`.
async fn load_whole(
    version: i64,
    now: DateTime<Utc>,
    tx: &mut Transaction<'_, Postgres>,
) -> Result<SanctionRows, Failure> {
    Ok(SanctionRows {
        version,
        complete: true,
        bans: unexpired_bans(now, tx).await?,
        lifted: Vec::new(),
        versions_seen: 0,
        tickets: rows(
            tx,
            "SELECT jti, event_uuid, expires, created_by, created FROM jars.revoked_tickets \
             WHERE expires > $1",
            to_db(now),
            row_to_ticket,
        )
        .await?,
        cutoffs: sqlx::query("SELECT event_uuid, before FROM jars.ticket_cutoffs")
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(row_to_cutoff)
            .collect::<Result<_, _>>()?,
        ends: rows(
            tx,
            "SELECT event_uuid, ended_at FROM jars.event_ends WHERE ended_at > $1",
            to_db(now - ENDS_KEPT),
            row_to_end,
        )
        .await?,
    })
}

/// The rows written after version `since`, and the bans lifted since.
async fn load_changes(
    version: i64,
    since: i64,
    tx: &mut Transaction<'_, Postgres>,
) -> Result<SanctionRows, Failure> {
    let versions_seen: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT version FROM jars.bans WHERE version > $1 \
         UNION SELECT version FROM jars.revoked_tickets WHERE version > $1 \
         UNION SELECT version FROM jars.ticket_cutoffs WHERE version > $1 \
         UNION SELECT version FROM jars.event_ends WHERE version > $1) AS v",
    )
    .bind(since)
    .fetch_one(&mut **tx)
    .await?;
    let mut bans = Vec::new();
    let mut lifted = Vec::new();
    let sql = format!("SELECT {BAN_COLUMNS}, lifted FROM jars.bans WHERE version > $1 ORDER BY id");
    for row in sqlx::query(&sql).bind(since).fetch_all(&mut **tx).await? {
        if row.try_get::<bool, _>("lifted")? {
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
            "SELECT jti, event_uuid, expires, created_by, created FROM jars.revoked_tickets \
             WHERE version > $1",
            since,
            row_to_ticket,
        )
        .await?,
        cutoffs: rows(
            tx,
            "SELECT event_uuid, before FROM jars.ticket_cutoffs WHERE version > $1",
            since,
            row_to_cutoff,
        )
        .await?,
        ends: rows(
            tx,
            "SELECT event_uuid, ended_at FROM jars.event_ends WHERE version > $1",
            since,
            row_to_end,
        )
        .await?,
    })
}

/// Runs a `DELETE` binding `$1` to `at`; the rows it deleted.
async fn delete(
    tx: &mut Transaction<'_, Postgres>,
    sql: &str,
    at: DateTime<Utc>,
) -> Result<u64, Failure> {
    Ok(sqlx::query(sql)
        .bind(to_db(at))
        .execute(&mut **tx)
        .await?
        .rows_affected())
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

    async fn load(
        &self,
        since: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<SanctionRows, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            // One snapshot for the rows and the version.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            let (version, horizon): (i64, i64) =
                sqlx::query_as("SELECT version, horizon FROM jars.sanctions_version WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
            let rows = match since {
                // Rows were purged after `since`, or the store is not the one it came from.
                Some(since) if since >= horizon && since <= version => {
                    load_changes(version, since, &mut tx).await?
                }
                _ => load_whole(version, now, &mut tx).await?,
            };
            tx.commit().await?;
            Ok(rows)
        })
        .await
    }

    async fn add_ban(&self, ban: NewBan) -> Result<Ban, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let version = bump(&mut tx).await?;
            let row = sqlx::query(&format!(
                "INSERT INTO jars.bans (ip, member, member_name, event_uuid, reason, created_by, \
                 created, expires, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
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
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
            let ban = row_to_ban(&row)?;
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
            let version = bump(&mut tx).await?;
            // Marked, not deleted, so that nodes loading changes see it go; purged later.
            let done = sqlx::query(
                "UPDATE jars.bans SET lifted = TRUE, version = $1 WHERE id = $2 AND NOT lifted",
            )
            .bind(version)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                // Rolled back: the version does not move and nothing is notified.
                return Ok(false);
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn revoke_ticket(&self, t: RevokedTicket) -> Result<bool, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let version = bump(&mut tx).await?;
            let done = sqlx::query(
                "INSERT INTO jars.revoked_tickets \
                 (jti, event_uuid, expires, created_by, created, version) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (jti, event_uuid) DO NOTHING",
            )
            .bind(&t.jti)
            .bind(t.event)
            .bind(to_db(t.expires))
            .bind(t.created_by)
            .bind(to_db(t.created))
            .bind(version)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn revoke_event_tickets(&self, c: TicketCutoff, by: i64) -> Result<(), StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let version = bump(&mut tx).await?;
            sqlx::query(
                "INSERT INTO jars.ticket_cutoffs (event_uuid, before, created_by, version) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (event_uuid) DO UPDATE \
                 SET before = GREATEST(jars.ticket_cutoffs.before, excluded.before), \
                 created_by = excluded.created_by, version = excluded.version",
            )
            .bind(c.event)
            .bind(to_db(c.before))
            .bind(by)
            .bind(version)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn end_event(&self, end: EventEnd) -> Result<bool, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            let version = bump(&mut tx).await?;
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
                "INSERT INTO jars.event_ends (event_uuid, ended_at, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (event_uuid) DO UPDATE \
                 SET ended_at = LEAST(jars.event_ends.ended_at, excluded.ended_at), \
                 version = excluded.version",
            )
            .bind(end.event)
            .bind(to_db(end.at))
            .bind(version)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<Purged, StoreError> {
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            // First, as in every write (several nodes purging queue here); undone with the
            // rest when nothing is deleted.
            let version = bump(&mut tx).await?;
            let purged = Purged {
                bans: delete(
                    &mut tx,
                    "DELETE FROM jars.bans WHERE lifted OR expires <= $1",
                    now,
                )
                .await?,
                tickets: delete(
                    &mut tx,
                    "DELETE FROM jars.revoked_tickets WHERE expires <= $1",
                    now,
                )
                .await?,
                // No ticket outlives its event: once it has ended, its cut-off matters no more.
                cutoffs: delete(
                    &mut tx,
                    "DELETE FROM jars.ticket_cutoffs c WHERE NOT EXISTS (SELECT 1 FROM \
                     jars.events e WHERE e.event_uuid = c.event_uuid AND e.expires_time > $1)",
                    now,
                )
                .await?,
                ends: delete(
                    &mut tx,
                    "DELETE FROM jars.event_ends WHERE ended_at <= $1",
                    now - ENDS_KEPT,
                )
                .await?,
            };
            if purged.total() == 0 {
                return Ok(purged);
            }
            // Nodes that loaded before this hold rows it deleted: they load everything again.
            sqlx::query("UPDATE jars.sanctions_version SET horizon = $1 WHERE id = 1")
                .bind(version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(purged)
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
