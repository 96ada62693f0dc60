//! [`Segments`]: the off-heap segments one table holds, Segcache-style.
//!
//! Items are appended to the open segment of their *expiry group* (no TTL, or the power of
//! two of seconds left), so a segment's items expire at about the same time and the whole
//! segment can be dropped once its latest deadline has passed. A removed or overwritten
//! item only lowers its segment's live bytes; a segment with no live item goes back to the
//! region at once, and a sparse one is compacted in place. Which items are live is the
//! table's index's business: this module knows bytes, not keys.

use std::sync::Arc;

use super::item::{self, Header, Item};
use super::region::{Region, Segment};
use crate::store::pool::Pool;

/// Expiry groups: 0 holds items without a TTL; group `g > 0` items with less than about
/// 2^g seconds to live when written (the last group takes everything longer).
pub const GROUPS: usize = 16;

/// A segment's deadline when it holds an item without a TTL: never.
const NEVER: u64 = u64::MAX;

/// Where an off-heap item is: a table-local segment number and a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffLoc {
    /// Index in the table's segment list.
    pub seg: u32,
    /// Byte offset of the item in the segment.
    pub off: u32,
}

/// The expiry group of an item expiring at `expire_at` (0 = never), written at `now`.
pub fn group_of(expire_at: u64, now: u64) -> usize {
    if expire_at == 0 {
        return 0;
    }
    let secs = (expire_at.saturating_sub(now) / 1000).max(1);
    ((64 - secs.leading_zeros()) as usize).min(GROUPS - 1)
}

/// One held segment and its bookkeeping.
#[derive(Debug)]
pub struct Seg {
    seg: Segment,
    /// Bytes written (the next item goes here).
    pub len: u32,
    /// Bytes of live items.
    pub live: u32,
    /// Live items.
    pub items: u32,
    /// The latest expiry of any item written here; [`NEVER`] if one has no TTL.
    pub expire_max: u64,
    /// Expiry group it was opened for.
    pub group: u8,
    /// When it was opened (or last compacted): FIFO order for eviction.
    pub opened: u64,
}

impl Seg {
    /// True when every item written here has expired by `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expire_max != NEVER && self.expire_max <= now
    }
}

/// The segments of one table.
#[derive(Debug)]
pub struct Segments {
    region: Arc<Region>,
    /// The cache's off-heap pool, counted in segments.
    pool: Arc<Pool>,
    segs: Vec<Option<Seg>>,
    spare: Vec<u32>,
    active: [Option<u32>; GROUPS],
    /// Live item bytes over all segments.
    live: usize,
}

/// No room: the pool or the region has no free segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

impl Segments {
    /// An empty set drawing from `region` within `pool`.
    pub fn new(region: Arc<Region>, pool: Arc<Pool>) -> Segments {
        Segments {
            region,
            pool,
            segs: Vec::new(),
            spare: Vec::new(),
            active: [None; GROUPS],
            live: 0,
        }
    }

    /// Largest item a segment holds.
    pub fn max_item(&self) -> usize {
        self.region.segment_size()
    }

    /// Segments held.
    pub fn held(&self) -> usize {
        self.segs.len() - self.spare.len()
    }

    /// Live item bytes.
    pub fn live(&self) -> usize {
        self.live
    }

    /// The item at `at`: its header and bytes (from the header on).
    #[inline]
    pub fn read(&self, at: OffLoc) -> Option<(Header, &[u8])> {
        let s = self.segs.get(at.seg as usize)?.as_ref()?;
        let buf = s.seg.bytes().get(at.off as usize..s.len as usize)?;
        Some((item::header(buf)?, buf))
    }

    /// The key of the item at `at` (empty if there is none: never equal to a real key
    /// lookup's, which the index has already matched by hash).
    #[inline]
    pub fn key(&self, at: OffLoc) -> &[u8] {
        match self.read(at) {
            Some((h, buf)) => &buf[h.hlen..h.value_at()],
            None => &[],
        }
    }

