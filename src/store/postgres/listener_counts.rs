//! [`ListenerCounts`] on PostgreSQL: `jars.listener_counts`, one row per (node, server, scope).
//! Row freshness is the database's clock (`seen = now()`), so nodes' clocks may differ.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{to_db, Failure, PostgresStore};
use crate::store::listener_counts::{Count, ListenerCounts, Others, Scope, ServerCounts, ROW_HOLD};
use crate::store::StoreError;

/// Rows this much older than the hold are deleted by the next publish of any node.
const ROW_EXPIRY: &str = "1 day";

fn hold() -> String {
    format!("{} seconds", ROW_HOLD.as_secs())
}

fn count_of(row: &PgRow) -> Result<Option<Count>, sqlx::Error> {
    let scope: String = row.try_get("scope")?;
    let listeners: i32 = row.try_get("listeners")?;
    Ok(Scope::parse(&scope).map(|scope| Count {
        server: row.try_get("server").unwrap_or_default(),
        scope,
        listeners: u32::try_from(listeners).unwrap_or(0),
    }))
}

fn counts(rows: &[PgRow]) -> Result<Vec<Count>, sqlx::Error> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.extend(count_of(row)?);
    }
    Ok(out)
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[async_trait::async_trait]
impl ListenerCounts for PostgresStore {
    async fn claim(
        &self,
        node: &str,
        server: &str,
        heard: DateTime<Utc>,
        mine: &[(Scope, u32)],
    ) -> Result<Vec<Count>, StoreError> {
        let scopes: Vec<String> = mine.iter().map(|(s, _)| s.key()).collect();
        let listeners: Vec<i32> = mine.iter().map(|(_, n)| int(*n)).collect();
        let (node, server) = (node.to_string(), server.to_string());
        self.run(|pool| async move {
            // The write and the read in one statement: one round trip. The read's snapshot is
            // the statement's start, so it sees every count other nodes committed before.
            let rows = sqlx::query(
                "WITH mine AS ( \
                   INSERT INTO jars.listener_counts (node, server, scope, listeners, heard, seen) \
                   SELECT $1, $2, s, n, $5, now() FROM UNNEST($3::text[], $4::int[]) AS t(s, n) \
                   ON CONFLICT (node, server, scope) DO UPDATE SET listeners = EXCLUDED.listeners, \
                     heard = EXCLUDED.heard, seen = EXCLUDED.seen) \
                 SELECT scope, server, MAX(listeners) AS listeners FROM jars.listener_counts \
                 WHERE scope = ANY($3) AND node <> $1 AND seen > now() - $6::interval \
                 GROUP BY scope, server",
            )
            .bind(&node)
            .bind(&server)
            .bind(&scopes)
            .bind(&listeners)
            .bind(to_db(heard))
            .bind(hold())
            .fetch_all(&pool)
            .await?;
            Ok(counts(&rows)?)
        })
        .await
    }

    async fn publish(&self, node: &str, servers: &[ServerCounts]) -> Result<Others, StoreError> {
        let mut names = Vec::new();
        let mut scopes = Vec::new();
        let mut listeners = Vec::new();
        let mut heard: Vec<Option<NaiveDateTime>> = Vec::new();
        for s in servers {
            let rows = std::iter::once((Scope::Station, s.station))
                .chain(s.events.iter().map(|(id, n)| (Scope::Event(*id), *n)));
            for (scope, n) in rows {
                names.push(s.server.clone());
                scopes.push(scope.key());
                listeners.push(int(n));
                heard.push(s.heard.map(to_db));
            }
        }
        let node = node.to_string();
        self.run(|pool| async move {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM jars.listener_counts WHERE node = $1")
                .bind(&node)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO jars.listener_counts (node, server, scope, listeners, heard, seen) \
                 SELECT $1, sv, sc, n, h, now() \
                 FROM UNNEST($2::text[], $3::text[], $4::int[], $5::timestamp[]) AS t(sv, sc, n, h) \
                 ON CONFLICT (node, server, scope) DO UPDATE SET listeners = EXCLUDED.listeners, \
                   heard = EXCLUDED.heard, seen = EXCLUDED.seen",
            )
            .bind(&node)
            .bind(&names)
            .bind(&scopes)
            .bind(&listeners)
            .bind(&heard)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "DELETE FROM jars.listener_counts WHERE seen < now() - interval '{ROW_EXPIRY}'"
            ))
            .execute(&mut *tx)
            .await?;
            let rows = sqlx::query(
                "SELECT scope, server, MAX(listeners) AS listeners FROM jars.listener_counts \
                 WHERE node <> $1 AND seen > now() - $2::interval GROUP BY scope, server",
            )
            .bind(&node)
            .bind(hold())
            .fetch_all(&mut *tx)
            .await?;
            let heard_rows = sqlx::query(
                "SELECT server, MAX(heard) AS heard FROM jars.listener_counts \
                 WHERE node <> $1 AND seen > now() - $2::interval GROUP BY server",
            )
            .bind(&node)
            .bind(hold())
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let mut others = Others {
                counts: counts(&rows)?,
                heard: Vec::with_capacity(heard_rows.len()),
            };
            for row in &heard_rows {
                let at: Option<NaiveDateTime> = row.try_get("heard")?;
                if let Some(at) = at {
                    others.heard.push((row.try_get("server")?, at.and_utc()));
                }
            }
            Ok::<_, Failure>(others)
        })
        .await
    }

    fn shared(&self) -> bool {
        true
    }
}
