//! [`ListV`]: a list, a double-ended queue of strings.

use std::collections::VecDeque;

use super::{BASE_OVERHEAD, Coll, ELEM_OVERHEAD, Kind, Reader, put_bytes, put_varint, small};
use crate::store::entry::{Str, Value};

/// A list.
#[derive(Debug, Clone, Default)]
pub struct ListV {
    items: VecDeque<Str>,
    /// Bytes of every item plus per-item overhead.
    bytes: usize,
    /// Changes since the list was created: a change recorded as [`ListOp`]s applies only
    /// to the list at the version it was made from (positional changes are not
    /// idempotent; the version makes their replay exact). Kept in the packed form.
    ver: u64,
    /// Pushes and pops at the ends while a command runs (see [`ListJournal`]).
    journal: ListJournal,
}

impl PartialEq for ListV {
    fn eq(&self, other: &ListV) -> bool {
        self.items == other.items
    }
}

impl Eq for ListV {}

/// One change at an end of a list, as recorded ([`Effect::ListOps`](crate::store::Effect::ListOps)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListOp {
    /// An item added at the head.
    PushFront(bytes::Bytes),
    /// An item added at the tail.
    PushBack(bytes::Bytes),
    /// The head removed.
    PopFront,
    /// The tail removed.
    PopBack,
}

/// The pushes and pops a command made, noted by the mutators while
/// [`Db::update`](crate::store::Db::update) runs it. Any other change (LSET, LINSERT, LREM,
/// LTRIM) marks the journal `whole`: the change is then recorded as the whole list.
#[derive(Debug, Clone, Default)]
pub struct ListJournal {
    on: bool,
    whole: bool,
    ops: Vec<ListOp>,
}

impl ListJournal {
    fn note(&mut self, op: impl FnOnce() -> ListOp) {
        if self.on && !self.whole {
            self.ops.push(op());
        }
    }

    fn note_whole(&mut self) {
        if self.on {
            self.whole = true;
            self.ops.clear();
        }
    }

    /// Starts noting.
    pub fn start(&mut self) {
        self.on = true;
        self.whole = false;
        self.ops.clear();
    }

    /// Stops noting: the ops, or `None` when the change must be recorded whole.
    pub fn finish(&mut self) -> Option<Vec<ListOp>> {
        self.on = false;
        let ops = std::mem::take(&mut self.ops);
        (!std::mem::take(&mut self.whole)).then_some(ops)
    }
}

fn cost(item: &[u8]) -> usize {
    item.len() + ELEM_OVERHEAD
}

impl ListV {
    /// Adds `item` at the head.
    pub fn push_front(&mut self, item: &[u8]) {
        self.journal
            .note(|| ListOp::PushFront(bytes::Bytes::copy_from_slice(item)));
        self.bytes += cost(item);
        self.items.push_front(Str::new(item));
    }

    /// Adds `item` at the tail.
    pub fn push_back(&mut self, item: &[u8]) {
        self.journal
            .note(|| ListOp::PushBack(bytes::Bytes::copy_from_slice(item)));
        self.bytes += cost(item);
        self.items.push_back(Str::new(item));
    }

    /// Removes the head.
    pub fn pop_front(&mut self) -> Option<Str> {
        let s = self.items.pop_front()?;
        self.journal.note(|| ListOp::PopFront);
        self.bytes -= cost(&s);
        Some(s)
    }

    /// Removes the tail.
    pub fn pop_back(&mut self) -> Option<Str> {
        let s = self.items.pop_back()?;
        self.journal.note(|| ListOp::PopBack);
        self.bytes -= cost(&s);
        Some(s)
    }

    /// The item at `i` (from the head, 0-based).
    pub fn get(&self, i: usize) -> Option<&Str> {
        self.items.get(i)
    }

    /// Replaces the item at `i`; false when out of range.
    pub fn set(&mut self, i: usize, item: &[u8]) -> bool {
        self.journal.note_whole();
        match self.items.get_mut(i) {
            Some(old) => {
                self.bytes = self.bytes + cost(item) - cost(old);
                *old = Str::new(item);
                true
            }
            None => false,
        }
    }

