//! [`Table`]: the entries of one cache in one shard, with their TTL index and the
//! bookkeeping every insert and removal must do (bytes, the cache's counters). Victim
//! selection for eviction lives here too, because it walks the same map.

use std::sync::Arc;

use indexmap::IndexMap;

use super::entry::{Entry, Key};
use crate::cache::Cache;
use crate::cache::stats::Removal;
use crate::config::Eviction;

/// How to pick an entry to evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    /// Least recently used (oldest access time; sampled in large tables).
    Lru,
    /// Least frequently used (lowest decayed LFU counter among a sample).
    Lfu,
    /// Any entry.
    Random,
    /// Least recently used among entries with a TTL.
    VolatileLru,
    /// Least frequently used among entries with a TTL.
    VolatileLfu,
    /// Any entry with a TTL.
    VolatileRandom,
    /// The entry whose TTL ends soonest.
    VolatileTtl,
}

impl Victim {
    /// The victim rule of a Redis `maxmemory-policy`; `None` for `noeviction`.
    pub fn from_policy(name: &str) -> Option<Victim> {
        Some(match name {
            "allkeys-lru" => Victim::Lru,
            "allkeys-lfu" => Victim::Lfu,
            "allkeys-random" => Victim::Random,
            "volatile-lru" => Victim::VolatileLru,
            "volatile-lfu" => Victim::VolatileLfu,
            "volatile-random" => Victim::VolatileRandom,
            "volatile-ttl" => Victim::VolatileTtl,
            _ => return None,
        })
    }

    /// The victim rule of a cache's `eviction`; `None` for `none`.
    pub fn of_cache(e: Eviction) -> Option<Victim> {
        match e {
            Eviction::Lru => Some(Victim::Lru),
            Eviction::Lfu => Some(Victim::Lfu),
            Eviction::Random => Some(Victim::Random),
            Eviction::None => None,
        }
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            Victim::VolatileLru
                | Victim::VolatileLfu
                | Victim::VolatileRandom
                | Victim::VolatileTtl
        )
    }
}

/// A victim's rank: lower goes first.
pub type Score = (u64, u64);

/// Entries sampled per LRU/LFU eviction in a large table (Redis's `maxmemory-samples`).
/// Each sample is a cache miss on a write that evicts.
const SAMPLES: usize = 5;
/// Tables up to this size are searched exhaustively: exact LRU/LFU.
const EXACT_UP_TO: usize = 32;
/// Entries examined, in a row, when no sample was eligible.
const FALLBACK_RUN: usize = 256;

/// The entries of one cache within one shard.
#[derive(Debug)]
pub struct Table {
    /// Keys in an insertion-ordered map: O(1) random access for sampling and RANDOMKEY,
    /// and a stable index order for SCAN cursors.
    pub(crate) map: IndexMap<Key, Entry, ahash::RandomState>,
    /// Entries with a TTL. There is no deadline index: keeping one ordered costs more on
    /// every TTL write than it saves (a cache with a default TTL rewrites deadlines on every
    /// write); the active cycle sweeps the map instead, as Redis scans its expires dict.
    pub(crate) volatile: usize,
    /// Bytes charged to these entries (see `Entry::mem`).
    pub(crate) used: usize,
    /// Where the active expiry sweep continues (it walks indices downwards).
    sweep: usize,
    /// The cache these entries belong to: its policy and counters.
    pub(crate) cache: Arc<Cache>,
}

impl Table {
    /// An empty table of `cache`.
    pub fn new(cache: Arc<Cache>) -> Table {
        Table {
            map: IndexMap::default(),
            volatile: 0,
            used: 0,
            sweep: 0,
            cache,
        }
    }

    /// Why `e` is no longer live at `now`, or `None` if it is: its TTL passed, or it has
    /// been idle for the cache's TTI.
    #[inline]
    pub fn expiry(&self, e: &Entry, now: u64) -> Option<Removal> {
        if e.is_expired(now) {
            return Some(Removal::ExpiredTtl);
        }
        let tti = self.cache.policy.tti_ms();
        (tti != 0 && now.saturating_sub(e.atime) >= tti).then_some(Removal::ExpiredTti)
    }

    /// Adds a new entry (the key must not be present).
    pub fn insert(&mut self, key: Key, e: Entry) {
        let mem = e.mem(key.len());
        self.used += mem;
        self.cache.stats.inserted(mem);
        self.volatile += usize::from(e.expire_at != 0);
        self.map.insert(key, e);
    }

    /// Removes the entry at `i`, counting it as `why`.
    pub fn remove(&mut self, i: usize, why: Removal) -> Option<(Key, Entry)> {
        let (k, e) = self.map.swap_remove_index(i)?;
        self.volatile -= usize::from(e.expire_at != 0);
        let mem = e.mem(k.len());
        self.used = self.used.saturating_sub(mem);
        self.cache.stats.removed(mem, why);
        Some((k, e))
    }

