//! The `caches:` section: named key spaces with their own policy.

use serde::{Deserialize, Serialize};

use super::units::{Dur, Size};

/// One named cache. Keys `NAME:*` belong to it (longest matching prefix wins); other keys
/// belong to the cache `default`, which always exists.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Cache name; its keys are `name:*`.
    pub name: String,
    /// `strong` (replicated to every in-sync mirror before the reply) or `eventual`
    /// (reply first, replicate after). Default: `eventual`.
    #[serde(default)]
    pub consistency: Consistency,
    /// Default time to live for writes that set none. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Dur>,
    /// Time to idle: an entry neither read nor written for this long expires. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tti: Option<Dur>,
    /// Maximum number of entries. Default: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u64>,
    /// Maximum bytes of keys, values and metadata. Default: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<Size>,
    /// What to do when full: `lru`, `lfu`, `random` or `none` (refuse writes with OOM).
    /// Default: `lru`.
    #[serde(default)]
    pub eviction: Eviction,
    /// Whether clients may keep this cache's keys in an L1 (CLIENT TRACKING). `false`
    /// keeps them out of the tracking table: a tracking client that reads one is sent its
    /// invalidation right behind the reply, so no L1 holds it. Default: `true`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub l1: bool,
    /// This cache's own heap-tier budget, carved out of `storage.heap`. Default: it shares
    /// what other caches leave of `storage.heap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap: Option<Size>,
    /// This cache's own off-heap budget, carved out of `storage.offheap`. Default: it
    /// shares what other caches leave of `storage.offheap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offheap: Option<Size>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Replication consistency of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Synchronous replication to every in-sync mirror before the reply.
    Strong,
    /// Reply first, replicate after.
    #[default]
    Eventual,
}

/// Eviction policy of a full cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Eviction {
    /// Evict the least recently used entry (sampled, like Redis).
    #[default]
    Lru,
    /// Evict the least frequently used entry.
    Lfu,
    /// Evict a random entry.
    Random,
    /// Evict nothing: refuse writes with `-OOM`.
    None,
}

impl CacheConfig {
    /// The `default` cache with the default policy.
    pub fn default_cache() -> CacheConfig {
        CacheConfig {
            name: "default".to_string(),
            consistency: Consistency::Eventual,
            ttl: None,
            tti: None,
            max_entries: None,
            max_memory: None,
            eviction: Eviction::Lru,
            l1: true,
            heap: None,
            offheap: None,
        }
    }
}
