//! Named caches: which cache a key belongs to, each cache's live policy and its counters.
//!
//! A key belongs to the cache whose `name:` is its longest prefix; other keys belong to
//! `default`. The set of caches is fixed at startup (their policies are not: see
//! `CACHE.CONFIG`), so a cache is identified by its index, [`CacheId`], and the store keeps
//! one table per cache in every shard.
//!
//! ```text
//!  key ──Caches::resolve──▶ CacheId ──▶ store: shard.tables[id]   (entries of that cache)
//!                                  └──▶ Cache { policy (ttl, tti, limits, eviction), stats }
//! ```

pub mod policy;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{CacheConfig, Consistency, StorageConfig};
use crate::store::pool::Pool;

pub use policy::{Policy, PolicySnapshot, Setting, eviction_name};
pub use stats::CacheStats;

/// Index of a cache in [`Caches`].
pub type CacheId = usize;

/// One named cache.
#[derive(Debug)]
pub struct Cache {
    /// Its name; its keys start with `name:`.
    pub name: String,
    /// Replication consistency (enforced once mirrors exist).
    pub consistency: Consistency,
    /// The live policy.
    pub policy: Policy,
    /// Entries, memory, hits, misses, evictions, expirations.
    pub stats: CacheStats,
    /// Whether L1s may hold its keys (CLIENT TRACKING).
    pub l1: bool,
    /// The tier budgets it draws on: its own pools, or the server's shared ones.
    pub pools: Pools,
}

/// The budgets of a cache's tiers: heap bytes and off-heap segments.
#[derive(Debug, Clone)]
pub struct Pools {
    /// Bytes of heap entries (only enforced when there is an off-heap tier to move to).
    pub heap: Arc<Pool>,
    /// Off-heap segments.
    pub offheap: Arc<Pool>,
    /// True when the cache has pools of its own (`heap`/`offheap` in its config).
    pub own_heap: bool,
    /// True when the cache has its own off-heap pool.
    pub own_offheap: bool,
    /// Bytes per off-heap segment (0 without an off-heap tier).
    pub segment: u64,
}

impl Pools {
    /// Unbounded pools: a server without an off-heap tier.
    pub fn unbounded() -> Pools {
        Pools {
            heap: Arc::new(Pool::new(u64::MAX)),
            offheap: Arc::new(Pool::new(u64::MAX)),
            own_heap: false,
            own_offheap: false,
            segment: 0,
        }
    }
}

impl Cache {
    fn new(c: &CacheConfig, pools: Pools) -> Cache {
        Cache {
            name: c.name.clone(),
            consistency: c.consistency,
            policy: Policy::from_config(c),
            stats: CacheStats::default(),
            l1: c.l1,
            pools,
        }
    }

    /// True for a strong cache.
    #[inline]
    pub fn is_strong(&self) -> bool {
        self.consistency == Consistency::Strong
    }
}

/// Every cache of this server.
#[derive(Debug)]
pub struct Caches {
    list: Vec<Arc<Cache>>,
    by_name: HashMap<Box<[u8]>, CacheId, ahash::RandomState>,
    default: CacheId,
    longest: usize,
}

impl Caches {
    /// The caches of a config (which always includes `default`), without tier budgets.
    pub fn new(configs: &[CacheConfig]) -> Caches {
        Caches::build(configs, |_| Pools::unbounded())
    }

