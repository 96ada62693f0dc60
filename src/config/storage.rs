//! The `storage:` section: memory tiers and the fast-restart log.

use serde::{Deserialize, Serialize};

use super::units::Size;

/// `storage:` — per-server memory tiers and persistence.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Heap tier budget in bytes: the hot entries. Enforced when there is an off-heap tier
    /// (entries beyond it move there); without one the heap holds everything, bounded only
    /// by `maxmemory` and cache limits. Default: `256m`.
    pub heap: Size,
    /// Off-heap (mmap) tier size in bytes; 0 disables the tier. Default: `0`.
    pub offheap: Size,
    /// Back the off-heap tier with a file in the server's `data` directory instead of
    /// anonymous memory, so the data set can exceed RAM (the OS pages cold segments out).
    /// The file is scratch space, not persistence: it is recreated at every start.
    /// Default: `false`.
    pub offheap_file: bool,
    /// Keep an append-only fast-restart log in each server's `data` directory, so all data
    /// survives a restart. Default: `false`.
    pub restartable: bool,
    /// When the log is fsynced: `always`, `everysec` or `no` (Redis's `appendfsync`).
    /// Default: `everysec`.
    pub fsync: FsyncPolicy,
    /// Compact the log (a new base snapshot) when the files have grown by this percentage
    /// since the last compaction or start; 0 disables automatic compaction (Redis's
    /// `auto-aof-rewrite-percentage`). Default: `100`.
    pub rewrite_percentage: u64,
    /// ... but only once they are at least this big (Redis's `auto-aof-rewrite-min-size`).
    /// Default: `64m`.
    pub rewrite_min_size: Size,
}

/// Redis's `appendfsync` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// fsync before acknowledging every write (group commit).
    Always,
    /// fsync once a second: at most about a second of writes is lost on a crash.
    Everysec,
    /// leave it to the OS.
    No,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            heap: Size(256 << 20),
            offheap: Size(0),
            offheap_file: false,
            restartable: false,
            fsync: FsyncPolicy::Everysec,
            rewrite_percentage: 100,
            rewrite_min_size: Size(64 << 20),
        }
    }
}
