//! [`HashV`]: a hash's fields, each with its value and an optional expiry (Redis 7.4
//! hash-field expiration).

use indexmap::IndexMap;

use super::{
    BASE_OVERHEAD, Coll, ELEM_OVERHEAD, Journal, Kind, Reader, put_bytes, put_varint, small,
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
#[derive(Debug, Clone, Default)]
pub struct HashV {
    map: IndexMap<Str, HField, ahash::RandomState>,
    /// Bytes of every field and value plus per-field overhead.
    bytes: usize,
    /// Fields with an expiry.
    volatile: usize,
    /// Fields changed while a command runs (see [`Journal`]).
    journal: Journal,
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
                true
            }
            None => false,
        }
    }

    /// Removes the fields whose expiry has passed at `now`; how many there were.
    pub fn expire_fields(&mut self, now: u64) -> usize {
        if self.volatile == 0 {
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
        due.len()
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
}
