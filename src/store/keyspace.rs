//! The sharded keyspace: keys hash (ahash) to a fixed number of shards, each behind its
//! own mutex, so commands on different keys run in parallel on the runtime's threads.
//!
//! A command locks the shards of all its keys up front, in ascending shard order (no
//! deadlock), and works through the resulting [`Db`] view; a multi-key command or a
//! transaction is therefore atomic with respect to every other client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, MutexGuard};

use super::db::Db;
use super::effect::{Effect, EffectSink};
use super::entry::{EntryRef, Key};
use super::offheap::{NoRoom, Region};
use super::table::{Gone, Score, Table, Victim};
use super::tracking::{Invalidation, TrackTable, TrackingState};
use crate::cache::stats::Removal;
use crate::cache::{CacheId, Caches};

/// Number of shards: a power of two well above the core count, so two commands rarely
/// contend for one mutex.
pub const SHARDS: usize = 64;

/// The shard router's fixed seeds: a key's shard is the same in every process of this
/// build on this kind of machine, so a base snapshot written shard by shard loads shard by
/// shard (a loader thread skips whole records of other shards; see
/// [`Keyspace::router_probe`]). Shard placement only spreads lock contention (each
/// table's index has its own random hasher), so a fixed seed gives away no hash-flooding
/// resistance that matters.
const ROUTER_SEEDS: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// Shards whose best victims one `maxmemory` (or cache shrink) eviction compares.
const EVICT_WINDOW: usize = 4;

/// Most entries one `evict_to`/`shrink_cache` call evicts, so one command never pays for
/// an unbounded clean-up (like Redis's eviction tenacity); later calls continue.
const MAX_EVICTIONS_PER_CALL: u64 = 1024;

/// A client's interest in a key (WATCH): set `dirty` when the key changes.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The watching client.
    pub client: u64,
    /// Raised when a watched key is modified, deleted, expired or evicted.
    pub dirty: Arc<AtomicBool>,
}

/// One shard: a slice of the key space, one table per cache.
#[derive(Debug)]
pub struct Shard {
    /// The entries of each cache, indexed by [`CacheId`].
    pub(crate) tables: Box<[Table]>,
    /// Watched keys of this shard and who watches them.
    pub(crate) watchers: HashMap<Key, Vec<Watch>, ahash::RandomState>,
    /// Keys of this shard that tracking clients may hold in their L1.
    pub(crate) tracked: TrackTable,
    /// Invalidations produced under this shard's lock and not yet handed to the server;
    /// whoever holds the lock drains them before releasing it (see [`Db`]).
    pub(crate) invalid: Vec<Invalidation>,
    /// Tracking figures and limits shared by all shards.
    tracking: Arc<TrackingState>,
    /// Hashes of this shard with fields that have a TTL, each with a time no field of it
    /// expires before (a lower bound): what the sweep of expired fields
    /// ([`Keyspace::expire_fields`]) visits. Kept by `Db::set` and `Db::update`; an entry
    /// may outlive its key (evicted, expired), and the sweep drops it when it comes due.
    pub(crate) volatile_hashes: HashMap<Key, u64, ahash::RandomState>,
}

impl Shard {
    fn new(caches: &Caches, tracking: Arc<TrackingState>, region: Option<&Arc<Region>>) -> Shard {
        Shard {
            tables: caches
                .iter()
                .map(|c| Table::new(c.clone(), region))
                .collect(),
            watchers: HashMap::default(),
            tracked: TrackTable::default(),
            invalid: Vec::new(),
            tracking,
            volatile_hashes: HashMap::default(),
        }
    }

    /// Tells the watchers and the L1s of `key` (of cache `c`) that it changed.
    #[inline]
    pub(crate) fn modified(&mut self, c: CacheId, key: &[u8]) {
        if !self.watchers.is_empty()
            && let Some(ws) = self.watchers.get(key)
        {
            for w in ws {
                w.dirty.store(true, Ordering::Release);
            }
        }
        let bcast = self.tracking.any_bcast();
        if self.tracked.is_empty() && !bcast {
            return;
        }
        let clients = self.tracked.take(key, &self.tracking).unwrap_or_default();
        if !clients.is_empty() || bcast {
            let strong = self.tables[c].cache.is_strong();
            self.invalid
                .push(Invalidation::of_key(key, clients, bcast, strong));
        }
    }

