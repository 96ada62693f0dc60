//! [`Table`]: the entries of one cache in one shard, on the heap tier or the off-heap tier,
//! with the bookkeeping every insert, removal and tier move must do (bytes, the cache's
//! counters and pools). Victim selection for eviction lives here too, because it walks
//! the same index.
//!
//! Writes land on the heap; while the cache's heap pool is over budget the least recently
//! (or frequently) used heap entries move off-heap ([`Table::balance`]); a read of a hot
//! off-heap entry may bring it back ([`Table::promote`]). When the off-heap tier has no
//! free segment, [`Table::balance`] reclaims one: whole expired segments first, then a
//! sparse segment compacted in place, then a segment evicted by the cache's policy
//! (Segcache's merge: LRU/LFU keep the segment's hottest quarter, random keeps nothing).

use std::sync::Arc;

use super::entry::{Entry, EntryRef, Key, OFF_OVERHEAD, Value};
use super::index::{Index, KeyOf, Loc};
use super::offheap::item::{self, Item};
use super::offheap::segments::group_of;
use super::offheap::{NoRoom, OffLoc, Region, Segments};
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
/// A read of an off-heap entry whose LFU counter has reached this moves it to the heap
/// even when the heap is full (a colder heap entry moves out): read a few times, it is hot.
const PROMOTE_LFU: u8 = super::entry::LFU_INIT + 2;
/// Share of a segment's live items a merge eviction keeps (the hottest): 1 in 4.
const MERGE_KEEP: usize = 4;

/// An entry on the heap tier.
#[derive(Debug)]
struct HeapItem {
    key: Key,
    entry: Entry,
    /// Its position in the index (kept up to date when the index moves it).
    pos: u32,
}

/// Where the entries are: the heap items and the off-heap segments.
#[derive(Debug)]
struct Tiers {
    heap: Vec<HeapItem>,
    off: Option<Segments>,
}

impl KeyOf for Tiers {
    #[inline]
    fn key_of(&self, loc: Loc) -> &[u8] {
        match loc {
            Loc::Heap(i) => self.heap.get(i as usize).map_or(&[], |h| h.key.as_slice()),
            Loc::Off(at) => self.off.as_ref().map_or(&[], |o| o.key(at)),
        }
    }
}

impl Tiers {
    #[inline]
    fn entry(&self, loc: Loc) -> Option<EntryRef<'_>> {
        match loc {
            Loc::Heap(i) => self.heap.get(i as usize).map(|h| EntryRef::Heap(&h.entry)),
            Loc::Off(at) => {
                let (h, b) = self.off.as_ref()?.read(at)?;
                Some(EntryRef::Off(h, b))
            }
        }
    }
}

/// The entries of one cache within one shard.
#[derive(Debug)]
pub struct Table {
    /// Every key, whichever tier holds it: O(1) random access for sampling and
    /// RANDOMKEY, and a stable position order for SCAN cursors.
    index: Index,
    tiers: Tiers,
    /// Entries with a TTL. There is no deadline index: keeping one ordered costs more on
    /// every TTL write than it saves (a cache with a default TTL rewrites deadlines on every
    /// write); the active cycle sweeps the index instead, as Redis scans its expires dict.
    pub(crate) volatile: usize,
    /// Bytes charged to these entries (see [`EntryRef::mem`]).
    pub(crate) used: usize,
    /// Of those, bytes of heap entries (kept only with an off-heap tier, like the pool).
    heap_used: usize,
    /// Where the active expiry sweep continues (it walks positions downwards).
    sweep: usize,
    /// The cache these entries belong to: its policy, counters and pools.
    pub(crate) cache: Arc<Cache>,
}

/// An entry found by [`Table::find_at`]: its position and where it lives. Valid until the
/// table changes (a promotion moves the entry; use the position after one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// The entry's position in the table.
    pub pos: usize,
    loc: Loc,
}

/// Entries a table operation removed (evicted or expired while making room), for the
/// shard to tell watchers and L1s and the command to record.
pub type Gone = Vec<(Key, Removal)>;

