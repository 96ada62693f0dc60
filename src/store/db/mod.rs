//! [`Db`]: a command's view of the shards it locked. Every read and write of the keyspace
//! goes through it, so lazy expiry (TTL and TTI), access tracking, cache limits and
//! eviction, WATCH notifications, memory accounting and the effect record are each done
//! in one place and no command can forget them.
//!
//! Each access costs one hash lookup: [`slot`] resolves the key's cache, finds the entry's
//! index in that cache's table (dropping it if it has expired) and the accessors work on
//! that index.

use bytes::Bytes;

mod coll;
pub use coll::CollError;

use super::effect::Effect;
use super::entry::{Entry, EntryRef, Key, Value};
use super::keyspace::{Keyspace, Locks, SHARDS, Shard, Watch};
use super::pattern;
use super::table::{At, Score, Victim};
use super::tracking::Invalidation;
use super::types::Kind;
use crate::cache::stats::Removal;
use crate::cache::{Cache, CacheId};

/// Raised when a command touches a key whose shard it did not lock: a bug in a command's
/// key specification, reported to the client rather than risking a deadlock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key outside the command's locked shards")]
pub struct NotLocked;

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// See [`NotLocked`].
    #[error(transparent)]
    NotLocked(#[from] NotLocked),
    /// The key's cache is at a limit and its eviction policy is `none` (or the value alone
    /// exceeds the cache's `max_memory`).
    #[error("OOM cache '{cache}' is full ({limit}) and its eviction policy is {policy}")]
    CacheFull {
        /// The cache.
        cache: String,
        /// The limit reached, e.g. `max_entries 1000`.
        limit: String,
        /// The cache's eviction policy.
        policy: &'static str,
    },
}

/// What a write does to the key's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Keep the current TTL (KEEPTTL, APPEND, SETRANGE, INCR); a new key gets its cache's
    /// default TTL.
    Keep,
    /// Remove any TTL: the cache's default TTL applies, if it has one.
    Clear,
    /// Expire at this unix-ms time (a TTL set by the command wins over the cache's).
    At(u64),
}

/// Counters a command's lookups produced; the connection adds them to the server stats.
#[derive(Debug, Default, Clone, Copy)]
pub struct DbStats {
    /// Read lookups that found a key.
    pub hits: u64,
    /// Read lookups that found nothing.
    pub misses: u64,
    /// Keys removed because their TTL or TTI had passed.
    pub expired: u64,
    /// Keys evicted to make room.
    pub evicted: u64,
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

/// Most evictions one write may cause before it gives up making room (the cron then
/// finishes the job): bounds the latency of a write of a large value.
const MAX_EVICTIONS_PER_WRITE: usize = 1024;

/// Shards besides the key's own whose best victim is compared for each eviction.
const EXTRA_EVICTION_SHARDS: usize = 1;

/// Most heap entries one write moves off-heap (the cron moves the rest).
const BALANCE_PER_WRITE: usize = 8;

/// What a command's accesses produced besides their results.
struct Out {
    record: bool,
    effects: Vec<Effect>,
    stats: DbStats,
    /// Invalidations not produced under one shard's lock (a flush, an eviction from a
    /// shard locked only briefly, reads of `l1: false` keys).
    invalid: Vec<Invalidation>,
    /// Lists and sorted sets that gained elements: clients blocked on them (BLPOP,
    /// BZPOPMIN, ...) are woken after the command.
    ready: Vec<Bytes>,
    /// Keys this command's accesses expired or evicted, for keyspace notifications;
    /// `None` when nobody listens (see [`Keyspace::collect_removals`]).
    removals: Option<Vec<(Bytes, Removal)>>,
    /// Keys this command created, for keyspace notifications (`new`); `None` when nobody
    /// listens (see [`Keyspace::collect_new_keys`]).
    created: Option<Vec<Bytes>>,
}

impl Out {
    /// Remembers an expiry or eviction for keyspace notifications.
    fn notice(&mut self, key: &[u8], why: Removal) {
        if let Some(v) = self.removals.as_mut()
            && why != Removal::Deleted
        {
            v.push((Bytes::copy_from_slice(key), why));
        }
    }

    fn emit(&mut self, e: impl FnOnce() -> Effect) {
        if self.record {
            self.effects.push(e());
        }
    }

    fn removed(&mut self, key: &[u8], why: Removal) {
        self.notice(key, why);
        match why {
            Removal::ExpiredTtl | Removal::ExpiredTti => self.stats.expired += 1,
            Removal::Evicted => self.stats.evicted += 1,
            Removal::Deleted => {}
        }
        self.emit(|| Effect::Del {
            key: Bytes::copy_from_slice(key),
        });
    }
}

/// A command's locked view of the keyspace.
pub struct Db<'a> {
    ks: &'a Keyspace,
    locks: Locks<'a>,
    /// The command's clock, unix milliseconds.
    pub now: u64,
    touch: bool,
    /// A mirror applying its active's records: cache limits are not enforced here, because
    /// the active's own evictions arrive as records (evicting on its own, a mirror could
    /// pick other victims and its copy would differ).
    replica: bool,
    out: Out,
}

/// Finds `key`'s shard, cache and the index of its live entry, removing the entry first
/// if its TTL or TTI has passed.
#[inline]
fn slot<'s>(
    ks: &Keyspace,
    locks: &'s mut Locks<'_>,
    now: u64,
    out: &mut Out,
    key: &[u8],
) -> Result<(&'s mut Shard, CacheId, Option<usize>), NotLocked> {
    let (s, c, at) = slot_at(ks, locks, now, out, key)?;
    Ok((s, c, at.map(|a| a.pos)))
}

