//! [`Index`]: one table's keys, whichever tier holds them.
//!
//! A dense vector of slots (each says where an entry lives: a heap item or an off-heap
//! segment offset) plus a `hashbrown` table of buckets, each a slot position and, for a
//! heap entry, its heap index. The keys themselves stay with the entries, so an entry
//! costs the index 8 bytes of slot and about 9 to 18 of hash table. The dense vector gives O(1) random
//! sampling (eviction, RANDOMKEY) and SCAN's stable order (removal moves only the last
//! slot), and an entry moving between tiers keeps its position, so a scan never misses it.
//!
//! The heap index is in the bucket as well because a lookup is a chain of cache misses:
//! control bytes, bucket, (slot), entry. Reading it from the bucket takes the slot out of
//! the chain: GET of a heap entry costs three misses instead of four.

use hashbrown::HashTable;

use super::offheap::OffLoc;

/// Where an entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    /// Index in the table's heap items.
    Heap(u32),
    /// An off-heap item.
    Off(OffLoc),
}

const HEAP_BIT: u64 = 1 << 63;

impl Loc {
    #[inline]
    fn pack(self) -> u64 {
        match self {
            Loc::Heap(i) => HEAP_BIT | u64::from(i),
            Loc::Off(at) => (u64::from(at.seg) << 32) | u64::from(at.off),
        }
    }

    #[inline]
    fn unpack(v: u64) -> Loc {
        if v & HEAP_BIT != 0 {
            Loc::Heap(v as u32)
        } else {
            Loc::Off(OffLoc {
                seg: (v >> 32) as u32,
                off: v as u32,
            })
        }
    }
}

/// Reads the key of an entry wherever it lives.
pub trait KeyOf {
    /// The key stored at `loc`.
    fn key_of(&self, loc: Loc) -> &[u8];
}

/// A hash table bucket: a position and, for a heap entry, its heap index (the slot says
/// the same). Eight bytes: an off-heap location would not fit, and an off-heap read
/// costs a segment access anyway.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    pos: u32,
    heap: u32,
}

/// `Bucket::heap` of an off-heap entry.
const NOT_HEAP: u32 = u32::MAX;

impl Bucket {
    #[inline]
    fn new(pos: usize, loc: Loc) -> Bucket {
        Bucket {
            pos: pos as u32,
            heap: match loc {
                Loc::Heap(i) => i,
                Loc::Off(_) => NOT_HEAP,
            },
        }
    }

    /// Where the entry lives: from the bucket itself for a heap entry.
    #[inline]
    fn loc(&self, slots: &[u64]) -> Loc {
        if self.heap != NOT_HEAP {
            Loc::Heap(self.heap)
        } else {
            Loc::unpack(slots.get(self.pos as usize).copied().unwrap_or(0))
        }
    }
}

/// The key index of one table.
#[derive(Debug, Default)]
pub struct Index {
    table: HashTable<Bucket>,
    slots: Vec<u64>,
    hasher: ahash::RandomState,
}

impl Index {
    /// Entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Where the entry at `pos` lives.
    #[inline]
    pub fn loc(&self, pos: usize) -> Option<Loc> {
        self.slots.get(pos).map(|&v| Loc::unpack(v))
    }

    /// Moves the entry at `pos` to `loc` (a tier change or a compaction). The entry must
    /// already be readable at `loc`.
    #[inline]
    pub fn set_loc(&mut self, pos: usize, loc: Loc, keys: &impl KeyOf) {
        let Some(v) = self.slots.get_mut(pos) else {
            return;
        };
        *v = loc.pack();
        let h = self.hasher.hash_one(keys.key_of(loc));
        if let Some(b) = self.table.find_mut(h, |b| b.pos as usize == pos) {
            *b = Bucket::new(pos, loc);
        }
    }

    /// The position of `key`.
    #[inline]
    pub fn find(&self, key: &[u8], keys: &impl KeyOf) -> Option<usize> {
        self.find_at(key, keys).map(|(pos, _)| pos)
    }

