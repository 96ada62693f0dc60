//! The off-heap tier: entries beyond the heap budget, packed into segments of one memory
//! map (`memmap2`), anonymous or backed by a file in the data directory so the data set
//! can exceed RAM while the OS pages cold segments out.
//!
//! ```text
//!  Region (one map per server) ──take/drop──▶ Segment (fixed size, one owner)
//!  Table ─▶ Segments { open segment per expiry group, live bytes per segment }
//!             └─ item: klen | flags | lfu | atime | vlen | [expire] | key | value
//! ```

pub mod item;
pub mod region;
pub mod segments;

pub use region::{Region, RegionError, Segment, segment_size_for};
pub use segments::{NoRoom, OffLoc, Segments};

/// The smallest off-heap tier for `caches` caches: two of the smallest segments for every
/// table (one table per cache in each shard), so every table can hold data off-heap.
pub fn min_size(caches: usize) -> u64 {
    (crate::store::SHARDS * caches * 2 * region::MIN_SEGMENT) as u64
}