    /// Tells the watchers of every key present in `tables` (all when `None`) that it is
    /// gone: FLUSHALL and CACHE.CLEAR, which dirty only watched keys that existed. Tracked
    /// keys are forgotten (FLUSHALL: the caller flushes every L1) or, for one cache,
    /// invalidated one by one.
    pub(crate) fn cleared(&mut self, table: Option<CacheId>) {
        for (k, ws) in &self.watchers {
            let present = match table {
                Some(c) => self.tables[c].contains(k),
                None => self.tables.iter().any(|t| t.contains(k)),
            };
            if present {
                for w in ws {
                    w.dirty.store(true, Ordering::Release);
                }
            }
        }
        match table {
            None => self.tracked.clear(&self.tracking),
            Some(c) => {
                let t = &self.tables[c];
                let strong = t.cache.is_strong();
                for (k, ids) in self.tracked.take_where(&self.tracking, |k| t.contains(k)) {
                    self.invalid
                        .push(Invalidation::of_key(&k, ids, false, strong));
                }
            }
        }
    }

    /// Remembers that `client` read `key` (CLIENT TRACKING); if the table is over
    /// `tracking-table-max-keys`, another key is dropped from it and invalidated.
    pub(crate) fn track(&mut self, key: &[u8], client: u64) {
        if let Some((k, ids)) = self.tracked.track(key, client, &self.tracking) {
            self.invalid
                .push(Invalidation::of_key(&k, ids, false, false));
        }
    }

    /// Removes the entry at `i` of table `c`, telling its watchers and L1s.
    pub(crate) fn remove(&mut self, c: CacheId, i: usize, why: Removal) -> Option<Key> {
        let key = self.tables[c].remove(i, why)?;
        self.modified(c, &key);
        if !self.volatile_hashes.is_empty() {
            self.volatile_hashes.remove(key.as_slice());
        }
        Some(key)
    }

    /// Records whether the value now at `key` is a hash with volatile fields, and when
    /// its first field may expire (`None`: it is not, or has none).
    pub(crate) fn note_volatile(&mut self, key: &[u8], next: Option<u64>) {
        match next {
            Some(at) => {
                self.volatile_hashes.insert(Key::from_slice(key), at);
            }
            None if !self.volatile_hashes.is_empty() => {
                self.volatile_hashes.remove(key);
            }
            None => {}
        }
    }

    /// Balances table `c`'s tiers (see [`Table::balance`]), telling watchers and L1s of
    /// the entries that making room removed; returns those entries.
    pub(crate) fn balance(
        &mut self,
        c: CacheId,
        now: u64,
        max: usize,
    ) -> (Result<usize, NoRoom>, Gone) {
        let mut gone = Vec::new();
        let r = self.tables[c].balance(now, true, max, &mut gone);
        for (k, _) in &gone {
            self.modified(c, k);
        }
        (r, gone)
    }

    /// Evicts one entry of table `c` chosen by `how`, sparing `spare`.
    pub(crate) fn evict_one(
        &mut self,
        c: CacheId,
        how: Victim,
        now: u64,
        spare: &[u8],
    ) -> Option<Key> {
        let (_, i) = self.tables[c].victim(how, now, spare)?;
        self.remove(c, i, Removal::Evicted)
    }
}

/// Which shards a command needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardSet {
    /// None: the command does not touch keys.
    None,
    /// One shard (every single-key command).
    One(usize),
    /// Several shards, any order, duplicates allowed.
    Some(Vec<usize>),
    /// Every shard (KEYS, SCAN, DBSIZE, FLUSHALL, INFO, transactions over many keys).
    All,
}