    /// Inserts `item` before position `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, item: &[u8]) {
        self.journal.note_whole();
        self.bytes += cost(item);
        self.items.insert(i.min(self.items.len()), Str::new(item));
    }

    /// Removes the item at `i`.
    pub fn remove(&mut self, i: usize) -> Option<Str> {
        self.journal.note_whole();
        let s = self.items.remove(i)?;
        self.bytes -= cost(&s);
        Some(s)
    }

    /// Keeps only the items at positions `start..end` (clamped).
    pub fn keep_range(&mut self, start: usize, end: usize) {
        self.journal.note_whole();
        let end = end.min(self.items.len());
        let start = start.min(end);
        self.items.truncate(end);
        self.items.drain(..start);
        self.bytes = self.items.iter().map(|s| cost(s)).sum();
    }

    /// Keeps only the items `keep` says yes to, visiting them from the head.
    pub fn retain(&mut self, keep: impl FnMut(&Str) -> bool) {
        self.journal.note_whole();
        self.items.retain(keep);
        self.bytes = self.items.iter().map(|s| cost(s)).sum();
    }

    /// Removes items equal to `item`: the first `count` from the head when `count > 0`,
    /// the last `-count` from the tail when negative, all when 0 (LREM). Returns how
    /// many were removed.
    pub fn remove_eq(&mut self, item: &[u8], count: i64) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
        };
        let mut removed = 0;
        if count >= 0 {
            let mut i = 0;
            while i < self.items.len() && removed < limit {
                if &self.items[i][..] == item {
                    self.remove(i);
                    removed += 1;
                } else {
                    i += 1;
                }
            }
        } else {
            let mut i = self.items.len();
            while i > 0 && removed < limit {
                i -= 1;
                if &self.items[i][..] == item {
                    self.remove(i);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// The position of the first item equal to `item`, from the head.
    pub fn position(&self, item: &[u8]) -> Option<usize> {
        self.items.iter().position(|s| &s[..] == item)
    }

    /// The items, head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Str> + ExactSizeIterator {
        self.items.iter()
    }
}

impl Coll for ListV {
    const KIND: Kind = Kind::List;

    fn of(v: &Value) -> Option<&Self> {
        match v {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    fn of_mut(v: &mut Value) -> Option<&mut Self> {
        match v {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    fn into_value(self) -> Value {
        Value::List(Box::new(self))
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn mem(&self) -> usize {
        BASE_OVERHEAD + self.bytes
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.ver);
        put_varint(out, self.items.len() as u64);
        for s in &self.items {
            put_bytes(out, s);
        }
    }

    fn decode(packed: &[u8]) -> Option<Self> {
        let mut r = Reader::new(packed);
        let ver = r.varint()?;
        let n = r.count()?;
        let mut l = ListV {
            items: VecDeque::with_capacity(n),
            bytes: 0,
            ver,
            journal: ListJournal::default(),
        };
        for _ in 0..n {
            l.push_back(r.bytes()?);
        }
        r.is_done().then_some(l)
    }

    fn list_journal(&mut self) -> Option<&mut ListJournal> {
        Some(&mut self.journal)
    }

    fn version(&self) -> u64 {
        self.ver
    }

    fn set_version(&mut self, ver: u64) {
        self.ver = ver;
    }

    fn encoding(&self) -> &'static str {
        if small(self.items.len(), self.items.iter().map(|s| &s[..])) {
            "listpack"
        } else {
            "quicklist"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_follow_every_change() {
        let mut l = ListV::default();
        l.push_back(b"a");
        l.push_front(b"bb");
        l.insert(1, b"c");
        assert_eq!(
            l.iter().map(|s| s.to_vec()).collect::<Vec<_>>(),
            vec![b"bb".to_vec(), b"c".to_vec(), b"a".to_vec()]
        );
        assert!(l.set(2, b"dddd"));
        assert!(!l.set(3, b"x"));
        l.keep_range(1, 3);
        assert_eq!(l.len(), 2);
        assert_eq!(l.mem(), BASE_OVERHEAD + cost(b"c") + cost(b"dddd"));
        l.retain(|s| &s[..] != b"c");
        assert_eq!(l.pop_front().map(|s| s.to_vec()), Some(b"dddd".to_vec()));
        assert_eq!(l.mem(), BASE_OVERHEAD);
    }

    fn list(items: &[&str]) -> ListV {
        let mut l = ListV::default();
        for i in items {
            l.push_back(i.as_bytes());
        }
        l
    }

    fn items(l: &ListV) -> Vec<String> {
        l.iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    #[test]
    fn remove_eq_counts_from_either_end_and_keeps_bytes() {
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove_eq(b"a", 2), 2);
        assert_eq!(items(&l), ["b", "c", "a"]);
        assert_eq!(l.mem(), list(&["b", "c", "a"]).mem());
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove_eq(b"a", -2), 2);
        assert_eq!(items(&l), ["a", "b", "c"]);
        assert_eq!(l.mem(), list(&["a", "b", "c"]).mem());
        let mut l = list(&["a", "b", "a"]);
        assert_eq!(l.remove_eq(b"a", 0), 2);
        assert_eq!(l.remove_eq(b"zz", 0), 0);
        assert_eq!(items(&l), ["b"]);
        assert_eq!(l.remove_eq(b"b", i64::MIN), 1);
        assert_eq!(l.mem(), BASE_OVERHEAD);
    }

    #[test]
    fn position_finds_the_first_match() {
        let l = list(&["x", "y", "y"]);
        assert_eq!(l.position(b"y"), Some(1));
        assert_eq!(l.position(b"z"), None);
    }
}
