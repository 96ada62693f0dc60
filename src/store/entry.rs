//! One stored entry: its value and the metadata expiry, eviction and caches need.

use bytes::Bytes;
use smallvec::SmallVec;

use super::offheap::item::Header;
use super::types::{Coll, HashV, Kind, ListV, SetV, ZSetV};

/// A stored key. Keys up to 24 bytes live inline in the map slot, so a lookup compares
/// against bytes already in cache instead of chasing a pointer to a separate allocation.
pub type Key = SmallVec<[u8; 24]>;

/// Bytes counted per entry on top of key and value (map slot, metadata, allocator headers).
/// An estimate: `used_memory` and per-cache `max_memory` are computed from it.
pub const ENTRY_OVERHEAD: usize = 72;

/// Redis's LFU_INIT_VAL: new keys start here so they are not evicted at once.
pub const LFU_INIT: u8 = 5;

/// Strings up to this many bytes live inside the entry, like Redis's embstr: no allocation,
/// and reading one touches no cache line beyond the entry's own.
pub const INLINE: usize = 23;

/// A stored string: inline when short, else an exact-size shared buffer.
#[derive(Clone)]
pub struct Str(Repr);

#[derive(Clone)]
enum Repr {
    Inline(u8, [u8; INLINE]),
    Heap(Bytes),
}

impl Str {
    /// A copy of `b`: inline if it fits, else in its own allocation (never a slice of a
    /// larger buffer, which would keep that buffer alive).
    pub fn new(b: &[u8]) -> Str {
        if b.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..b.len()].copy_from_slice(b);
            Str(Repr::Inline(b.len() as u8, buf))
        } else {
            Str(Repr::Heap(Bytes::copy_from_slice(b)))
        }
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(len, buf) => &buf[..usize::from(*len)],
            Repr::Heap(b) => b,
        }
    }

    /// The bytes as a `Bytes`: a copy of an inline string, a shared handle otherwise.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline(..) => Bytes::copy_from_slice(self.as_slice()),
            Repr::Heap(b) => b.clone(),
        }
    }
}

impl std::ops::Deref for Str {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Str {}

// Hash, Borrow and Ord agree with `[u8]`'s, so collections keyed by `Str` are searched
// with a plain `&[u8]`.
impl std::hash::Hash for Str {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl std::borrow::Borrow<[u8]> for Str {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Str) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Str) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

/// A value. Every command checks the type it expects ([`Value::as_str`], or the
/// collection accessors of [`Db`](super::Db)), so WRONGTYPE comes for free.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (Redis's binary-safe string).
    Str(Str),
    /// A hash.
    Hash(Box<HashV>),
    /// A list.
    List(Box<ListV>),
    /// A set.
    Set(Box<SetV>),
    /// A sorted set.
    ZSet(Box<ZSetV>),
}

impl Eq for Value {}

impl Value {
    /// A string value holding a copy of `b`.
    pub fn str(b: &[u8]) -> Value {
        Value::Str(Str::new(b))
    }

    /// A borrowed view, the form commands read whichever tier holds the value.
    #[inline]
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Str(b) => ValueRef::Str(b.as_slice()),
            v => ValueRef::Heap(v),
        }
    }

    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::Str,
            Value::Hash(_) => Kind::Hash,
            Value::List(_) => Kind::List,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
        }
    }

    /// The `TYPE` name.
    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }

    /// The string, or `None` for another type (the caller answers WRONGTYPE).
    pub fn as_str(&self) -> Option<&Str> {
        match self {
            Value::Str(b) => Some(b),
            _ => None,
        }
    }

    /// Bytes the value occupies (kept up to date by each collection: O(1)).
    pub fn mem(&self) -> usize {
        match self {
            Value::Str(b) => b.len(),
            Value::Hash(h) => h.mem(),
            Value::List(l) => l.mem(),
            Value::Set(s) => s.mem(),
            Value::ZSet(z) => z.mem(),
        }
    }

    /// `OBJECT ENCODING`, as Redis would report it.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(b) => str_encoding(b),
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
        }
    }
}

fn str_encoding(b: &[u8]) -> &'static str {
    let is_int = b.len() <= 20 && crate::protocol::args::parse_i64(b).is_ok();
    if is_int {
        "int"
    } else if b.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// A value where it is stored: a string's bytes, a collection on the heap, or a
