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
    }
}
