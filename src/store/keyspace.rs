//! The sharded keyspace: keys hash (ahash) to a fixed number of shards, each behind its
//! own mutex, so commands on different keys run in parallel on the runtime's threads.
//!
//! A command locks the shards of all its keys up front, in ascending shard order (no
//! deadlock), and works through the resulting [`Db`] view; a multi-key command or a
//! transaction is therefore atomic with respect to every other client.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use parking_lot::{Mutex, MutexGuard};

use super::db::Db;
use super::entry::{Entry, Key};

/// Number of shards: a power of two well above the core count, so two commands rarely
/// contend for one mutex.
pub const SHARDS: usize = 64;

/// One shard: a slice of the key space.
#[derive(Debug, Default)]
pub struct Shard {
    /// Keys in an insertion-ordered map: O(1) random access for RANDOMKEY and eviction
    /// sampling, and a stable index order for SCAN cursors.
    pub(crate) map: IndexMap<Key, Entry, ahash::RandomState>,
    /// Keys with a TTL ordered by deadline, so the active expiry cycle reclaims exactly
    /// the keys that are due without scanning the map.
    pub(crate) expires: BTreeSet<(u64, Key)>,
    /// Bytes charged to entries in this shard (see `Entry::mem`).
    pub(crate) used: usize,
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
        let v: Vec<&mut Shard> = match self {
            Locks::None => Vec::new(),
            Locks::One(_, g) => vec![&mut **g],
            Locks::Many(v) => v.iter_mut().map(|(_, g)| &mut **g).collect(),
        };
        v.into_iter()
    }

    /// True when every shard is locked.
    pub(crate) fn is_all(&self) -> bool {
        match self {
            Locks::None => false,
            Locks::One(..) => SHARDS == 1,
            Locks::Many(v) => v.len() == SHARDS,
        }
    }
}

/// The whole key space of one server.
pub struct Keyspace {
    /// The shards; each mutex is held only for the duration of one command (or one EXEC).
    shards: Box<[Mutex<Shard>]>,
    /// Picks a key's shard. Seeded once per process: shard placement is internal and
    /// never leaves the process (cluster placement uses CRC16 slots).
    router: ahash::RandomState,
    /// Whether `Db` views record effects (on when a log or mirrors consume them).
    record_effects: bool,
}

impl Keyspace {
    /// An empty keyspace.
    pub fn new(record_effects: bool) -> Keyspace {
        Keyspace {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            router: ahash::RandomState::new(),
            record_effects,
        }
    }

    /// The shard holding `key`.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        (self.router.hash_one(key) as usize) & (SHARDS - 1)
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
            ShardSet::All => Locks::Many(
                self.shards
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (i, m.lock()))
                    .collect(),
            ),
        };
        Db::new(self, locks, now, touch, self.record_effects)
    }

    /// The active expiry cycle: removes up to `budget` due keys from each shard, locking
    /// one shard at a time. Returns the keys removed and whether any shard had more due.
    pub fn expire_due(&self, now: u64, budget: usize) -> (usize, bool) {
        let (mut removed, mut more) = (0, false);
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            let mut n = 0;
            while n < budget {
                let Some((at, _)) = s.expires.first() else {
                    break;
                };
                if *at > now {
                    break;
                }
                if let Some((_, key)) = s.expires.pop_first() {
                    if let Some(e) = s.map.swap_remove(key.as_slice()) {
                        s.used = s.used.saturating_sub(e.mem(key.len()));
                    }
                    n += 1;
                }
            }
            more |= n == budget && s.expires.first().is_some_and(|(at, _)| *at <= now);
            removed += n;
        }
        (removed, more)
    }
}