/// collection packed in an off-heap segment or a record (see [`types`](super::types)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    /// A string.
    Str(&'a [u8]),
    /// A collection on the heap (never a string).
    Heap(&'a Value),
    /// A collection in its packed form, checked well-formed when it was read.
    Packed(Kind, &'a [u8]),
}

impl<'a> ValueRef<'a> {
    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self {
            ValueRef::Str(_) => Kind::Str,
            ValueRef::Heap(v) => v.kind(),
            ValueRef::Packed(k, _) => *k,
        }
    }

    /// The `TYPE` name.
    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }

    /// The string, or `None` for another type (the caller answers WRONGTYPE).
    #[inline]
    pub fn as_str(&self) -> Option<&'a [u8]> {
        match *self {
            ValueRef::Str(b) => Some(b),
            _ => None,
        }
    }

    /// Bytes the value occupies.
    pub fn mem(&self) -> usize {
        match self {
            ValueRef::Str(b) => b.len(),
            ValueRef::Heap(v) => v.mem(),
            ValueRef::Packed(_, b) => b.len(),
        }
    }

    /// An owned copy (a packed collection is decoded; one that does not decode, which a
    /// CRC-checked and validated source cannot hold, becomes an empty value of its type).
    pub fn to_value(&self) -> Value {
        match *self {
            ValueRef::Str(b) => Value::str(b),
            ValueRef::Heap(v) => v.clone(),
            ValueRef::Packed(k, b) => super::types::decode(k, b).unwrap_or_else(|| empty(k)),
        }
    }

    /// `OBJECT ENCODING`, as Redis would report it.
    pub fn encoding(&self) -> &'static str {
        match self {
            ValueRef::Str(b) => str_encoding(b),
            ValueRef::Heap(v) => v.encoding(),
            ValueRef::Packed(..) => self.to_value().encoding(),
        }
    }
}

/// An empty value of type `k`.
fn empty(k: Kind) -> Value {
    match k {
        Kind::Str => Value::str(b""),
        Kind::Hash => HashV::default().into_value(),
        Kind::List => ListV::default().into_value(),
        Kind::Set => SetV::default().into_value(),
        Kind::ZSet => ZSetV::default().into_value(),
    }
}

/// Bytes charged for an off-heap entry on top of its item: its index slot (8) and share of
/// the hash table (an 8-byte bucket and a control byte, at a load between 7/16 and 7/8).
pub const OFF_OVERHEAD: usize = 24;

/// An entry where it is stored. Commands read entries only through this, so every
/// command behaves the same whichever tier holds the key.
#[derive(Debug, Clone, Copy)]
pub enum EntryRef<'a> {
    /// On the heap.
    Heap(&'a Entry),
    /// In an off-heap segment: the item's header and bytes.
    Off(Header, &'a [u8]),
}

impl<'a> EntryRef<'a> {
    /// The value.
    #[inline]
    pub fn value(&self) -> ValueRef<'a> {
        match *self {
            EntryRef::Heap(e) => e.value.as_ref(),
            EntryRef::Off(h, b) => {
                let v = &b[h.value_at()..h.size()];
                match Kind::from_tag(h.ty) {
                    Some(Kind::Str) | None => ValueRef::Str(v),
                    Some(k) => ValueRef::Packed(k, v),
                }
            }
        }
    }

    /// Absolute expiry in unix ms; 0 = never.
    #[inline]
    pub fn expire_at(&self) -> u64 {
        match self {
            EntryRef::Heap(e) => e.expire_at,
            EntryRef::Off(h, _) => h.expire_at,
        }
    }

    /// Last access in unix ms.
    #[inline]
    pub fn atime(&self) -> u64 {
        match self {
            EntryRef::Heap(e) => e.atime,
            EntryRef::Off(h, _) => h.atime,
        }
    }

    /// The LFU counter as of `now`, after decay.
    pub fn freq(&self, now: u64) -> u8 {
        match self {
            EntryRef::Heap(e) => e.freq(now),
            EntryRef::Off(h, _) => decayed(h.lfu, h.atime, now),
        }
    }

    /// True when the entry's TTL has passed at `now`.
    #[inline]
    pub fn is_expired(&self, now: u64) -> bool {
        let at = self.expire_at();
        at != 0 && at <= now
    }

    /// Bytes charged for the entry, its key being `klen` bytes long.
    pub fn mem(&self, klen: usize) -> usize {
        match self {
            EntryRef::Heap(e) => e.mem(klen),
            EntryRef::Off(h, _) => h.size() + OFF_OVERHEAD,
        }
    }

    /// True for an off-heap entry.
    pub fn is_off(&self) -> bool {
        matches!(self, EntryRef::Off(..))
    }

    /// An owned copy (RENAME, COPY, GETDEL).
    pub fn to_entry(&self) -> Entry {
        match *self {
            EntryRef::Heap(e) => e.clone(),
            EntryRef::Off(h, _) => Entry {
                value: self.value().to_value(),
                expire_at: h.expire_at,
                atime: h.atime,
                lfu: h.lfu,
            },
        }
    }
}