/// [`slot`] for the read path: also where the entry lives, so reading it takes no detour
/// through its slot.
#[inline]
fn slot_at<'s>(
    ks: &Keyspace,
    locks: &'s mut Locks<'_>,
    now: u64,
    out: &mut Out,
    key: &[u8],
) -> Result<(&'s mut Shard, CacheId, Option<At>), NotLocked> {
    let s = locks.get(ks.shard_of(key)).ok_or(NotLocked)?;
    let c = ks.caches().resolve(key);
    let t = &s.tables[c];
    let Some(at) = t.find_at(key) else {
        return Ok((s, c, None));
    };
    let Some(why) = t.entry_at(at).and_then(|e| t.expiry(&e, now)) else {
        return Ok((s, c, Some(at)));
    };
    s.remove(c, at.pos, why);
    out.removed(key, why);
    Ok((s, c, None))
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
            replica: false,
            out: Out {
                record,
                effects: Vec::new(),
                stats: DbStats::default(),
                invalid: Vec::new(),
                ready: Vec::new(),
                removals: ks.removals_wanted().then(Vec::new),
                created: ks.new_keys_wanted().then(Vec::new),
            },
        }
    }

    /// Makes this a mirror's view: no effects recorded, cache limits left to the active.
    pub(crate) fn as_replica(&mut self) {
        self.out.record = false;
        self.replica = true;
        // The active announces its own expiries and evictions; a mirror never does.
        self.out.removals = None;
        self.out.created = None;
    }

    /// True when this view holds any shard lock (then nothing may lock shards itself).
    pub fn holds_locks(&self) -> bool {
        !matches!(self.locks, Locks::None)
    }

    /// Lookup counters so far.
    pub fn stats(&self) -> DbStats {
        self.out.stats
    }

    /// The effects recorded so far (empty unless the keyspace records effects).
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out.effects)
    }

    /// Sends the effects recorded so far to the keyspace's sink as one record, while this
    /// view still holds its locks; the record's lsn, if there was anything to send.
    /// Dropping the view commits too; a caller that must wait for durability commits
    /// first to learn what to wait for.
    pub fn commit(&mut self) -> Option<super::keyspace::Committed> {
        self.ks.commit(&mut self.out.effects)
    }

    /// The keys this command's accesses expired or evicted so far (keyspace
    /// notifications `expired` and `evicted`), for the server to publish.
    pub fn take_removals(&mut self) -> Vec<(Bytes, Removal)> {
        self.out
            .removals
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The keys this command created so far (keyspace notification `new`).
    pub fn take_created(&mut self) -> Vec<Bytes> {
        self.out
            .created
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The invalidations this command's changes produced so far, for the server to
    /// deliver before the command's reply is sent.
    pub fn take_invalidations(&mut self) -> Vec<Invalidation> {
        let mut v = std::mem::take(&mut self.out.invalid);
        for s in self.locks.all() {
            v.append(&mut s.invalid);
        }
        v
    }

    /// Remembers that tracking client `client` read `key` (CLIENT TRACKING): in the
    /// tracking table when `table` (not BCAST mode). A key of an `l1: false` cache is not
    /// tracked; instead its invalidation follows the reply at once, so no L1 keeps it.
    pub fn track(&mut self, key: &[u8], client: u64, table: bool) -> Result<(), NotLocked> {
        let s = self.locks.get(self.ks.shard_of(key)).ok_or(NotLocked)?;
        let c = self.ks.caches().resolve(key);
        if !s.tables[c].cache.l1 {
            self.out
                .invalid
                .push(Invalidation::of_key(key, vec![client], false, false));
        } else if table {
            s.track(key, client);
        }
        Ok(())
    }

    /// The cache `key` belongs to.
    pub fn cache_of(&self, key: &[u8]) -> &'a Cache {
        let caches = self.ks.caches();
        caches.get(caches.resolve(key))
    }

    /// A read lookup: counts a hit or miss (per tier) and records the access (unless
    /// NO-TOUCH), which may bring a hot off-heap entry to the heap.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<EntryRef<'_>>, NotLocked> {
        let now = self.now;
        let (s, c, at) = slot_at(self.ks, &mut self.locks, now, &mut self.out, key)?;
        let t = &mut s.tables[c];
        t.cache.stats.lookup(at.is_some());
        let Some(at) = at else {
            self.out.stats.misses += 1;
            return Ok(None);
        };
        self.out.stats.hits += 1;
        if self.touch {
            t.touch_at(at, now);
        }
        if t.is_off_at(at) {
            t.cache.stats.off_hit();
            if self.touch {
                // A promotion moves the entry: read it by position afterwards.
                t.promote(at.pos, now);
                return Ok(t.get(at.pos));
            }
        }
        Ok(t.entry_at(at))
    }

    /// A lookup that neither counts nor touches (TYPE, TTL, EXISTS, OBJECT).
    pub fn peek(&mut self, key: &[u8]) -> Result<Option<EntryRef<'_>>, NotLocked> {
        let (s, c, at) = slot_at(self.ks, &mut self.locks, self.now, &mut self.out, key)?;
        Ok(at.and_then(|at| s.tables[c].entry_at(at)))
    }

    /// Records an access without reading (TOUCH); false if the key does not exist.
    pub fn touch(&mut self, key: &[u8]) -> Result<bool, NotLocked> {
        let (s, c, i) = slot(self.ks, &mut self.locks, self.now, &mut self.out, key)?;
        if let Some(i) = i {
            s.tables[c].touch(i, self.now);
        }
        Ok(i.is_some())
    }

    /// True if the key exists (and has not expired).
    pub fn exists(&mut self, key: &[u8]) -> Result<bool, NotLocked> {
        Ok(self.peek(key)?.is_some())
    }

    /// Stores `value` under `key` with the given TTL treatment. Refused with
    /// [`WriteError::CacheFull`] when the key's cache is full and evicts nothing; otherwise
    /// evicts from that cache (only) to make room first. The entry lands on the heap; the
    /// cache's colder entries then move off-heap if its heap pool is over budget.
    pub fn set(&mut self, key: &[u8], value: Value, ttl: Ttl) -> Result<(), WriteError> {
        let now = self.now;
        let (_, c, mut i) = slot(self.ks, &mut self.locks, now, &mut self.out, key)?;
        let cache = self.ks.caches().get(c);
        let shard = self.ks.shard_of(key);
        if cache.policy.is_bounded() && !self.replica {
            let new_mem = key.len() + value.mem() + super::entry::ENTRY_OVERHEAD;
            let old = i
                .and_then(|i| self.locks.get(shard)?.tables[c].get_index(i))
                .map(|(k, e)| e.mem(k.len()));
            let (grow, added) = match old {
                Some(old) => (new_mem.saturating_sub(old), 0),
                None => (new_mem, 1),
            };
            if self.make_room(key, c, grow as u64, added)? {
                // An eviction from this table may have moved the key: find it again.
                i = slot(self.ks, &mut self.locks, now, &mut self.out, key)?.2;
            }
        }
        let mut grows = || match i.and_then(|i| self.locks.get(shard)?.tables[c].get(i)) {
            Some(e) => value.mem() > e.value().mem(),
            None => true,
        };
        if self.ks.region().is_some() && cache.pools.heap.over() && grows() {
            // Both tiers full? Moving heap entries out may reclaim (and evict) off-heap. A
            // write that does not grow the data is let through: it frees what it replaces.
            let (full, evicted) = self.balance(shard, c);
            if full {
                return Err(WriteError::CacheFull {
                    cache: cache.name.clone(),
                    limit: format!(
                        "heap {} and offheap {}",
                        crate::config::Size(cache.pools.heap.limit()),
                        crate::config::Size(cache.pools.offheap.limit().saturating_mul(
                            self.ks.region().map_or(0, |r| r.segment_size()) as u64
                        ))
                    ),
                    policy: crate::cache::eviction_name(cache.policy.eviction()),
                });
            }
            if evicted {
                i = slot(self.ks, &mut self.locks, now, &mut self.out, key)?.2;
            }
        }
        let default_at = || match cache.policy.ttl_ms() {
            0 => 0,
            ms => now.saturating_add(ms),
        };
        let recorded = self.out.record.then(|| value.clone());
        let value_kind = value.kind();
        let volatile = match &value {
            Value::Hash(h) => h.next_expire(),
            _ => None,
        };
        let s = self.locks.get(shard).ok_or(NotLocked)?;
        let t = &mut s.tables[c];
        let expire_at = match i {
            Some(i) => {
                let current = t.get(i).map_or(0, |e| e.expire_at());
                let at = match ttl {
                    Ttl::Keep => current,
                    Ttl::Clear => default_at(),
                    Ttl::At(t) => t,
                };
                t.overwrite(i, value, now);
                t.set_expire(i, at);
                at
            }
            None => {
                if let Some(v) = self.out.created.as_mut() {
                    v.push(Bytes::copy_from_slice(key));
                }
                let at = match ttl {
                    Ttl::At(t) => t,
                    Ttl::Keep | Ttl::Clear => default_at(),
                };
                t.insert(key, Entry::new(value, at, now));
                at
            }
        };
        s.modified(c, key);
        s.note_volatile(key, volatile);
        if matches!(value_kind, Kind::List | Kind::ZSet) {
            self.out.ready.push(Bytes::copy_from_slice(key));
        }
        if let Some(value) = recorded {
            self.out.effects.push(Effect::Set {
                key: Bytes::copy_from_slice(key),
                value,
                expire_at,
            });
        }
        self.balance(shard, c);
        Ok(())
    }

    /// Moves table `c` of `shard`'s coldest heap entries off-heap if its cache's heap pool
    /// is over budget, recording what making room removed. Returns whether both tiers are
    /// full (nothing could move and the cache evicts nothing) and whether entries were
    /// removed (positions in the table may have changed).
    fn balance(&mut self, shard: usize, c: CacheId) -> (bool, bool) {
        if self.ks.region().is_none() || !self.ks.caches().get(c).pools.heap.over() {
            return (false, false);
        }
        let now = self.now;
        let Some(s) = self.locks.get(shard) else {
            return (false, false);
        };
        let (r, gone) = s.balance(c, now, BALANCE_PER_WRITE);
        let removed = !gone.is_empty();
        for (k, why) in gone {
            self.out.removed(&k, why);
        }
        (r.is_err(), removed)
    }

    /// Checks that writing all of `writes` (key, value length) cannot be refused half-way
    /// by a full cache that evicts nothing (MSET is all or nothing): adds up, per such
    /// cache, the new keys and the bytes the writes add (a key written twice counts once,
    /// with its last value).
    pub fn check_room<'k>(
        &mut self,
        writes: impl IntoIterator<Item = (&'k [u8], usize)>,
    ) -> Result<(), WriteError> {
        let caches = self.ks.caches();
        let mut last: Vec<(&'k [u8], usize)> = Vec::new();
        for (k, vlen) in writes {
            match last.iter_mut().find(|(seen, _)| *seen == k) {
                Some(w) => w.1 = vlen,
                None => last.push((k, vlen)),
            }
        }
        // Per cache: (new entries, bytes added).
        let mut growth: Vec<(CacheId, u64, u64)> = Vec::new();
        for (k, vlen) in last {
            let c = caches.resolve(k);
            let p = &caches.get(c).policy;
            if p.eviction() != crate::config::Eviction::None || !p.is_bounded() {
                continue;
            }
            let new = (k.len() + vlen + super::entry::ENTRY_OVERHEAD) as u64;
            let (added, grow) = match self.peek(k)? {
                Some(e) => (0, new.saturating_sub(e.mem(k.len()) as u64)),
                None => (1, new),
            };
            match growth.iter_mut().find(|(id, _, _)| *id == c) {
                Some(g) => {
                    g.1 += added;
                    g.2 += grow;
                }
                None => growth.push((c, added, grow)),
            }
        }
        for (c, added, grow) in growth {
            let cache = caches.get(c);
            let (p, st) = (&cache.policy, &cache.stats);
            let limit = if p.max_entries() != 0 && st.entries() + added > p.max_entries() {
                format!("max_entries {}", p.max_entries())
            } else if p.max_memory() != 0 && grow > 0 && st.memory() + grow > p.max_memory() {
                format!("max_memory {}", p.max_memory())
            } else {
                continue;
            };
            return Err(WriteError::CacheFull {
                cache: cache.name.clone(),
                limit,
                policy: "none",
            });
        }
        Ok(())
    }

    /// Evicts from cache `c` until `grow` more bytes and `added` more entries fit, or
    /// refuses when the cache evicts nothing. True if an entry of `key`'s own table was
    /// evicted (entries of that table may then have moved).
    fn make_room(
        &mut self,
        key: &[u8],
        c: CacheId,
        grow: u64,
        added: u64,
    ) -> Result<bool, WriteError> {
        let cache = self.ks.caches().get(c);
        let (p, st) = (&cache.policy, &cache.stats);
        let full = |limit: String| WriteError::CacheFull {
            cache: cache.name.clone(),
            limit,
            policy: crate::cache::eviction_name(p.eviction()),
        };
        let how = Victim::of_cache(p.eviction());
        if p.max_memory() != 0 && grow > p.max_memory() {
            return Err(full(format!("max_memory {}", p.max_memory())));
        }
        let home = self.ks.shard_of(key);
        let mut moved = false;
        for _ in 0..MAX_EVICTIONS_PER_WRITE {
            let max_e = p.max_entries();
            let max_m = p.max_memory();
            let over = if max_e != 0 && added > 0 && st.entries() + added > max_e {
                format!("max_entries {max_e}")
            } else if max_m != 0 && grow > 0 && st.memory() + grow > max_m {
                format!("max_memory {max_m}")
            } else {
                return Ok(moved);
            };
            let Some(how) = how else {
                return Err(full(over));
            };
            match self.evict_from(c, how, key) {
                Some(shard) => moved |= shard == home,
                // Nothing evictable anywhere we can lock now: let the write through; the
                // cron brings the cache back under its limit.
                None => break,
            }
        }
        Ok(moved)
    }

    /// Evicts one entry of cache `c`: the better victim of `key`'s shard and one other
    /// (locked by this command, or free right now; more if those have none). Looking
    /// beyond the home shard keeps eviction close to cache-wide LRU/LFU although each
    /// shard holds only a slice of the cache.
    /// Returns the shard it evicted from.
    fn evict_from(&mut self, c: CacheId, how: Victim, key: &[u8]) -> Option<usize> {
        let now = self.now;
        let home = self.ks.shard_of(key);
        let (mut best, home_sampled) = match self.locks.get(home) {
            Some(s) => (
                s.tables[c]
                    .victim(how, now, key)
                    .map(|(score, i)| (score, home, i)),
                !s.tables[c].is_exact(),
            ),
            None => (None, false),
        };
        // A table too small to sample holds a skewed slice of the cache (its share was
        // fixed when the cache filled up): compare with another shard. A sampled table is
        // a fair slice, and its sample is as good as one from any other.
        let extra = if home_sampled && best.is_some() {
            0
        } else {
            EXTRA_EVICTION_SHARDS
        };
        // A victim found in a shard this command did not lock stays locked until removed.
        let mut held = None;
        let start = fastrand::usize(..SHARDS);
        let mut looked = 0;
        for idx in (0..SHARDS).map(|off| (start + off) % SHARDS) {
            if idx == home {
                continue;
            }
            if looked >= extra && best.is_some() {
                break;
            }
            looked += 1;
            let better = |score: Score| best.is_none_or(|(b, _, _)| score < b);
            if let Some(s) = self.locks.get(idx) {
                if let Some((score, i)) = s.tables[c].victim(how, now, key)
                    && better(score)
                {
                    best = Some((score, idx, i));
                    held = None;
                }
            } else if let Some(g) = self.ks.try_lock(idx)
                && let Some((score, i)) = g.tables[c].victim(how, now, key)
                && better(score)
            {
                best = Some((score, idx, i));
                held = Some(g);
            }
        }
        let (_, idx, i) = best?;
        match held.as_mut() {
            Some(g) => {
                let k = g.remove(c, i, Removal::Evicted)?;
                self.out.notice(&k, Removal::Evicted);
                self.out.invalid.append(&mut g.invalid);
                self.out.stats.evicted += 1;
                // Logged before that shard is unlocked: another command's later write of
                // the key must follow this deletion in the log.
                let mut fx = Vec::new();
                self.ks.record_del(&mut fx, &k);
                self.ks.commit(&mut fx);
            }
            None => {
                let k = self
                    .locks
                    .get(idx)
                    .and_then(|s| s.remove(c, i, Removal::Evicted))?;
                self.out.removed(&k, Removal::Evicted);
            }
        }
        Some(idx)
    }

    /// Deletes `key`; true if it existed.
    pub fn del(&mut self, key: &[u8]) -> Result<bool, NotLocked> {
        let (s, c, i) = slot(self.ks, &mut self.locks, self.now, &mut self.out, key)?;
        let removed = i.and_then(|i| s.remove(c, i, Removal::Deleted)).is_some();
        if removed {
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
        let (s, c, i) = slot(self.ks, &mut self.locks, now, &mut self.out, key)?;
        let Some(i) = i else {
            return Ok(false);
        };
        if at.is_some_and(|t| t <= now) {
            s.remove(c, i, Removal::Deleted);
            self.out.emit(|| Effect::Del {
                key: Bytes::copy_from_slice(key),
            });
            return Ok(true);
        }
        let new = at.unwrap_or(0);
        s.tables[c].set_expire(i, new);
        s.modified(c, key);
        self.out.emit(|| Effect::Expire {
            key: Bytes::copy_from_slice(key),
            at: new,
        });
        self.balance(self.ks.shard_of(key), c);
        Ok(true)
    }

    /// Registers `watch` on `key` (WATCH), after expiring it if due so an already-dead
    /// key does not count as a change.
    pub fn watch(&mut self, key: &[u8], watch: &Watch) -> Result<(), NotLocked> {
        let (s, _, _) = slot(self.ks, &mut self.locks, self.now, &mut self.out, key)?;
        let ws = s.watchers.entry(Key::from_slice(key)).or_default();
        if !ws.iter().any(|w| w.client == watch.client) {
            ws.push(watch.clone());
        }
        Ok(())
    }

    /// Number of keys in the locked shards (expired-but-unreclaimed keys included, as in
    /// Redis's DBSIZE).
    pub fn len(&mut self) -> usize {
        self.locks
            .all()
            .map(|s| s.tables.iter().map(|t| t.len()).sum::<usize>())
            .sum()
    }

    /// True when the locked shards hold no key.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Keys with a TTL in the locked shards.
    pub fn expires_len(&mut self) -> usize {
        self.locks
            .all()
            .map(|s| s.tables.iter().map(|t| t.volatile).sum::<usize>())
            .sum()
    }

    /// Bytes charged to entries in the locked shards.
    pub fn used_memory(&mut self) -> usize {
        self.locks
            .all()
            .map(|s| s.tables.iter().map(|t| t.used).sum::<usize>())
            .sum()
    }

    /// Removes every key in the locked shards: FLUSHALL locks them all; a parallel
    /// loader replays a FlushAll record on its own share of them.
    pub fn flush(&mut self) -> usize {
        let mut n = 0;
        for s in self.locks.all() {
            s.cleared(None);
            s.volatile_hashes.clear();
            n += s.tables.iter_mut().map(|t| t.clear()).sum::<usize>();
        }
        let strong = self.ks.caches().iter().any(|c| c.is_strong());
        self.out.invalid.push(Invalidation::flush_all(strong));
        self.out.emit(|| Effect::FlushAll);
        n
    }

    /// Removes every key of cache `c` in the locked shards (CACHE.CLEAR locks them all).
    pub fn clear_cache(&mut self, c: CacheId) -> usize {
        let mut n = 0;
        for s in self.locks.all() {
            s.cleared(Some(c));
            if let Some(t) = s.tables.get_mut(c) {
                n += t.clear();
            }
        }
        let cache = self.ks.caches().get(c);
        // BCAST clients are not in the table: a flush of their L1s is cheaper and as
        // correct as one invalidation per cleared key.
        if n > 0 && self.ks.tracking().any_bcast() {
            self.out.invalid.push(Invalidation {
                everyone: false,
                ..Invalidation::flush_all(cache.is_strong())
            });
        }
        let name = cache.name.clone();
        self.out.emit(|| Effect::ClearCache { cache: name });
        n
    }

    /// Every live key matching `pat` (KEYS).
    pub fn keys(&mut self, pat: &[u8]) -> Vec<Bytes> {
        let all = pat == b"*";
        self.keys_where(|k| all || pattern::matches(pat, k, false))
    }

    /// Every live key for which `keep` is true; only those are copied out.
    pub fn keys_where(&mut self, mut keep: impl FnMut(&[u8]) -> bool) -> Vec<Bytes> {
        let now = self.now;
        let mut out = Vec::new();
        for s in self.locks.all() {
            for t in s.tables.iter() {
                out.extend(
                    (0..t.len())
                        .filter_map(|i| t.get_index(i))
                        .filter(|(k, e)| t.expiry(e, now).is_none() && keep(k))
                        .map(|(k, _)| Bytes::copy_from_slice(k)),
                );
            }
        }
        out
    }

    /// One SCAN step: visits about `count` slots from `cursor`, returning live keys that
    /// match `pat` and have type `ty`. Every key present for the whole scan is returned at
    /// least once: tables (shard by shard, cache by cache) are walked in order and each
    /// from its highest index down, and removals only move the last key (already visited)
    /// into a lower slot.
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        pat: Option<&[u8]>,
        ty: Option<&str>,
    ) -> ScanPage {
        let now = self.now;
        let per_shard = self.ks.caches().len();
        let tables = SHARDS * per_shard;
        let (mut table, mut pos) = if cursor == 0 {
            (0usize, CURSOR_TOP)
        } else {
            ((cursor >> CURSOR_POS_BITS) as usize, cursor & CURSOR_TOP)
        };
        let mut page = ScanPage::default();
        let mut visited = 0;
        while table < tables && visited < count.max(1) {
            let Some(s) = self.locks.get(table / per_shard) else {
                break;
            };
            let t = &s.tables[table % per_shard];
            let mut i = (pos as usize).min(t.len());
            while i > 0 && visited < count.max(1) {
                i -= 1;
                visited += 1;
                if let Some((k, e)) = t.get_index(i) {
                    let keep = t.expiry(&e, now).is_none()
                        && pat.is_none_or(|p| pattern::matches(p, k, false))
                        && ty.is_none_or(|ty| e.value().type_name().eq_ignore_ascii_case(ty));
                    if keep {
                        page.keys.push(Bytes::copy_from_slice(k));
                    }
                }
            }
            if i == 0 {
                table += 1;
                pos = CURSOR_TOP;
            } else {
                pos = i as u64;
            }
        }
        page.cursor = if table >= tables {
            0
        } else {
            ((table as u64) << CURSOR_POS_BITS) | pos
        };
        page
    }

    /// A random live key (RANDOMKEY).
    pub fn random_key(&mut self) -> Option<Bytes> {
        let per_shard = self.ks.caches().len();
        let tables = SHARDS * per_shard;
        for _ in 0..100 {
            let start = fastrand::usize(..tables);
            let picked = (0..tables).find_map(|off| {
                let table = (start + off) % tables;
                let s = self.locks.get(table / per_shard)?;
                let t = &s.tables[table % per_shard];
                if t.is_empty() {
                    return None;
                }
                let (k, _) = t.get_index(fastrand::usize(..t.len()))?;
                Some(Bytes::copy_from_slice(k))
            });
            match picked {
                None => return None,
                Some(k) => {
                    // A peek reclaims the key if it has expired; then try again.
                    if matches!(self.peek(&k), Ok(Some(_))) {
                        return Some(k);
                    }
                }
            }
        }
        None
    }
}

