//! The collection types: hashes, lists, sets and sorted sets, on the heap and packed.
//!
//! Each type keeps its own byte count up to date on every change (so the table's memory
//! accounting stays O(1) per write) and has one packed form: the bytes of an off-heap item
//! and of a record's value (DESIGN.md "one record format"). A packed value is
//!
//! ```text
//!  packed  := count varint | element × count
//!  element := hash:  field bytes | value bytes | expire_at varint
//!           | list:  item bytes
//!           | set:   member bytes
//!           | zset:  member bytes | score f64le
//!  bytes   := len varint | bytes
//! ```
//!
//! Commands reach these through `Db::read` and `Db::update`, which move an off-heap entry
//! to the heap or decode it, check the type (WRONGTYPE) and do the bookkeeping.

pub mod hash;
pub mod list;
pub mod set;
pub mod zset;

pub use hash::{HField, HashV};
pub use list::{ListJournal, ListOp, ListV};
pub use set::SetV;
pub use zset::{LexBound, LexRange, Score, ScoreRange, ZSetV};

use super::entry::{Str, Value};

/// A value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A string.
    Str,
    /// A hash.
    Hash,
    /// A list.
    List,
    /// A set.
    Set,
    /// A sorted set.
    ZSet,
}

impl Kind {
    /// The `TYPE` name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
        }
    }

    /// The tag of this type in off-heap items and records (3 bits).
    pub fn tag(self) -> u8 {
        match self {
            Kind::Str => 0,
            Kind::Hash => 1,
            Kind::List => 2,
            Kind::Set => 3,
            Kind::ZSet => 4,
        }
    }

    /// The type of a tag.
    pub fn from_tag(tag: u8) -> Option<Kind> {
        Some(match tag {
            0 => Kind::Str,
            1 => Kind::Hash,
            2 => Kind::List,
            3 => Kind::Set,
            4 => Kind::ZSet,
            _ => return None,
        })
    }
}

/// Bytes charged per element on top of its own bytes (the element's slot in its
/// container, allocator headers): an estimate, like [`ENTRY_OVERHEAD`](super::entry::ENTRY_OVERHEAD).
pub const ELEM_OVERHEAD: usize = 48;

/// Bytes charged for an empty container.
pub const BASE_OVERHEAD: usize = 64;

/// Collections with at least this many elements record a change as the elements it
/// touched ([`Effect::Patch`](crate::store::Effect::Patch)), smaller ones as their whole
/// new value (simpler to replay, and as small).
pub const PATCH_MIN: usize = 32;

/// The elements a command touched, noted by every mutator of a hash, set or sorted set
/// while [`Db::update`](crate::store::Db::update) runs it, so the change can be recorded
/// as a patch instead of the whole value. Every mutator that changes an element must call
/// [`note`](Journal::note): an element it misses would not reach the log or the mirrors.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    on: bool,
    touched: Vec<Str>,
}

impl Journal {
    /// Notes that `elem` (a field or member) was written or removed.
    #[inline]
    pub fn note(&mut self, elem: &[u8]) {
        if self.on {
            self.touched.push(Str::new(elem));
        }
    }

    /// Starts noting.
    pub fn start(&mut self) {
        self.on = true;
        self.touched.clear();
    }

    /// Stops noting; the touched elements, each once.
    pub fn finish(&mut self) -> Vec<Str> {
        self.on = false;
        let mut t = std::mem::take(&mut self.touched);
        t.sort_unstable();
        t.dedup();
        t
    }
}

