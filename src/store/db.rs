//! [`Db`]: a command's view of the shards it locked. Every read and write of the keyspace
//! goes through it, so lazy expiry, access tracking, memory accounting and the effect
//! record are each done in one place and no command can forget them.
//!
//! Each access costs one hash lookup: [`slot`] finds the entry's index (dropping it if its
//! TTL has passed) and the accessors work on that index.

use bytes::Bytes;

use super::effect::Effect;
use super::entry::{Entry, Key, Value};
use super::keyspace::{Keyspace, Locks, SHARDS, Shard};
use super::pattern;

/// Raised when a command touches a key whose shard it did not lock: a bug in a command's
/// key specification, reported to the client rather than risking a deadlock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key outside the command's locked shards")]
pub struct NotLocked;

/// What a write does to the key's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Keep the current TTL (KEEPTTL, APPEND, SETRANGE, INCR).
    Keep,
    /// Remove any TTL.
    Clear,
    /// Expire at this unix-ms time.
    At(u64),
}

/// Counters a command's lookups produced; the connection adds them to the server stats.
#[derive(Debug, Default, Clone, Copy)]
pub struct DbStats {
    /// Read lookups that found a key.
    pub hits: u64,
    /// Read lookups that found nothing.
    pub misses: u64,
    /// Keys removed because their TTL had passed.
    pub expired: u64,
}

/// One page of a SCAN.
#[derive(Debug, Default)]
pub struct ScanPage {
    /// The cursor to continue from; 0 when the scan is complete.
    pub cursor: u64,
    /// Keys found on this page.
    pub keys: Vec<Bytes>,
}

const CURSOR_POS_BITS: u32 = 34;
const CURSOR_TOP: u64 = (1 << CURSOR_POS_BITS) - 1;

/// What a command's accesses produced besides their results.
struct Out {
    record: bool,
    effects: Vec<Effect>,
    stats: DbStats,
}

impl Out {
    fn emit(&mut self, e: impl FnOnce() -> Effect) {
        if self.record {
            self.effects.push(e());
        }
    }
}

/// A command's locked view of the keyspace.
pub struct Db<'a> {
    ks: &'a Keyspace,
    locks: Locks<'a>,
    /// The command's clock, unix milliseconds.
    pub now: u64,
    touch: bool,
    out: Out,
}

/// Finds the index of `key`'s live entry, removing the entry first if its TTL has passed.
fn slot<'s>(
    ks: &Keyspace,
    locks: &'s mut Locks<'_>,
    now: u64,
    out: &mut Out,
    key: &[u8],
) -> Result<(&'s mut Shard, Option<usize>), NotLocked> {
    let s = locks.get(ks.shard_of(key)).ok_or(NotLocked)?;
    let Some(i) = s.map.get_index_of(key) else {
        return Ok((s, None));
    };
    if !s.map[i].is_expired(now) {
        return Ok((s, Some(i)));
    }
    remove_at(s, i);
    out.stats.expired += 1;
    out.emit(|| Effect::Del {
        key: Bytes::copy_from_slice(key),
    });
    Ok((s, None))
}

