//! [`SetV`]: a set of strings.

use indexmap::IndexSet;

use super::{
    BASE_OVERHEAD, Coll, ELEM_OVERHEAD, Journal, Kind, Reader, put_bytes, put_varint, small,
};
use crate::store::entry::{Str, Value};

/// Redis's `set-max-intset-entries` default.
const INTSET_ENTRIES: usize = 512;

/// A set. Members sit in an index set: O(1) membership, and O(1) access by position for
/// SPOP and SRANDMEMBER.
#[derive(Debug, Clone, Default)]
pub struct SetV {
    members: IndexSet<Str, ahash::RandomState>,
    /// Bytes of every member plus per-member overhead.
    bytes: usize,
    /// Members changed while a command runs (see [`Journal`]).
    journal: Journal,
}

impl PartialEq for SetV {
    fn eq(&self, other: &SetV) -> bool {
        self.members.len() == other.members.len()
            && self.members.iter().all(|m| other.members.contains(m))
    }
}

fn cost(member: &[u8]) -> usize {
    member.len() + ELEM_OVERHEAD
}

impl SetV {
    /// Adds `member`; true if it is new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if self.members.contains(member) {
            return false;
        }
        self.journal.note(member);
        self.bytes += cost(member);
        self.members.insert(Str::new(member))
    }

    /// Removes `member`; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let gone = self.members.swap_remove(member);
        if gone {
            self.journal.note(member);
            self.bytes -= cost(member);
        }
        gone
    }

    /// True if `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }

    /// The member at position `i` (SRANDMEMBER).
    pub fn get_index(&self, i: usize) -> Option<&Str> {
        self.members.get_index(i)
    }

    /// Removes and returns the member at position `i` (SPOP).
    pub fn take_index(&mut self, i: usize) -> Option<Str> {
        let s = self.members.swap_remove_index(i)?;
        self.journal.note(&s);
        self.bytes -= cost(&s);
        Some(s)
    }

    /// The members, in storage order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Str> {
        self.members.iter()
    }

    /// True when Redis would keep this set in a compact encoding (intset or listpack),
    /// which SSCAN returns in one page.
    pub fn is_compact(&self) -> bool {
        self.encoding() != "hashtable"
    }
}

impl Coll for SetV {
    const KIND: Kind = Kind::Set;

    fn of(v: &Value) -> Option<&Self> {
        match v {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    fn of_mut(v: &mut Value) -> Option<&mut Self> {
        match v {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    fn into_value(self) -> Value {
        Value::Set(Box::new(self))
    }

    fn len(&self) -> usize {
        self.members.len()
    }

    fn mem(&self) -> usize {
        BASE_OVERHEAD + self.bytes
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.members.len() as u64);
        for m in &self.members {
            put_bytes(out, m);
        }
    }

    fn decode(packed: &[u8]) -> Option<Self> {
        let mut r = Reader::new(packed);
        let n = r.count()?;
        let mut s = SetV::default();
        s.members.reserve(n);
        for _ in 0..n {
            s.insert(r.bytes()?);
        }
        r.is_done().then_some(s)
    }

    fn journal(&mut self) -> Option<&mut Journal> {
        Some(&mut self.journal)
    }

    fn patch_of(&self, touched: &[Str]) -> (Self, Vec<bytes::Bytes>) {
        let mut up = SetV::default();
        let mut removed = Vec::new();
        for m in touched {
            if self.members.contains(m) {
                up.insert(m);
            } else {
                removed.push(m.to_bytes());
            }
        }
        (up, removed)
    }

    fn encoding(&self) -> &'static str {
        let ints = self.members.len() <= INTSET_ENTRIES
            && self
                .members
                .iter()
                .all(|m| m.len() <= 20 && crate::protocol::args::parse_i64(m).is_ok());
        if ints {
            "intset"
        } else if small(self.members.len(), self.members.iter().map(|s| &s[..])) {
            "listpack"
        } else {
            "hashtable"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{scan_hash, scan_page};
    use super::*;

    #[test]
    fn membership_and_bytes() {
        let mut s = SetV::default();
        assert!(s.insert(b"1"));
        assert!(!s.insert(b"1"));
        assert!(s.insert(b"2"));
        assert_eq!(s.encoding(), "intset");
        assert!(s.insert(b"x"));
        assert_eq!(s.encoding(), "listpack");
        assert!(s.remove(b"1"));
        assert!(!s.contains(b"1"));
        assert_eq!(s.mem(), BASE_OVERHEAD + cost(b"2") + cost(b"x"));
        let t = s.take_index(0).map(|m| m.to_vec());
        assert!(t.is_some());
        assert_eq!(s.len(), 1);
        let last = s.take_index(0).expect("last");
        assert!(s.take_index(0).is_none());
        assert_eq!((s.len(), s.mem()), (0, BASE_OVERHEAD), "{last:?}");
    }

    #[test]
    fn scan_pages_cover_everything_once_while_the_set_changes() {
        let mut s = SetV::default();
        for i in 0..1000 {
            s.insert(format!("m{i}").as_bytes());
        }
        assert!(!s.is_compact());
        let page =
            |s: &SetV, cursor| scan_page(s.iter().map(|m| (scan_hash(m), m.to_vec())), cursor, 10);
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut pages = 0;
        loop {
            let (next, items) = page(&s, cursor);
            assert!(items.len() >= 10 || next == 0);
            for m in items {
                assert!(seen.insert(m), "returned twice");
            }
            pages += 1;
            // Members come and go between pages: the ones that stayed are all seen.
            s.insert(format!("new{pages}").as_bytes());
            s.remove(format!("new{}", pages - 1).as_bytes());
            if next == 0 {
                break;
            }
            assert!(next > cursor);
            cursor = next;
        }
        for i in 0..1000 {
            assert!(seen.contains(format!("m{i}").as_bytes()), "m{i} missed");
        }
        assert!(pages >= 100);
        assert_eq!(scan_hash(b"abc"), scan_hash(b"abc"));
        assert_ne!(scan_hash(b""), 0);
    }

    #[test]
    fn one_hash_one_page() {
        let items = [(5, 'a'), (5, 'b'), (5, 'c'), (9, 'd')];
        let (next, page) = scan_page(items.into_iter(), 0, 1);
        assert_eq!((next, page.len()), (9, 3));
        let (next, page) = scan_page(items.into_iter(), 9, 1);
        assert_eq!((next, page), (0, vec!['d']));
    }
}
