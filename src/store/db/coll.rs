//! Collection access through the [`Db`]: the one place a hash, list, set or sorted set is
//! read or changed, so the type check (WRONGTYPE), tier moves, memory accounting, cache
//! limits, watchers, L1 invalidation, blocked-client wake-ups and the effect record are
//! done alike for every collection command.

use std::borrow::Cow;

use bytes::Bytes;

use super::{Db, NotLocked, Out, Ttl, WriteError, slot};
use crate::cache::stats::Removal;
use crate::store::effect::Effect;
use crate::store::entry::{EntryRef, Value, ValueRef};
use crate::store::keyspace::Shard;
use crate::store::types::{self, Coll, Kind};

/// Why a collection access failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollError {
    /// See [`NotLocked`].
    #[error(transparent)]
    NotLocked(#[from] NotLocked),
    /// The key holds another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// The write needs room its cache cannot make.
    #[error(transparent)]
    Full(WriteError),
}

impl From<WriteError> for CollError {
    fn from(e: WriteError) -> CollError {
        match e {
            WriteError::NotLocked(e) => CollError::NotLocked(e),
            full => CollError::Full(full),
        }
    }
}

/// The collection of type `C` in `e`: borrowed on the heap, decoded when packed
/// off-heap; WRONGTYPE for another type.
pub fn coll_of<'e, C: Coll>(e: EntryRef<'e>) -> Result<Cow<'e, C>, CollError> {
    match e.value() {
        ValueRef::Heap(v) => C::of(v).map(Cow::Borrowed).ok_or(CollError::WrongType),
        ValueRef::Packed(k, b) if k == C::KIND => Ok(Cow::Owned(C::decode(b).unwrap_or_default())),
        _ => Err(CollError::WrongType),
    }
}

/// What every in-place change of a collection does after it: deletes an emptied one
/// (recording a Del), or tells its watchers and L1s, indexes a hash's next field expiry
/// for the sweep, marks a list or sorted set ready for blocked clients, and records
/// `effect`, or the whole new value when there is none.
#[allow(clippy::too_many_arguments)]
fn changed_in_place(
    s: &mut Shard,
    out: &mut Out,
    c: crate::cache::CacheId,
    i: usize,
    key: &[u8],
    kind: Kind,
    empty: bool,
    effect: Option<Effect>,
) {
    if empty {
        s.remove(c, i, Removal::Deleted);
        out.emit(|| Effect::Del {
            key: Bytes::copy_from_slice(key),
        });
        return;
    }
    s.modified(c, key);
    if matches!(kind, Kind::List | Kind::ZSet) {
        out.ready.push(Bytes::copy_from_slice(key));
    }
    if kind == Kind::Hash {
        let next = match s.tables[c].get(i).map(|e| e.value()) {
            Some(ValueRef::Heap(Value::Hash(h))) => h.next_expire(),
            _ => None,
        };
        s.note_volatile(key, next);
    }
    let effect = effect.or_else(|| {
        let e = s.tables[c].get(i).filter(|_| out.record)?;
        Some(Effect::Set {
            key: Bytes::copy_from_slice(key),
            value: e.value().to_value(),
            expire_at: e.expire_at(),
        })
    });
    if let Some(e) = effect {
        out.emit(|| e);
    }
}