    /// The caches of a config with their tier budgets: with an off-heap tier of
    /// `storage.offheap` in segments of `segment` bytes, a cache with its own `heap` or
    /// `offheap` gets a pool of that size and the others share what remains of the server's.
    pub fn tiered(configs: &[CacheConfig], storage: &StorageConfig, segment: usize) -> Caches {
        if storage.offheap.0 == 0 {
            return Caches::new(configs);
        }
        let segs = |bytes: u64| bytes / segment.max(1) as u64;
        let own_heap: u64 = configs.iter().filter_map(|c| c.heap).map(|s| s.0).sum();
        let own_off: u64 = configs
            .iter()
            .filter_map(|c| c.offheap)
            .map(|s| segs(s.0))
            .sum();
        let shared_heap = Arc::new(Pool::new(storage.heap.0.saturating_sub(own_heap)));
        let shared_off = Arc::new(Pool::new(segs(storage.offheap.0).saturating_sub(own_off)));
        Caches::build(configs, |c| Pools {
            heap: c
                .heap
                .map_or_else(|| shared_heap.clone(), |s| Arc::new(Pool::new(s.0))),
            offheap: c
                .offheap
                .map_or_else(|| shared_off.clone(), |s| Arc::new(Pool::new(segs(s.0)))),
            own_heap: c.heap.is_some(),
            own_offheap: c.offheap.is_some(),
            segment: segment as u64,
        })
    }

    fn build(configs: &[CacheConfig], pools: impl Fn(&CacheConfig) -> Pools) -> Caches {
        let mut list: Vec<Arc<Cache>> = configs
            .iter()
            .map(|c| Arc::new(Cache::new(c, pools(c))))
            .collect();
        if !list.iter().any(|c| c.name == "default") {
            let d = CacheConfig::default_cache();
            list.push(Arc::new(Cache::new(&d, pools(&d))));
        }
        let by_name: HashMap<_, _, _> = list
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_bytes().into(), i))
            .collect();
        let default = by_name.get(b"default".as_slice()).copied().unwrap_or(0);
        let longest = list.iter().map(|c| c.name.len()).max().unwrap_or(0);
        Caches {
            list,
            by_name,
            default,
            longest,
        }
    }

    /// Only the `default` cache with the default policy.
    pub fn single() -> Caches {
        Caches::new(&[])
    }

    /// The cache `key` belongs to: the longest `name:` prefix, else `default`.
    #[inline]
    pub fn resolve(&self, key: &[u8]) -> CacheId {
        if self.list.len() == 1 {
            return self.default;
        }
        let limit = key.len().min(self.longest + 1);
        let mut found = self.default;
        for (pos, _) in key[..limit].iter().enumerate().filter(|(_, b)| **b == b':') {
            if let Some(&id) = self.by_name.get(&key[..pos]) {
                found = id;
            }
        }
        found
    }

    /// The cache with this index. Ids come from this registry, so they are in range; an
    /// unknown id falls back to `default` rather than panicking.
    #[inline]
    pub fn get(&self, id: CacheId) -> &Arc<Cache> {
        self.list.get(id).unwrap_or(&self.list[self.default])
    }

    /// The cache named `name`.
    pub fn by_name(&self, name: &[u8]) -> Option<CacheId> {
        self.by_name.get(name).copied()
    }

    /// Number of caches.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Always false: `default` exists.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every cache, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Cache>> {
        self.list.iter()
    }

    /// Bytes charged to entries of every cache.
    pub fn used_memory(&self) -> u64 {
        self.list.iter().map(|c| c.stats.memory()).sum()
    }
}

/// One field of a cache report: text or a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A name, duration or size in config form.
    Text(String),
    /// A count.
    Int(u64),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Text(s) => f.write_str(s),
            Field::Int(n) => write!(f, "{n}"),
        }
    }
}

/// A policy as `CACHE.CONFIG` reads and writes it: durations and sizes in config form,
/// `0` for none.
pub fn policy_report(p: PolicySnapshot) -> Vec<(&'static str, Field)> {
    let dur = |ms: u64| {
        Field::Text(if ms == 0 {
            "0".to_string()
        } else {
            crate::config::Dur(std::time::Duration::from_millis(ms)).to_string()
        })
    };
    vec![
        ("ttl", dur(p.ttl_ms)),
        ("tti", dur(p.tti_ms)),
        ("max_entries", Field::Int(p.max_entries)),
        (
            "max_memory",
            Field::Text(crate::config::Size(p.max_memory).to_string()),
        ),
        (
            "eviction",
            Field::Text(eviction_name(p.eviction).to_string()),
        ),
    ]
}

