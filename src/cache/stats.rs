//! Per-cache counters (CACHE.INFO, INFO caches), striped per thread.

use crate::stripe::Counters;

const ENTRIES: usize = 0;
const MEMORY: usize = 1;
const HITS: usize = 2;
const MISSES: usize = 3;
const EVICTIONS: usize = 4;
const EXPIRED_TTL: usize = 5;
const EXPIRED_TTI: usize = 6;

/// Why an entry left a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Deleted or overwritten by a command (DEL, RENAME, CACHE.CLEAR, FLUSHALL).
    Deleted,
    /// Its TTL passed.
    ExpiredTtl,
    /// It was idle for the cache's TTI.
    ExpiredTti,
    /// Evicted for a size limit or `maxmemory`.
    Evicted,
}

/// The counters of one cache. Entries and memory are kept exact by the store, which
/// reports every insert and removal; the rest are event counts.
#[derive(Debug, Default)]
pub struct CacheStats {
    c: Counters<7>,
}

impl CacheStats {
    /// An entry of `mem` bytes was added.
    #[inline]
    pub fn inserted(&self, mem: usize) {
        self.c.add(ENTRIES, 1);
        self.c.add(MEMORY, mem as i64);
    }

    /// An entry's size changed by `delta` bytes.
    #[inline]
    pub fn resized(&self, delta: i64) {
        self.c.add(MEMORY, delta);
    }

    /// An entry of `mem` bytes left the cache.
    #[inline]
    pub fn removed(&self, mem: usize, why: Removal) {
        self.c.add(ENTRIES, -1);
        self.c.add(MEMORY, -(mem as i64));
        match why {
            Removal::Deleted => {}
            Removal::ExpiredTtl => self.c.add(EXPIRED_TTL, 1),
            Removal::ExpiredTti => self.c.add(EXPIRED_TTI, 1),
            Removal::Evicted => self.c.add(EVICTIONS, 1),
        }
    }

    /// A read found (`true`) or missed (`false`) its key.
    #[inline]
    pub fn lookup(&self, hit: bool) {
        self.c.add(if hit { HITS } else { MISSES }, 1);
    }

    /// Entries in the cache.
    pub fn entries(&self) -> u64 {
        self.c.count(ENTRIES)
    }
    /// Bytes of keys, values and metadata.
    pub fn memory(&self) -> u64 {
        self.c.count(MEMORY)
    }
    /// Reads that found their key.
    pub fn hits(&self) -> u64 {
        self.c.count(HITS)
    }
    /// Reads that found nothing.
    pub fn misses(&self) -> u64 {
        self.c.count(MISSES)
    }
    /// Entries evicted.
    pub fn evictions(&self) -> u64 {
        self.c.count(EVICTIONS)
    }
    /// Entries expired by TTL.
    pub fn expired_ttl(&self) -> u64 {
        self.c.count(EXPIRED_TTL)
    }
    /// Entries expired by TTI.
    pub fn expired_tti(&self) -> u64 {
        self.c.count(EXPIRED_TTI)
    }

    /// CONFIG RESETSTAT: zeroes the event counters (entries and memory stay exact).
    pub fn reset(&self) {
        for i in [HITS, MISSES, EVICTIONS, EXPIRED_TTL, EXPIRED_TTI] {
            self.c.reset(i);
        }
    }
}