impl Table {
    /// An empty table of `cache`, with an off-heap tier in `region` if there is one.
    pub fn new(cache: Arc<Cache>, region: Option<&Arc<Region>>) -> Table {
        let off = region.map(|r| Segments::new(r.clone(), cache.pools.offheap.clone()));
        Table {
            index: Index::default(),
            tiers: Tiers {
                heap: Vec::new(),
                off,
            },
            volatile: 0,
            used: 0,
            heap_used: 0,
            sweep: 0,
            cache,
        }
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Makes room for `more` entries, so a load of known size never rehashes (heap items
    /// too, unless an off-heap tier will take most of them).
    pub fn reserve(&mut self, more: usize) {
        self.index.reserve(more, &self.tiers);
        if self.tiers.off.is_none() {
            self.tiers.heap.reserve(more);
        }
    }

    /// True when there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The position of `key`.
    #[inline]
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        self.index.find(key, &self.tiers)
    }

    /// Where `key` is: the lookup of the read path, which then reaches the entry without
    /// going through its slot (see [`At`]).
    #[inline]
    pub fn find_at(&self, key: &[u8]) -> Option<At> {
        self.index
            .find_at(key, &self.tiers)
            .map(|(pos, loc)| At { pos, loc })
    }

    /// The entry `at` points to.
    #[inline]
    pub fn entry_at(&self, at: At) -> Option<EntryRef<'_>> {
        self.tiers.entry(at.loc)
    }

    /// True when the entry `at` points to is off-heap.
    #[inline]
    pub fn is_off_at(&self, at: At) -> bool {
        matches!(at.loc, Loc::Off(_))
    }