/// The mutex guards a command holds, in ascending shard order.
pub(crate) enum Locks<'a> {
    None,
    One(usize, MutexGuard<'a, Shard>),
    Many(Vec<(usize, MutexGuard<'a, Shard>)>),
}

impl Locks<'_> {
    pub(crate) fn get(&mut self, idx: usize) -> Option<&mut Shard> {
        match self {
            Locks::None => None,
            Locks::One(i, g) => (*i == idx).then_some(&mut **g),
            Locks::Many(v) => match v.binary_search_by_key(&idx, |(i, _)| *i) {
                Ok(pos) => Some(&mut *v[pos].1),
                Err(_) => None,
            },
        }
    }

    /// Every locked shard.
    pub(crate) fn all(&mut self) -> impl Iterator<Item = &mut Shard> {
        let (one, many) = match self {
            Locks::None => (None, &mut [][..]),
            Locks::One(_, g) => (Some(&mut **g), &mut [][..]),
            Locks::Many(v) => (None, &mut v[..]),
        };
        one.into_iter()
            .chain(many.iter_mut().map(|(_, g)| &mut **g))
    }
}

/// A record a command's effects became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Its log sequence number (0 on a mirror, which does not number its own effects).
    pub lsn: u64,
    /// It changed a strong cache: the reply waits until the mirrors have it.
    pub strong: bool,
}

/// The whole key space of one server.
pub struct Keyspace {
    /// The shards; each mutex is held only for the duration of one command (or one EXEC).
    shards: Box<[Mutex<Shard>]>,
    /// Picks a key's shard, with fixed seeds (see [`ROUTER_SEEDS`]). Cluster placement
    /// does not use it (CRC16 slots do).
    router: ahash::RandomState,
    /// Whether `Db` views record effects even with no sink (tests read them back).
    record_effects: bool,
    /// Where applied effects go (the fast-restart log). Set once, when loading is done:
    /// what the loader applies is already on disk.
    sink: OnceLock<Arc<dyn EffectSink>>,
    /// The named caches: which table a key lives in, and each cache's policy.
    caches: Arc<Caches>,
    /// Commands waiting to lock every shard: a long job that locks them all in chunks (the
    /// loader) steps aside for them between chunks.
    waiting_for_all: AtomicUsize,
    /// Where the `maxmemory` eviction continues (round-robin over shards).
    evict_cursor: AtomicUsize,
    /// Tracking figures and limits, shared with every shard.
    tracking: Arc<TrackingState>,
    /// Invalidations from work no command waits for (active expiry, `maxmemory` and
    /// cache-shrink eviction, trimming the tracking table): the server delivers them.
    /// A mutex, not a per-command buffer, because that work locks shards on its own.
    mailbox: Mutex<Vec<Invalidation>>,
    /// Whether expiries and evictions are collected for keyspace notifications (the
    /// server sets it from `notify-keyspace-events`); the store never publishes them.
    removals_wanted: AtomicBool,
    /// Keys expired or evicted by work no command waits for (active expiry, eviction),
    /// while `removals_wanted`: the server takes and publishes them.
    removals: Mutex<Vec<(bytes::Bytes, Removal)>>,
    /// Whether commands report the keys they create (keyspace notification `new`).
    new_keys_wanted: AtomicBool,
    /// The off-heap tier's memory map, if there is one.
    region: Option<Arc<Region>>,
}

impl Keyspace {
    /// An empty keyspace with these caches, no limit on the tracking table and no
    /// off-heap tier.
    pub fn new(record_effects: bool, caches: Arc<Caches>) -> Keyspace {
        Keyspace::with_parts(record_effects, caches, Arc::default(), None)
    }

