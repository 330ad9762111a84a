//! [`ExpiringMap`]: a bounded hash map whose entries expire, for the caches that every Icecast
//! callback reads (verified tokens, event rows). A read is one shared lock and one hash lookup,
//! and records nothing, so readers on different workers do not write to shared memory beyond
//! the lock word. Entries are dropped when read after their deadline, or in a sweep when the
//! map is full; if a sweep frees nothing, the map starts over empty (a cache may forget).

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// A bounded map of entries that each live until their own deadline.
pub struct ExpiringMap<K, V, S = RandomState> {
    entries: RwLock<HashMap<K, Entry<V>, S>>,
    capacity: usize,
}

struct Entry<V> {
    value: V,
    until: Instant,
}

impl<K: Hash + Eq, V: Clone, S: BuildHasher + Default> ExpiringMap<K, V, S> {
    /// A map holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        ExpiringMap {
            entries: RwLock::new(HashMap::with_hasher(S::default())),
            capacity: capacity.max(1),
        }
    }

    /// The value of `key`, unless it has expired.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Instant::now();
        self.read()
            .get(key)
            .filter(|e| e.until > now)
            .map(|e| e.value.clone())
    }

    /// Inserts or replaces `key` for `ttl` (a zero `ttl` removes it).
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        let now = Instant::now();
        let Some(until) = now.checked_add(ttl).filter(|_| !ttl.is_zero()) else {
            self.write().remove(&key);
            return;
        };
        let mut map = self.write();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, e| e.until > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, Entry { value, until });
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.write().remove(key);
    }

    pub fn clear(&self) {
        self.write().clear();
    }

    /// Entries held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves every deadline `by` earlier, as if that much time had passed: lets tests cross
    /// a ttl without sleeping.
    #[cfg(test)]
    pub(crate) fn age(&self, by: Duration) {
        for e in self.write().values_mut() {
            e.until = e.until.checked_sub(by).expect("deadline after boot");
        }
    }

    // A panic while holding the lock cannot leave a half-written entry behind (HashMap
    // operations do not unwind midway), so a poisoned lock is still usable.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<K, Entry<V>, S>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<K, Entry<V>, S>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_at_their_own_deadline() {
        let map: ExpiringMap<String, u32> = ExpiringMap::new(10);
        map.insert("long".into(), 1, Duration::from_secs(3600));
        map.insert("short".into(), 2, Duration::from_millis(30));
        map.insert("none".into(), 3, Duration::ZERO);
        assert_eq!(map.get("long"), Some(1));
        assert_eq!(map.get("short"), Some(2));
        assert_eq!(map.get("none"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(map.get("short"), None);
        assert_eq!(map.get("long"), Some(1));
        map.remove("long");
        assert_eq!(map.get("long"), None);
    }

    #[test]
    fn a_full_map_sweeps_expired_entries_then_starts_over() {
        let map: ExpiringMap<u32, u32> = ExpiringMap::new(3);
        map.insert(1, 1, Duration::from_millis(20));
        map.insert(2, 2, Duration::from_secs(3600));
        map.insert(3, 3, Duration::from_secs(3600));
        std::thread::sleep(Duration::from_millis(40));
        // Full: the sweep drops the expired entry and keeps the live ones.
        map.insert(4, 4, Duration::from_secs(3600));
        assert_eq!(map.len(), 3);
        assert_eq!((map.get(&2), map.get(&4)), (Some(2), Some(4)));
        // Replacing a key never sweeps.
        map.insert(4, 5, Duration::from_secs(3600));
        assert_eq!(map.get(&4), Some(5));
        // Full of live entries: it starts over rather than grow.
        map.insert(5, 5, Duration::from_secs(3600));
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&5), Some(5));
        assert_eq!(map.get(&2), None);
    }
}