/// A collection type, for the store's generic accessors.
pub trait Coll: Clone + Default + PartialEq + std::fmt::Debug + Sized {
    /// Its type.
    const KIND: Kind;
    /// The collection held by `v`, if it is one of this type.
    fn of(v: &Value) -> Option<&Self>;
    /// The same, mutable.
    fn of_mut(v: &mut Value) -> Option<&mut Self>;
    /// Into a value.
    fn into_value(self) -> Value;
    /// Number of elements.
    fn len(&self) -> usize;
    /// True with no element (an empty collection is never stored: its key is deleted).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes charged for it.
    fn mem(&self) -> usize;
    /// Appends the packed form.
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes a packed form; `None` if the bytes are not one.
    fn decode(packed: &[u8]) -> Option<Self>;
    /// `OBJECT ENCODING`, as Redis 7 would report it.
    fn encoding(&self) -> &'static str;
    /// The journal of a type whose changes can be recorded as patches (`None`: lists,
    /// whose changes are positional, always record their whole value).
    fn journal(&mut self) -> Option<&mut Journal> {
        None
    }
    /// The patch for `touched` elements: those still present (with their current values)
    /// as upserts, the others as removed.
    fn patch_of(&self, touched: &[Str]) -> (Self, Vec<bytes::Bytes>) {
        let _ = touched;
        (Self::default(), Vec::new())
    }
    /// A list's journal of pushes and pops (`None` for the other types).
    fn list_journal(&mut self) -> Option<&mut list::ListJournal> {
        None
    }
    /// A list's version (see `ListV`); 0 for the other types.
    fn version(&self) -> u64 {
        0
    }
    /// Sets a list's version (no-op for the other types).
    fn set_version(&mut self, ver: u64) {
        let _ = ver;
    }
}

/// Redis's `*-max-listpack-entries` default: collections up to this many elements report
/// the compact encoding.
pub const LISTPACK_ENTRIES: usize = 128;
/// Redis's `*-max-listpack-value` default.
pub const LISTPACK_VALUE: usize = 64;

/// True when every element is short and there are few: Redis would keep it as a listpack.
pub(crate) fn small<'a>(len: usize, mut elems: impl Iterator<Item = &'a [u8]>) -> bool {
    len <= LISTPACK_ENTRIES && elems.all(|e| e.len() <= LISTPACK_VALUE)
}

/// An element's place in HSCAN/SSCAN/ZSCAN order: a fixed 64-bit hash (FNV-1a with a
/// final mix), the same on every server and after every restart, never 0 (the cursor that
/// starts and ends a scan).
pub fn scan_hash(elem: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in elem {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finaliser spreads FNV's weak low bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h.max(1)
}

/// One page of a collection scan ordered by [`scan_hash`]: the items whose hash is at
/// least `cursor`, lowest hash first, at least `count` of them (all items of one hash go
/// in one page), and the cursor of the next page (0 when done). Elements added or removed
/// between calls never make a scan miss or repeat an element that stayed: the order does
/// not depend on the collection's layout. O(n) to pick the page, O(page log page) to
/// order it.
pub fn scan_page<T>(
    items: impl Iterator<Item = (u64, T)>,
    cursor: u64,
    count: usize,
) -> (u64, Vec<T>) {
    let mut left: Vec<(u64, T)> = items.filter(|(h, _)| *h >= cursor).collect();
    let want = count.max(1);
    let last = if left.len() > want {
        left.select_nth_unstable_by_key(want - 1, |(h, _)| *h);
        left[want - 1].0
    } else {
        u64::MAX
    };
    let (mut page, rest): (Vec<_>, Vec<_>) = left.into_iter().partition(|(h, _)| *h <= last);
    let next = rest.iter().map(|(h, _)| *h).min().unwrap_or(0);
    page.sort_unstable_by_key(|(h, _)| *h);
    (next, page.into_iter().map(|(_, t)| t).collect())
}

/// Appends `v` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reads packed bytes; every read checks what is left and fails rather than panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `b`.
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { rest: b }
    }

    /// A varint.
    pub fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        while shift < 64 {
            let (&b, rest) = self.rest.split_first()?;
            self.rest = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
        None
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        if n > self.rest.len() {
            return None;
        }
        let (b, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(b)
    }

    /// A little-endian f64.
    pub fn f64(&mut self) -> Option<f64> {
        let (b, rest) = self.rest.split_first_chunk::<8>()?;
        self.rest = rest;
        Some(f64::from_le_bytes(*b))
    }

    /// The element count at the start of a packed value, bounded by what the bytes can
    /// hold (every element takes at least one byte), so a corrupt count cannot make a
    /// decoder reserve unbounded memory.
    pub fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.rest.len()).then_some(n)
    }

    /// True when every byte was read.
    pub fn is_done(&self) -> bool {
        self.rest.is_empty()
    }
}

