//! [`ZSetV`]: a sorted set, members ordered by (score, member) as in Redis.

use std::collections::BTreeSet;
use std::ops::Bound;

use indexmap::IndexMap;

use super::{
    BASE_OVERHEAD, Coll, ELEM_OVERHEAD, Journal, Kind, Reader, put_bytes, put_varint, small,
};
use crate::store::entry::{Str, Value};

/// A position in the order: (score, member).
type Key = (Score, Str);

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

    /// The 0-based rank of `member` in ascending order. O(rank): the ordered set is a
    /// B-tree without subtree counts (an order-statistic tree would make it O(log n)).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.order.range(..(Score(score), Str::new(member))).count())
    }

    /// The members of ranks `start..=end` (ascending, or descending when `rev`), after
    /// Redis's index rules: negative indexes count from the end, and the range is clamped
    /// to the set. O(start + count).
    pub fn by_rank(&self, start: i64, end: i64, rev: bool) -> Vec<(&Str, f64)> {
        let Some((start, n)) = rank_span(self.len(), start, end) else {
            return Vec::new();
        };
        if rev {
            self.iter().rev().skip(start).take(n).collect()
        } else {
            self.iter().skip(start).take(n).collect()
        }
    }

    /// The members whose score lies in `r`, ascending (or descending when `rev`).
    pub fn by_score(
        &self,
        r: &ScoreRange,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (&Str, f64)> + '_> {
        let Some((lo, hi)) = r.bounds() else {
            return Box::new(std::iter::empty());
        };
        let it = self.order.range((lo, hi)).map(|(s, m)| (m, s.0));
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }

    /// The members within the lexicographic range `r`, ascending (or descending when
    /// `rev`). As in Redis, the result is meant for sets whose scores are all equal; with
    /// several scores it is the members found walking in score order from the first one
    /// in range to the first one past it.
    pub fn by_lex<'s>(
        &'s self,
        r: &'s LexRange<'_>,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (&'s Str, f64)> + 's> {
        if r.is_empty() {
            return Box::new(std::iter::empty());
        }
        if let (Some((_, lo)), Some((_, hi))) = (self.iter().next(), self.iter().next_back())
            && Score(lo) == Score(hi)
        {
            // One score: the order is the members' order, so the range is a B-tree range.
            let bound = |b: &LexBound<'_>| match b {
                LexBound::Min | LexBound::Max => Bound::Unbounded,
                LexBound::In(m) => Bound::Included((Score(lo), Str::new(m))),
                LexBound::Ex(m) => Bound::Excluded((Score(lo), Str::new(m))),
            };
            let (from, to) = (bound(&r.min), bound(&r.max));
            if !valid_bounds(&from, &to) {
                return Box::new(std::iter::empty());
            }
            let it = self.order.range((from, to)).map(|(s, m)| (m, s.0));
            return if rev {
                Box::new(it.rev())
            } else {
                Box::new(it)
            };
        }
        // Redis's checks and walks over the skiplist's bottom level: nothing when the last
        // member is below `min` or the first above `max`; forward, from the first member
        // at or above `min` while at or below `max`; backward, from the last member of the
        // leading run at or below `max` while at or above `min`.
        let (Some((first, _)), Some((last, _))) = (self.iter().next(), self.iter().next_back())
        else {
            return Box::new(std::iter::empty());
        };
        if !r.gte_min(last) || !r.lte_max(first) {
            return Box::new(std::iter::empty());
        }
        if rev {
            let run = self.iter().take_while(|(m, _)| r.lte_max(m)).count();
            Box::new(
                self.iter()
                    .rev()
                    .skip(self.len() - run)
                    .take_while(|(m, _)| r.gte_min(m)),
            )
        } else {
            Box::new(
                self.iter()
                    .skip_while(|(m, _)| !r.gte_min(m))
                    .take_while(|(m, _)| r.lte_max(m)),
            )
        }
    }

    /// Removes and returns the member with the lowest (`max` false) or highest score.
    pub fn pop(&mut self, max: bool) -> Option<(Str, f64)> {
        let (s, m) = if max {
            self.order.pop_last()?
        } else {
            self.order.pop_first()?
        };
        self.scores.swap_remove(&m[..]);
        self.journal.note(&m);
        self.bytes -= cost(&m);
        Some((m, s.0))
    }
}

/// The (first rank, count) of the rank range `start..=end` over `len` members, with
/// Redis's rules (ZRANGE, ZREMRANGEBYRANK); `None` when it is empty.
pub fn rank_span(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { start + len } else { start }.max(0);
    let end = if end < 0 { end + len } else { end };
    if start > end || start >= len {
        return None;
    }
    let end = end.min(len - 1);
    Some((start as usize, (end - start + 1) as usize))
}

