//! [`ZSetV`]: a sorted set, members ordered by (score, member) as in Redis.

use std::collections::BTreeSet;
use std::ops::Bound;

use indexmap::IndexMap;

use super::{
    BASE_OVERHEAD, Coll, ELEM_OVERHEAD, Journal, Kind, Reader, put_bytes, put_varint, small,
};
use crate::store::entry::{Str, Value};

/// A score with a total order (never NaN: commands refuse NaN results, as Redis does).
#[derive(Debug, Clone, Copy)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set: a map member → score for lookups (by position too, for ZRANDMEMBER) and
/// an ordered set of (score, member) for ranges.
#[derive(Debug, Clone, Default)]
pub struct ZSetV {
    scores: IndexMap<Str, f64, ahash::RandomState>,
    order: BTreeSet<(Score, Str)>,
    /// Bytes of every member plus per-member overhead (two copies: map and order).
    bytes: usize,
    /// Members changed while a command runs (see [`Journal`]).
    journal: Journal,
}

impl PartialEq for ZSetV {
    fn eq(&self, other: &ZSetV) -> bool {
        self.order == other.order
    }
}

fn cost(member: &[u8]) -> usize {
    2 * (member.len() + ELEM_OVERHEAD)
}

/// -0 and +0 are one score (Redis prints both as 0).
fn norm(score: f64) -> f64 {
    if score == 0.0 { 0.0 } else { score }
}

impl ZSetV {
    /// Sets `member`'s score; its previous score, if it had one.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        self.journal.note(member);
        let score = norm(score);
        match self.scores.get_mut(member) {
            Some(old) => {
                let prev = *old;
                if Score(prev) != Score(score) {
                    *old = score;
                    let m = Str::new(member);
                    self.order.remove(&(Score(prev), m.clone()));
                    self.order.insert((Score(score), m));
                }
                Some(prev)
            }
            None => {
                let m = Str::new(member);
                self.bytes += cost(member);
                self.scores.insert(m.clone(), score);
                self.order.insert((Score(score), m));
                None
            }
        }
    }

    /// Removes `member`; its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.scores.swap_remove(member)?;
        self.journal.note(member);
        self.order.remove(&(Score(score), Str::new(member)));
        self.bytes -= cost(member);
        Some(score)
    }

    /// `member`'s score.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// The member at position `i` of the map (ZRANDMEMBER), not by rank.
    pub fn get_index(&self, i: usize) -> Option<(&Str, f64)> {
        self.scores.get_index(i).map(|(m, s)| (m, *s))
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Str, f64)> + ExactSizeIterator {
        self.order.iter().map(|(s, m)| (m, s.0))
    }

    /// Members whose (score, member) lies within the bounds, ascending.
    pub fn range(
        &self,
        from: Bound<(Score, Str)>,
        to: Bound<(Score, Str)>,
    ) -> impl DoubleEndedIterator<Item = (&Str, f64)> {
        self.order.range((from, to)).map(|(s, m)| (m, s.0))
    }

    /// The 0-based rank of `member` in ascending order (O(rank)).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.order.range(..(Score(score), Str::new(member))).count())
    }
}

impl Coll for ZSetV {
    const KIND: Kind = Kind::ZSet;

    fn of(v: &Value) -> Option<&Self> {
        match v {
            Value::ZSet(z) => Some(z),
            _ => None,
        }
    }

    fn of_mut(v: &mut Value) -> Option<&mut Self> {
        match v {
            Value::ZSet(z) => Some(z),
            _ => None,
        }
    }

    fn into_value(self) -> Value {
        Value::ZSet(Box::new(self))
    }

    fn len(&self) -> usize {
        self.scores.len()
    }

    fn mem(&self) -> usize {
        BASE_OVERHEAD + self.bytes
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.order.len() as u64);
        for (s, m) in &self.order {
            put_bytes(out, m);
            out.extend_from_slice(&s.0.to_le_bytes());
        }
    }

    fn decode(packed: &[u8]) -> Option<Self> {
        let mut r = Reader::new(packed);
        let n = r.count()?;
        let mut z = ZSetV::default();
        z.scores.reserve(n);
        for _ in 0..n {
            let m = r.bytes()?;
            let s = r.f64()?;
            if s.is_nan() {
                return None;
            }
            z.insert(m, s);
        }
        r.is_done().then_some(z)
    }

    fn journal(&mut self) -> Option<&mut Journal> {
        Some(&mut self.journal)
    }

    fn patch_of(&self, touched: &[Str]) -> (Self, Vec<bytes::Bytes>) {
        let mut up = ZSetV::default();
        let mut removed = Vec::new();
        for m in touched {
            match self.scores.get(m) {
                Some(&s) => {
                    up.insert(m, s);
                }
                None => removed.push(m.to_bytes()),
            }
        }
        (up, removed)
    }

    fn encoding(&self) -> &'static str {
        if small(self.scores.len(), self.scores.keys().map(|s| &s[..])) {
            "listpack"
        } else {
            "skiplist"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_by_score_then_member() {
        let mut z = ZSetV::default();
        assert_eq!(z.insert(b"b", 1.0), None);
        assert_eq!(z.insert(b"a", 1.0), None);
        assert_eq!(z.insert(b"c", -0.0), None);
        assert_eq!(z.insert(b"b", 2.0), Some(1.0));
        let order: Vec<_> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(
            order,
            vec![
                (b"c".to_vec(), 0.0),
                (b"a".to_vec(), 1.0),
                (b"b".to_vec(), 2.0)
            ]
        );
        assert_eq!(z.rank(b"b"), Some(2));
        assert_eq!(z.remove(b"a"), Some(1.0));
        assert_eq!(z.rank(b"b"), Some(1));
        assert_eq!(z.mem(), BASE_OVERHEAD + cost(b"b") + cost(b"c"));
    }
}