    /// Changes the size charged for the entry at `i` from `old` to its current size.
    pub fn resized(&mut self, i: usize, old: usize) {
        if let Some((k, e)) = self.map.get_index(i) {
            let new = e.mem(k.len());
            self.used = (self.used + new).saturating_sub(old);
            self.cache.stats.resized(new as i64 - old as i64);
        }
    }

    /// Makes the entry at `i` expire at `at` (0 = never).
    pub fn set_expire(&mut self, i: usize, at: u64) {
        let Some(e) = self.map.get_index_mut(i).map(|(_, e)| e) else {
            return;
        };
        let old = std::mem::replace(&mut e.expire_at, at);
        self.volatile = self.volatile + usize::from(at != 0) - usize::from(old != 0);
    }

    /// Removes every entry, counting them as deleted; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.map.len();
        for (k, e) in self.map.drain(..) {
            self.cache.stats.removed(e.mem(k.len()), Removal::Deleted);
        }
        self.map = IndexMap::default();
        self.volatile = 0;
        self.used = 0;
        self.sweep = 0;
        n
    }

    /// Picks an entry to evict, never one whose key is `spare` (the key being written), with
    /// its score: the lower, the sooner it should go, so candidates from several tables can
    /// be compared.
    pub fn victim(&self, how: Victim, now: u64, spare: &[u8]) -> Option<(Score, usize)> {
        let len = self.map.len();
        if len == 0 || (how.volatile_only() && self.volatile == 0) {
            return None;
        }
        let eligible = |k: &Key, e: &Entry| {
            k.as_slice() != spare && (!how.volatile_only() || e.expire_at != 0)
        };
        let i = match how {
            Victim::Lru | Victim::VolatileLru => self.sampled(&eligible, |e| (e.atime, 0)),
            Victim::Lfu | Victim::VolatileLfu => {
                self.sampled(&eligible, |e| (u64::from(e.freq(now)), e.atime))
            }
            Victim::Random | Victim::VolatileRandom => (0..16)
                .map(|_| fastrand::usize(..len))
                .find(|&i| self.map.get_index(i).is_some_and(|(k, e)| eligible(k, e)))
                .or_else(|| self.map.iter().position(|(k, e)| eligible(k, e))),
            Victim::VolatileTtl => self.sampled(&eligible, |e| (e.expire_at, 0)),
        }?;
        let (_, e) = self.map.get_index(i)?;
        let score = match how {
            Victim::Lru | Victim::VolatileLru => (e.atime, 0),
            Victim::Lfu | Victim::VolatileLfu => (u64::from(e.freq(now)), e.atime),
            Victim::Random | Victim::VolatileRandom => (fastrand::u64(..), 0),
            Victim::VolatileTtl => (e.expire_at, 0),
        };
        Some((score, i))
    }

    /// The eligible entry with the lowest `score`: exact for small tables, else the
    /// lowest of a random sample (Redis's approximated LRU/LFU).
    fn sampled(
        &self,
        eligible: &impl Fn(&Key, &Entry) -> bool,
        score: impl Fn(&Entry) -> (u64, u64),
    ) -> Option<usize> {
        let len = self.map.len();
        let best = |it: &mut dyn Iterator<Item = usize>| {
            it.filter_map(|i| {
                let (k, e) = self.map.get_index(i)?;
                eligible(k, e).then(|| (score(e), i))
            })
            .min()
            .map(|(_, i)| i)
        };
        if len <= EXACT_UP_TO {
            return best(&mut (0..len));
        }
        // When no sample was eligible (a volatile policy where few entries have a TTL),
        // look at a bounded run of entries from a random point rather than the table.
        let start = fastrand::usize(..len);
        best(&mut (0..SAMPLES).map(|_| fastrand::usize(..len)))
            .or_else(|| best(&mut (0..len.min(FALLBACK_RUN)).map(|off| (start + off) % len)))
    }

    /// True when victims are chosen by looking at every entry (small tables), not sampled.
    pub fn is_exact(&self) -> bool {
        self.map.len() <= EXACT_UP_TO
    }

    /// The active expiry sweep: examines up to `budget` entries, continuing where the last
    /// call stopped, and returns those whose TTL or TTI has passed with the reason, highest
    /// index first (so removing them in order never moves one not yet removed), and the
    /// number examined.
    pub fn due_entries(&mut self, now: u64, budget: usize) -> (Vec<(usize, Removal)>, usize) {
        let len = self.map.len();
        if len == 0 || (self.volatile == 0 && self.cache.policy.tti_ms() == 0) {
            return (Vec::new(), 0);
        }
        let mut found = Vec::new();
        let mut i = if self.sweep == 0 || self.sweep > len {
            len
        } else {
            self.sweep
        };
        let examined = budget.min(len);
        for _ in 0..examined {
            if i == 0 {
                i = len;
            }
            i -= 1;
            if let Some(why) = self.map.get_index(i).and_then(|(_, e)| self.expiry(e, now)) {
                found.push((i, why));
            }
        }
        self.sweep = i;
        found.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
        found.dedup_by_key(|f| f.0);
        (found, examined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Caches;
    use crate::config::CacheConfig;
    use crate::store::Value;

    fn table(tti: Option<u64>) -> Table {
        let mut c = CacheConfig::default_cache();
        c.tti = tti.map(|ms| crate::config::Dur(std::time::Duration::from_millis(ms)));
        let caches = Caches::new(&[c]);
        Table::new(caches.get(0).clone())
    }

    fn put(t: &mut Table, k: &str, at: u64, now: u64) {
        t.insert(
            Key::from_slice(k.as_bytes()),
            Entry::new(Value::str(b"v"), at, now),
        );
    }

    #[test]
    fn accounting_follows_inserts_and_removals() {
        let mut t = table(None);
        put(&mut t, "a", 0, 0);
        put(&mut t, "b", 50, 0);
        assert_eq!(t.cache.stats.entries(), 2);
        assert_eq!(t.used as u64, t.cache.stats.memory());
        let i = t.map.get_index_of(b"b".as_slice()).expect("b");
        t.remove(i, Removal::ExpiredTtl);
        assert_eq!(t.volatile, 0);
        assert_eq!(t.cache.stats.entries(), 1);
        assert_eq!(t.cache.stats.expired_ttl(), 1);
        assert_eq!(t.clear(), 1);
        assert_eq!(t.cache.stats.memory(), 0);
    }

    #[test]
    fn tti_uses_the_injected_clock() {
        let mut t = table(Some(1000));
        put(&mut t, "a", 0, 0);
        let e = t.map[0].clone();
        assert_eq!(t.expiry(&e, 999), None);
        assert_eq!(t.expiry(&e, 1000), Some(Removal::ExpiredTti));
        t.map[0].touch(900);
        let e = t.map[0].clone();
        assert_eq!(t.expiry(&e, 1899), None, "an access resets the idle clock");
        assert_eq!(t.due_entries(1899, 10).0, Vec::new());
        assert_eq!(t.due_entries(1900, 10).0, vec![(0, Removal::ExpiredTti)]);
    }

    #[test]
    fn lru_evicts_the_least_recently_accessed() {
        let mut t = table(None);
        for i in 0..10 {
            put(&mut t, &format!("k{i}"), 0, i);
        }
        let k0 = t.map.get_index_of(b"k0".as_slice()).expect("k0");
        t.map[k0].touch(100);
        let (_, v) = t.victim(Victim::Lru, 100, b"").expect("victim");
        assert_eq!(
            t.map.get_index(v).map(|(k, _)| k.as_slice()),
            Some(b"k1".as_slice())
        );
        let (_, v) = t.victim(Victim::Lru, 100, b"k1").expect("victim");
        assert_eq!(
            t.map.get_index(v).map(|(k, _)| k.as_slice()),
            Some(b"k2".as_slice())
        );
    }

    #[test]
    fn volatile_victims_have_a_ttl_and_spare_is_spared() {
        let mut t = table(None);
        put(&mut t, "keep", 0, 0);
        put(&mut t, "soon", 100, 0);
        put(&mut t, "later", 200, 0);
        let (_, v) = t.victim(Victim::VolatileTtl, 0, b"").expect("victim");
        assert_eq!(
            t.map.get_index(v).map(|(k, _)| k.as_slice()),
            Some(b"soon".as_slice())
        );
        let (_, v) = t.victim(Victim::VolatileTtl, 0, b"soon").expect("victim");
        assert_eq!(
            t.map.get_index(v).map(|(k, _)| k.as_slice()),
            Some(b"later".as_slice())
        );
        for how in [
            Victim::VolatileLru,
            Victim::VolatileLfu,
            Victim::VolatileRandom,
        ] {
            let (_, v) = t.victim(how, 0, b"").expect("victim");
            assert_ne!(
                t.map.get_index(v).map(|(k, _)| k.as_slice()),
                Some(b"keep".as_slice())
            );
        }
        let (_, v) = t.victim(Victim::Lru, 0, b"keep").expect("victim");
        assert_ne!(
            t.map.get_index(v).map(|(k, _)| k.as_slice()),
            Some(b"keep".as_slice())
        );
    }

    #[test]
    fn lfu_prefers_rarely_used() {
        let mut t = table(None);
        put(&mut t, "cold", 0, 0);
        put(&mut t, "hot", 0, 0);
        let hot = t.map.get_index_of(b"hot".as_slice()).expect("hot");
        t.map[hot].lfu = 100;
        let (_, v) = t.victim(Victim::Lfu, 0, b"").expect("victim");
        assert_eq!(
            t.map.get_index(v).map(|(k, _)| k.as_slice()),
            Some(b"cold".as_slice())
        );
    }
}