    /// Rewrites the access metadata of the item at `at`.
    pub fn set_access(&mut self, at: OffLoc, lfu: u8, atime: u64) {
        if let Some(Some(s)) = self.segs.get_mut(at.seg as usize)
            && let Some(buf) = s.seg.bytes_mut().get_mut(at.off as usize..)
        {
            item::set_access(buf, lfu, atime);
        }
    }

    /// Changes the item's expiry in place if its layout allows (it already has a deadline
    /// and keeps one); false when the caller must rewrite it.
    pub fn set_expire(&mut self, at: OffLoc, h: &Header, when: u64) -> bool {
        let Some(Some(s)) = self.segs.get_mut(at.seg as usize) else {
            return false;
        };
        let Some(buf) = s.seg.bytes_mut().get_mut(at.off as usize..) else {
            return false;
        };
        if !item::set_expire(buf, h, when) {
            return false;
        }
        if s.expire_max != NEVER {
            s.expire_max = s.expire_max.max(when);
        }
        true
    }

    /// Appends `it` to the open segment of its expiry group, opening a new one from the
    /// pool if needed. [`NoRoom`] when no segment can be had (the table then reclaims).
    pub fn append(&mut self, it: &Item<'_>, now: u64) -> Result<OffLoc, NoRoom> {
        let group = group_of(it.expire_at, now);
        let size = it.size();
        if size > self.max_item() {
            return Err(NoRoom);
        }
        let fits = |s: &Seg| s.len as usize + size <= s.seg.bytes().len();
        let open = self.active[group].filter(|&i| self.seg(i).is_some_and(fits));
        let idx = match open {
            Some(i) => i,
            None => {
                let seg = self.take().ok_or(NoRoom)?;
                let i = self.install(seg, group, now);
                self.close(group);
                self.active[group] = Some(i);
                i
            }
        };
        self.write(idx, it, group)
    }

    /// Appends `it` to segment `idx` (which has room: a freshly compacted one).
    fn write(&mut self, idx: u32, it: &Item<'_>, group: usize) -> Result<OffLoc, NoRoom> {
        let s = self.segs[idx as usize].as_mut().ok_or(NoRoom)?;
        let off = s.len;
        let n = it
            .write(s.seg.bytes_mut().get_mut(off as usize..).ok_or(NoRoom)?)
            .ok_or(NoRoom)?;
        s.len += n as u32;
        s.live += n as u32;
        s.items += 1;
        s.expire_max = if group == 0 || s.expire_max == NEVER {
            NEVER
        } else {
            s.expire_max.max(it.expire_at)
        };
        self.live += n;
        Ok(OffLoc { seg: idx, off })
    }

    fn take(&mut self) -> Option<Segment> {
        if !self.pool.try_take(1) {
            return None;
        }
        let seg = self.region.take();
        if seg.is_none() {
            self.pool.give(1);
        }
        seg
    }

    fn install(&mut self, seg: Segment, group: usize, now: u64) -> u32 {
        let s = Seg {
            seg,
            len: 0,
            live: 0,
            items: 0,
            expire_max: if group == 0 { NEVER } else { 0 },
            group: group as u8,
            opened: now,
        };
        match self.spare.pop() {
            Some(i) => {
                self.segs[i as usize] = Some(s);
                i
            }
            None => {
                self.segs.push(Some(s));
                (self.segs.len() - 1) as u32
            }
        }
    }

    /// Stops appending to `group`'s open segment, freeing it if it holds nothing live.
    fn close(&mut self, group: usize) {
        if let Some(i) = self.active[group].take()
            && self.seg(i).is_some_and(|s| s.items == 0)
        {
            self.free(i);
        }
    }

    fn seg(&self, i: u32) -> Option<&Seg> {
        self.segs.get(i as usize)?.as_ref()
    }

    fn is_active(&self, i: u32) -> bool {
        self.active.contains(&Some(i))
    }

    fn free(&mut self, i: u32) {
        if let Some(slot) = self.segs.get_mut(i as usize)
            && slot.take().is_some()
        {
            self.pool.give(1);
            self.spare.push(i);
            for a in &mut self.active {
                if *a == Some(i) {
                    *a = None;
                }
            }
        }
    }