impl<'a> Db<'a> {
    pub(crate) fn new(
        ks: &'a Keyspace,
        locks: Locks<'a>,
        now: u64,
        touch: bool,
        record: bool,
    ) -> Db<'a> {
        Db {
            ks,
            locks,
            now,
            touch,
            out: Out {
                record,
                effects: Vec::new(),
                stats: DbStats::default(),
            },
        }
    }

    /// Lookup counters so far.
    pub fn stats(&self) -> DbStats {
        self.out.stats
    }

    /// The effects recorded so far (empty unless the keyspace records effects).
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out.effects)
    }

    /// A read lookup: counts a hit or miss and records the access (unless NO-TOUCH).
    pub fn get(&mut self, key: &[u8]) -> Result<Option<&Entry>, NotLocked> {
        let (s, i) = slot(self.ks, &mut self.locks, self.now, &mut self.out, key)?;
        let Some(i) = i else {
            self.out.stats.misses += 1;
            return Ok(None);
        };
        self.out.stats.hits += 1;
        let e = &mut s.map[i];
        if self.touch {
            e.touch(self.now);
        }
        Ok(Some(e))
    }

    /// A lookup that neither counts nor touches (TYPE, TTL, EXISTS, OBJECT).
    pub fn peek(&mut self, key: &[u8]) -> Result<Option<&Entry>, NotLocked> {
        let (s, i) = slot(self.ks, &mut self.locks, self.now, &mut self.out, key)?;
        Ok(i.map(|i| &s.map[i]))
    }

    /// Records an access without reading (TOUCH); false if the key does not exist.
    pub fn touch(&mut self, key: &[u8]) -> Result<bool, NotLocked> {
        let (s, i) = slot(self.ks, &mut self.locks, self.now, &mut self.out, key)?;
        if let Some(i) = i {
            s.map[i].touch(self.now);
        }
        Ok(i.is_some())
    }

    /// True if the key exists (and has not expired).
    pub fn exists(&mut self, key: &[u8]) -> Result<bool, NotLocked> {
        Ok(self.peek(key)?.is_some())
    }

    /// Stores `value` under `key` with the given TTL treatment.
    pub fn set(&mut self, key: &[u8], value: Value, ttl: Ttl) -> Result<(), NotLocked> {
        let now = self.now;
        // Copy into an exact-size allocation: arguments are slices of the connection's
        // read buffer and must not keep it alive.
        let value = match value {
            Value::Str(b) => Value::Str(Bytes::copy_from_slice(&b)),
        };
        let recorded = self.out.record.then(|| value.clone());
        let (s, i) = slot(self.ks, &mut self.locks, now, &mut self.out, key)?;
        let expire_at = match i {
            Some(i) => {
                let (k, e) = s.map.get_index_mut(i).ok_or(NotLocked)?;
                let old_mem = e.mem(k.len());
                let old_at = e.expire_at;
                let new_at = match ttl {
                    Ttl::Keep => old_at,
                    Ttl::Clear => 0,
                    Ttl::At(t) => t,
                };
                e.value = value;
                e.expire_at = new_at;
                e.touch(now);
                let new_mem = e.mem(k.len());
                if old_at != new_at {
                    let k = k.clone();
                    if old_at != 0 {
                        s.expires.remove(&(old_at, k.clone()));
                    }
                    if new_at != 0 {
                        s.expires.insert((new_at, k));
                    }
                }
                s.used = s.used + new_mem - old_mem;
                new_at
            }
            None => {
                let k = Key::from_slice(key);
                let at = match ttl {
                    Ttl::At(t) => t,
                    Ttl::Keep | Ttl::Clear => 0,
                };
                let e = Entry::new(value, at, now);
                s.used += e.mem(k.len());
                if at != 0 {
                    s.expires.insert((at, k.clone()));
                }
                s.map.insert(k, e);
                at
            }
        };
        if let Some(value) = recorded {
            self.out.effects.push(Effect::Set {
                key: Bytes::copy_from_slice(key),
                value,
                expire_at,
            });
        }
        Ok(())
    }

    /// Deletes `key`, returning its entry if it existed.
    pub fn del(&mut self, key: &[u8]) -> Result<Option<Entry>, NotLocked> {
        let (s, i) = slot(self.ks, &mut self.locks, self.now, &mut self.out, key)?;
        let removed = i.map(|i| remove_at(s, i));
        if removed.is_some() {
            self.out.emit(|| Effect::Del {
                key: Bytes::copy_from_slice(key),
            });
        }
        Ok(removed)
    }

    /// Sets (`Some`, unix ms) or clears (`None`) the key's expiry; false if the key does
    /// not exist. A deadline already passed deletes the key, as Redis does.
    pub fn set_expire(&mut self, key: &[u8], at: Option<u64>) -> Result<bool, NotLocked> {
        let now = self.now;
        let (s, i) = slot(self.ks, &mut self.locks, now, &mut self.out, key)?;
        let Some(i) = i else {
            return Ok(false);
        };
        if at.is_some_and(|t| t <= now) {
            remove_at(s, i);
            self.out.emit(|| Effect::Del {
                key: Bytes::copy_from_slice(key),
            });
            return Ok(true);
        }
        let (k, e) = s.map.get_index_mut(i).ok_or(NotLocked)?;
        let (old, new) = (e.expire_at, at.unwrap_or(0));
        e.expire_at = new;
        let k = k.clone();
        if old != 0 {
            s.expires.remove(&(old, k.clone()));
        }
        if new != 0 {
            s.expires.insert((new, k));
        }
        self.out.emit(|| Effect::Expire {
            key: Bytes::copy_from_slice(key),
            at: new,
        });
        Ok(true)
    }

    /// Number of keys in the locked shards (expired-but-unreclaimed keys included, as in
    /// Redis's DBSIZE).
    pub fn len(&mut self) -> usize {
        self.locks.all().map(|s| s.map.len()).sum()
    }

    /// True when the locked shards hold no key.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Keys with a TTL in the locked shards.
    pub fn expires_len(&mut self) -> usize {
        self.locks.all().map(|s| s.expires.len()).sum()
    }

    /// Bytes charged to entries in the locked shards.
    pub fn used_memory(&mut self) -> usize {
        self.locks.all().map(|s| s.used).sum()
    }

    /// Removes every key in the locked shards (FLUSHALL locks them all).
    pub fn flush(&mut self) -> usize {
        let mut n = 0;
        for s in self.locks.all() {
            n += s.map.len();
            s.map = Default::default();
            s.expires.clear();
            s.used = 0;
        }
        debug_assert!(self.locks.is_all(), "flush is a whole-keyspace operation");
        self.out.emit(|| Effect::FlushAll);
        n
    }

    /// Every live key matching `pat` (KEYS).
    pub fn keys(&mut self, pat: &[u8]) -> Vec<Bytes> {
        let now = self.now;
        let all = pat == b"*";
        let mut out = Vec::new();
        for s in self.locks.all() {
            out.extend(
                s.map
                    .iter()
                    .filter(|(k, e)| !e.is_expired(now) && (all || pattern::matches(pat, k, false)))
                    .map(|(k, _)| Bytes::copy_from_slice(k)),
            );
        }
        out
    }

    /// One SCAN step: visits about `count` slots from `cursor`, returning live keys that
    /// match `pat` and have type `ty`. Every key present for the whole scan is returned at
    /// least once: shards are walked in order and each shard from its highest index down,
    /// and removals only move the last key (already visited) into a lower slot.
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        pat: Option<&[u8]>,
        ty: Option<&str>,
    ) -> ScanPage {
        let now = self.now;
        let (mut shard, mut pos) = if cursor == 0 {
            (0usize, CURSOR_TOP)
        } else {
            ((cursor >> CURSOR_POS_BITS) as usize, cursor & CURSOR_TOP)
        };
        let mut page = ScanPage::default();
        let mut visited = 0;
        while shard < SHARDS && visited < count.max(1) {
            let Some(s) = self.locks.get(shard) else {
                break;
            };
            let mut i = (pos as usize).min(s.map.len());
            while i > 0 && visited < count.max(1) {
                i -= 1;
                visited += 1;
                if let Some((k, e)) = s.map.get_index(i) {
                    let keep = !e.is_expired(now)
                        && pat.is_none_or(|p| pattern::matches(p, k, false))
                        && ty.is_none_or(|t| e.value.type_name().eq_ignore_ascii_case(t));
                    if keep {
                        page.keys.push(Bytes::copy_from_slice(k));
                    }
                }
            }
            if i == 0 {
                shard += 1;
                pos = CURSOR_TOP;
            } else {
                pos = i as u64;
            }
        }
        page.cursor = if shard >= SHARDS {
            0
        } else {
            ((shard as u64) << CURSOR_POS_BITS) | pos
        };
        page
    }

    /// A random live key (RANDOMKEY).
    pub fn random_key(&mut self) -> Option<Bytes> {
        for _ in 0..100 {
            let start = fastrand::usize(..SHARDS);
            let now = self.now;
            let picked = (0..SHARDS).find_map(|off| {
                let s = self.locks.get((start + off) % SHARDS)?;
                if s.map.is_empty() {
                    return None;
                }
                let (k, e) = s.map.get_index(fastrand::usize(..s.map.len()))?;
                Some((Bytes::copy_from_slice(k), e.is_expired(now)))
            });
            match picked {
                None => return None,
                Some((k, false)) => return Some(k),
                Some((k, true)) => {
                    let _ = self.peek(&k);
                }
            }
        }
        None
    }
}