/// False for bounds `BTreeSet::range` would panic on (start after end, or equal and both
/// excluded): such a range is empty.
fn valid_bounds(from: &Bound<Key>, to: &Bound<Key>) -> bool {
    use Bound::*;
    match (from, to) {
        (Included(a), Included(b)) | (Included(a), Excluded(b)) | (Excluded(a), Included(b)) => {
            a <= b
        }
        (Excluded(a), Excluded(b)) => a < b,
        _ => true,
    }
}

/// A score range (`min max` of ZRANGEBYSCORE, ZCOUNT, ...): `(` makes a bound exclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// Lower bound.
    pub min: f64,
    /// True when the lower bound is excluded.
    pub min_ex: bool,
    /// Upper bound.
    pub max: f64,
    /// True when the upper bound is excluded.
    pub max_ex: bool,
}

impl ScoreRange {
    /// True when `s` is within the range.
    pub fn contains(&self, s: f64) -> bool {
        let above = if self.min_ex {
            s > self.min
        } else {
            s >= self.min
        };
        let below = if self.max_ex {
            s < self.max
        } else {
            s <= self.max
        };
        above && below
    }

    /// The range as B-tree bounds over (score, member); `None` when nothing can be in it.
    fn bounds(&self) -> Option<(Bound<Key>, Bound<Key>)> {
        let empty = Str::new(b"");
        // The smallest key with a score above `min` is (next score up, "").
        let lo = if self.min_ex {
            if self.min == f64::INFINITY {
                return None;
            }
            self.min.next_up()
        } else {
            self.min
        };
        let from = Bound::Included((Score(norm(lo)), empty.clone()));
        let to = if self.max_ex {
            Bound::Excluded((Score(norm(self.max)), empty))
        } else if self.max == f64::INFINITY {
            Bound::Unbounded
        } else {
            Bound::Excluded((Score(norm(self.max.next_up())), empty))
        };
        valid_bounds(&from, &to).then_some((from, to))
    }
}

