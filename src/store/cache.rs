//! A short-lived cache of event rows in front of any [`EventStore`], so Icecast callbacks for a
//! busy event cost a hash lookup instead of a database round trip. Rows are trusted for at most
//! `ttl` (unknown ids for `negative_ttl`, so random-UUID floods do not reach the database), and
//! local writes invalidate at once; another node's change is seen within `ttl`.
//!
//! It also remembers the last row it read of each event (for a day), whatever the `ttl`: what
//! Icecast decisions fall back on while the store is unreachable ([`EventStore::last_known`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Connect, ConnectRequest, Event, EventStore, ListFilter, NewEvent, StoreError};
use crate::expiring_map::ExpiringMap;

type Row = Option<Arc<Event>>;

/// How long the last known row of an event is kept for [`EventStore::last_known`].
const LAST_KNOWN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Rows (and unknown ids) cached at most.
const CAPACITY: usize = 50_000;

/// An [`EventStore`] that caches `get`.
pub struct CachedStore {
    inner: Arc<dyn EventStore>,
    /// Read on every callback: a plain expiring map (see [`ExpiringMap`]).
    rows: ExpiringMap<Uuid, Row>,
    ttl: Duration,
    negative_ttl: Duration,
    /// Counts local writes. A read that raced a write (the count moved while it read) does
    /// not cache what it read, so a row older than a local write is never cached after it;
    /// `gate` makes "check the count, then insert" and "count, then invalidate" exclusive.
    writes: std::sync::atomic::AtomicU64,
    gate: tokio::sync::Mutex<()>,
    /// The last row read (or written here) of each event, however old. Read only when the
    /// store fails.
    last: ExpiringMap<Uuid, Arc<Event>>,
}

impl CachedStore {
    pub fn new(inner: Arc<dyn EventStore>, ttl: Duration, negative_ttl: Duration) -> CachedStore {
        CachedStore {
            inner,
            rows: ExpiringMap::new(CAPACITY),
            ttl,
            negative_ttl,
            writes: std::sync::atomic::AtomicU64::new(0),
            gate: tokio::sync::Mutex::new(()),
            last: ExpiringMap::new(CAPACITY),
        }
    }

    /// Caches what the store said about `id`.
    fn cache(&self, id: Uuid, row: Row) {
        let ttl = if row.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        };
        self.rows.insert(id, row, ttl);
    }

    /// Records what the store said about `id`.
    fn remember(&self, id: Uuid, row: Option<&Arc<Event>>) {
        match row {
            Some(e) => self.last.insert(id, e.clone(), LAST_KNOWN_TTL),
            // Gone from the store: nothing to fall back on.
            None => self.last.remove(&id),
        }
    }

    /// After a local write to `id`: forget the cached row, and make any read in flight skip
    /// caching its (possibly older) row.
    async fn written(&self, id: Uuid) {
        let _gate = self.gate.lock().await;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.rows.remove(&id);
    }

    /// Applies a successful local write to the last known row.
    fn amend(&self, id: Uuid, change: impl FnOnce(&mut Event)) {
        if let Some(row) = self.last.get(&id) {
            let mut row = (*row).clone();
            change(&mut row);
            self.last.insert(id, Arc::new(row), LAST_KNOWN_TTL);
        }
    }
}

#[async_trait::async_trait]
impl EventStore for CachedStore {
    async fn create(&self, new: NewEvent) -> Result<Event, StoreError> {
        let event = self.inner.create(new).await?;
        // A negative entry for this id is impossible in practice (fresh v4 UUID), but cheap to rule out.
        self.written(event.id).await;
        self.last
            .insert(event.id, Arc::new(event.clone()), LAST_KNOWN_TTL);
        Ok(event)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        Ok(self.get_shared(id).await?.map(|e| (*e).clone()))
    }

    async fn get_shared(&self, id: Uuid) -> Result<Option<Arc<Event>>, StoreError> {
        if let Some(row) = self.rows.get(&id) {
            return Ok(row);
        }
        let before = self.writes.load(std::sync::atomic::Ordering::SeqCst);
        let row = self.inner.get(id).await?.map(Arc::new);
        self.remember(id, row.as_ref());
        {
            let _gate = self.gate.lock().await;
            if self.writes.load(std::sync::atomic::Ordering::SeqCst) == before {
                self.cache(id, row.clone());
            }
        }
        Ok(row)
    }