/// Removes the entry at `i`, keeping the expiry index and memory count right.
fn remove_at(s: &mut Shard, i: usize) -> Entry {
    // `i` comes from a lookup in this shard under the same lock, so it is in range.
    let Some((k, e)) = s.map.swap_remove_index(i) else {
        return Entry::new(Value::Str(Bytes::new()), 0, 0);
    };
    if e.expire_at != 0 {
        s.expires.remove(&(e.expire_at, k.clone()));
    }
    s.used = s.used.saturating_sub(e.mem(k.len()));
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keyspace::ShardSet;

    fn s(v: &str) -> Value {
        Value::Str(Bytes::copy_from_slice(v.as_bytes()))
    }

    #[test]
    fn set_get_del_record_effects() {
        let ks = Keyspace::new(true);
        let mut db = ks.db(ShardSet::All, 1_000, true);
        db.set(b"k", s("v"), Ttl::Clear).expect("locked");
        assert_eq!(
            db.get(b"k").expect("locked").map(|e| e.value.clone()),
            Some(s("v"))
        );
        assert_eq!(db.stats().hits, 1);
        assert!(db.del(b"k").expect("locked").is_some());
        assert!(db.get(b"k").expect("locked").is_none());
        assert_eq!(db.stats().misses, 1);
        let fx = db.take_effects();
        assert_eq!(
            fx,
            vec![
                Effect::Set {
                    key: Bytes::from("k"),
                    value: s("v"),
                    expire_at: 0
                },
                Effect::Del {
                    key: Bytes::from("k")
                }
            ]
        );
    }

    #[test]
    fn expiry_is_absolute_and_lazy() {
        let ks = Keyspace::new(true);
        {
            let mut db = ks.db(ShardSet::All, 1_000, true);
            db.set(b"k", s("v"), Ttl::At(1_500)).expect("locked");
            assert!(db.set_expire(b"k", Some(2_000)).expect("locked"));
            let fx = db.take_effects();
            assert!(matches!(fx.last(), Some(Effect::Expire { at: 2_000, .. })));
            assert_eq!(db.expires_len(), 1);
        }
        let mut db = ks.db(ShardSet::All, 2_000, true);
        assert!(db.get(b"k").expect("locked").is_none());
        assert_eq!(db.stats().expired, 1);
        assert_eq!(db.expires_len(), 0);
        assert_eq!(db.len(), 0);
        assert_eq!(db.used_memory(), 0);
        assert!(matches!(db.take_effects().as_slice(), [Effect::Del { .. }]));
    }

    #[test]
    fn past_deadline_deletes() {
        let ks = Keyspace::new(false);
        let mut db = ks.db(ShardSet::All, 1_000, true);
        db.set(b"k", s("v"), Ttl::Clear).expect("locked");
        assert!(db.set_expire(b"k", Some(999)).expect("locked"));
        assert!(!db.exists(b"k").expect("locked"));
        assert!(db.take_effects().is_empty(), "recording is off");
    }

    #[test]
    fn keep_ttl_and_clear() {
        let ks = Keyspace::new(false);
        let mut db = ks.db(ShardSet::All, 0, true);
        db.set(b"k", s("a"), Ttl::At(5_000)).expect("locked");
        db.set(b"k", s("b"), Ttl::Keep).expect("locked");
        assert_eq!(
            db.peek(b"k").expect("locked").map(|e| e.expire_at),
            Some(5_000)
        );
        db.set(b"k", s("c"), Ttl::Clear).expect("locked");
        assert_eq!(db.peek(b"k").expect("locked").map(|e| e.expire_at), Some(0));
        assert_eq!(db.expires_len(), 0);
    }

    #[test]
    fn active_expiry_reclaims_due_keys_only() {
        let ks = Keyspace::new(false);
        {
            let mut db = ks.db(ShardSet::All, 0, true);
            for i in 0..1000 {
                let at = if i % 2 == 0 { 100 } else { 10_000 };
                db.set(format!("k{i}").as_bytes(), s("v"), Ttl::At(at))
                    .expect("locked");
            }
        }
        let mut total = 0;
        loop {
            let (n, more) = ks.expire_due(500, 3);
            total += n;
            if !more {
                break;
            }
        }
        assert_eq!(total, 500);
        let mut db = ks.db(ShardSet::All, 500, true);
        assert_eq!(db.len(), 500);
    }

    #[test]
    fn unlocked_shard_is_an_error_not_a_deadlock() {
        let ks = Keyspace::new(false);
        let other = (0..1000)
            .map(|i| format!("x{i}"))
            .find(|k| ks.shard_of(k.as_bytes()) != ks.shard_of(b"a"))
            .expect("some key in another shard");
        let mut db = ks.db(ShardSet::One(ks.shard_of(b"a")), 0, true);
        assert!(db.set(b"a", s("1"), Ttl::Clear).is_ok());
        assert_eq!(db.set(other.as_bytes(), s("1"), Ttl::Clear), Err(NotLocked));
    }

    #[test]
    fn scan_returns_every_stable_key_despite_deletes() {
        let ks = Keyspace::new(false);
        {
            let mut db = ks.db(ShardSet::All, 0, true);
            for i in 0..2000 {
                db.set(format!("k{i}").as_bytes(), s("v"), Ttl::Clear)
                    .expect("locked");
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let mut db = ks.db(ShardSet::All, 0, true);
            let page = db.scan(cursor, 37, None, None);
            seen.extend(page.keys);
            // Delete some keys mid-scan (odd ones); even keys must all be seen.
            if step < 20 {
                for i in (step * 50..step * 50 + 50).filter(|i| i % 2 == 1) {
                    db.del(format!("k{i}").as_bytes()).expect("locked");
                }
            }
            step += 1;
            cursor = page.cursor;
            if cursor == 0 {
                break;
            }
        }
        for i in (0..2000).filter(|i| i % 2 == 0) {
            assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missed");
        }
    }

    #[test]
    fn keys_pattern_and_random_key() {
        let ks = Keyspace::new(false);
        let mut db = ks.db(ShardSet::All, 0, true);
        assert_eq!(db.random_key(), None);
        for k in ["user:1", "user:2", "item:1"] {
            db.set(k.as_bytes(), s("v"), Ttl::Clear).expect("locked");
        }
        let mut users = db.keys(b"user:*");
        users.sort();
        assert_eq!(users, vec![Bytes::from("user:1"), Bytes::from("user:2")]);
        assert!(db.random_key().is_some());
        assert_eq!(db.flush(), 3);
        assert_eq!(db.len(), 0);
    }
}