    /// An empty keyspace with these caches, this tracking state (whose
    /// `tracking-table-max-keys` cell the server's settings share) and, if given, an
    /// off-heap tier in `region` (the caches' pools then bound the heap).
    pub fn with_parts(
        record_effects: bool,
        caches: Arc<Caches>,
        tracking: Arc<TrackingState>,
        region: Option<Arc<Region>>,
    ) -> Keyspace {
        Keyspace {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Shard::new(&caches, tracking.clone(), region.as_ref())))
                .collect(),
            router: ahash::RandomState::with_seeds(
                ROUTER_SEEDS[0],
                ROUTER_SEEDS[1],
                ROUTER_SEEDS[2],
                ROUTER_SEEDS[3],
            ),
            record_effects,
            sink: OnceLock::new(),
            caches,
            waiting_for_all: AtomicUsize::new(0),
            evict_cursor: AtomicUsize::new(0),
            tracking,
            mailbox: Mutex::new(Vec::new()),
            removals_wanted: AtomicBool::new(false),
            removals: Mutex::new(Vec::new()),
            new_keys_wanted: AtomicBool::new(false),
            region,
        }
    }

    /// Sends every later effect to `sink`. Only the first call takes effect.
    pub fn set_sink(&self, sink: Arc<dyn EffectSink>) {
        let _ = self.sink.set(sink);
    }

    /// Whether effects are recorded (a sink is set, or a test asked for them).
    pub(crate) fn records(&self) -> bool {
        self.record_effects || self.sink.get().is_some()
    }

    /// Appends `effects` to the sink, if there is one, emptying them; the record's lsn and
    /// whether it touched a strong cache. Callers hold the locks of the shards the effects
    /// touched.
    pub(crate) fn commit(&self, effects: &mut Vec<Effect>) -> Option<Committed> {
        if effects.is_empty() {
            return None;
        }
        let committed = self.sink.get().map(|s| Committed {
            lsn: s.append(effects),
            strong: self.touches_strong(effects),
        });
        effects.clear();
        committed
    }

    /// Whether any of `effects` changes a strong cache (its writer waits for the mirrors).
    fn touches_strong(&self, effects: &[Effect]) -> bool {
        let caches = &self.caches;
        if !caches.iter().any(|c| c.is_strong()) {
            return false;
        }
        let strong_key = |key: &[u8]| caches.get(caches.resolve(key)).is_strong();
        effects.iter().any(|e| match e {
            Effect::Set { key, .. }
            | Effect::Del { key }
            | Effect::Expire { key, .. }
            | Effect::Patch { key, .. }
            | Effect::ListOps { key, .. } => strong_key(key),
            Effect::FlushAll => true,
            Effect::ClearCache { cache } => caches
                .by_name(cache.as_bytes())
                .is_some_and(|c| caches.get(c).is_strong()),
        })
    }

    /// The `Del` record of `key` if effects are recorded (for removals outside a [`Db`]).
    pub(crate) fn record_del(&self, fx: &mut Vec<Effect>, key: &[u8]) {
        if self.records() {
            fx.push(Effect::Del {
                key: bytes::Bytes::copy_from_slice(key),
            });
        }
    }

    /// Calls `f` with every live entry of shard `i` (key, entry) while holding its lock:
    /// a rewrite's snapshot, one shard at a time so writes elsewhere go on.
    pub fn visit_shard(&self, i: usize, now: u64, mut f: impl FnMut(&[u8], EntryRef<'_>)) {
        let s = self.shards[i].lock();
        for t in s.tables.iter() {
            for pos in 0..t.len() {
                if let Some((k, e)) = t.get_index(pos)
                    && t.expiry(&e, now).is_none()
                {
                    f(k, e);
                }
            }
        }
    }

    /// The off-heap region, if there is an off-heap tier.
    pub fn region(&self) -> Option<&Arc<Region>> {
        self.region.as_ref()
    }

    /// Tracking figures and limits.
    pub fn tracking(&self) -> &Arc<TrackingState> {
        &self.tracking
    }

    /// Starts or stops collecting expired and evicted keys for keyspace notifications.
    pub fn collect_removals(&self, on: bool) {
        self.removals_wanted.store(on, Ordering::Relaxed);
        if !on {
            self.removals.lock().clear();
        }
    }

    /// Starts or stops reporting the keys commands create (`new` notifications).
    pub fn collect_new_keys(&self, on: bool) {
        self.new_keys_wanted.store(on, Ordering::Relaxed);
    }

    /// Whether commands report the keys they create.
    pub fn new_keys_wanted(&self) -> bool {
        self.new_keys_wanted.load(Ordering::Relaxed)
    }

    /// Whether expired and evicted keys are collected.
    pub fn removals_wanted(&self) -> bool {
        self.removals_wanted.load(Ordering::Relaxed)
    }

    /// Takes the keys expired or evicted by work no command waited for (see `removals`).
    pub fn take_removals(&self) -> Vec<(bytes::Bytes, Removal)> {
        std::mem::take(&mut *self.removals.lock())
    }

    /// Remembers a key that background work expired or evicted, if anyone listens.
    fn removed(&self, key: &[u8], why: Removal) {
        if why != Removal::Deleted && self.removals_wanted() {
            self.removals
                .lock()
                .push((bytes::Bytes::copy_from_slice(key), why));
        }
    }

    /// Takes the invalidations of work no command waited for (see `mailbox`).
    pub fn take_mailbox(&self) -> Vec<Invalidation> {
        std::mem::take(&mut *self.mailbox.lock())
    }

    /// Adds invalidations to the mailbox.
    pub(crate) fn post_all(&self, mut v: Vec<Invalidation>) {
        self.mailbox.lock().append(&mut v);
    }

    /// Moves `s`'s pending invalidations to the mailbox (for work outside a [`Db`]).
    pub(crate) fn post(&self, s: &mut Shard) {
        if !s.invalid.is_empty() {
            self.mailbox.lock().append(&mut s.invalid);
        }
    }

    /// Drops random keys from the tracking table, invalidating them, until it is within
    /// `tracking-table-max-keys` (after CONFIG SET lowered it). Returns the keys dropped.
    pub fn trim_tracking(&self) -> usize {
        let mut dropped = 0;
        let mut empty = 0;
        let mut i = fastrand::usize(..SHARDS);
        while self.tracking.over_limit() && empty < SHARDS {
            let mut s = self.shards[i].lock();
            match s.tracked.evict_one(&self.tracking) {
                Some((k, ids)) => {
                    s.invalid.push(Invalidation::of_key(&k, ids, false, false));
                    self.post(&mut s);
                    dropped += 1;
                    empty = 0;
                }
                None => empty += 1,
            }
            i = (i + 1) % SHARDS;
        }
        dropped
    }

    /// Forgets every tracked key: the hook for losing a key range (role change, slot
    /// move). The caller then sends every tracking client a flush
    /// ([`Invalidation::flush_all`]), so no L1 keeps a key it can no longer be told about.
    pub fn untrack_all(&self) {
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            s.tracked.clear(&self.tracking);
            self.post(&mut s);
        }
    }

    /// The caches.
    pub fn caches(&self) -> &Arc<Caches> {
        &self.caches
    }

    /// The shards of eight fixed probe keys: two processes whose probes agree place every
    /// key in the same shard (a snapshot records it; the loader compares).
    pub fn router_probe(&self) -> [u8; 8] {
        let mut probe = [0u8; 8];
        for (i, p) in probe.iter_mut().enumerate() {
            *p = self.shard_of(format!("terrace-router-probe-{i}").as_bytes()) as u8;
        }
        probe
    }

    /// The shard holding `key`.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        (self.router.hash_one(key) as usize) & (SHARDS - 1)
    }

    /// Locks shard `i` if no one holds it (eviction from a shard a command did not lock).
    pub(crate) fn try_lock(&self, i: usize) -> Option<MutexGuard<'_, Shard>> {
        self.shards.get(i)?.try_lock()
    }

    /// Makes room in every shard for `per_shard` more entries of cache `c` (a load that
    /// knows its size: keys spread evenly over shards).
    pub fn reserve(&self, c: CacheId, per_shard: usize) {
        for shard in self.shards.iter() {
            if let Some(t) = shard.lock().tables.get_mut(c) {
                t.reserve(per_shard);
            }
        }
    }

    /// How many callers are waiting to lock every shard.
    pub fn waiting_for_all(&self) -> usize {
        self.waiting_for_all.load(Ordering::Acquire)
    }

    /// Locks `set` and returns the view a command works through. `now` is the command's
    /// clock (unix ms); `touch` is false for CLIENT NO-TOUCH connections.
    pub fn db(&self, set: ShardSet, now: u64, touch: bool) -> Db<'_> {
        let locks = match set {
            ShardSet::None => Locks::None,
            ShardSet::One(i) => Locks::One(i, self.shards[i].lock()),
            ShardSet::Some(mut v) => {
                v.sort_unstable();
                v.dedup();
                if let [i] = v[..] {
                    Locks::One(i, self.shards[i].lock())
                } else {
                    Locks::Many(v.into_iter().map(|i| (i, self.shards[i].lock())).collect())
                }
            }
            ShardSet::All => {
                self.waiting_for_all.fetch_add(1, Ordering::AcqRel);
                let locks = self
                    .shards
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (i, m.lock()))
                    .collect();
                self.waiting_for_all.fetch_sub(1, Ordering::AcqRel);
                Locks::Many(locks)
            }
        };
        Db::new(self, locks, now, touch, self.records())
    }

    /// A view of every shard for a mirror applying its active's records: it records no
    /// effects (records are logged as received, not re-encoded), touches nothing and
    /// leaves cache limits to the active (whose evictions arrive as records).
    pub fn db_replica(&self, now: u64) -> Db<'_> {
        let mut db = self.db(ShardSet::All, now, false);
        db.as_replica();
        db
    }

    /// The active expiry cycle: sweeps up to `budget` entries of each table for expired
    /// TTLs and idle TTIs, locking one shard at a time. Returns the keys removed and
    /// whether another pass is worth it (some table had a quarter or more of what it
    /// examined expired, Redis's heuristic).
    pub fn expire_due(&self, now: u64, budget: usize) -> (usize, bool) {
        let (mut removed, mut more) = (0, false);
        let mut gone = Vec::new();
        let mut fx = Vec::new();
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            for c in 0..s.tables.len() {
                s.tables[c].drop_expired_segments(now, &mut gone);
                for (k, why) in gone.drain(..) {
                    s.modified(c, &k);
                    self.record_del(&mut fx, &k);
                    self.removed(&k, why);
                    removed += 1;
                }
                let (due, examined) = s.tables[c].due_entries(now, budget);
                more |= examined > 0 && due.len() * 4 >= examined;
                // Highest index first: a removal moves the last entry into its place.
                for (i, why) in due {
                    if let Some(k) = s.remove(c, i, why) {
                        self.record_del(&mut fx, &k);
                        self.removed(&k, why);
                    }
                    removed += 1;
                }
            }
            // Logged even though a deadline replays as a deletion anyway: an idle (TTI)
            // expiry is not in any record, and mirrors must drop what the active dropped.
            self.commit(&mut fx);
            self.post(&mut s);
        }
        (removed, more)
    }

    /// The active expiry of hash fields: in each shard, reclaims the expired fields of up to
    /// `budget` hashes whose first field TTL has passed (locking one shard at a time,
    /// through a [`Db`], so the new value is recorded, watchers and L1s are told, and a
    /// hash left empty is deleted). Returns the fields removed and, for each hash changed,
    /// its key and whether it was deleted (the server reports `hexpired`, and `del`).
    pub fn expire_fields(&self, now: u64, budget: usize) -> (usize, Vec<(bytes::Bytes, bool)>) {
        use super::types::HashV;
        let (mut fields, mut changed) = (0, Vec::new());
        for i in 0..SHARDS {
            if self.shards[i].lock().volatile_hashes.is_empty() {
                continue;
            }
            let mut db = self.db(ShardSet::One(i), now, false);
            let due = db.due_hashes(now, budget);
            for key in due {
                match db.update::<HashV, _>(&key, false, |h| {
                    let n = h.expire_fields(now);
                    ((n, h.next_expire()), n > 0)
                }) {
                    Ok(Some((n, _))) if n > 0 => {
                        fields += n;
                        let gone = !db.exists(&key).unwrap_or(false);
                        changed.push((bytes::Bytes::copy_from_slice(&key), gone));
                    }
                    // Nothing was due after all (a field with the earliest TTL was
                    // removed or persisted): the hash's own bound is exact now.
                    Ok(Some((_, next))) => db.note_volatile(&key, next),
                    // Gone, or no longer a hash: forget it.
                    Ok(None) | Err(super::db::CollError::WrongType) => db.note_volatile(&key, None),
                    // Reclaimed, but making room for it failed: it is still indexed.
                    Err(_) => {}
                }
            }
        }
        (fields, changed)
    }

    /// Moves heap entries off-heap in every table whose cache's heap pool is over budget
    /// (the cron finishes what writes left: a write moves only a few). Returns the entries
    /// that making room off-heap expired and evicted.
    pub fn balance_tiers(&self, now: u64) -> (u64, u64) {
        let (mut expired, mut evicted) = (0, 0);
        if self.region.is_none() {
            return (expired, evicted);
        }
        let mut fx = Vec::new();
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            for c in 0..s.tables.len() {
                if !s.tables[c].cache.pools.heap.over() {
                    continue;
                }
                let (_, gone) = s.balance(c, now, MAX_EVICTIONS_PER_CALL as usize / SHARDS);
                for (k, why) in gone {
                    self.record_del(&mut fx, &k);
                    self.removed(&k, why);
                    match why {
                        Removal::Evicted => evicted += 1,
                        _ => expired += 1,
                    }
                }
            }
            self.commit(&mut fx);
            self.post(&mut s);
        }
        (expired, evicted)
    }

    /// Evicts entries by `how` across all caches until the caches' memory is at most
    /// `limit` (the server-wide `maxmemory` backstop). Returns the number evicted, or
    /// `None` if still over the limit with nothing left to evict.
    pub fn evict_to(&self, limit: u64, how: Victim, now: u64) -> Option<u64> {
        self.evict_while(|| self.caches.used_memory() > limit, None, how, now)
    }

    /// Evicts from cache `c` by its own policy until it is within its limits (after
    /// CACHE.CONFIG lowered them, or writes raced past them). Returns the number evicted;
    /// a cache with eviction `none` keeps its entries.
    pub fn shrink_cache(&self, c: CacheId, now: u64) -> u64 {
        let cache = self.caches.get(c);
        let (p, st) = (&cache.policy, &cache.stats);
        let Some(how) = Victim::of_cache(p.eviction()) else {
            return 0;
        };
        let over = || {
            (p.max_entries() != 0 && st.entries() > p.max_entries())
                || (p.max_memory() != 0 && st.memory() > p.max_memory())
        };
        self.evict_while(over, Some(c), how, now).unwrap_or(0)
    }

    /// Evicts while `over` holds, from cache `only` or from all caches: each eviction
    /// takes the best victim of a window of shards (locked one at a time), so the choice
    /// is close to keyspace-wide LRU/LFU/TTL, and the window moves on round-robin.
    /// `None` when no shard has anything left to evict and `over` still holds.
    fn evict_while(
        &self,
        over: impl Fn() -> bool,
        only: Option<CacheId>,
        how: Victim,
        now: u64,
    ) -> Option<u64> {
        let mut evicted = 0;
        let mut fruitless = 0;
        // A local cursor, seeded from the shared one: consecutive windows of this call
        // cover every shard before it gives up, whatever other evictors do.
        let mut cursor = self.evict_cursor.fetch_add(EVICT_WINDOW, Ordering::Relaxed);
        while over() {
            if fruitless >= SHARDS / EVICT_WINDOW {
                return None;
            }
            if evicted >= MAX_EVICTIONS_PER_CALL {
                // Bounded latency for the command that pays for it; the next one goes on.
                break;
            }
            let start = cursor;
            cursor = cursor.wrapping_add(EVICT_WINDOW);
            let mut best: Option<(Score, usize, CacheId)> = None;
            for off in 0..EVICT_WINDOW {
                let i = (start + off) % SHARDS;
                let s = self.shards[i].lock();
                let tables = only.map_or(0..s.tables.len(), |c| c..c + 1);
                for c in tables {
                    if let Some((score, _)) = s.tables[c].victim(how, now, b"")
                        && best.is_none_or(|(b, _, _)| score < b)
                    {
                        best = Some((score, i, c));
                    }
                }
            }
            let done = best.is_some_and(|(_, i, c)| {
                let mut s = self.shards[i].lock();
                let Some(k) = s.evict_one(c, how, now, b"") else {
                    return false;
                };
                let mut fx = Vec::new();
                self.record_del(&mut fx, &k);
                self.removed(&k, Removal::Evicted);
                self.commit(&mut fx);
                self.post(&mut s);
                true
            });
            if done {
                evicted += 1;
                fruitless = 0;
            } else {
                fruitless += 1;
            }
        }
        Some(evicted)
    }

    /// Removes `client`'s watches on `keys`.
    pub fn unwatch(&self, keys: &[Key], client: u64) {
        for k in keys {
            let mut s = self.shards[self.shard_of(k)].lock();
            if let Some(ws) = s.watchers.get_mut(k.as_slice()) {
                ws.retain(|w| w.client != client);
                if ws.is_empty() {
                    s.watchers.remove(k.as_slice());
                }
            }
        }
    }
}