/// True when `packed` is a well-formed packed value of type `kind` (checked without
/// allocating, so a record's value can be validated when the record is read).
pub fn valid(kind: Kind, packed: &[u8]) -> bool {
    // A string has no packed form (a count of 0 would otherwise pass as an empty one).
    if kind == Kind::Str {
        return false;
    }
    let mut r = Reader::new(packed);
    if kind == Kind::List && r.varint().is_none() {
        return false;
    }
    let Some(n) = r.count() else {
        return false;
    };
    for _ in 0..n {
        let ok = match kind {
            Kind::Str => false,
            Kind::Hash => r.bytes().is_some() && r.bytes().is_some() && r.varint().is_some(),
            Kind::List | Kind::Set => r.bytes().is_some(),
            Kind::ZSet => r.bytes().is_some() && r.f64().is_some_and(|s| !s.is_nan()),
        };
        if !ok {
            return false;
        }
    }
    r.is_done()
}

/// Decodes a packed value of type `kind`; `None` when the bytes are not one.
pub fn decode(kind: Kind, packed: &[u8]) -> Option<Value> {
    Some(match kind {
        Kind::Str => return None,
        Kind::Hash => HashV::decode(packed)?.into_value(),
        Kind::List => ListV::decode(packed)?.into_value(),
        Kind::Set => SetV::decode(packed)?.into_value(),
        Kind::ZSet => ZSetV::decode(packed)?.into_value(),
    })
}

/// The packed form of a collection value (`None` for a string).
pub fn encode(v: &Value, out: &mut Vec<u8>) -> bool {
    match v {
        Value::Str(_) => return false,
        Value::Hash(h) => h.encode(out),
        Value::List(l) => l.encode(out),
        Value::Set(s) => s.encode(out),
        Value::ZSet(z) => z.encode(out),
    }
    true
}

/// Number of elements of a collection value (a string's length for a string).
pub fn len_of(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.len(),
        Value::Hash(h) => h.len(),
        Value::List(l) => l.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
    }
}

/// Writes every element of `upserts` into `target` (fields with their values and
/// expiries, members with their scores); false, doing nothing, when the two are not
/// collections of one type that elements can be written into (lists are positional).
pub fn merge(target: &mut Value, upserts: &Value) -> bool {
    match (target, upserts) {
        (Value::Hash(t), Value::Hash(u)) => {
            for (k, f) in u.iter() {
                t.insert_with(k, &f.value, f.expire_at);
            }
        }
        (Value::Set(t), Value::Set(u)) => {
            for m in u.iter() {
                t.insert(m);
            }
        }
        (Value::ZSet(t), Value::ZSet(u)) => {
            for (m, score) in u.iter() {
                t.insert(m, score);
            }
        }
        _ => return false,
    }
    true
}