    /// The position of `key` and where its entry lives.
    #[inline]
    pub fn find_at(&self, key: &[u8], keys: &impl KeyOf) -> Option<(usize, Loc)> {
        let h = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.table
            .find(h, |b| keys.key_of(b.loc(slots)) == key)
            .map(|b| (b.pos as usize, b.loc(slots)))
    }

    /// Makes room for `more` entries without rehashing (a load that knows its size).
    pub fn reserve(&mut self, more: usize, keys: &impl KeyOf) {
        self.slots.reserve(more);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table
            .reserve(more, |b| hasher.hash_one(keys.key_of(b.loc(slots))));
    }

    /// Adds `key` (which must be absent), stored at `loc`; returns its position.
    pub fn push(&mut self, key: &[u8], loc: Loc, keys: &impl KeyOf) -> usize {
        let pos = self.slots.len();
        self.slots.push(loc.pack());
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table
            .insert_unique(hasher.hash_one(key), Bucket::new(pos, loc), |b| {
                hasher.hash_one(keys.key_of(b.loc(slots)))
            });
        pos
    }

    /// Removes the entry at `pos`; the last entry moves into its place. Returns where the
    /// removed entry lived and, if one moved, where the moved entry lives (its owner must
    /// learn its new position). Both keys must still be readable through `keys`.
    pub fn swap_remove(&mut self, pos: usize, keys: &impl KeyOf) -> Option<(Loc, Option<Loc>)> {
        let loc = self.loc(pos)?;
        let h = self.hasher.hash_one(keys.key_of(loc));
        if let Ok(e) = self.table.find_entry(h, |b| b.pos as usize == pos) {
            e.remove();
        }
        let last = self.slots.len() - 1;
        let mut moved = None;
        if pos != last {
            let m = Loc::unpack(self.slots[last]);
            let mh = self.hasher.hash_one(keys.key_of(m));
            if let Some(b) = self.table.find_mut(mh, |b| b.pos as usize == last) {
                b.pos = pos as u32;
            }
            self.slots[pos] = self.slots[last];
            moved = Some(m);
        }
        self.slots.pop();
        Some((loc, moved))
    }

    /// Removes everything and frees the memory.
    pub fn clear(&mut self) {
        self.table = HashTable::new();
        self.slots = Vec::new();
    }

    /// Bytes the index itself occupies.
    pub fn mem(&self) -> usize {
        self.table.allocation_size() + self.slots.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys held in a plain vector, addressed as heap items.
    struct Keys(Vec<Vec<u8>>);

    impl KeyOf for Keys {
        fn key_of(&self, loc: Loc) -> &[u8] {
            match loc {
                Loc::Heap(i) => self.0.get(i as usize).map_or(&[], |k| k.as_slice()),
                Loc::Off(_) => &[],
            }
        }
    }

    #[test]
    fn pack_round_trips() {
        for loc in [
            Loc::Heap(0),
            Loc::Heap(u32::MAX),
            Loc::Off(OffLoc { seg: 7, off: 99 }),
            Loc::Off(OffLoc {
                seg: (1 << 31) - 1,
                off: u32::MAX,
            }),
        ] {
            assert_eq!(Loc::unpack(loc.pack()), loc);
        }
    }

    #[test]
    fn find_push_and_swap_remove() {
        let keys = Keys((0..1000).map(|i| format!("k{i}").into_bytes()).collect());
        let mut ix = Index::default();
        for i in 0..1000u32 {
            assert_eq!(
                ix.push(&keys.0[i as usize], Loc::Heap(i), &keys),
                i as usize
            );
        }
        assert_eq!(ix.find(b"k500", &keys), Some(500));
        assert_eq!(ix.find_at(b"k7", &keys), Some((7, Loc::Heap(7))));
        assert_eq!(ix.find(b"nope", &keys), None);
        let (gone, moved) = ix.swap_remove(500, &keys).expect("present");
        assert_eq!(gone, Loc::Heap(500));
        assert_eq!(moved, Some(Loc::Heap(999)));
        assert_eq!(ix.find(b"k999", &keys), Some(500));
        assert_eq!(ix.len(), 999);
        let (_, moved) = ix.swap_remove(998, &keys).expect("last");
        assert_eq!(moved, None);
        assert!(ix.mem() >= 998 * 8);
    }
}
