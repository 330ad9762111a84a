//! [`ExpiringMap`]: a bounded hash map whose entries expire, for the caches that every Icecast
//! callback reads (verified tokens, event rows). A read is one shared lock and one hash lookup,
//! and records nothing, so readers on different workers do not write to shared memory beyond
//! the lock word. Entries are dropped when read after their deadline, or in a sweep when the
//! map is full — by count, or by weight (the bytes its entries hold, as the caller weighs
//! them, against a budget); if a sweep frees too little, the map starts over empty (a cache may
//! forget).

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// A bounded map of entries that each live until their own deadline.
pub struct ExpiringMap<K, V, S = RandomState> {
    entries: RwLock<Entries<K, V, S>>,
    capacity: usize,
    /// The most the entries may weigh together.
    budget: usize,
}

struct Entries<K, V, S> {
    map: HashMap<K, Entry<V>, S>,
    /// The sum of the entries' weights.
    weight: usize,
}

struct Entry<V> {
    value: V,
    until: Instant,
    weight: usize,
}

impl<K: Hash + Eq, V: Clone, S: BuildHasher + Default> ExpiringMap<K, V, S> {
    /// A map holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self::with_budget(capacity, usize::MAX)
    }

    /// A map holding at most `capacity` entries, weighing at most `budget` together (see
    /// [`ExpiringMap::insert_weighed`]).
    pub fn with_budget(capacity: usize, budget: usize) -> Self {
        ExpiringMap {
            entries: RwLock::new(Entries {
                map: HashMap::with_hasher(S::default()),
                weight: 0,
            }),
            capacity: capacity.max(1),
            budget,
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
            .map
            .get(key)
            .filter(|e| e.until > now)
            .map(|e| e.value.clone())
    }

    /// Inserts or replaces `key` for `ttl` (a zero `ttl` removes it), weighing nothing.
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        self.insert_weighed(key, value, ttl, 0);
    }

    /// Inserts or replaces `key` for `ttl` (a zero `ttl` removes it); the entry counts `weight`
    /// against the budget. An entry heavier than the whole budget is not kept.
    pub fn insert_weighed(&self, key: K, value: V, ttl: Duration, weight: usize) {
        let now = Instant::now();
        let until = now.checked_add(ttl).filter(|_| !ttl.is_zero());
        let mut entries = self.write();
        entries.remove(&key);
        let Some(until) = until.filter(|_| weight <= self.budget) else {
            return;
        };
        let over = |e: &Entries<K, V, S>| {
            e.map.len() >= self.capacity || e.weight.saturating_add(weight) > self.budget
        };
        if over(&entries) {
            entries.map.retain(|_, e| e.until > now);
            entries.weight = entries.map.values().map(|e| e.weight).sum();
            if over(&entries) {
                entries.map.clear();
                entries.weight = 0;
            }
        }
        entries.weight += weight;
        entries.map.insert(
            key,
            Entry {
                value,
                until,
                weight,
            },
        );
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.write().remove(key);
    }

    pub fn clear(&self) {
        let mut entries = self.write();
        entries.map.clear();
        entries.weight = 0;
    }

    /// Entries held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.read().map.len()
    }

    /// What the entries held weigh together, expired ones not yet dropped included.
    pub fn weight(&self) -> usize {
        self.read().weight
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves every deadline `by` earlier, as if that much time had passed: lets tests cross
    /// a ttl without sleeping.
    #[cfg(test)]
    pub(crate) fn age(&self, by: Duration) {
        for e in self.write().map.values_mut() {
            e.until = e.until.checked_sub(by).expect("deadline after boot");
        }
    }

    // A panic while holding the lock cannot leave a half-written entry behind (HashMap
    // operations do not unwind midway), so a poisoned lock is still usable.
    fn read(&self) -> RwLockReadGuard<'_, Entries<K, V, S>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries<K, V, S>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Entries<K, V, S> {
    fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(e) = self.map.remove(key) {
            self.weight -= e.weight;
        }
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
    fn a_flood_of_heavy_entries_stays_within_the_budget() {
        let budget = 64 * 1024;
        let map: ExpiringMap<u32, u32> = ExpiringMap::with_budget(100_000, budget);
        // Each 6 KiB: by count the map would hold 100,000 of them (~600 MiB).
        for i in 0..10_000 {
            map.insert_weighed(i, i, Duration::from_secs(3600), 6 * 1024);
            assert!(map.weight() <= budget, "{} after {i}", map.weight());
        }
        assert!(map.len() <= budget / (6 * 1024));
        assert_eq!(map.get(&9_999), Some(9_999), "the newest entry is kept");
        // Replacing and removing keep the sum exact.
        map.insert_weighed(9_999, 1, Duration::from_secs(3600), 10);
        map.remove(&9_999);
        let held: usize = map.read().map.values().map(|e| e.weight).sum();
        assert_eq!(map.weight(), held);
        // Heavier than the whole budget: not kept at all.
        map.insert_weighed(1, 1, Duration::from_secs(3600), budget + 1);
        assert_eq!(map.get(&1), None);
        assert!(map.weight() <= budget);
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