/// One end of a lexicographic range (ZRANGEBYLEX): `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LexBound<'a> {
    /// `-`: before every member.
    Min,
    /// `+`: after every member.
    Max,
    /// `[member`: inclusive.
    In(&'a [u8]),
    /// `(member`: exclusive.
    Ex(&'a [u8]),
}

impl<'a> LexBound<'a> {
    /// Parses one bound; `None` for anything but the four forms.
    pub fn parse(b: &'a [u8]) -> Option<LexBound<'a>> {
        match b.split_first()? {
            (b'-', []) => Some(LexBound::Min),
            (b'+', []) => Some(LexBound::Max),
            (b'[', m) => Some(LexBound::In(m)),
            (b'(', m) => Some(LexBound::Ex(m)),
            _ => None,
        }
    }
}

/// A lexicographic range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LexRange<'a> {
    /// Lower end.
    pub min: LexBound<'a>,
    /// Upper end.
    pub max: LexBound<'a>,
}

impl LexRange<'_> {
    /// True when `m` is at or after the lower end.
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::In(b) => m >= b,
            LexBound::Ex(b) => m > b,
        }
    }

    /// True when `m` is at or before the upper end.
    pub fn lte_max(&self, m: &[u8]) -> bool {
        match self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::In(b) => m <= b,
            LexBound::Ex(b) => m < b,
        }
    }

    /// True when no member can be in the range (Redis's `zslIsInLexRange` pre-check).
    pub fn is_empty(&self) -> bool {
        use LexBound::*;
        match (self.min, self.max) {
            (Max, _) | (_, Min) => true,
            (Min, _) | (_, Max) => false,
            (In(a), In(b)) => a > b,
            (In(a) | Ex(a), Ex(b)) | (Ex(a), In(b)) => a >= b,
        }
    }

    /// True when `m` is within the range.
    pub fn contains(&self, m: &[u8]) -> bool {
        self.gte_min(m) && self.lte_max(m)
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

    fn sample() -> ZSetV {
        let mut z = ZSetV::default();
        for (m, s) in [
            ("a", 1.0),
            ("b", 2.0),
            ("c", 2.0),
            ("d", 3.0),
            ("e", f64::INFINITY),
            ("f", f64::NEG_INFINITY),
        ] {
            z.insert(m.as_bytes(), s);
        }
        z
    }

    fn names<'a>(it: impl IntoIterator<Item = (&'a Str, f64)>) -> String {
        it.into_iter()
            .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn rank_ranges_follow_redis_index_rules() {
        let z = sample();
        assert_eq!(z.rank(b"f"), Some(0));
        assert_eq!(z.rank(b"e"), Some(5));
        assert_eq!(z.rank(b"zz"), None);
        assert_eq!(names(z.by_rank(0, -1, false)), "fabcde");
        assert_eq!(names(z.by_rank(1, 2, false)), "ab");
        assert_eq!(names(z.by_rank(-2, -1, false)), "de");
        assert_eq!(names(z.by_rank(0, 1, true)), "ed");
        assert_eq!(names(z.by_rank(-100, 100, false)), "fabcde");
        assert!(z.by_rank(3, 2, false).is_empty());
        assert!(z.by_rank(6, 10, false).is_empty());
        assert_eq!(rank_span(0, 0, -1), None);
        assert_eq!(rank_span(5, -3, -1), Some((2, 3)));
    }

    #[test]
    fn score_ranges_inclusive_exclusive_and_infinite() {
        let z = sample();
        let r = |min, min_ex, max, max_ex| ScoreRange {
            min,
            min_ex,
            max,
            max_ex,
        };
        let inf = f64::INFINITY;
        assert_eq!(
            names(z.by_score(&r(-inf, false, inf, false), false)),
            "fabcde"
        );
        assert_eq!(names(z.by_score(&r(-inf, true, inf, true), false)), "abcd");
        assert_eq!(names(z.by_score(&r(2.0, false, 2.0, false), false)), "bc");
        assert_eq!(names(z.by_score(&r(2.0, true, 3.0, false), false)), "d");
        assert_eq!(names(z.by_score(&r(1.0, false, 3.0, true), true)), "cba");
        assert_eq!(names(z.by_score(&r(inf, false, inf, false), false)), "e");
        assert_eq!(names(z.by_score(&r(inf, true, inf, false), false)), "");
        assert_eq!(names(z.by_score(&r(3.0, false, 1.0, false), false)), "");
        assert_eq!(names(z.by_score(&r(2.0, true, 2.0, true), false)), "");
        assert!(r(1.0, true, 2.0, false).contains(2.0));
        assert!(!r(1.0, true, 2.0, false).contains(1.0));
    }

    #[test]
    fn lex_ranges() {
        let mut z = ZSetV::default();
        for m in ["a", "b", "c", "d"] {
            z.insert(m.as_bytes(), 0.0);
        }
        let lex = |min: &'static str, max: &'static str| LexRange {
            min: LexBound::parse(min.as_bytes()).expect("min"),
            max: LexBound::parse(max.as_bytes()).expect("max"),
        };
        assert_eq!(names(z.by_lex(&lex("-", "+"), false)), "abcd");
        assert_eq!(names(z.by_lex(&lex("[b", "(d"), false)), "bc");
        assert_eq!(names(z.by_lex(&lex("(a", "[c"), true)), "cb");
        assert_eq!(names(z.by_lex(&lex("+", "-"), false)), "");
        assert_eq!(names(z.by_lex(&lex("(b", "(b"), false)), "");
        assert_eq!(names(z.by_lex(&lex("[b", "[b"), false)), "b");
        assert_eq!(names(z.by_lex(&lex("[c", "[b"), false)), "");
        // Several scores: Redis's walks (order b c d a).
        z.insert(b"a", 5.0);
        assert_eq!(names(z.by_lex(&lex("[a", "[c"), false)), "bc");
        assert_eq!(names(z.by_lex(&lex("[a", "[c"), true)), "cb");
        // The last member (a) is below [b: nothing, as Redis's zslIsInLexRange.
        assert_eq!(names(z.by_lex(&lex("[b", "[c"), false)), "");
        for bad in ["", "x", "+a", "-a"] {
            assert_eq!(LexBound::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn pop_keeps_bytes_right() {
        let mut z = sample();
        let full = z.mem();
        // A score change keeps the bytes; a member's bytes count twice (map and order).
        z.insert(b"a", 42.0);
        assert_eq!(z.mem(), full);
        assert_eq!(z.rank(b"a"), Some(4));
        z.insert(b"a", 1.0);
        z.insert(b"longer-member", 0.5);
        assert_eq!(z.mem(), full + 2 * (b"longer-member".len() + ELEM_OVERHEAD));
        assert_eq!(z.remove(b"longer-member"), Some(0.5));
        let (m, s) = z.pop(false).expect("min");
        assert_eq!((&m[..], s), (&b"f"[..], f64::NEG_INFINITY));
        let (m, s) = z.pop(true).expect("max");
        assert_eq!((&m[..], s), (&b"e"[..], f64::INFINITY));
        assert_eq!(z.mem(), full - cost(b"e") - cost(b"f"));
        assert_eq!(z.score(b"e"), None);
        assert_eq!(z.len(), 4);
        while z.pop(false).is_some() {}
        assert_eq!(z.mem(), BASE_OVERHEAD);
    }
}