impl Db<'_> {
    /// Reads the collection at `key` (a read lookup: counts a hit or miss and records the
    /// access); `None` if the key does not exist, WRONGTYPE if it holds another type.
    pub fn read<C: Coll>(&mut self, key: &[u8]) -> Result<Option<Cow<'_, C>>, CollError> {
        match self.get(key)? {
            Some(e) => coll_of(e).map(Some),
            None => Ok(None),
        }
    }

    /// Like [`read`](Self::read) without counting or touching (a write's look before it
    /// changes anything, e.g. the source of SMOVE or a STORE's inputs).
    pub fn peek_coll<C: Coll>(&mut self, key: &[u8]) -> Result<Option<Cow<'_, C>>, CollError> {
        match self.peek(key)? {
            Some(e) => coll_of(e).map(Some),
            None => Ok(None),
        }
    }

    /// The type of the value at `key`, if any (no counting, no touching).
    pub fn kind_of(&mut self, key: &[u8]) -> Result<Option<Kind>, NotLocked> {
        Ok(self.peek(key)?.map(|e| e.value().kind()))
    }

    /// Changes the collection at `key` in place: `f` gets it and returns its result and
    /// whether it changed anything. A missing key is created (as an empty collection
    /// handed to `f`) only when `create`; `Ok(None)` otherwise. WRONGTYPE if the key holds
    /// another type, before `f` runs.
    ///
    /// After a change the key's watchers and L1s are told, lists and sorted sets wake
    /// their blocked clients, and the new value is recorded (the effect is the whole
    /// value: effects are idempotent states, DESIGN.md). A collection left empty is
    /// deleted, as Redis does. The key keeps its TTL.
    pub fn update<C: Coll, R>(
        &mut self,
        key: &[u8],
        create: bool,
        f: impl FnOnce(&mut C) -> (R, bool),
    ) -> Result<Option<R>, CollError> {
        let now = self.now;
        let (s, c, i) = slot(self.ks, &mut self.locks, now, &mut self.out, key)?;
        let Some(i) = i else {
            if !create {
                return Ok(None);
            }
            let mut fresh = C::default();
            let (r, changed) = f(&mut fresh);
            if changed && !fresh.is_empty() {
                self.set(key, fresh.into_value(), Ttl::Clear)?;
            }
            return Ok(Some(r));
        };
        if s.tables[c].get(i).map(|e| e.value().kind()) != Some(C::KIND) {
            return Err(CollError::WrongType);
        }
        let record = self.out.record;
        let done = s.tables[c].mutate(i, now, |v| {
            C::of_mut(v).map(|coll| {
                let big = record && coll.len() >= types::PATCH_MIN;
                let journaled = big && coll.journal().map(|j| j.start()).is_some();
                let listed = big && coll.list_journal().map(|j| j.start()).is_some();
                let from = coll.version();
                let (r, changed) = f(coll);
                if changed {
                    coll.set_version(from + 1);
                }
                let patch = match coll.journal() {
                    Some(j) if journaled => {
                        let touched = j.finish();
                        Some(coll.patch_of(&touched))
                    }
                    _ => None,
                };
                let list_ops = match coll.list_journal() {
                    Some(j) if listed => j.finish().map(|ops| (from, ops)),
                    _ => None,
                };
                (r, changed, coll.is_empty(), patch, list_ops)
            })
        });
        let Some(Some((r, changed, empty, patch, list_ops))) = done else {
            return Err(CollError::WrongType);
        };
        if !changed {
            return Ok(Some(r));
        }
        let effect = match (list_ops, patch) {
            (Some((from, ops)), _) => Some(Effect::ListOps {
                key: Bytes::copy_from_slice(key),
                from,
                ops,
            }),
            (None, Some((upserts, removed))) => Some(Effect::Patch {
                key: Bytes::copy_from_slice(key),
                upserts: upserts.into_value(),
                removed,
            }),
            (None, None) => None,
        };
        changed_in_place(s, &mut self.out, c, i, key, C::KIND, empty, effect);
        if empty {
            return Ok(Some(r));
        }
        let shard = self.ks.shard_of(key);
        if !self.replica {
            self.enforce_limits(key, c)?;
        }
        self.balance(shard, c);
        Ok(Some(r))
    }

    /// After a collection grew in place: evicts other entries of its cache until the
    /// cache is back within its limits (the grown key is spared). A cache that evicts
    /// nothing stays over its limit until entries are removed, as a Redis write that
    /// crosses `maxmemory` is let through; the next growing write is refused.
    fn enforce_limits(&mut self, key: &[u8], c: crate::cache::CacheId) -> Result<(), WriteError> {
        let cache = self.ks.caches().get(c);
        if !cache.policy.is_bounded() || cache.policy.eviction() == crate::config::Eviction::None {
            return Ok(());
        }
        self.make_room(key, c, 1, 0).map(|_| ())
    }

    /// Applies an [`Effect::Patch`] (replay of the log or of the active's stream): writes
    /// the elements of `upserts` into the collection at `key` and removes `removed`. A
    /// missing key, or one of another type, becomes `upserts` (see [`Effect::Patch`]).
    pub fn patch<'r>(
        &mut self,
        key: &[u8],
        upserts: crate::store::Value,
        removed: impl Iterator<Item = &'r [u8]>,
    ) -> Result<(), WriteError> {
        let now = self.now;
        let kind = upserts.kind();
        let (s, c, i) = slot(self.ks, &mut self.locks, now, &mut self.out, key)?;
        let same = i
            .and_then(|i| s.tables[c].get(i))
            .is_some_and(|e| e.value().kind() == kind);
        let Some(i) = i.filter(|_| same) else {
            if types::len_of(&upserts) > 0 {
                self.set(key, upserts, Ttl::Keep)?;
            }
            return Ok(());
        };
        let removed: Vec<&[u8]> = removed.collect();
        let empty = s.tables[c].mutate(i, now, |v| {
            types::merge(v, &upserts);
            for r in &removed {
                types::remove_elem(v, r);
            }
            types::len_of(v) == 0
        });
        let effect = Effect::Patch {
            key: Bytes::copy_from_slice(key),
            upserts,
            removed: removed.iter().map(|r| Bytes::copy_from_slice(r)).collect(),
        };
        let empty = empty == Some(true);
        changed_in_place(s, &mut self.out, c, i, key, kind, empty, Some(effect));
        if empty {
            return Ok(());
        }
        self.balance(self.ks.shard_of(key), c);
        Ok(())
    }

    /// Applies an [`Effect::ListOps`] (replay of the log or of the active's stream) if the
    /// list at `key` is at version `from`; false (nothing done) otherwise: a missing key,
    /// another type, or a list a fuzzy snapshot already holds the change in.
    pub fn list_ops(
        &mut self,
        key: &[u8],
        from: u64,
        ops: impl Iterator<Item = types::ListOp>,
    ) -> Result<bool, NotLocked> {
        let now = self.now;
        let (s, c, i) = slot(self.ks, &mut self.locks, now, &mut self.out, key)?;
        let Some(i) = i else {
            return Ok(false);
        };
        let at = match s.tables[c].get(i).map(|e| e.value()) {
            Some(ValueRef::Heap(Value::List(l))) => l.version() == from,
            Some(ValueRef::Packed(Kind::List, b)) => types::Reader::new(b).varint() == Some(from),
            _ => false,
        };
        if !at {
            return Ok(false);
        }
        let ops: Vec<types::ListOp> = ops.collect();
        let empty = s.tables[c].mutate(i, now, |v| {
            let Value::List(l) = v else {
                return false;
            };
            for op in &ops {
                match op {
                    types::ListOp::PushFront(b) => l.push_front(b),
                    types::ListOp::PushBack(b) => l.push_back(b),
                    types::ListOp::PopFront => {
                        l.pop_front();
                    }
                    types::ListOp::PopBack => {
                        l.pop_back();
                    }
                }
            }
            l.set_version(from + 1);
            l.is_empty()
        });
        let effect = Effect::ListOps {
            key: Bytes::copy_from_slice(key),
            from,
            ops,
        };
        let empty = empty == Some(true);
        changed_in_place(s, &mut self.out, c, i, key, Kind::List, empty, Some(effect));
        if empty {
            return Ok(true);
        }
        self.balance(self.ks.shard_of(key), c);
        Ok(true)
    }

    /// Up to `max` hashes of the locked shards whose first field TTL may have passed at
    /// `now` (see [`Keyspace::expire_fields`](crate::store::Keyspace::expire_fields)).
    pub fn due_hashes(&mut self, now: u64, max: usize) -> Vec<crate::store::entry::Key> {
        let mut out = Vec::new();
        for s in self.locks.all() {
            out.extend(
                s.volatile_hashes
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(k, _)| k.clone())
                    .take(max.saturating_sub(out.len())),
            );
        }
        out
    }

    /// Records when the first field of the hash at `key` may expire (`None`: it has no
    /// volatile field, is gone or is no longer a hash), for the sweep.
    pub fn note_volatile(&mut self, key: &[u8], next: Option<u64>) {
        if let Some(s) = self.locks.get(self.ks.shard_of(key)) {
            s.note_volatile(key, next);
        }
    }

    /// The keys of lists and sorted sets that gained elements, for the server to wake the
    /// clients blocked on them.
    pub fn take_ready(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.out.ready)
    }
}
