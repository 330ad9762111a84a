//! A short-lived cache of event rows in front of any [`EventStore`], so Icecast callbacks for a
//! busy event cost a hash lookup instead of a database round trip. Rows are trusted for at most
//! `ttl` (unknown ids for `negative_ttl`, so random-UUID floods do not reach the database), and
//! local writes invalidate at once; another node's change is seen within `ttl`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::future::Cache;
use uuid::Uuid;

use super::{Event, EventStore, ListFilter, NewEvent, StoreError};

type Row = Option<Arc<Event>>;

struct RowExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl moka::Expiry<Uuid, Row> for RowExpiry {
    fn expire_after_create(&self, _: &Uuid, row: &Row, _: Instant) -> Option<Duration> {
        Some(if row.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        })
    }
}

/// An [`EventStore`] that caches `get`.
pub struct CachedStore {
    inner: Arc<dyn EventStore>,
    rows: Cache<Uuid, Row>,
}

impl CachedStore {
    pub fn new(inner: Arc<dyn EventStore>, ttl: Duration, negative_ttl: Duration) -> CachedStore {
        CachedStore {
            inner,
            rows: Cache::builder()
                .max_capacity(50_000)
                .expire_after(RowExpiry { ttl, negative_ttl })
                .build(),
        }
    }
}

#[async_trait::async_trait]
impl EventStore for CachedStore {
    async fn create(&self, new: NewEvent) -> Result<Event, StoreError> {
        let event = self.inner.create(new).await?;
        // A negative entry for this id is impossible in practice (fresh v4 UUID), but cheap to rule out.
        self.rows.invalidate(&event.id).await;
        Ok(event)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        let inner = self.inner.clone();
        let row = self
            .rows
            .try_get_with(
                id,
                async move { inner.get(id).await.map(|r| r.map(Arc::new)) },
            )
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(row.map(|e| (*e).clone()))
    }

    async fn get_fresh(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        let row = self.inner.get(id).await?;
        self.rows.insert(id, row.clone().map(Arc::new)).await;
        Ok(row)
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<Event>, StoreError> {
        self.inner.list(filter).await
    }

    async fn mark_connected(
        &self,
        id: Uuid,
        by: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self.inner.mark_connected(id, by, at).await;
        self.rows.invalidate(&id).await;
        result
    }

    async fn mark_disconnected(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self.inner.mark_disconnected(id, at).await;
        self.rows.invalidate(&id).await;
        result
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn caches_rows_and_invalidates_on_local_writes() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite: Arc<dyn EventStore> = Arc::new(
            SqliteStore::open(&dir.path().join("e.sqlite3"))
                .await
                .unwrap(),
        );
        let cached = CachedStore::new(
            sqlite.clone(),
            Duration::from_secs(60),
            Duration::from_millis(200),
        );
        let e = cached
            .create(NewEvent {
                created_by: 1,
                title: "t".into(),
                description: "d".into(),
                private: false,
                lifetime: Duration::from_secs(60),
            })
            .await
            .unwrap();
        assert!(!cached.get(e.id).await.unwrap().unwrap().connected);
        // A write behind the cache's back (another node) is not seen while the row is cached…
        sqlite
            .mark_connected(e.id, Some(5), Utc::now())
            .await
            .unwrap();
        assert!(!cached.get(e.id).await.unwrap().unwrap().connected);
        // …a fresh read sees it, and local writes invalidate.
        assert!(cached.get_fresh(e.id).await.unwrap().unwrap().connected);
        cached.mark_disconnected(e.id, Utc::now()).await.unwrap();
        assert!(!cached.get(e.id).await.unwrap().unwrap().connected);

        // Unknown ids are remembered briefly.
        let unknown = Uuid::new_v4();
        assert!(cached.get(unknown).await.unwrap().is_none());
    }
}