/// Removes element `elem` (a hash field, a set or sorted-set member) from `target`.
pub fn remove_elem(target: &mut Value, elem: &[u8]) {
    match target {
        Value::Hash(t) => {
            t.remove(elem);
        }
        Value::Set(t) => {
            t.remove(elem);
        }
        Value::ZSet(t) => {
            t.remove(elem);
        }
        Value::Str(_) | Value::List(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz target `packed`: an empty count passed as a packed string, which
    /// `decode` then refused.
    #[test]
    fn a_string_has_no_packed_form() {
        for b in [&[0u8][..], &[], &[1, 1, b'a']] {
            assert!(!valid(Kind::Str, b), "{b:?}");
            assert!(decode(Kind::Str, b).is_none());
        }
        assert!(valid(Kind::Set, &[0]) && decode(Kind::Set, &[0]).is_some());
    }

    #[test]
    fn every_type_round_trips_and_validates() {
        let mut h = HashV::default();
        h.insert(b"f", b"v");
        h.insert(b"g", &[7u8; 300]);
        h.set_expire(b"g", 1234);
        let mut l = ListV::default();
        l.push_back(b"a");
        l.push_front(b"b");
        let mut s = SetV::default();
        s.insert(b"x");
        s.insert(b"12");
        let mut z = ZSetV::default();
        z.insert(b"m", 1.5);
        z.insert(b"n", -3.0);
        let values = [
            h.into_value(),
            l.into_value(),
            s.into_value(),
            z.into_value(),
        ];
        for v in values {
            let mut out = Vec::new();
            assert!(encode(&v, &mut out));
            assert!(valid(v.kind(), &out), "{v:?}");
            assert_eq!(decode(v.kind(), &out).as_ref(), Some(&v));
            // Every truncation is refused, never a panic.
            for cut in 0..out.len() {
                assert!(!valid(v.kind(), &out[..cut]), "cut at {cut}");
                let _ = decode(v.kind(), &out[..cut]);
            }
        }
    }

    #[test]
    fn a_huge_count_is_refused_without_allocating() {
        let mut out = Vec::new();
        put_varint(&mut out, u64::MAX >> 1);
        assert!(!valid(Kind::List, &out));
        assert!(ListV::decode(&out).is_none());
    }

    #[test]
    fn tags_round_trip() {
        for k in [Kind::Str, Kind::Hash, Kind::List, Kind::Set, Kind::ZSet] {
            assert_eq!(Kind::from_tag(k.tag()), Some(k));
        }
        assert_eq!(Kind::from_tag(7), None);
    }

    /// Every mutator of a journaled type notes what it touched: a patch built from the
    /// journal and replayed over the value before the change gives the value after it.
    #[test]
    fn patches_from_the_journal_reproduce_every_mutator() {
        fn check<C: Coll>(before: &C, change: impl FnOnce(&mut C)) {
            let mut after = before.clone();
            if let Some(j) = after.journal() {
                j.start();
            }
            change(&mut after);
            let touched = after.journal().map(|j| j.finish()).unwrap_or_default();
            let (up, removed) = after.patch_of(&touched);
            let mut replayed = before.clone().into_value();
            merge(&mut replayed, &up.into_value());
            for r in &removed {
                remove_elem(&mut replayed, r);
            }
            assert_eq!(replayed, after.into_value());
        }
        let mut h = HashV::default();
        let mut s = SetV::default();
        let mut z = ZSetV::default();
        for i in 0..40 {
            h.insert_with(
                format!("f{i}").as_bytes(),
                b"v",
                if i % 2 == 0 { 5 } else { 0 },
            );
            s.insert(format!("m{i}").as_bytes());
            z.insert(format!("m{i}").as_bytes(), f64::from(i));
        }
        check(&h, |h| {
            h.insert(b"f1", b"new");
            h.insert(b"added", b"x");
        });
        check(&h, |h| {
            h.remove(b"f3");
        });
        check(&h, |h| {
            h.set_expire(b"f5", 99);
        });
        check(&h, |h| {
            h.insert_keep_ttl(b"f2", b"kept", 1);
        });
        check(&h, |h| {
            h.expire_fields(10);
        });
        check(&s, |s| {
            s.insert(b"new");
            s.remove(b"m0");
        });
        check(&s, |s| {
            s.take_index(3);
        });
        check(&z, |z| {
            z.insert(b"m1", -5.0);
            z.insert(b"new", 2.0);
        });
        check(&z, |z| {
            z.remove(b"m2");
        });
        check(&z, |z| {
            z.pop(false);
            z.pop(true);
        });
    }
}