    /// True when `key` is present (live or not yet reclaimed).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// The entry at `pos`.
    #[inline]
    pub fn get(&self, pos: usize) -> Option<EntryRef<'_>> {
        self.tiers.entry(self.index.loc(pos)?)
    }

    /// True when the entry at `pos` is off-heap.
    #[inline]
    pub fn is_off(&self, pos: usize) -> bool {
        matches!(self.index.loc(pos), Some(Loc::Off(_)))
    }

    /// The key and entry at `pos`.
    #[inline]
    pub fn get_index(&self, pos: usize) -> Option<(&[u8], EntryRef<'_>)> {
        let loc = self.index.loc(pos)?;
        Some((self.tiers.key_of(loc), self.tiers.entry(loc)?))
    }

    /// Why `e` is no longer live at `now`, or `None` if it is: its TTL passed, or it has
    /// been idle for the cache's TTI.
    #[inline]
    pub fn expiry(&self, e: &EntryRef<'_>, now: u64) -> Option<Removal> {
        if e.is_expired(now) {
            return Some(Removal::ExpiredTtl);
        }
        let tti = self.cache.policy.tti_ms();
        (tti != 0 && now.saturating_sub(e.atime()) >= tti).then_some(Removal::ExpiredTti)
    }

    /// Records an access to the entry at `pos`.
    #[inline]
    pub fn touch(&mut self, pos: usize, now: u64) {
        if let Some(loc) = self.index.loc(pos) {
            self.touch_at(At { pos, loc }, now);
        }
    }

    /// Records an access to the entry `at` points to.
    #[inline]
    pub fn touch_at(&mut self, at: At, now: u64) {
        match at.loc {
            Loc::Heap(i) => {
                if let Some(h) = self.tiers.heap.get_mut(i as usize) {
                    h.entry.touch(now);
                }
            }
            Loc::Off(at) => {
                if let Some(off) = self.tiers.off.as_mut()
                    && let Some((h, _)) = off.read(at)
                {
                    off.set_access(at, super::entry::accessed(h.lfu, h.atime, now), now);
                }
            }
        }
    }

    /// Charges `delta` heap bytes to the cache's heap pool (which only matters, and is
    /// only kept, when there is an off-heap tier to move entries to).
    #[inline]
    fn heap_charge(&mut self, delta: i64) {
        if self.tiers.off.is_some() {
            self.heap_used = self.heap_used.saturating_add_signed(delta as isize);
            self.cache.pools.heap.add(delta);
        }
    }

    /// Adds a new entry on the heap (the key must not be present); returns its position.
    pub fn insert(&mut self, key: &[u8], e: Entry) -> usize {
        let mem = e.mem(key.len());
        self.used += mem;
        self.cache.stats.inserted(mem);
        self.heap_charge(mem as i64);
        self.volatile += usize::from(e.expire_at != 0);
        let hidx = self.tiers.heap.len() as u32;
        self.tiers.heap.push(HeapItem {
            key: Key::from_slice(key),
            entry: e,
            pos: self.index.len() as u32,
        });
        self.index.push(key, Loc::Heap(hidx), &self.tiers)
    }

    /// Replaces the value of the entry at `pos` and records the write as an access. The
    /// entry is on the heap afterwards (a write makes it hot).
    pub fn overwrite(&mut self, pos: usize, value: Value, now: u64) {
        let Some(i) = self.move_to_heap(pos) else {
            return;
        };
        let Some(h) = self.tiers.heap.get_mut(i as usize) else {
            return;
        };
        let old = h.entry.mem(h.key.len());
        h.entry.value = value;
        h.entry.touch(now);
        let new = h.entry.mem(h.key.len());
        self.used = (self.used + new).saturating_sub(old);
        self.cache.stats.resized(new as i64 - old as i64);
        self.heap_charge(new as i64 - old as i64);
    }

    /// Runs `f` on the value of the entry at `pos` on the heap (an off-heap entry moves
    /// there first, whatever the heap pool's budget: the next balance moves it back),
    /// records the write as an access and accounts for the value's new size.
    pub fn mutate<R>(
        &mut self,
        pos: usize,
        now: u64,
        f: impl FnOnce(&mut Value) -> R,
    ) -> Option<R> {
        let i = self.move_to_heap(pos)?;
        let h = self.tiers.heap.get_mut(i as usize)?;
        let old = h.entry.mem(h.key.len());
        let r = f(&mut h.entry.value);
        h.entry.touch(now);
        let new = h.entry.mem(h.key.len());
        self.used = (self.used + new).saturating_sub(old);
        self.cache.stats.resized(new as i64 - old as i64);
        self.heap_charge(new as i64 - old as i64);
        Some(r)
    }

    /// Makes the entry at `pos` expire at `at` (0 = never).
    pub fn set_expire(&mut self, pos: usize, at: u64) {
        let old = match self.index.loc(pos) {
            Some(Loc::Off(o)) => {
                let Some((h, _)) = self.tiers.off.as_ref().and_then(|off| off.read(o)) else {
                    return;
                };
                if h.expire_at == at {
                    return;
                }
                if self
                    .tiers
                    .off
                    .as_mut()
                    .is_some_and(|off| off.set_expire(o, &h, at))
                {
                    return;
                }
                // The item's layout changes (a deadline added or removed): it is rewritten
                // on the heap, and moves off-heap again at the next balance.
                let Some(i) = self.move_to_heap(pos) else {
                    return;
                };
                let Some(h) = self.tiers.heap.get_mut(i as usize) else {
                    return;
                };
                std::mem::replace(&mut h.entry.expire_at, at)
            }
            Some(Loc::Heap(i)) => {
                let Some(h) = self.tiers.heap.get_mut(i as usize) else {
                    return;
                };
                std::mem::replace(&mut h.entry.expire_at, at)
            }
            None => return,
        };
        self.volatile = self.volatile + usize::from(at != 0) - usize::from(old != 0);
    }

    /// Removes the entry at `pos`, counting it as `why`; returns its key.
    pub fn remove(&mut self, pos: usize, why: Removal) -> Option<Key> {
        let loc = self.index.loc(pos)?;
        let e = self.tiers.entry(loc)?;
        let key_len = self.tiers.key_of(loc).len();
        let (mem, had_ttl) = (e.mem(key_len), e.expire_at() != 0);
        // Everything needed from the entry is read before the index changes, so no path
        // below leaves the index and the tiers disagreeing.
        let off_item = match (loc, e) {
            (Loc::Off(at), EntryRef::Off(h, b)) => {
                Some((at, h.size(), Key::from_slice(&b[h.hlen..h.value_at()])))
            }
            (Loc::Heap(_), EntryRef::Heap(_)) => None,
            _ => return None,
        };
        // The index reads both the removed and the moved key, so it goes first.
        let (_, moved) = self.index.swap_remove(pos, &self.tiers)?;
        if let Some(Loc::Heap(m)) = moved
            && let Some(h) = self.tiers.heap.get_mut(m as usize)
        {
            h.pos = pos as u32;
        }
        let key = match (loc, off_item) {
            (_, Some((at, size, key))) => {
                if let Some(off) = self.tiers.off.as_mut() {
                    off.release(at, size);
                }
                self.cache.stats.off_changed(-1, -(mem as i64));
                key
            }
            (Loc::Heap(i), None) => {
                self.heap_charge(-(mem as i64));
                self.remove_heap_item(i)?.key
            }
            (Loc::Off(_), None) => return None,
        };
        self.volatile -= usize::from(had_ttl);
        self.used = self.used.saturating_sub(mem);
        self.cache.stats.removed(mem, why);
        Some(key)
    }

    /// Takes heap item `i` out of the heap vector, telling the index where the item that
    /// takes its place now is.
    fn remove_heap_item(&mut self, i: u32) -> Option<HeapItem> {
        let i = i as usize;
        if i >= self.tiers.heap.len() {
            return None;
        }
        let item = self.tiers.heap.swap_remove(i);
        if let Some(m) = self.tiers.heap.get(i) {
            self.index
                .set_loc(m.pos as usize, Loc::Heap(i as u32), &self.tiers);
        }
        Some(item)
    }

    /// Removes every entry, counting them as deleted; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.len();
        for pos in 0..n {
            if let Some((k, e)) = self.get_index(pos) {
                self.cache.stats.removed(e.mem(k.len()), Removal::Deleted);
            }
        }
        let heap_mem: usize = self
            .tiers
            .heap
            .iter()
            .map(|h| h.entry.mem(h.key.len()))
            .sum();
        self.heap_charge(-(heap_mem as i64));
        let st = &self.cache.stats;
        if let Some(off) = self.tiers.off.as_mut() {
            let off_entries = n - self.tiers.heap.len();
            let off_mem = self.used.saturating_sub(heap_mem);
            st.off_changed(-(off_entries as i64), -(off_mem as i64));
            off.clear();
        }
        self.tiers.heap = Vec::new();
        self.index.clear();
        self.volatile = 0;
        self.used = 0;
        self.sweep = 0;
        n
    }

    /// Moves the off-heap entry at `pos` to the heap (no-op for a heap entry); returns its
    /// heap index.
    fn move_to_heap(&mut self, pos: usize) -> Option<u32> {
        let at = match self.index.loc(pos)? {
            Loc::Heap(i) => return Some(i),
            Loc::Off(at) => at,
        };
        let off = self.tiers.off.as_mut()?;
        let (h, b) = off.read(at)?;
        let key = Key::from_slice(&b[h.hlen..h.value_at()]);
        let entry = EntryRef::Off(h, b).to_entry();
        off.release(at, h.size());
        let off_mem = h.size() + OFF_OVERHEAD;
        let heap_mem = entry.mem(key.len());
        let hidx = self.tiers.heap.len() as u32;
        self.tiers.heap.push(HeapItem {
            key,
            entry,
            pos: pos as u32,
        });
        self.index.set_loc(pos, Loc::Heap(hidx), &self.tiers);
        self.used = (self.used + heap_mem).saturating_sub(off_mem);
        let st = &self.cache.stats;
        st.resized(heap_mem as i64 - off_mem as i64);
        st.off_changed(-1, -(off_mem as i64));
        self.heap_charge(heap_mem as i64);
        Some(hidx)
    }

    /// Moves heap item `hidx` off-heap, if the tier has room for it now.
    fn move_off(&mut self, hidx: usize, now: u64) -> Result<(), NoRoom> {
        let Tiers { heap, off } = &mut self.tiers;
        let off = off.as_mut().ok_or(NoRoom)?;
        let h = heap.get(hidx).ok_or(NoRoom)?;
        let mut packed = Vec::new();
        let (ty, value) = match &h.entry.value {
            Value::Str(s) => (item::TYPE_STR, s.as_slice()),
            v => {
                super::types::encode(v, &mut packed);
                (v.kind().tag(), packed.as_slice())
            }
        };
        let it = Item {
            key: &h.key,
            value,
            ty,
            lfu: h.entry.lfu,
            atime: h.entry.atime,
            expire_at: h.entry.expire_at,
        };
        let at = off.append(&it, now)?;
        let off_mem = it.size() + OFF_OVERHEAD;
        let heap_mem = h.entry.mem(h.key.len());
        let pos = h.pos as usize;
        self.remove_heap_item(hidx as u32);
        self.index.set_loc(pos, Loc::Off(at), &self.tiers);
        self.used = (self.used + off_mem).saturating_sub(heap_mem);
        let st = &self.cache.stats;
        st.resized(off_mem as i64 - heap_mem as i64);
        st.off_changed(1, off_mem as i64);
        st.demoted();
        self.heap_charge(-(heap_mem as i64));
        Ok(())
    }

    /// True when heap item `hidx` can live off-heap at all (its key and size fit).
    fn storable_off(&self, hidx: usize) -> bool {
        let (Some(h), Some(off)) = (self.tiers.heap.get(hidx), self.tiers.off.as_ref()) else {
            return false;
        };
        h.key.len() <= item::MAX_KEY
            && item::size(h.key.len(), h.entry.value.mem(), h.entry.expire_at) <= off.max_item()
    }

    /// A read of the off-heap entry at `pos`: moves it to the heap if the heap pool has
    /// room for it, or if it is hot and a colder heap entry can move out without
    /// reclaiming anything (a read never evicts). Returns the entry's position (unchanged).
    pub fn promote(&mut self, pos: usize, now: u64) {
        let Some(EntryRef::Off(h, _)) = self.get(pos) else {
            return;
        };
        let pool = &self.cache.pools.heap;
        if pool.limit() == 0 {
            return;
        }
        let heap_mem = (h.klen + h.vlen + super::entry::ENTRY_OVERHEAD) as u64;
        let room = pool.fits(heap_mem);
        if !room && h.lfu < PROMOTE_LFU {
            return;
        }
        if self.move_to_heap(pos).is_some() {
            self.cache.stats.promoted();
            if !room {
                let mut gone = Vec::new();
                let _ = self.balance(now, false, 2, &mut gone);
            }
        }
    }

    /// Moves heap entries off-heap, coldest first (sampled by the cache's policy), while
    /// the cache's heap pool is over budget, at most `max` of them. With `reclaim`, makes
    /// room off-heap when it is full, listing what that removed in `gone`; without, stops
    /// there. [`NoRoom`] when the off-heap tier is full and nothing could be reclaimed (a
    /// cache with eviction `none`): the heap stays over budget.
    pub fn balance(
        &mut self,
        now: u64,
        reclaim: bool,
        max: usize,
        gone: &mut Gone,
    ) -> Result<usize, NoRoom> {
        if self.tiers.off.is_none() {
            return Ok(0);
        }
        let cache = self.cache.clone();
        let mut moved = 0;
        let mut tries = 0;
        while cache.pools.heap.over() && !self.tiers.heap.is_empty() && tries < max * 2 {
            tries += 1;
            let hidx = self.heap_victim(now);
            if !self.storable_off(hidx) {
                continue;
            }
            match self.move_off(hidx, now) {
                Ok(()) => moved += 1,
                Err(NoRoom) if reclaim => {
                    let (group, need) = self.tiers.heap.get(hidx).map_or((0, 0), |h| {
                        let e = &h.entry;
                        let need = item::size(h.key.len(), e.value.mem(), e.expire_at);
                        (group_of(e.expire_at, now), need)
                    });
                    if !self.reclaim(now, group, need, gone) {
                        // Nothing off-heap to reclaim in this table (its share of the pool
                        // went to other tables): an evicting cache evicts from the heap,
                        // but only what this table holds beyond its share of the budget.
                        // When other tables hold the excess, their balancing moves it off
                        // (the cron balances every table); evicting here would empty this
                        // table, the write just made included, for nothing.
                        if self.cache.policy.eviction() == Eviction::None {
                            return Err(NoRoom);
                        }
                        let share = cache.pools.heap.limit() as usize / super::keyspace::SHARDS;
                        if self.heap_used <= share {
                            return Ok(moved);
                        }
                        let Some(pos) = self.tiers.heap.get(hidx).map(|h| h.pos as usize) else {
                            continue;
                        };
                        if let Some(k) = self.remove(pos, Removal::Evicted) {
                            gone.push((k, Removal::Evicted));
                        }
                    }
                }
                Err(NoRoom) => return Ok(moved),
            }
            if moved >= max {
                break;
            }
        }
        Ok(moved)
    }

    /// The heap entry to move off-heap next: the least recently used of a sample (least
    /// frequently used for an LFU cache; any for a random one).
    fn heap_victim(&self, now: u64) -> usize {
        let heap = &self.tiers.heap;
        let len = heap.len();
        let score = |i: usize| -> Score {
            let e = &heap[i].entry;
            match self.cache.policy.eviction() {
                Eviction::Lfu => (u64::from(e.freq(now)), e.atime),
                Eviction::Random => (0, 0),
                Eviction::Lru | Eviction::None => (e.atime, 0),
            }
        };
        if len <= EXACT_UP_TO {
            return (0..len).min_by_key(|&i| score(i)).unwrap_or(0);
        }
        (0..SAMPLES)
            .map(|_| fastrand::usize(..len))
            .min_by_key(|&i| score(i))
            .unwrap_or(0)
    }

    /// Frees off-heap space for an item of `need` bytes in expiry group `group`: drops a
    /// segment whose items have all expired, else compacts the sparsest segment, else
    /// evicts a segment by the cache's policy (a cache that evicts nothing compacts any
    /// segment with room enough instead). False when nothing could be freed.
    fn reclaim(&mut self, now: u64, group: usize, need: usize, gone: &mut Gone) -> bool {
        let Some(off) = self.tiers.off.as_ref() else {
            return false;
        };
        let expired = off.iter().find(|(_, s)| s.expired(now)).map(|(i, _)| i);
        if let Some(i) = expired {
            self.drop_segment(i, gone);
            return true;
        }
        let how = Victim::of_cache(self.cache.policy.eviction());
        if let Some(i) = off.sparsest(need, how.is_none()) {
            self.compact(i, group, now);
            self.cache.stats.compacted();
            return true;
        }
        let Some(how) = how else {
            return false;
        };
        let victim = match how {
            Victim::Random => {
                let held: Vec<u32> = off.iter().map(|(i, _)| i).collect();
                held.get(fastrand::usize(..held.len().max(1))).copied()
            }
            _ => off.iter().min_by_key(|(_, s)| s.opened).map(|(i, _)| i),
        };
        let Some(i) = victim else { return false };
        self.merge_evict(i, how, group, now, gone);
        true
    }

    /// The live items of segment `i` in offset order: position, location and size.
    fn live_items(&self, i: u32) -> Vec<(usize, OffLoc, usize)> {
        let Some(off) = self.tiers.off.as_ref() else {
            return Vec::new();
        };
        off.items(i)
            .into_iter()
            .filter_map(|(at, h)| {
                let pos = self.index.find(off.key(at), &self.tiers)?;
                (self.index.loc(pos) == Some(Loc::Off(at))).then_some((pos, at, h.size()))
            })
            .collect()
    }

    /// Removes the entries with these keys as `why`, adding them to `gone`.
    fn remove_keys(&mut self, keys: Vec<Key>, why: Removal, gone: &mut Gone) {
        for k in keys {
            if let Some(pos) = self.find(&k) {
                self.remove(pos, why);
                gone.push((k, why));
            }
        }
    }

    /// Drops segment `i`, whose items have all expired.
    fn drop_segment(&mut self, i: u32, gone: &mut Gone) {
        let keys: Vec<Key> = self
            .live_items(i)
            .into_iter()
            .map(|(pos, _, _)| Key::from_slice(self.get_index(pos).map_or(&[][..], |(k, _)| k)))
            .collect();
        self.remove_keys(keys, Removal::ExpiredTtl, gone);
        if let Some(off) = self.tiers.off.as_mut() {
            off.free_if_empty(i);
        }
        self.cache.stats.segment_expired();
    }

    /// Compacts segment `i` in place and makes it the open segment of `group`.
    fn compact(&mut self, i: u32, group: usize, now: u64) {
        let live = self.live_items(i);
        let spans: Vec<(u32, usize)> = live.iter().map(|&(_, at, size)| (at.off, size)).collect();
        let Some(off) = self.tiers.off.as_mut() else {
            return;
        };
        let moved = off.compact(i, &spans, group, now);
        for (&(pos, _, _), &to) in live.iter().zip(&moved) {
            self.index
                .set_loc(pos, Loc::Off(OffLoc { seg: i, off: to }), &self.tiers);
        }
    }

    /// Segcache's merge eviction of segment `i`: keeps its hottest quarter by `how` (none
    /// for random), evicts the rest, and compacts what is kept.
    fn merge_evict(&mut self, i: u32, how: Victim, group: usize, now: u64, gone: &mut Gone) {
        let mut live: Vec<(Score, Key)> = self
            .live_items(i)
            .into_iter()
            .filter_map(|(pos, _, _)| {
                let (k, e) = self.get_index(pos)?;
                let score = match how {
                    Victim::Lfu | Victim::VolatileLfu => (u64::from(e.freq(now)), e.atime()),
                    _ => (e.atime(), 0),
                };
                Some((score, Key::from_slice(k)))
            })
            .collect();
        let keep = match how {
            Victim::Random | Victim::VolatileRandom => 0,
            _ => live.len() / MERGE_KEEP,
        };
        live.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        let evict: Vec<Key> = live.into_iter().skip(keep).map(|(_, k)| k).collect();
        self.remove_keys(evict, Removal::Evicted, gone);
        self.cache.stats.segment_evicted();
        if self
            .tiers
            .off
            .as_ref()
            .is_some_and(|o| o.iter().any(|(j, _)| j == i))
        {
            self.compact(i, group, now);
        }
    }

    /// Drops every segment whose items have all expired (the active expiry cycle: expired
    /// data goes a segment at a time, without reads). Returns the segments dropped.
    pub fn drop_expired_segments(&mut self, now: u64, gone: &mut Gone) -> usize {
        let Some(off) = self.tiers.off.as_ref() else {
            return 0;
        };
        let due: Vec<u32> = off
            .iter()
            .filter(|(_, s)| s.expired(now))
            .map(|(i, _)| i)
            .collect();
        for &i in &due {
            self.drop_segment(i, gone);
        }
        due.len()
    }

    /// Off-heap segments held and their live bytes.
    pub fn off_usage(&self) -> (usize, usize) {
        self.tiers
            .off
            .as_ref()
            .map_or((0, 0), |o| (o.held(), o.live()))
    }

    /// Picks an entry to evict, never one whose key is `spare` (the key being written), with
    /// its score: the lower, the sooner it should go, so candidates from several tables can
    /// be compared.
    pub fn victim(&self, how: Victim, now: u64, spare: &[u8]) -> Option<(Score, usize)> {
        let len = self.len();
        if len == 0 || (how.volatile_only() && self.volatile == 0) {
            return None;
        }
        let eligible =
            |k: &[u8], e: &EntryRef<'_>| k != spare && (!how.volatile_only() || e.expire_at() != 0);
        let score = |e: &EntryRef<'_>| match how {
            Victim::Lru | Victim::VolatileLru => (e.atime(), 0),
            Victim::Lfu | Victim::VolatileLfu => (u64::from(e.freq(now)), e.atime()),
            Victim::Random | Victim::VolatileRandom => (fastrand::u64(..), 0),
            Victim::VolatileTtl => (e.expire_at(), 0),
        };
        let i = match how {
            Victim::Random | Victim::VolatileRandom => (0..16)
                .map(|_| fastrand::usize(..len))
                .find(|&i| self.get_index(i).is_some_and(|(k, e)| eligible(k, &e)))
                .or_else(|| {
                    (0..len).find(|&i| self.get_index(i).is_some_and(|(k, e)| eligible(k, &e)))
                }),
            _ => self.sampled(&eligible, score),
        }?;
        let (_, e) = self.get_index(i)?;
        Some((score(&e), i))
    }

    /// The eligible entry with the lowest `score`: exact for small tables, else the
    /// lowest of a random sample (Redis's approximated LRU/LFU).
    fn sampled(
        &self,
        eligible: &impl Fn(&[u8], &EntryRef<'_>) -> bool,
        score: impl Fn(&EntryRef<'_>) -> Score,
    ) -> Option<usize> {
        let len = self.len();
        let best = |it: &mut dyn Iterator<Item = usize>| {
            it.filter_map(|i| {
                let (k, e) = self.get_index(i)?;
                eligible(k, &e).then(|| (score(&e), i))
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
        self.len() <= EXACT_UP_TO
    }

    /// The active expiry sweep: examines up to `budget` entries, continuing where the last
    /// call stopped, and returns those whose TTL or TTI has passed with the reason, highest
    /// position first (so removing them in order never moves one not yet removed), and the
    /// number examined.
    pub fn due_entries(&mut self, now: u64, budget: usize) -> (Vec<(usize, Removal)>, usize) {
        let len = self.len();
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
            if let Some(why) = self.get(i).and_then(|e| self.expiry(&e, now)) {
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
        Table::new(caches.get(0).clone(), None)
    }

    fn put(t: &mut Table, k: &str, at: u64, now: u64) {
        t.insert(k.as_bytes(), Entry::new(Value::str(b"v"), at, now));
    }

    #[test]
    fn accounting_follows_inserts_and_removals() {
        let mut t = table(None);
        put(&mut t, "a", 0, 0);
        put(&mut t, "b", 50, 0);
        assert_eq!(t.cache.stats.entries(), 2);
        assert_eq!(t.used as u64, t.cache.stats.memory());
        let i = t.find(b"b").expect("b");
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
        let e = t.get(0).expect("a");
        assert_eq!(t.expiry(&e, 999), None);
        assert_eq!(t.expiry(&e, 1000), Some(Removal::ExpiredTti));
        t.touch(0, 900);
        let e = t.get(0).expect("a");
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
        let k0 = t.find(b"k0").expect("k0");
        t.touch(k0, 100);
        let (_, v) = t.victim(Victim::Lru, 100, b"").expect("victim");
        assert_eq!(t.get_index(v).map(|(k, _)| k), Some(b"k1".as_slice()));
        let (_, v) = t.victim(Victim::Lru, 100, b"k1").expect("victim");
        assert_eq!(t.get_index(v).map(|(k, _)| k), Some(b"k2".as_slice()));
    }

    #[test]
    fn volatile_victims_have_a_ttl_and_spare_is_spared() {
        let mut t = table(None);
        put(&mut t, "keep", 0, 0);
        put(&mut t, "soon", 100, 0);
        put(&mut t, "later", 200, 0);
        let (_, v) = t.victim(Victim::VolatileTtl, 0, b"").expect("victim");
        assert_eq!(t.get_index(v).map(|(k, _)| k), Some(b"soon".as_slice()));
        let (_, v) = t.victim(Victim::VolatileTtl, 0, b"soon").expect("victim");
        assert_eq!(t.get_index(v).map(|(k, _)| k), Some(b"later".as_slice()));
        for how in [
            Victim::VolatileLru,
            Victim::VolatileLfu,
            Victim::VolatileRandom,
        ] {
            let (_, v) = t.victim(how, 0, b"").expect("victim");
            assert_ne!(t.get_index(v).map(|(k, _)| k), Some(b"keep".as_slice()));
        }
        let (_, v) = t.victim(Victim::Lru, 0, b"keep").expect("victim");
        assert_ne!(t.get_index(v).map(|(k, _)| k), Some(b"keep".as_slice()));
    }

    #[test]
    fn lfu_prefers_rarely_used() {
        let mut t = table(None);
        put(&mut t, "cold", 0, 0);
        put(&mut t, "hot", 0, 0);
        let hot = t.find(b"hot").expect("hot");
        for _ in 0..100_000 {
            t.touch(hot, 0);
        }
        let (_, v) = t.victim(Victim::Lfu, 0, b"").expect("victim");
        assert_eq!(t.get_index(v).map(|(k, _)| k), Some(b"cold".as_slice()));
    }
}