    async fn get_fresh(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        let row = self.inner.get(id).await?.map(Arc::new);
        self.remember(id, row.as_ref());
        self.cache(id, row.clone());
        Ok(row.map(|e| (*e).clone()))
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<Event>, StoreError> {
        let events = self.inner.list(filter).await?;
        let now = filter.now;
        for e in events.iter().filter(|e| !e.is_expired(now)) {
            self.last.insert(e.id, Arc::new(e.clone()), LAST_KNOWN_TTL);
        }
        Ok(events)
    }

    async fn mark_connected(
        &self,
        id: Uuid,
        by: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self.inner.mark_connected(id, by, at).await;
        self.written(id).await;
        if let Ok(true) = result {
            self.amend(id, |e| {
                e.connected = true;
                e.connected_by = by.or(e.connected_by);
                e.last_connected_at = Some(at);
            });
        }
        result
    }

    async fn connect(&self, request: ConnectRequest) -> Result<Connect, StoreError> {
        let ConnectRequest { id, by, at, .. } = request;
        let result = self.inner.connect(request).await;
        self.written(id).await;
        match &result {
            Ok(Connect::Done) => self.amend(id, |e| {
                e.connected = true;
                e.connected_by = Some(by);
                e.last_connected_at = Some(at);
            }),
            Ok(Connect::Refused(row)) => self.remember(id, row.clone().map(Arc::new).as_ref()),
            Err(_) => {}
        }
        result
    }

    async fn mark_disconnected(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self.inner.mark_disconnected(id, at).await;
        self.written(id).await;
        if let Ok(true) = result {
            self.amend(id, |e| {
                e.connected = false;
                e.last_disconnected_at = Some(at);
            });
        }
        result
    }

    async fn set_max_listeners(&self, id: Uuid, max: Option<u32>) -> Result<bool, StoreError> {
        let result = self.inner.set_max_listeners(id, max).await;
        self.written(id).await;
        if let Ok(true) = result {
            self.amend(id, |e| e.max_listeners = max);
        }
        result
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn last_known(&self, id: Uuid) -> Option<Event> {
        let row = self.last.get(&id)?;
        (!row.is_expired(Utc::now())).then(|| (*row).clone())
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
                now: Utc::now(),
                max_listeners: None,
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
    }

    /// A store that can be switched off, standing in for an unreachable database, and counts
    /// the `get`s that reach it.
    struct Flaky {
        inner: Arc<dyn EventStore>,
        down: std::sync::atomic::AtomicBool,
        gets: std::sync::atomic::AtomicUsize,
    }

    impl Flaky {
        /// Up, on a new SQLite database in `dir`.
        async fn open(dir: &tempfile::TempDir) -> Arc<Flaky> {
            Arc::new(Flaky {
                inner: Arc::new(
                    SqliteStore::open(&dir.path().join("e.sqlite3"))
                        .await
                        .unwrap(),
                ),
                down: Default::default(),
                gets: Default::default(),
            })
        }

        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                Err(StoreError::Unavailable("down".into()))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait::async_trait]
    impl EventStore for Flaky {
        async fn create(&self, new: NewEvent) -> Result<Event, StoreError> {
            self.check()?;
            self.inner.create(new).await
        }
        async fn get(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
            self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.check()?;
            self.inner.get(id).await
        }
        async fn list(&self, f: ListFilter) -> Result<Vec<Event>, StoreError> {
            self.check()?;
            self.inner.list(f).await
        }
        async fn mark_connected(
            &self,
            id: Uuid,
            by: Option<i64>,
            at: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            self.check()?;
            self.inner.mark_connected(id, by, at).await
        }
        async fn mark_disconnected(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
            self.check()?;
            self.inner.mark_disconnected(id, at).await
        }
        async fn set_max_listeners(&self, id: Uuid, max: Option<u32>) -> Result<bool, StoreError> {
            self.check()?;
            self.inner.set_max_listeners(id, max).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.check()
        }
    }

    #[tokio::test]
    async fn unknown_ids_are_remembered_for_the_negative_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let flaky = Flaky::open(&dir).await;
        let negative_ttl = Duration::from_secs(60);
        let cached = CachedStore::new(flaky.clone(), Duration::from_secs(3600), negative_ttl);
        let known = cached
            .create(NewEvent {
                created_by: 1,
                title: "t".into(),
                description: "d".into(),
                private: false,
                lifetime: Duration::from_secs(3600),
                now: Utc::now(),
                max_listeners: None,
            })
            .await
            .unwrap();
        let unknown = Uuid::new_v4();
        let gets = || flaky.gets.load(std::sync::atomic::Ordering::SeqCst);
        let lookup = |id| {
            let cached = &cached;
            async move { cached.get(id).await.unwrap().map(|e| e.id) }
        };

        assert_eq!((lookup(unknown).await, gets()), (None, 1));
        assert_eq!((lookup(known.id).await, gets()), (Some(known.id), 2));
        // Within the negative ttl the unknown id is answered from the cache.
        cached.rows.age(negative_ttl / 2);
        assert_eq!((lookup(unknown).await, gets()), (None, 2));
        // Past it the store is asked again; the known row, on the longer ttl, is still cached.
        cached.rows.age(negative_ttl / 2);
        assert_eq!((lookup(unknown).await, gets()), (None, 3));
        assert_eq!((lookup(known.id).await, gets()), (Some(known.id), 3));
    }

    #[tokio::test]
    async fn last_known_rows_outlive_the_ttl_but_not_the_event() {
        let dir = tempfile::tempdir().unwrap();
        let flaky = Flaky::open(&dir).await;
        let cached = CachedStore::new(
            flaky.clone(),
            Duration::from_millis(50),
            Duration::from_millis(50),
        );
        let new = |lifetime| NewEvent {
            created_by: 1,
            title: "t".into(),
            description: "d".into(),
            private: false,
            lifetime,
            now: Utc::now(),
            max_listeners: None,
        };
        let long = cached.create(new(Duration::from_secs(60))).await.unwrap();
        let short = cached
            .create(new(Duration::from_millis(300)))
            .await
            .unwrap();
        let never_read = flaky
            .inner
            .create(new(Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(cached.get(long.id).await.unwrap().is_some());
        assert!(cached
            .mark_connected(long.id, Some(4), Utc::now())
            .await
            .unwrap());

        flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Past the ttl the store is asked, fails, and the failure is reported…
        assert!(cached.get(long.id).await.is_err());
        assert!(cached.get_fresh(long.id).await.is_err());
        // …while the last known row (with the local write applied) is there to fall back on.
        let last = cached.last_known(long.id).await.unwrap();
        assert!(last.connected);
        assert_eq!(last.connected_by, Some(4));
        assert!(cached.last_known(short.id).await.is_some());
        assert!(cached.last_known(never_read.id).await.is_none());
        assert!(
            cached.create(new(Duration::from_secs(1))).await.is_err(),
            "writes are never faked"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(cached.last_known(short.id).await.is_none(), "expired event");
    }
}
