//! [`HashV`]: a hash's fields, each with its value and an optional expiry (Redis 7.4
//! hash-field expiration).

use indexmap::IndexMap;

use super::{
    BASE_OVERHEAD, Coll, ELEM_OVERHEAD, Journal, Kind, Reader, put_bytes, put_varint, scan_hash,
    scan_page, small,
};
use crate::store::entry::{Str, Value};

/// One field's value and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HField {
    /// The value.
    pub value: Str,
    /// Absolute expiry in unix ms; 0 = never.
    pub expire_at: u64,
}

impl HField {
    /// True when the field's TTL has passed at `now`.
    #[inline]
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now
    }
}

/// A hash. Fields sit in an index map: O(1) lookups, and O(1) access by position for
/// HRANDFIELD.
///
/// A field whose TTL has passed stays in the map until it is reclaimed (by a write to the
/// hash or the server's sweep, [`expire_fields`](HashV::expire_fields)); until then every
/// read skips it, and only [`len`](Coll::len) (HLEN, as Redis's) still counts it.
#[derive(Debug, Clone)]
pub struct HashV {
    map: IndexMap<Str, HField, ahash::RandomState>,
    /// Bytes of every field and value plus per-field overhead.
    bytes: usize,
    /// Fields with an expiry.
    volatile: usize,
    /// No field expires before this (unix ms; `u64::MAX` with no volatile field). A lower
    /// bound: removing or persisting a field leaves it as it was, and the next
    /// [`expire_fields`](HashV::expire_fields) that finds it due makes it exact again. It
    /// lets a write or the sweep skip a hash with nothing due in O(1).
    next_expire: u64,
    /// Fields changed while a command runs (see [`Journal`]).
    journal: Journal,
}

impl Default for HashV {
    fn default() -> HashV {
        HashV {
            map: IndexMap::default(),
            bytes: 0,
            volatile: 0,
            next_expire: u64::MAX,
            journal: Journal::default(),
        }
    }
}

impl PartialEq for HashV {
    fn eq(&self, other: &HashV) -> bool {
        self.map.len() == other.map.len()
            && self.map.iter().all(|(k, v)| other.map.get(k) == Some(v))
    }
}

fn cost(field: &[u8], value: &[u8]) -> usize {
    field.len() + value.len() + ELEM_OVERHEAD
}

impl HashV {
    /// The field, expired or not (callers check [`HField::is_expired`]).
    pub fn get(&self, field: &[u8]) -> Option<&HField> {
        self.map.get(field)
    }

    /// The live value of `field` at `now`.
    pub fn value(&self, field: &[u8], now: u64) -> Option<&Str> {
        self.map
            .get(field)
            .filter(|f| !f.is_expired(now))
            .map(|f| &f.value)
    }