/// Everything about one cache (CACHE.INFO, INFO caches): consistency, policy, figures.
pub fn report(c: &Cache) -> Vec<(&'static str, Field)> {
    let consistency = match c.consistency {
        Consistency::Strong => "strong",
        Consistency::Eventual => "eventual",
    };
    let mut v = vec![
        ("consistency", Field::Text(consistency.to_string())),
        (
            "l1",
            Field::Text(if c.l1 { "yes" } else { "no" }.to_string()),
        ),
    ];
    v.extend(policy_report(c.policy.snapshot()));
    let s = &c.stats;
    v.extend([
        ("entries", Field::Int(s.entries())),
        ("memory", Field::Int(s.memory())),
        ("hits", Field::Int(s.hits())),
        ("misses", Field::Int(s.misses())),
        ("evictions", Field::Int(s.evictions())),
        ("expired_ttl", Field::Int(s.expired_ttl())),
        ("expired_tti", Field::Int(s.expired_tti())),
    ]);
    v.extend(tier_report(c));
    v
}

/// A cache's tiers: entries, bytes and hits per tier, and its pools (`own` or `shared`,
/// with what the pool holds in all: a shared pool serves several caches).
fn tier_report(c: &Cache) -> Vec<(&'static str, Field)> {
    let (s, p) = (&c.stats, &c.pools);
    let bounded = |n: u64| Field::Int(if n == u64::MAX { 0 } else { n });
    let pool = |own: bool| Field::Text(if own { "own" } else { "shared" }.to_string());
    let seg = p.segment;
    vec![
        ("heap_entries", Field::Int(s.heap_entries())),
        ("heap_memory", Field::Int(s.heap_memory())),
        ("heap_hits", Field::Int(s.heap_hits())),
        ("heap_pool", pool(p.own_heap)),
        ("heap_pool_size", bounded(p.heap.limit())),
        ("heap_pool_used", Field::Int(p.heap.used())),
        ("offheap_entries", Field::Int(s.off_entries())),
        ("offheap_memory", Field::Int(s.off_memory())),
        ("offheap_hits", Field::Int(s.off_hits())),
        ("offheap_pool", pool(p.own_offheap)),
        (
            "offheap_pool_size",
            bounded(p.offheap.limit().saturating_mul(seg)),
        ),
        ("offheap_pool_used", Field::Int(p.offheap.used() * seg)),
        ("promotions", Field::Int(s.promotions())),
        ("demotions", Field::Int(s.demotions())),
        ("segments_expired", Field::Int(s.segments_expired())),
        ("segments_evicted", Field::Int(s.segments_evicted())),
        ("compactions", Field::Int(s.compactions())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(name: &str) -> CacheConfig {
        CacheConfig {
            name: name.to_string(),
            ..CacheConfig::default_cache()
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let c = Caches::new(&[cache("events"), cache("events:archive"), cache("default")]);
        let name = |k: &str| c.get(c.resolve(k.as_bytes())).name.clone();
        assert_eq!(name("events:u1"), "events");
        assert_eq!(name("events:archive:u1"), "events:archive");
        assert_eq!(name("events:archivex:u1"), "events");
        assert_eq!(name("events"), "default");
        assert_eq!(name("eventsx:1"), "default");
        assert_eq!(name("user:1"), "default");
        assert_eq!(name(""), "default");
    }

    #[test]
    fn default_is_added() {
        let c = Caches::new(&[cache("a")]);
        assert_eq!(c.len(), 2);
        assert!(c.by_name(b"default").is_some());
        assert_eq!(c.get(c.resolve(b"b:1")).name, "default");
        assert_eq!(Caches::single().resolve(b"a:1"), 0);
    }
}