    /// The item at `at` (of `size` bytes) is no longer live. A segment left with no live
    /// item goes back to the region unless items are still being appended to it.
    pub fn release(&mut self, at: OffLoc, size: usize) {
        let Some(Some(s)) = self.segs.get_mut(at.seg as usize) else {
            return;
        };
        s.live = s.live.saturating_sub(size as u32);
        s.items = s.items.saturating_sub(1);
        self.live = self.live.saturating_sub(size);
        if s.items == 0 && !self.is_active(at.seg) {
            self.free(at.seg);
        }
    }

    /// Gives every segment back.
    pub fn clear(&mut self) {
        for i in 0..self.segs.len() as u32 {
            self.free(i);
        }
        self.segs.clear();
        self.spare.clear();
        self.active = [None; GROUPS];
        self.live = 0;
    }

    /// Held segments, with their numbers.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Seg)> {
        self.segs
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32, s.as_ref()?)))
    }

    /// The items written to segment `i` (live or not): their locations and headers.
    pub fn items(&self, i: u32) -> Vec<(OffLoc, Header)> {
        let mut out = Vec::new();
        let Some(s) = self.seg(i) else { return out };
        let bytes = &s.seg.bytes()[..s.len as usize];
        let mut off = 0usize;
        while let Some(h) = bytes.get(off..).and_then(item::header) {
            out.push((
                OffLoc {
                    seg: i,
                    off: off as u32,
                },
                h,
            ));
            off += h.size();
        }
        out
    }

    /// A segment worth compacting for an item of `need` bytes: the one with the most dead
    /// bytes, if that is at least a quarter of what was written to it (`thorough`: at
    /// least `need`, when the only alternative is refusing the write).
    pub fn sparsest(&self, need: usize, thorough: bool) -> Option<u32> {
        let (i, s) = self
            .iter()
            .max_by_key(|(_, s)| s.len.saturating_sub(s.live))?;
        let dead = s.len.saturating_sub(s.live) as usize;
        let worth = if thorough {
            dead >= need
        } else {
            dead >= need && dead * 4 >= s.len as usize
        };
        worth.then_some(i)
    }

    /// Moves the live items of segment `i` (given in offset order with their sizes) to its
    /// front, and makes it the open segment of `group`. Returns the items' new offsets, in
    /// the same order, for the index (empty if there is no such segment).
    pub fn compact(&mut self, i: u32, live: &[(u32, usize)], group: usize, now: u64) -> Vec<u32> {
        let mut moved = Vec::with_capacity(live.len());
        let Some(Some(s)) = self.segs.get_mut(i as usize) else {
            return moved;
        };
        let buf = s.seg.bytes_mut();
        let mut to = 0usize;
        let mut expire_max = 0;
        for &(from, size) in live {
            let from = from as usize;
            if from != to {
                buf.copy_within(from..from + size, to);
            }
            moved.push(to as u32);
            let at = item::header(&buf[to..]).map_or(0, |h| h.expire_at);
            expire_max = if at == 0 || expire_max == NEVER {
                NEVER
            } else {
                expire_max.max(at)
            };
            to += size;
        }
        s.len = to as u32;
        s.opened = now;
        s.group = group as u8;
        s.expire_max = if group == 0 { NEVER } else { expire_max };
        self.close_except(group, i);
        self.active[group] = Some(i);
        moved
    }

    fn close_except(&mut self, group: usize, keep: u32) {
        if self.active[group] != Some(keep) {
            self.close(group);
        }
        for a in &mut self.active {
            if *a == Some(keep) {
                *a = None;
            }
        }
    }

    /// Frees segment `i` if no live item is left in it (after the table removed them).
    pub fn free_if_empty(&mut self, i: u32) {
        if self.seg(i).is_some_and(|s| s.items == 0) {
            self.free(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::offheap::region::MIN_SEGMENT;

    fn segs(n: u64) -> Segments {
        let region = Arc::new(Region::new(n * MIN_SEGMENT as u64, MIN_SEGMENT, None).expect("map"));
        Segments::new(region, Arc::new(Pool::new(n)))
    }

    fn it<'a>(key: &'a [u8], value: &'a [u8], expire_at: u64) -> Item<'a> {
        Item {
            key,
            value,
            ty: item::TYPE_STR,
            lfu: 5,
            atime: 0,
            expire_at,
        }
    }

    #[test]
    fn groups_by_time_left() {
        assert_eq!(group_of(0, 5), 0);
        assert_eq!(group_of(1_500, 1_000), 1);
        assert_eq!(group_of(4_000, 0), 3);
        assert_eq!(group_of(u64::MAX, 0), GROUPS - 1);
        assert_eq!(group_of(10, 1_000), 1, "already due");
    }

    #[test]
    fn appends_by_group_and_frees_empty_segments() {
        let mut s = segs(4);
        let a = s.append(&it(b"a", b"1", 0), 0).expect("a");
        let b = s.append(&it(b"b", b"2", 5_000), 0).expect("b");
        assert_ne!(a.seg, b.seg, "different expiry groups");
        assert_eq!(s.key(a), b"a");
        assert_eq!(s.held(), 2);
        let (h, _) = s.read(b).expect("b");
        assert_eq!(h.expire_at, 5_000);
        assert!(s.iter().any(|(i, seg)| i == b.seg && seg.expired(5_000)));
        assert!(
            !s.iter()
                .any(|(i, seg)| i == a.seg && seg.expired(u64::MAX - 1))
        );
        // Fill group 0 until a second segment opens; the first is then closed.
        let value = vec![0u8; 1000];
        let mut last = a;
        let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("k{i}").into_bytes()).collect();
        let mut first_seg_items = vec![(a, item::size(1, 1, 0))];
        for k in &keys {
            last = s.append(&it(k, &value, 0), 0).expect("room");
            if last.seg == a.seg {
                first_seg_items.push((last, item::size(k.len(), 1000, 0)));
            }
        }
        assert_ne!(last.seg, a.seg);
        assert_eq!(s.held(), 3);
        for (at, size) in first_seg_items {
            s.release(at, size);
        }
        assert_eq!(s.held(), 2, "a closed segment with nothing live is freed");
    }

    #[test]
    fn pool_limits_segments() {
        let region = Arc::new(Region::new(8 * MIN_SEGMENT as u64, MIN_SEGMENT, None).expect("map"));
        let mut s = Segments::new(region, Arc::new(Pool::new(1)));
        s.append(&it(b"a", b"1", 0), 0).expect("first");
        assert_eq!(s.append(&it(b"b", b"2", 9_000), 0), Err(NoRoom));
    }

    #[test]
    fn compaction_moves_live_items_to_the_front() {
        let mut s = segs(2);
        let locs: Vec<OffLoc> = (0..10)
            .map(|i| {
                s.append(&it(format!("k{i}").as_bytes(), b"value", 0), 0)
                    .expect("room")
            })
            .collect();
        let size = item::size(2, 5, 0);
        for at in locs
            .iter()
            .filter(|l| (l.off / size as u32).is_multiple_of(2))
        {
            s.release(*at, size);
        }
        assert_eq!(s.sparsest(size, false), Some(locs[0].seg));
        let live: Vec<(u32, usize)> = locs
            .iter()
            .filter(|l| l.off / size as u32 % 2 == 1)
            .map(|l| (l.off, size))
            .collect();
        let moved = s.compact(locs[0].seg, &live, 0, 1);
        assert_eq!(moved, (0..5).map(|i| (i * size) as u32).collect::<Vec<_>>());
        let items = s.items(locs[0].seg);
        let keys: Vec<&[u8]> = items.iter().map(|(at, _)| s.key(*at)).collect();
        assert_eq!(keys, vec![&b"k1"[..], b"k3", b"k5", b"k7", b"k9"]);
        let next = s
            .append(&it(b"new", b"v", 0), 1)
            .expect("room after compaction");
        assert_eq!(next.seg, locs[0].seg);
        assert_eq!(next.off as usize, 5 * size);
    }
}