    /// Sets `field` to `value`, clearing any expiry it had (as HSET does); true if the
    /// field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.insert_with(field, value, 0)
    }

    /// Sets `field` to `value` expiring at `expire_at` (0 = never); true if the field is new.
    pub fn insert_with(&mut self, field: &[u8], value: &[u8], expire_at: u64) -> bool {
        self.journal.note(field);
        self.bytes += cost(field, value);
        self.volatile += usize::from(expire_at != 0);
        if expire_at != 0 {
            self.next_expire = self.next_expire.min(expire_at);
        }
        let new = HField {
            value: Str::new(value),
            expire_at,
        };
        match self.map.get_mut(field) {
            Some(old) => {
                self.bytes -= cost(field, &old.value);
                self.volatile -= usize::from(old.expire_at != 0);
                *old = new;
                false
            }
            None => {
                self.map.insert(Str::new(field), new);
                true
            }
        }
    }

    /// Removes `field`; true if it was there (expired or not).
    pub fn remove(&mut self, field: &[u8]) -> bool {
        self.journal.note(field);
        match self.map.swap_remove(field) {
            Some(old) => {
                self.bytes -= cost(field, &old.value);
                self.volatile -= usize::from(old.expire_at != 0);
                true
            }
            None => false,
        }
    }

    /// Sets (`at` > 0) or clears (0) the expiry of `field`; false if there is no such field.
    pub fn set_expire(&mut self, field: &[u8], at: u64) -> bool {
        self.journal.note(field);
        match self.map.get_mut(field) {
            Some(f) => {
                self.volatile =
                    self.volatile + usize::from(at != 0) - usize::from(f.expire_at != 0);
                f.expire_at = at;
                if at != 0 {
                    self.next_expire = self.next_expire.min(at);
                }
                true
            }
            None => false,
        }
    }

    /// Sets `field` to `value` keeping the TTL it has if it is live at `now` (HINCRBY,
    /// HINCRBYFLOAT); true if the field is new (or was expired).
    pub fn insert_keep_ttl(&mut self, field: &[u8], value: &[u8], now: u64) -> bool {
        let (at, live) = match self.map.get(field) {
            Some(f) if !f.is_expired(now) => (f.expire_at, true),
            _ => (0, false),
        };
        self.insert_with(field, value, at);
        !live
    }

    /// True when a field may have expired at `now` (O(1); see `next_expire`).
    #[inline]
    pub fn is_due(&self, now: u64) -> bool {
        self.volatile > 0 && self.next_expire <= now
    }

    /// When the earliest field expiry may be (a lower bound, see `next_expire`); `None`
    /// with no volatile field.
    pub fn next_expire(&self) -> Option<u64> {
        (self.volatile > 0).then_some(self.next_expire)
    }

    /// Removes the fields whose expiry has passed at `now`; how many there were. O(1)
    /// when nothing is due, else one pass that also makes `next_expire` exact.
    pub fn expire_fields(&mut self, now: u64) -> usize {
        if !self.is_due(now) {
            return 0;
        }
        let due: Vec<Str> = self
            .map
            .iter()
            .filter(|(_, f)| f.is_expired(now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &due {
            self.remove(k);
        }
        self.next_expire = self
            .map
            .values()
            .filter(|f| f.expire_at != 0)
            .map(|f| f.expire_at)
            .min()
            .unwrap_or(u64::MAX);
        due.len()
    }

    /// The number of live fields at `now` (O(1) unless a field may have expired).
    pub fn live_len(&self, now: u64) -> usize {
        if self.is_due(now) {
            self.map.values().filter(|f| !f.is_expired(now)).count()
        } else {
            self.map.len()
        }
    }

    /// The live fields at `now` with their values, in storage order.
    pub fn live(&self, now: u64) -> impl Iterator<Item = (&Str, &Str)> {
        let due = self.is_due(now);
        self.map
            .iter()
            .filter(move |(_, f)| !due || !f.is_expired(now))
            .map(|(k, f)| (k, &f.value))
    }

    /// The live field at position `i` (HRANDFIELD), `None` if it is expired at `now`.
    pub fn live_index(&self, i: usize, now: u64) -> Option<(&Str, &Str)> {
        self.map
            .get_index(i)
            .filter(|(_, f)| !f.is_expired(now))
            .map(|(k, f)| (k, &f.value))
    }

    /// One HSCAN page. A hash Redis would keep as a listpack is returned whole with cursor
    /// 0, as Redis does. A larger one is walked in the order of [`scan_hash`] of its
    /// fields, and a cursor is the hash to continue from: a field present for the whole
    /// scan is returned at least once however the hash changes in between (a field's
    /// position does not depend on the others). Fields of equal hash are never split
    /// across pages. A page visits `count` fields or, for a very large hash, 1/64 of it:
    /// each page costs one pass over the hash (and an off-heap hash is decoded whole to
    /// be read), so small pages would make a scan quadratic. Returns the next cursor (0
    /// when done) and the page's live fields.
    pub fn scan(&self, cursor: u64, count: usize, now: u64) -> (u64, Vec<(&Str, &Str)>) {
        if self.encoding() != "hashtable" {
            return (0, self.live(now).collect());
        }
        let want = count.max(self.map.len().div_ceil(64));
        scan_page(
            self.live(now).map(|(k, v)| (scan_hash(k), (k, v))),
            cursor,
            want,
        )
    }

    /// Fields with an expiry.
    pub fn volatile(&self) -> usize {
        self.volatile
    }

    /// Every field with its value and expiry, in storage order (expired ones included).
    pub fn iter(&self) -> impl Iterator<Item = (&Str, &HField)> {
        self.map.iter()
    }

    /// The field at position `i` (HRANDFIELD).
    pub fn get_index(&self, i: usize) -> Option<(&Str, &HField)> {
        self.map.get_index(i)
    }
}

impl Coll for HashV {
    const KIND: Kind = Kind::Hash;

    fn of(v: &Value) -> Option<&Self> {
        match v {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    fn of_mut(v: &mut Value) -> Option<&mut Self> {
        match v {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    fn into_value(self) -> Value {
        Value::Hash(Box::new(self))
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn mem(&self) -> usize {
        BASE_OVERHEAD + self.bytes
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.map.len() as u64);
        for (k, f) in &self.map {
            put_bytes(out, k);
            put_bytes(out, &f.value);
            put_varint(out, f.expire_at);
        }
    }

    fn decode(packed: &[u8]) -> Option<Self> {
        let mut r = Reader::new(packed);
        let n = r.count()?;
        let mut h = HashV::default();
        h.map.reserve(n);
        for _ in 0..n {
            let (k, v, at) = (r.bytes()?, r.bytes()?, r.varint()?);
            h.insert_with(k, v, at);
        }
        r.is_done().then_some(h)
    }

    fn journal(&mut self) -> Option<&mut Journal> {
        Some(&mut self.journal)
    }

    fn patch_of(&self, touched: &[Str]) -> (Self, Vec<bytes::Bytes>) {
        let mut up = HashV::default();
        let mut removed = Vec::new();
        for f in touched {
            match self.map.get(f) {
                Some(v) => {
                    up.insert_with(f, &v.value, v.expire_at);
                }
                None => removed.push(f.to_bytes()),
            }
        }
        (up, removed)
    }

    fn encoding(&self) -> &'static str {
        let elems = self.map.iter().flat_map(|(k, f)| [&k[..], &f.value[..]]);
        if self.volatile == 0 && small(self.map.len(), elems) {
            "listpack"
        } else if self.volatile > 0
            && small(
                self.map.len(),
                self.map.iter().flat_map(|(k, f)| [&k[..], &f.value[..]]),
            )
        {
            "listpackex"
        } else {
            "hashtable"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_follow_every_change() {
        let mut h = HashV::default();
        assert!(h.insert(b"a", b"1"));
        assert!(!h.insert(b"a", b"22"));
        assert_eq!(h.mem(), BASE_OVERHEAD + cost(b"a", b"22"));
        h.insert_with(b"b", b"x", 10);
        assert_eq!(h.volatile(), 1);
        assert_eq!(h.value(b"b", 9).map(|s| &s[..]), Some(&b"x"[..]));
        assert_eq!(h.value(b"b", 10), None);
        assert_eq!(h.expire_fields(10), 1);
        assert_eq!(h.volatile(), 0);
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(h.mem(), BASE_OVERHEAD);
        assert!(h.is_empty());
    }

    #[test]
    fn encoding_grows_like_redis() {
        let mut h = HashV::default();
        h.insert(b"f", b"v");
        assert_eq!(h.encoding(), "listpack");
        h.insert(b"big", &[b'x'; 65]);
        assert_eq!(h.encoding(), "hashtable");
    }

    /// The byte count recomputed from scratch.
    fn recount(h: &HashV) -> usize {
        BASE_OVERHEAD + h.iter().map(|(k, f)| cost(k, &f.value)).sum::<usize>()
    }

    #[test]
    fn next_expire_is_a_bound_made_exact_by_a_sweep() {
        let mut h = HashV::default();
        assert_eq!(h.next_expire(), None);
        assert!(!h.is_due(u64::MAX - 1));
        h.insert(b"a", b"1");
        h.insert_with(b"b", b"2", 100);
        h.insert_with(b"c", b"3", 50);
        assert_eq!(h.next_expire(), Some(50));
        assert!(!h.is_due(49) && h.is_due(50));
        // Removing the earliest field leaves the bound low; a sweep finds nothing due
        // and makes it exact.
        assert!(h.remove(b"c"));
        assert!(h.is_due(60));
        assert_eq!(h.expire_fields(60), 0);
        assert_eq!(h.next_expire(), Some(100));
        assert!(!h.is_due(60));
        // Persisting the last volatile field: nothing is due, ever.
        assert!(h.set_expire(b"b", 0));
        assert_eq!(h.next_expire(), None);
        assert_eq!(h.expire_fields(u64::MAX), 0);
        assert_eq!(h.mem(), recount(&h));
        // A decoded hash has the same bound.
        h.set_expire(b"a", 70);
        let mut packed = Vec::new();
        h.encode(&mut packed);
        let back = HashV::decode(&packed).expect("decodes");
        assert_eq!(back.next_expire(), Some(70));
        assert_eq!(back, h);
    }

    #[test]
    fn expired_fields_are_invisible_until_reclaimed() {
        let mut h = HashV::default();
        h.insert(b"keep", b"k");
        h.insert_with(b"old", b"o", 10);
        h.insert_with(b"later", b"l", 30);
        assert_eq!(h.live_len(9), 3);
        assert_eq!(h.live_len(10), 2);
        assert_eq!(h.len(), 3, "HLEN counts a field until it is reclaimed");
        let live: Vec<&[u8]> = h.live(20).map(|(k, _)| &k[..]).collect();
        assert_eq!(live, vec![&b"keep"[..], b"later"]);
        let by_pos = (0..h.len())
            .filter(|i| h.live_index(*i, 20).is_some())
            .count();
        assert_eq!(by_pos, 2);
        assert_eq!(h.value(b"old", 20), None);
        assert_eq!(h.expire_fields(20), 1);
        assert_eq!(h.len(), 2);
        assert_eq!(h.volatile(), 1);
        assert_eq!(h.mem(), recount(&h));
        assert_eq!(h.expire_fields(40), 1);
        assert_eq!(h.volatile(), 0);
        assert_eq!(h.next_expire(), None);
    }

    #[test]
    fn insert_keep_ttl_keeps_a_live_ttl_only() {
        let mut h = HashV::default();
        h.insert_with(b"f", b"1", 100);
        assert!(!h.insert_keep_ttl(b"f", b"22", 50));
        assert_eq!(h.get(b"f").map(|f| f.expire_at), Some(100));
        assert_eq!(h.mem(), recount(&h));
        // Expired at `now`: the field is new, without a TTL.
        assert!(h.insert_keep_ttl(b"f", b"3", 100));
        assert_eq!(h.get(b"f").map(|f| f.expire_at), Some(0));
        assert_eq!(h.volatile(), 0);
        assert!(h.insert_keep_ttl(b"g", b"x", 0));
        assert_eq!(h.mem(), recount(&h));
    }

    /// Every field of a scan from cursor 0 to the end, changing the hash between pages
    /// with `between(page)`.
    fn scan_all(
        h: &mut HashV,
        count: usize,
        mut between: impl FnMut(&mut HashV, usize),
    ) -> Vec<Vec<u8>> {
        let (mut cursor, mut seen, mut page) = (0, Vec::new(), 0);
        loop {
            let (next, items) = h.scan(cursor, count, 0);
            seen.extend(items.iter().map(|(k, _)| k.to_vec()));
            between(h, page);
            page += 1;
            assert!(page < 100_000);
            if next == 0 {
                return seen;
            }
            cursor = next;
        }
    }

    #[test]
    fn scan_pages_a_big_hash_and_keeps_stable_fields() {
        let mut small = HashV::default();
        small.insert(b"a", b"1");
        small.insert(b"b", b"2");
        let (next, all) = small.scan(0, 1, 0);
        assert_eq!(
            (next, all.len()),
            (0, 2),
            "a listpack-sized hash is one page"
        );

        let mut h = HashV::default();
        for i in 0..2000 {
            h.insert(format!("f{i}").as_bytes(), b"v");
        }
        // Unchanged: every field exactly once, in pages of about `count`.
        let seen = scan_all(&mut h, 100, |_, _| {});
        assert_eq!(seen.len(), 2000);
        assert_eq!(
            seen.iter().collect::<std::collections::HashSet<_>>().len(),
            2000
        );
        let (_, first) = h.scan(0, 100, 0);
        assert_eq!(first.len(), 100);
        // Changed between pages: fields added and removed, and expiring, around the
        // stable ones, which all come back.
        let mut h2 = h.clone();
        let mut removed = 0;
        let seen = scan_all(&mut h2, 37, |h, p| {
            for j in 0..20 {
                h.insert(format!("new{p}-{j}").as_bytes(), b"x");
            }
            if p > 0 {
                for j in 0..20 {
                    h.remove(format!("new{}-{j}", p - 1).as_bytes());
                }
            }
            h.remove(format!("f{}", 1999 - p).as_bytes());
            removed = p + 1;
        });
        let seen: std::collections::HashSet<Vec<u8>> = seen.into_iter().collect();
        assert!(removed > 40, "pages: {removed}");
        for i in 0..(2000 - removed) {
            assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missing");
        }
        // A very large hash is walked in at most about 64 pages whatever the count.
        let mut big = HashV::default();
        for i in 0..20_000 {
            big.insert(format!("k{i}").as_bytes(), b"v");
        }
        let mut pages = 0;
        let mut seen = 0;
        let mut cursor = 0;
        loop {
            let (next, items) = big.scan(cursor, 1, 0);
            seen += items.len();
            pages += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen, 20_000);
        assert!(pages <= 66, "{pages}");
        // Expired fields are not returned.
        big.set_expire(b"k0", 5);
        let all: Vec<Vec<u8>> = {
            let mut v = Vec::new();
            let mut cursor = 0;
            loop {
                let (next, items) = big.scan(cursor, 1000, 10);
                v.extend(items.iter().map(|(k, _)| k.to_vec()));
                if next == 0 {
                    break v;
                }
                cursor = next;
            }
        };
        assert_eq!(all.len(), 19_999);
        assert!(!all.contains(&b"k0".to_vec()));
    }
}
