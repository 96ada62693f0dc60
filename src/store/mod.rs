//! The store: the sharded keyspace, entries, the heap and off-heap tiers, expiry and the
//! effect record.
//!
//! Owns every key and value of this server. Commands reach it only through a [`Db`]
//! (the shards they locked); nothing here knows about connections or the wire.
//!
//! ```text
//!  command ──lock shards (ascending)──▶ Db ──▶ Shard × 64 { watchers, tracked, tables: one per cache }
//!                                        │         Table { index ─▶ heap items | off-heap segments }
//!                                        ├──▶ effects (Set / Del / Expire / FlushAll / ClearCache)
//!                                        │      ──Db::commit, locks still held──▶ EffectSink (the log)
//!                                        └──▶ invalidations (tracked keys that changed) ──▶ server
//!  write ──▶ heap ──(cache's heap pool over budget: coldest first)──▶ off-heap segment
//!  cron ──every 100 ms──▶ Keyspace::expire_due (expired segments whole, then a TTL/TTI sweep)
//!                    ├──▶ Keyspace::expire_fields (hashes whose field TTLs passed, via a Db)
//!                    └──▶ Keyspace::balance_tiers (what writes left over the heap budget)
//!  DENYOOM command over maxmemory ──▶ Keyspace::evict_to (one shard at a time)
//! ```

pub mod db;
pub mod effect;
pub mod entry;
pub mod index;
pub mod keyspace;
pub mod offheap;
pub mod pattern;
pub mod pool;
pub mod table;
pub mod tracking;
pub mod types;

pub use db::{CollError, Db, DbStats, NotLocked, ScanPage, Ttl, WriteError};
pub use effect::{Effect, EffectSink};
pub use entry::{Entry, EntryRef, Str, Value, ValueRef};
pub use keyspace::{Committed, Keyspace, SHARDS, ShardSet, Watch};
pub use table::Victim;
pub use tracking::{Invalidation, TrackingState};
pub use types::{Coll, HField, HashV, Kind, ListV, Score, SetV, ZSetV};

/// Wall-clock time in unix milliseconds (TTLs are absolute wall-clock deadlines, as in
/// Redis's EXPIREAT).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
