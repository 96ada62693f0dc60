//! Per-cache counters (CACHE.INFO, INFO caches), striped per thread.

use crate::stripe::Counters;

const ENTRIES: usize = 0;
const MEMORY: usize = 1;
const HITS: usize = 2;
const MISSES: usize = 3;
const EVICTIONS: usize = 4;
const EXPIRED_TTL: usize = 5;
const EXPIRED_TTI: usize = 6;
const OFF_ENTRIES: usize = 7;
const OFF_MEMORY: usize = 8;
const OFF_HITS: usize = 9;
const PROMOTED: usize = 10;
const DEMOTED: usize = 11;
const SEGS_EXPIRED: usize = 12;
const SEGS_EVICTED: usize = 13;
const COMPACTED: usize = 14;

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
    c: Counters<15>,
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

    /// Off-heap entries changed by `entries`, their bytes by `mem` (the rest are on heap).
    #[inline]
    pub fn off_changed(&self, entries: i64, mem: i64) {
        self.c.add(OFF_ENTRIES, entries);
        self.c.add(OFF_MEMORY, mem);
    }

    /// A read hit an off-heap entry.
    #[inline]
    pub fn off_hit(&self) {
        self.c.add(OFF_HITS, 1);
    }

    /// An entry moved from off-heap to the heap.
    pub fn promoted(&self) {
        self.c.add(PROMOTED, 1);
    }

    /// An entry moved from the heap to off-heap.
    pub fn demoted(&self) {
        self.c.add(DEMOTED, 1);
    }

    /// A whole off-heap segment was dropped because everything in it had expired.
    pub fn segment_expired(&self) {
        self.c.add(SEGS_EXPIRED, 1);
    }

    /// An off-heap segment was evicted (merged: its hot items kept, the rest evicted).
    pub fn segment_evicted(&self) {
        self.c.add(SEGS_EVICTED, 1);
    }

    /// An off-heap segment was compacted to reclaim dead bytes.
    pub fn compacted(&self) {
        self.c.add(COMPACTED, 1);
    }

    /// Entries off-heap.
    pub fn off_entries(&self) -> u64 {
        self.c.count(OFF_ENTRIES)
    }
    /// Bytes charged to off-heap entries.
    pub fn off_memory(&self) -> u64 {
        self.c.count(OFF_MEMORY)
    }
    /// Entries on the heap.
    pub fn heap_entries(&self) -> u64 {
        self.entries().saturating_sub(self.off_entries())
    }
    /// Bytes charged to heap entries.
    pub fn heap_memory(&self) -> u64 {
        self.memory().saturating_sub(self.off_memory())
    }
    /// Read hits on off-heap entries.
    pub fn off_hits(&self) -> u64 {
        self.c.count(OFF_HITS)
    }
    /// Read hits on heap entries.
    pub fn heap_hits(&self) -> u64 {
        self.hits().saturating_sub(self.off_hits())
    }
    /// Entries promoted to the heap.
    pub fn promotions(&self) -> u64 {
        self.c.count(PROMOTED)
    }
    /// Entries demoted off-heap.
    pub fn demotions(&self) -> u64 {
        self.c.count(DEMOTED)
    }
    /// Off-heap segments dropped whole on expiry.
    pub fn segments_expired(&self) -> u64 {
        self.c.count(SEGS_EXPIRED)
    }
    /// Off-heap segments evicted.
    pub fn segments_evicted(&self) -> u64 {
        self.c.count(SEGS_EVICTED)
    }
    /// Off-heap segments compacted.
    pub fn compactions(&self) -> u64 {
        self.c.count(COMPACTED)
    }

    /// CONFIG RESETSTAT: zeroes the event counters (entries and memory stay exact).
    pub fn reset(&self) {
        for i in [
            HITS,
            MISSES,
            EVICTIONS,
            EXPIRED_TTL,
            EXPIRED_TTI,
            OFF_HITS,
            PROMOTED,
            DEMOTED,
            SEGS_EXPIRED,
            SEGS_EVICTED,
            COMPACTED,
        ] {
            self.c.reset(i);
        }
    }
}