impl Drop for Db<'_> {
    /// Effects nobody committed go to the sink before the locks are released.
    /// Invalidations nobody took (a command that returned early) go to the keyspace's
    /// mailbox, which the server delivers: an L1 is never left holding a changed key.
    fn drop(&mut self) {
        self.commit();
        let left = self.take_invalidations();
        if !left.is_empty() {
            self.ks.post_all(left);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::cache::Caches;
    use crate::config::CacheConfig;
    use crate::store::keyspace::ShardSet;

    /// Cache configs: each entry a cache name and a YAML flow mapping of its other fields.
    fn configs(list: &[(&str, &str)]) -> Vec<CacheConfig> {
        list.iter()
            .map(|(name, rest)| {
                let yaml = format!(
                    "{{ name: {name}{}{rest} }}",
                    if rest.is_empty() { "" } else { ", " }
                );
                serde_yaml::from_str(&yaml).expect("cache yaml")
            })
            .collect()
    }

    fn caches(list: &[(&str, &str)]) -> Arc<Caches> {
        Arc::new(Caches::new(&configs(list)))
    }

    fn s(v: &str) -> Value {
        Value::str(v.as_bytes())
    }

    #[test]
    fn set_get_del_record_effects() {
        let ks = Keyspace::new(true, Arc::new(Caches::single()));
        let mut db = ks.db(ShardSet::All, 1_000, true);
        db.set(b"k", s("v"), Ttl::Clear).expect("locked");
        assert_eq!(
            db.get(b"k").expect("locked").map(|e| e.value().to_value()),
            Some(s("v"))
        );
        assert_eq!(db.stats().hits, 1);
        assert!(db.del(b"k").expect("locked"));
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
        let ks = Keyspace::new(true, Arc::new(Caches::single()));
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
        let ks = Keyspace::new(false, Arc::new(Caches::single()));
        let mut db = ks.db(ShardSet::All, 1_000, true);
        db.set(b"k", s("v"), Ttl::Clear).expect("locked");
        assert!(db.set_expire(b"k", Some(999)).expect("locked"));
        assert!(!db.exists(b"k").expect("locked"));
        assert!(db.take_effects().is_empty(), "recording is off");
    }

    #[test]
    fn keep_ttl_and_clear() {
        let ks = Keyspace::new(false, Arc::new(Caches::single()));
        let mut db = ks.db(ShardSet::All, 0, true);
        db.set(b"k", s("a"), Ttl::At(5_000)).expect("locked");
        db.set(b"k", s("b"), Ttl::Keep).expect("locked");
        assert_eq!(
            db.peek(b"k").expect("locked").map(|e| e.expire_at()),
            Some(5_000)
        );
        db.set(b"k", s("c"), Ttl::Clear).expect("locked");
        assert_eq!(
            db.peek(b"k").expect("locked").map(|e| e.expire_at()),
            Some(0)
        );
        assert_eq!(db.expires_len(), 0);
    }

    #[test]
    fn active_expiry_reclaims_due_keys_only() {
        let ks = Keyspace::new(false, Arc::new(Caches::single()));
        {
            let mut db = ks.db(ShardSet::All, 0, true);
            for i in 0..1000 {
                let at = if i % 2 == 0 { 100 } else { 10_000 };
                db.set(format!("k{i}").as_bytes(), s("v"), Ttl::At(at))
                    .expect("locked");
            }
        }
        // Like the cron: passes until the sweep has covered every table (a pass may stop
        // early when few of the entries it looked at were due; the next tick goes on).
        let mut total = 0;
        for _ in 0..2000 {
            total += ks.expire_due(500, 3).0;
        }
        assert_eq!(total, 500);
        let mut db = ks.db(ShardSet::All, 500, true);
        assert_eq!(db.len(), 500);
    }

    #[test]
    fn unlocked_shard_is_an_error_not_a_deadlock() {
        let ks = Keyspace::new(false, Arc::new(Caches::single()));
        let other = (0..1000)
            .map(|i| format!("x{i}"))
            .find(|k| ks.shard_of(k.as_bytes()) != ks.shard_of(b"a"))
            .expect("some key in another shard");
        let mut db = ks.db(ShardSet::One(ks.shard_of(b"a")), 0, true);
        assert!(db.set(b"a", s("1"), Ttl::Clear).is_ok());
        assert_eq!(
            db.set(other.as_bytes(), s("1"), Ttl::Clear),
            Err(WriteError::NotLocked(NotLocked))
        );
    }

    #[test]
    fn scan_returns_every_stable_key_despite_deletes() {
        let ks = Keyspace::new(false, Arc::new(Caches::single()));
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
        let ks = Keyspace::new(false, Arc::new(Caches::single()));
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

    #[test]
    fn lru_cache_holds_its_limit_and_keeps_recently_read_keys() {
        let ks = Keyspace::new(
            false,
            caches(&[("lru", "max_entries: 1000, eviction: lru")]),
        );
        let mut evicted = 0;
        for i in 0..5000u64 {
            // One view per write: the clock advances 1 ms per write.
            let mut db = ks.db(ShardSet::All, i, true);
            db.set(format!("lru:{i}").as_bytes(), s("v"), Ttl::Clear)
                .expect("room is made");
            if i >= 50 && i % 100 == 0 {
                for h in 0..50 {
                    db.get(format!("lru:{h}").as_bytes()).expect("locked");
                }
            }
            evicted += db.stats().evicted;
        }
        assert_eq!(evicted, 4000);
        let mut db = ks.db(ShardSet::All, 5000, true);
        assert_eq!(db.len(), 1000);
        let cache = db.cache_of(b"lru:1");
        assert_eq!(cache.stats.entries(), 1000);
        assert_eq!(cache.stats.evictions(), 4000);
        for h in 0..50 {
            assert!(
                db.exists(format!("lru:{h}").as_bytes()).expect("locked"),
                "hot key lru:{h} was evicted"
            );
        }
    }

    #[test]
    fn full_cache_without_eviction_refuses_and_keeps_everything() {
        let ks = Keyspace::new(
            false,
            caches(&[("fixed", "max_entries: 10, eviction: none"), ("other", "")]),
        );
        let mut db = ks.db(ShardSet::All, 0, true);
        for i in 0..10 {
            db.set(format!("fixed:{i}").as_bytes(), s("v"), Ttl::Clear)
                .expect("fits");
        }
        let err = db.set(b"fixed:10", s("v"), Ttl::Clear).expect_err("full");
        assert!(
            err.to_string()
                .starts_with("OOM cache 'fixed' is full (max_entries 10)"),
            "{err}"
        );
        // Overwriting an existing key still works; other caches are unaffected.
        db.set(b"fixed:3", s("new"), Ttl::Clear).expect("overwrite");
        for i in 0..100 {
            db.set(format!("other:{i}").as_bytes(), s("v"), Ttl::Clear)
                .expect("other cache");
        }
        assert_eq!(db.cache_of(b"fixed:0").stats.entries(), 10);
        assert_eq!(db.cache_of(b"fixed:0").stats.evictions(), 0);
        assert_eq!(db.len(), 110);
    }

    #[test]
    fn max_memory_evicts_within_the_cache_only() {
        let ks = Keyspace::new(
            false,
            caches(&[("small", "max_memory: 2k, eviction: random")]),
        );
        let mut db = ks.db(ShardSet::All, 0, true);
        for i in 0..100 {
            db.set(format!("x:{i}").as_bytes(), s("v"), Ttl::Clear)
                .expect("default");
        }
        for i in 0..100 {
            db.set(
                format!("small:{i}").as_bytes(),
                Value::str(&[b'x'; 100]),
                Ttl::Clear,
            )
            .expect("room is made");
        }
        let small = db.cache_of(b"small:1");
        assert!(small.stats.memory() <= 2048, "{}", small.stats.memory());
        assert!(small.stats.entries() > 5);
        assert_eq!(db.cache_of(b"x:1").stats.entries(), 100);
        let huge = Value::str(&[b'x'; 4096]);
        assert!(
            db.set(b"small:huge", huge, Ttl::Clear).is_err(),
            "larger than the cache"
        );
    }

    #[test]
    fn tti_expires_idle_entries_on_the_injected_clock() {
        let ks = Keyspace::new(false, caches(&[("s", "tti: 1s")]));
        {
            let mut db = ks.db(ShardSet::All, 0, true);
            db.set(b"s:read", s("v"), Ttl::Clear).expect("set");
            db.set(b"s:idle", s("v"), Ttl::Clear).expect("set");
            db.set(b"plain", s("v"), Ttl::Clear).expect("set");
        }
        for t in [300, 600, 900, 1200, 1500, 1800, 2100, 2400, 2700, 3000] {
            let mut db = ks.db(ShardSet::All, t, true);
            assert!(
                db.get(b"s:read").expect("locked").is_some(),
                "read key gone at {t}"
            );
        }
        let mut db = ks.db(ShardSet::All, 3000, true);
        assert!(db.get(b"s:idle").expect("locked").is_none());
        assert!(
            db.get(b"plain").expect("locked").is_some(),
            "no TTI outside the cache"
        );
        assert_eq!(db.cache_of(b"s:x").stats.expired_tti(), 1);
        assert_eq!(
            db.peek(b"s:read").expect("locked").map(|e| e.expire_at()),
            Some(0),
            "TTI is not a TTL"
        );
    }

    #[test]
    fn idle_sweep_reclaims_unread_entries() {
        let ks = Keyspace::new(false, caches(&[("s", "tti: 1s")]));
        {
            let mut db = ks.db(ShardSet::All, 0, true);
            for i in 0..500 {
                db.set(format!("s:{i}").as_bytes(), s("v"), Ttl::Clear)
                    .expect("set");
            }
        }
        let (n, _) = ks.expire_due(999, 100);
        assert_eq!(n, 0);
        let (n, _) = ks.expire_due(1000, 100);
        assert_eq!(n, 500);
        assert_eq!(ks.caches().get(0).stats.entries(), 0);
    }

    #[test]
    fn cache_ttl_is_the_default_and_a_command_ttl_wins() {
        let ks = Keyspace::new(false, caches(&[("t", "ttl: 10s")]));
        let mut db = ks.db(ShardSet::All, 1_000, true);
        db.set(b"t:a", s("v"), Ttl::Clear).expect("set");
        db.set(b"t:b", s("v"), Ttl::At(5_000)).expect("set");
        db.set(b"u:c", s("v"), Ttl::Clear).expect("set");
        let at = |db: &mut Db<'_>, k: &[u8]| db.peek(k).expect("locked").map(|e| e.expire_at());
        assert_eq!(at(&mut db, b"t:a"), Some(11_000));
        assert_eq!(at(&mut db, b"t:b"), Some(5_000));
        assert_eq!(at(&mut db, b"u:c"), Some(0));
        db.set(b"t:b", s("w"), Ttl::Keep).expect("set");
        assert_eq!(
            at(&mut db, b"t:b"),
            Some(5_000),
            "KEEPTTL keeps the command's TTL"
        );
    }

    #[test]
    fn watchers_see_writes_deletes_expiry_and_flush() {
        let ks = Keyspace::new(false, Arc::new(Caches::single()));
        let flag = Arc::new(AtomicBool::new(false));
        let w = Watch {
            client: 1,
            dirty: flag.clone(),
        };
        let mut db = ks.db(ShardSet::All, 0, true);
        db.watch(b"k", &w).expect("locked");
        db.get(b"k").expect("locked");
        db.set(b"other", s("v"), Ttl::Clear).expect("set");
        assert!(
            !flag.load(Ordering::Acquire),
            "reads and other keys do not count"
        );
        db.set(b"k", s("v"), Ttl::At(10)).expect("set");
        assert!(flag.swap(false, Ordering::AcqRel));
        drop(db);
        let mut db = ks.db(ShardSet::All, 10, true);
        assert!(!db.exists(b"k").expect("locked"));
        assert!(flag.swap(false, Ordering::AcqRel), "expiry counts");
        db.flush();
        assert!(
            !flag.load(Ordering::Acquire),
            "flushing a missing key changes nothing"
        );
        db.set(b"k", s("v"), Ttl::Clear).expect("set");
        flag.store(false, Ordering::Release);
        db.flush();
        assert!(flag.load(Ordering::Acquire));
        drop(db);
        ks.unwatch(&[Key::from_slice(b"k")], 1);
        let mut db = ks.db(ShardSet::All, 10, true);
        flag.store(false, Ordering::Release);
        db.set(b"k", s("v"), Ttl::Clear).expect("set");
        assert!(!flag.load(Ordering::Acquire), "unwatched");
    }

    #[test]
    fn clear_cache_removes_only_that_cache() {
        let ks = Keyspace::new(false, caches(&[("a", ""), ("b", "")]));
        let mut db = ks.db(ShardSet::All, 0, true);
        for k in ["a:1", "a:2", "b:1", "c"] {
            db.set(k.as_bytes(), s("v"), Ttl::Clear).expect("set");
        }
        let a = ks.caches().by_name(b"a").expect("a");
        assert_eq!(db.clear_cache(a), 2);
        let mut left = db.keys(b"*");
        left.sort();
        assert_eq!(left, vec![Bytes::from("b:1"), Bytes::from("c")]);
        assert_eq!(ks.caches().get(a).stats.entries(), 0);
    }

    #[test]
    fn maxmemory_eviction_respects_volatile_policies() {
        let ks = Keyspace::new(false, Arc::new(Caches::single()));
        {
            let mut db = ks.db(ShardSet::All, 0, true);
            for i in 0..100 {
                let ttl = if i < 50 {
                    Ttl::At(1_000_000 + i)
                } else {
                    Ttl::Clear
                };
                db.set(format!("k{i}").as_bytes(), s("v"), ttl)
                    .expect("set");
            }
        }
        let used = ks.caches().used_memory();
        let per = used / 100;
        assert_eq!(
            ks.evict_to(used - 10 * per, Victim::VolatileTtl, 0),
            Some(10)
        );
        let mut db = ks.db(ShardSet::All, 0, true);
        for i in 50..100 {
            assert!(
                db.exists(format!("k{i}").as_bytes()).expect("locked"),
                "k{i} has no TTL"
            );
        }
        drop(db);
        assert_eq!(
            ks.evict_to(0, Victim::VolatileRandom, 0),
            None,
            "persistent keys stay"
        );
        assert_eq!(ks.caches().get(0).stats.entries(), 50);
        assert_eq!(ks.evict_to(0, Victim::Lru, 0), Some(50));
    }

    /// A keyspace with an off-heap tier of `offheap` bytes and a heap budget of `heap`.
    fn tiered(heap: u64, offheap: u64, list: &[(&str, &str)]) -> Keyspace {
        let configs = configs(list);
        let storage = crate::config::StorageConfig {
            heap: crate::config::Size(heap),
            offheap: crate::config::Size(offheap),
            ..Default::default()
        };
        let tables = SHARDS * (configs.len() + 1);
        let seg = crate::store::offheap::segment_size_for(offheap, tables);
        let region = Arc::new(crate::store::offheap::Region::new(offheap, seg, None).expect("map"));
        Keyspace::with_parts(
            true,
            Arc::new(Caches::tiered(&configs, &storage, seg)),
            Arc::default(),
            Some(region),
        )
    }

    fn value_of(db: &mut Db<'_>, k: &str) -> Option<Vec<u8>> {
        db.get(k.as_bytes())
            .expect("locked")
            .and_then(|e| e.value().as_str().map(<[u8]>::to_vec))
    }

    #[test]
    fn a_table_without_off_heap_segments_evicts_from_its_heap() {
        // One shard's table takes the whole off-heap pool; another shard's table, over
        // the heap budget with nothing off-heap of its own to reclaim, must evict from its
        // heap (the cache evicts by LRU), not refuse the write or take another table's data.
        let ks = tiered(64 << 10, 1 << 20, &[("default", "eviction: lru")]);
        let keys_of = |shard: usize, n: usize| -> Vec<String> {
            (0..)
                .map(|i| format!("key-{i}"))
                .filter(|k| ks.shard_of(k.as_bytes()) == shard)
                .take(n)
                .collect()
        };
        let value = Value::str(&[b'v'; 600]);
        let mut db = ks.db(ShardSet::All, 1_000, true);
        for k in keys_of(0, 2000) {
            db.set(k.as_bytes(), value.clone(), Ttl::Clear)
                .expect("set");
        }
        let st = &ks.caches().get(0).stats;
        let off_before = st.off_entries();
        assert!(off_before > 0, "shard 0 went off-heap");
        let evicted_before = st.evictions();
        let second = keys_of(1, 300);
        for k in &second {
            db.set(k.as_bytes(), value.clone(), Ttl::Clear)
                .expect("an evicting cache never refuses");
        }
        assert!(st.evictions() > evicted_before, "the heap evicted");
        let kept = second
            .iter()
            .filter(|k| db.exists(k.as_bytes()).expect("locked"))
            .count();
        assert!(kept < second.len(), "some of shard 1's keys were evicted");
        assert!(kept > 0, "the newest keys stay");
        assert!(
            db.exists(second[second.len() - 1].as_bytes())
                .expect("locked")
        );
        assert_eq!(
            st.off_entries(),
            off_before,
            "shard 0's off-heap entries untouched"
        );
        // The heap stays over budget only until the cron balances the tables that hold
        // the excess (shard 0's, which reclaims its own segments).
        drop(db);
        let heap = &ks.caches().get(0).pools.heap;
        for _ in 0..100 {
            if !heap.over() {
                break;
            }
            ks.balance_tiers(1_000);
        }
        assert!(!heap.over(), "heap {} of {}", heap.used(), heap.limit());
    }

    #[test]
    fn everything_off_heap_behaves_like_the_heap() {
        let ks = tiered(0, 8 << 20, &[]);
        let mut db = ks.db(ShardSet::All, 1_000, true);
        for i in 0..2000 {
            let v = format!("value-{i}-{}", "x".repeat(i % 300));
            db.set(
                format!("k{i}").as_bytes(),
                Value::str(v.as_bytes()),
                Ttl::Clear,
            )
            .expect("set");
        }
        let st = &ks.caches().get(0).stats;
        assert_eq!(st.entries(), 2000);
        assert_eq!(st.off_entries(), 2000, "heap: 0 keeps nothing on the heap");
        assert_eq!(ks.caches().get(0).pools.heap.used(), 0);
        for i in (0..2000).step_by(7) {
            let want = format!("value-{i}-{}", "x".repeat(i % 300));
            assert_eq!(value_of(&mut db, &format!("k{i}")), Some(want.into_bytes()));
        }
        assert!(st.off_hits() > 0);
        // TTLs: added (the item is rewritten), changed in place, removed.
        assert!(db.set_expire(b"k1", Some(5_000)).expect("locked"));
        assert_eq!(
            db.peek(b"k1").expect("locked").map(|e| e.expire_at()),
            Some(5_000)
        );
        assert!(db.set_expire(b"k1", Some(6_000)).expect("locked"));
        assert_eq!(
            db.peek(b"k1").expect("locked").map(|e| e.expire_at()),
            Some(6_000)
        );
        assert_eq!(db.expires_len(), 1);
        assert!(db.set_expire(b"k1", None).expect("locked"));
        assert_eq!(db.expires_len(), 0);
        // Overwrites, deletes, KEYS, SCAN and the byte count agree with the heap's rules.
        db.set(b"k2", s("new"), Ttl::Keep).expect("set");
        assert_eq!(value_of(&mut db, "k2"), Some(b"new".to_vec()));
        assert!(db.del(b"k3").expect("locked"));
        assert!(!db.exists(b"k3").expect("locked"));
        assert_eq!(db.len(), 1999);
        assert_eq!(db.keys(b"k1?").len(), 10);
        let (mut cursor, mut seen) = (0, 0);
        let mut all = std::collections::HashSet::new();
        loop {
            let page = db.scan(cursor, 100, None, None);
            seen += page.keys.len();
            all.extend(page.keys.clone());
            cursor = page.cursor;
            if cursor == 0 {
                break;
            }
        }
        let missing: Vec<String> = (0..2000)
            .map(|i| format!("k{i}"))
            .filter(|k| !all.contains(k.as_bytes()))
            .collect();
        assert_eq!(seen, 1999, "missing {missing:?}");
        assert_eq!(db.used_memory() as u64, st.memory());
        drop(db);
        assert_eq!(
            ks.caches().get(0).stats.off_entries(),
            ks.caches().get(0).stats.entries()
        );
        let mut db = ks.db(ShardSet::All, 1_000, true);
        assert_eq!(db.flush(), 1999);
        assert_eq!(st.off_entries(), 0);
        assert_eq!(st.memory(), 0);
        assert_eq!(
            ks.region().map(|r| r.taken()),
            Some(0),
            "every segment returned"
        );
    }

    #[test]
    fn heap_budget_keeps_the_hot_set_on_heap() {
        let ks = tiered(64 << 10, 8 << 20, &[]);
        let st = &ks.caches().get(0).stats;
        for i in 0..4000u64 {
            let mut db = ks.db(ShardSet::All, i, true);
            db.set(
                format!("k{i}").as_bytes(),
                Value::str(&[b'v'; 100]),
                Ttl::Clear,
            )
            .expect("set");
            // A hot key, read all the time.
            assert!(value_of(&mut db, "k0").is_some());
        }
        ks.balance_tiers(4000);
        let pool = &ks.caches().get(0).pools.heap;
        assert!(
            pool.used() <= pool.limit(),
            "{} > {}",
            pool.used(),
            pool.limit()
        );
        assert_eq!(st.entries(), 4000);
        assert!(st.off_entries() > 3000, "{}", st.off_entries());
        assert!(st.demotions() > 3000);
        let mut db = ks.db(ShardSet::All, 5000, true);
        assert!(
            !db.peek(b"k0").expect("locked").is_some_and(|e| e.is_off()),
            "hot key on heap"
        );
        // A cold key read repeatedly is promoted.
        let cold = (1..4000)
            .map(|i| format!("k{i}"))
            .find(|k| {
                db.peek(k.as_bytes())
                    .expect("locked")
                    .is_some_and(|e| e.is_off())
            })
            .expect("a cold key");
        for _ in 0..200 {
            assert_eq!(value_of(&mut db, &cold), Some(vec![b'v'; 100]));
        }
        assert!(
            !db.peek(cold.as_bytes())
                .expect("locked")
                .is_some_and(|e| e.is_off())
        );
        assert!(st.promotions() >= 1);
    }

    #[test]
    fn expired_segments_are_dropped_without_reads() {
        let ks = tiered(0, 8 << 20, &[]);
        {
            let mut db = ks.db(ShardSet::All, 0, true);
            for i in 0..3000 {
                db.set(
                    format!("t{i}").as_bytes(),
                    Value::str(&[1; 200]),
                    Ttl::At(2_000),
                )
                .expect("set");
            }
            db.set(b"keep", s("v"), Ttl::Clear).expect("set");
        }
        let st = &ks.caches().get(0).stats;
        let held = ks.region().map_or(0, |r| r.taken());
        assert!(held > 10, "{held}");
        // One sweep pass examining nothing entry by entry: whole segments go.
        let (removed, _) = ks.expire_due(2_000, 0);
        assert_eq!(removed, 3000);
        assert!(st.segments_expired() >= 10, "{}", st.segments_expired());
        assert_eq!(st.entries(), 1);
        assert!(ks.region().map_or(0, |r| r.taken()) < held / 5);
    }

    #[test]
    fn full_tiers_evict_by_policy_or_refuse() {
        // The smallest off-heap tier: two 16 KiB segments per table.
        let min = crate::store::offheap::min_size(2);
        let ks = tiered(0, min, &[("lru", "eviction: lru")]);
        let st = &ks
            .caches()
            .by_name(b"lru")
            .map(|c| ks.caches().get(c).clone())
            .expect("lru");
        let hot: Vec<String> = (0..50).map(|i| format!("lru:hot{i}")).collect();
        for i in 0..30_000u64 {
            let mut db = ks.db(ShardSet::All, i, true);
            db.set(
                format!("lru:{i}").as_bytes(),
                Value::str(&[7; 300]),
                Ttl::Clear,
            )
            .expect("lru evicts");
            if i < 50 {
                db.set(hot[i as usize].as_bytes(), s("h"), Ttl::Clear)
                    .expect("set");
            }
            if i % 500 == 0 {
                for h in &hot {
                    db.get(h.as_bytes()).expect("locked");
                }
            }
        }
        assert!(st.stats.evictions() > 10_000, "{}", st.stats.evictions());
        assert!(st.stats.segments_evicted() > 0);
        let mut db = ks.db(ShardSet::All, 30_000, true);
        let kept = hot
            .iter()
            .filter(|h| db.exists(h.as_bytes()).expect("locked"))
            .count();
        assert!(kept >= 45, "hot keys kept: {kept}/50");
        drop(db);

        let ks = tiered(0, min, &[("fixed", "eviction: none")]);
        let mut written = Vec::new();
        let mut refused = None;
        for i in 0..30_000u64 {
            let mut db = ks.db(ShardSet::All, i, true);
            let k = format!("fixed:{i}");
            match db.set(k.as_bytes(), Value::str(&[7; 300]), Ttl::Clear) {
                Ok(()) => written.push(k),
                Err(e) => {
                    refused = Some(e.to_string());
                    break;
                }
            }
        }
        let refused = refused.expect("a full cache without eviction refuses");
        assert!(
            refused.starts_with("OOM cache 'fixed' is full (heap"),
            "{refused}"
        );
        let mut db = ks.db(ShardSet::All, 40_000, true);
        for k in &written {
            assert!(db.exists(k.as_bytes()).expect("locked"), "{k} lost");
        }
        // Overwrites leave dead bytes that compaction reclaims: no refusal.
        drop(db);
        for round in 0..3u64 {
            for k in written.iter().take(2000) {
                let mut db = ks.db(ShardSet::All, 50_000 + round, true);
                db.set(k.as_bytes(), Value::str(&[8; 300]), Ttl::Clear)
                    .expect("an overwrite of the same size fits after compaction");
            }
        }
        let c = ks.caches().by_name(b"fixed").expect("fixed");
        assert!(ks.caches().get(c).stats.compactions() > 0);
    }

    /// Random writes, overwrites of other sizes, TTL changes, deletes, reads and expiry
    /// sweeps on small tiers, checked against a plain map after every step.
    #[test]
    fn tiers_agree_with_a_model_under_random_operations() {
        for (heap, policy) in [
            (0, "lru"),
            (16 << 10, "lru"),
            (8 << 10, "none"),
            (0, "random"),
        ] {
            let min = crate::store::offheap::min_size(2);
            let ks = tiered(heap, min, &[("c", &format!("eviction: {policy}"))]);
            let mut model: std::collections::HashMap<String, (Vec<u8>, u64)> =
                std::collections::HashMap::new();
            let mut rng = fastrand::Rng::with_seed(7);
            for step in 0..20_000u64 {
                let now = 1_000_000 + step;
                let mut db = ks.db(ShardSet::All, now, true);
                let k = format!("c:{}", rng.usize(..3000));
                match rng.u8(..10) {
                    0..=4 => {
                        let v = vec![rng.u8(..); rng.usize(..400)];
                        let ttl = if rng.bool() {
                            Ttl::At(now + rng.u64(1..5000))
                        } else {
                            Ttl::Clear
                        };
                        let at = match ttl {
                            Ttl::At(t) => t,
                            _ => 0,
                        };
                        if db.set(k.as_bytes(), Value::str(&v), ttl).is_ok() {
                            model.insert(k.clone(), (v, at));
                        }
                    }
                    5 => {
                        db.del(k.as_bytes()).expect("locked");
                        model.remove(&k);
                    }
                    6 => {
                        let at = if rng.bool() {
                            Some(now + rng.u64(1..5000))
                        } else {
                            None
                        };
                        let had = db.set_expire(k.as_bytes(), at).expect("locked");
                        if let Some(m) = model.get_mut(&k).filter(|m| m.1 == 0 || m.1 > now) {
                            assert!(had || policy != "none", "{k} at step {step}");
                            m.1 = at.unwrap_or(0);
                            if !had {
                                model.remove(&k);
                            }
                        }
                    }
                    7 => {
                        drop(db);
                        ks.expire_due(now, 50);
                        db = ks.db(ShardSet::All, now, true);
                    }
                    _ => {
                        let got = value_of(&mut db, &k);
                        if let Some((v, at)) = model.get(&k)
                            && (*at == 0 || *at > now)
                        {
                            if got.is_some() || policy == "none" {
                                assert_eq!(got.as_ref(), Some(v), "{k} at step {step}");
                            } else {
                                model.remove(&k);
                            }
                        } else {
                            assert_eq!(got, None, "{k} at step {step}: deleted or expired");
                        }
                    }
                }
                // Evicted and expired keys may be gone; whatever is present must be right.
                model.retain(|_, (_, at)| *at == 0 || *at > now);
                if step % 5000 == 0 {
                    let mut gone = 0;
                    for (k, (v, at)) in &model {
                        match db.peek(k.as_bytes()).expect("locked") {
                            Some(e) => {
                                assert_eq!(e.value().as_str(), Some(&v[..]), "{k}");
                                assert_eq!(e.expire_at(), *at, "{k}");
                            }
                            None => gone += 1,
                        }
                    }
                    if policy == "none" {
                        assert_eq!(gone, 0, "eviction none lost keys");
                    }
                    let st = &db.cache_of(b"c:").stats;
                    assert_eq!(db.len() as u64, st.entries());
                    assert_eq!(db.used_memory() as u64, st.memory());
                }
            }
        }
    }

    #[test]
    fn collections_are_created_changed_and_deleted_when_empty() {
        use crate::store::types::{Coll, HashV, ListV};
        let ks = Keyspace::new(true, Arc::new(Caches::single()));
        let mut db = ks.db(ShardSet::All, 1_000, true);
        let added = db
            .update::<HashV, _>(b"h", true, |h| (h.insert(b"f", b"v"), true))
            .expect("update");
        assert_eq!(added, Some(true));
        assert_eq!(
            db.update::<HashV, _>(b"missing", false, |_| ((), true)),
            Ok(None)
        );
        let h = db.read::<HashV>(b"h").expect("read").expect("exists");
        assert_eq!(
            h.value(b"f", 1_000).map(|v| v.to_vec()),
            Some(b"v".to_vec())
        );
        db.set(b"s", s("x"), Ttl::Clear).expect("set");
        assert_eq!(
            db.update::<HashV, _>(b"s", true, |_| ((), true)),
            Err(CollError::WrongType)
        );
        assert!(matches!(db.read::<ListV>(b"h"), Err(CollError::WrongType)));
        let mem = db.used_memory();
        db.update::<HashV, _>(b"h", false, |h| (h.insert(b"g", &[b'x'; 100]), true))
            .expect("grow");
        assert!(db.used_memory() >= mem + 100, "accounted");
        db.update::<HashV, _>(b"h", false, |h| {
            h.remove(b"f");
            h.remove(b"g");
            ((), true)
        })
        .expect("empty");
        assert!(
            !db.exists(b"h").expect("locked"),
            "an empty hash is deleted"
        );
        let fx = db.take_effects();
        assert!(matches!(fx.last(), Some(Effect::Del { .. })), "{fx:?}");
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Set { value: Value::Hash(h), .. } if h.len() == 2)),
            "whole values recorded: {fx:?}"
        );
        db.update::<ListV, _>(b"l", true, |l| (l.push_back(b"a"), true))
            .expect("list");
        assert_eq!(db.take_ready(), vec![Bytes::from("l")]);
    }

    #[test]
    fn collections_work_off_heap() {
        use crate::store::types::{Coll, SetV};
        let ks = tiered(4 << 10, 4 << 20, &[("default", "eviction: lru")]);
        let mut db = ks.db(ShardSet::All, 1_000, true);
        for i in 0..200 {
            let k = format!("set-{i}");
            db.update::<SetV, _>(k.as_bytes(), true, |s| {
                (
                    s.insert(format!("m{i}").as_bytes()) && s.insert(b"common"),
                    true,
                )
            })
            .expect("sadd");
        }
        let st = &ks.caches().get(0).stats;
        assert!(st.off_entries() > 100, "most sets went off-heap");
        for i in 0..200 {
            let k = format!("set-{i}");
            let set = db
                .peek_coll::<SetV>(k.as_bytes())
                .expect("read")
                .expect("there");
            assert_eq!(set.len(), 2);
            assert!(set.contains(format!("m{i}").as_bytes()));
            assert_eq!(db.kind_of(k.as_bytes()).expect("locked"), Some(Kind::Set));
        }
        // A change to an off-heap set brings it to the heap and back.
        let n = db
            .update::<SetV, _>(b"set-0", false, |s| (s.insert(b"more"), true))
            .expect("update");
        assert_eq!(n, Some(true));
        let set = db.read::<SetV>(b"set-0").expect("read").expect("there");
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn patches_replay_idempotently() {
        use crate::store::types::{Coll, HashV, SetV};
        let ks = Keyspace::new(false, Arc::new(Caches::single()));
        let mut up = HashV::default();
        up.insert(b"a", b"1");
        up.insert_with(b"b", b"2", 9_000);
        let mut up2 = HashV::default();
        up2.insert(b"c", b"3");
        let patches = [
            (up.into_value(), vec![]),
            (up2.into_value(), vec![&b"a"[..]]),
        ];
        let apply_all = |db: &mut Db<'_>| {
            for (u, r) in &patches {
                db.patch(b"h", u.clone(), r.iter().copied()).expect("patch");
            }
        };
        let mut db = ks.db(ShardSet::All, 1_000, true);
        apply_all(&mut db);
        let once = db.peek(b"h").expect("locked").map(|e| e.to_entry());
        apply_all(&mut db);
        let twice = db.peek(b"h").expect("locked").map(|e| e.to_entry());
        assert_eq!(
            once.as_ref().map(|e| &e.value),
            twice.as_ref().map(|e| &e.value)
        );
        let h = db.read::<HashV>(b"h").expect("read").expect("there");
        assert_eq!(h.len(), 2);
        assert!(h.get(b"a").is_none());
        assert_eq!(h.get(b"b").map(|f| f.expire_at), Some(9_000));
        // Over a key of another type, a patch stores its upserts; removing the last
        // element deletes the key.
        db.set(b"s", s("str"), Ttl::Clear).expect("set");
        let mut m = SetV::default();
        m.insert(b"x");
        db.patch(b"s", m.into_value(), std::iter::empty())
            .expect("patch");
        assert_eq!(db.kind_of(b"s").expect("locked"), Some(Kind::Set));
        db.patch(b"s", SetV::default().into_value(), [&b"x"[..]].into_iter())
            .expect("patch");
        assert!(!db.exists(b"s").expect("locked"));
    }

    #[test]
    fn large_collections_record_patches_that_replay_to_the_same_value() {
        use crate::store::types::{Coll, PATCH_MIN, SetV, ZSetV};
        let ks = Keyspace::new(true, Arc::new(Caches::single()));
        let mut db = ks.db(ShardSet::All, 1_000, true);
        db.update::<SetV, _>(b"s", true, |s| {
            for i in 0..PATCH_MIN {
                s.insert(format!("m{i}").as_bytes());
            }
            ((), true)
        })
        .expect("create");
        db.update::<ZSetV, _>(b"z", true, |z| {
            for i in 0..PATCH_MIN {
                z.insert(format!("m{i}").as_bytes(), i as f64);
            }
            ((), true)
        })
        .expect("create");
        let created = db.take_effects();
        assert!(created.iter().all(|e| matches!(e, Effect::Set { .. })));
        db.update::<SetV, _>(b"s", false, |s| {
            s.remove(b"m0");
            s.insert(b"new");
            ((), true)
        })
        .expect("change");
        db.update::<ZSetV, _>(b"z", false, |z| (z.insert(b"m3", 99.0), true))
            .expect("change");
        let changed = db.take_effects();
        match changed.as_slice() {
            [
                Effect::Patch {
                    upserts: Value::Set(u),
                    removed,
                    ..
                },
                Effect::Patch {
                    upserts: Value::ZSet(z),
                    ..
                },
            ] => {
                assert_eq!(u.len(), 1);
                assert_eq!(removed, &vec![Bytes::from("m0")]);
                assert_eq!(z.score(b"m3"), Some(99.0));
            }
            other => panic!("expected two patches: {other:?}"),
        }
        // Replaying everything on an empty keyspace gives the same values.
        let replica = Keyspace::new(false, Arc::new(Caches::single()));
        let mut r = replica.db(ShardSet::All, 1_000, true);
        for e in created.iter().chain(&changed) {
            match e {
                Effect::Set { key, value, .. } => {
                    r.set(key, value.clone(), Ttl::Clear).expect("set")
                }
                Effect::Patch {
                    key,
                    upserts,
                    removed,
                } => r
                    .patch(key, upserts.clone(), removed.iter().map(|b| &b[..]))
                    .expect("patch"),
                other => panic!("unexpected {other:?}"),
            }
        }
        for k in [&b"s"[..], b"z"] {
            let a = db.peek(k).expect("locked").map(|e| e.value().to_value());
            let b = r.peek(k).expect("locked").map(|e| e.value().to_value());
            assert_eq!(a, b);
        }
    }

    #[test]
    fn the_field_sweep_reclaims_due_fields_and_deletes_emptied_hashes() {
        use crate::store::types::{Coll, HashV};
        #[derive(Debug, Default)]
        struct Sink(parking_lot::Mutex<Vec<Effect>>);
        impl crate::store::EffectSink for Sink {
            fn append(&self, effects: &[Effect]) -> u64 {
                self.0.lock().extend_from_slice(effects);
                1
            }
        }
        let ks = Keyspace::new(true, Arc::new(Caches::single()));
        let sink = Arc::new(Sink::default());
        ks.set_sink(sink.clone());
        let mut db = ks.db(ShardSet::All, 1_000, true);
        let hset = |db: &mut Db<'_>, key: &[u8], fields: &[(&[u8], u64)]| {
            db.update::<HashV, _>(key, true, |h| {
                for (f, at) in fields {
                    h.insert_with(f, b"v", *at);
                }
                ((), true)
            })
            .expect("hset");
        };
        hset(&mut db, b"h", &[(b"keep", 0), (b"t", 2_000)]);
        hset(&mut db, b"gone", &[(b"a", 1_500)]);
        hset(&mut db, b"later", &[(b"a", 9_000)]);
        // A volatile hash replaced by a string, and one deleted: the sweep forgets them.
        hset(&mut db, b"x", &[(b"a", 1_200)]);
        db.set(b"x", s("str"), Ttl::Clear).expect("set");
        hset(&mut db, b"y", &[(b"a", 1_200)]);
        assert!(db.del(b"y").expect("locked"));
        drop(db);
        sink.0.lock().clear();
        assert_eq!(ks.expire_fields(1_100, 100), (0, vec![]));
        assert!(sink.0.lock().is_empty(), "nothing due, nothing recorded");
        let (n, mut changed) = ks.expire_fields(2_000, 100);
        changed.sort();
        assert_eq!(n, 2);
        assert_eq!(
            changed,
            vec![(Bytes::from("gone"), true), (Bytes::from("h"), false)]
        );
        let fx = sink.0.lock().clone();
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Del { key } if key.as_ref() == b"gone")),
            "{fx:?}"
        );
        assert!(
            fx.iter().any(
                |e| matches!(e, Effect::Set { key, value: Value::Hash(h), .. }
                if key.as_ref() == b"h" && h.len() == 1 && h.volatile() == 0)
            ),
            "{fx:?}"
        );
        let mut db = ks.db(ShardSet::All, 2_000, true);
        assert!(!db.exists(b"gone").expect("locked"));
        let h = db.read::<HashV>(b"h").expect("read").expect("there");
        assert_eq!(h.len(), 1);
        assert_eq!(
            db.due_hashes(u64::MAX, 100),
            vec![Key::from_slice(b"later")],
            "only hashes with volatile fields stay in the index"
        );
    }

    #[test]
    fn long_lists_record_pushes_and_pops_that_replay_exactly_once() {
        use crate::store::types::{ListOp, ListV, PATCH_MIN};
        let ks = Keyspace::new(true, Arc::new(Caches::single()));
        let mut db = ks.db(ShardSet::All, 1_000, true);
        db.update::<ListV, _>(b"l", true, |l| {
            for i in 0..PATCH_MIN {
                l.push_back(format!("i{i}").as_bytes());
            }
            ((), true)
        })
        .expect("create");
        db.update::<ListV, _>(b"l", false, |l| {
            l.push_front(b"head");
            l.pop_back();
            ((), true)
        })
        .expect("push and pop");
        db.update::<ListV, _>(b"l", false, |l| (l.push_back(b"tail"), true))
            .expect("push");
        db.update::<ListV, _>(b"l", false, |l| (l.set(3, b"set"), true))
            .expect("lset");
        let fx = db.take_effects();
        match fx.as_slice() {
            [
                Effect::Set { .. },
                Effect::ListOps {
                    from: 0, ops: a, ..
                },
                Effect::ListOps {
                    from: 1, ops: b, ..
                },
                Effect::Set { .. },
            ] => {
                assert_eq!(
                    a,
                    &vec![ListOp::PushFront(Bytes::from("head")), ListOp::PopBack]
                );
                assert_eq!(b, &vec![ListOp::PushBack(Bytes::from("tail"))]);
            }
            other => panic!("unexpected effects {other:?}"),
        }
        let replay = |r: &mut Db<'_>| {
            for e in &fx {
                match e {
                    Effect::Set { key, value, .. } => {
                        r.set(key, value.clone(), Ttl::Clear).expect("set")
                    }
                    Effect::ListOps { key, from, ops } => {
                        r.list_ops(key, *from, ops.iter().cloned()).expect("ops");
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        };
        let want = db.peek(b"l").expect("locked").map(|e| e.value().to_value());
        let replica = Keyspace::new(false, Arc::new(Caches::single()));
        let mut r = replica.db(ShardSet::All, 1_000, true);
        replay(&mut r);
        assert_eq!(
            r.peek(b"l").expect("locked").map(|e| e.value().to_value()),
            want
        );
        // Over a state that already holds them (a fuzzy snapshot), the ops are skipped.
        drop(db);
        let mut again = ks.db(ShardSet::All, 1_000, true);
        for e in &fx[1..3] {
            if let Effect::ListOps { key, from, ops } = e {
                assert!(
                    !again
                        .list_ops(key, *from, ops.iter().cloned())
                        .expect("ops")
                );
            }
        }
        assert_eq!(
            again
                .peek(b"l")
                .expect("locked")
                .map(|e| e.value().to_value()),
            want
        );
    }
}
