//! A small TTL map on the injected clock (what Karpenter does with go-cache).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::SharedClock;

#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    clock: SharedClock,
    entries: Mutex<BTreeMap<K, (V, Instant)>>,
}

impl<K: Ord + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, clock: SharedClock) -> Self {
        Self { ttl, clock, entries: Mutex::new(BTreeMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<K, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live value; an expired one is dropped on the way.
    pub fn get(&self, key: &K) -> Option<V> {
        let now = self.clock.now();
        let mut entries = self.lock();
        match entries.get(key) {
            Some((v, expires)) if *expires > now => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces; the TTL starts again either way.
    pub fn set(&self, key: K, value: V) {
        let expires = self.clock.now() + self.ttl;
        self.lock().insert(key, (value, expires));
    }

    pub fn remove(&self, key: &K) -> Option<V> {
        self.lock().remove(key).map(|(v, _)| v)
    }

    /// Live entries in key order.
    pub fn entries(&self) -> Vec<(K, V)> {
        let now = self.clock.now();
        let mut entries = self.lock();
        entries.retain(|_, (_, expires)| *expires > now);
        entries.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}
