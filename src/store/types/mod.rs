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
pub use list::ListV;
pub use set::SetV;
pub use zset::{LexBound, LexRange, Score, ScoreRange, ZSetV};

use super::entry::Value;

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
    let mut r = Reader::new(packed);
    let Some(n) = r.count() else {
        return false;
    };
    for _ in 0..n {
        let ok = match kind {
            Kind::Str => return false,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