/// The LFU counter `lfu` last updated at `atime`, decayed by one per idle minute (Redis's
/// `lfu-decay-time 1`).
pub fn decayed(lfu: u8, atime: u64, now: u64) -> u8 {
    let idle_minutes = now.saturating_sub(atime) / 60_000;
    lfu.saturating_sub(u8::try_from(idle_minutes).unwrap_or(u8::MAX))
}

/// The LFU counter after an access at `now`: decayed, then grown logarithmically
/// (`lfu-log-factor 10`).
pub fn accessed(lfu: u8, atime: u64, now: u64) -> u8 {
    let lfu = decayed(lfu, atime, now);
    if lfu == u8::MAX {
        return lfu;
    }
    let base = f64::from(lfu.saturating_sub(LFU_INIT));
    if fastrand::f64() < 1.0 / (base * 10.0 + 1.0) {
        lfu + 1
    } else {
        lfu
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in unix milliseconds; 0 = never.
    pub expire_at: u64,
    /// Last access in unix milliseconds (LRU, idle expiry, OBJECT IDLETIME).
    pub atime: u64,
    /// Logarithmic access counter (LFU, OBJECT FREQ).
    pub lfu: u8,
}

impl Entry {
    /// A new entry accessed now.
    pub fn new(value: Value, expire_at: u64, now: u64) -> Entry {
        Entry {
            value,
            expire_at,
            atime: now,
            lfu: LFU_INIT,
        }
    }

    /// True when the entry's TTL has passed at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now
    }

    /// Records an access (see [`accessed`]).
    pub fn touch(&mut self, now: u64) {
        self.lfu = accessed(self.lfu, self.atime, now);
        self.atime = now;
    }

    /// The LFU counter as of `now`, after decay.
    pub fn freq(&self, now: u64) -> u8 {
        decayed(self.lfu, self.atime, now)
    }

    /// Bytes charged for this entry with key length `klen`.
    pub fn mem(&self, klen: usize) -> usize {
        klen + self.value.mem() + ENTRY_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(Value::str(b"123").encoding(), "int");
        assert_eq!(Value::str(b"0123").encoding(), "embstr");
        assert_eq!(Value::str(&[b'x'; 45]).encoding(), "raw");
    }

    #[test]
    fn lfu_grows_slowly_and_decays() {
        let mut e = Entry::new(Value::str(b""), 0, 0);
        for _ in 0..1000 {
            e.touch(0);
        }
        assert!(e.lfu > LFU_INIT && e.lfu < 40, "lfu {}", e.lfu);
        let before = e.lfu;
        assert_eq!(e.freq(3 * 60_000), before - 3);
    }

    #[test]
    fn short_strings_are_inline_long_ones_shared() {
        let short = Str::new(&[7u8; INLINE]);
        assert_eq!(short.as_slice(), &[7u8; INLINE]);
        assert!(matches!(short.0, Repr::Inline(..)));
        let long = Str::new(&[8u8; INLINE + 1]);
        assert!(matches!(long.0, Repr::Heap(_)));
        assert_eq!(long.to_bytes(), Bytes::from(vec![8u8; INLINE + 1]));
        assert_eq!(Str::new(b"ab"), Str::new(b"ab"));
        assert_eq!(std::mem::size_of::<Str>(), std::mem::size_of::<Bytes>());
    }

    #[test]
    fn expiry() {
        let e = Entry::new(Value::str(b""), 100, 0);
        assert!(!e.is_expired(99));
        assert!(e.is_expired(100));
        assert!(!Entry::new(Value::str(b""), 0, 0).is_expired(u64::MAX));
    }
}
