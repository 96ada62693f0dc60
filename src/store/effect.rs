//! Effects: what a write did, as idempotent records (DESIGN.md "one record format").
//!
//! An effect states the result, never the command: `INCR` becomes a `Set` of the new
//! value, `EXPIRE k 10` becomes an `Expire` at an absolute time. Replaying effects in order
//! on any prefix-consistent state gives the same data, which is what the fast-restart log
//! and replication rely on. The store's [`Db`](super::Db) is the only producer.

use bytes::Bytes;

use super::entry::Value;

/// One change to the keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The key now holds `value`, expiring at `expire_at` (unix ms; 0 = never).
    Set {
        /// The key.
        key: Bytes,
        /// The whole new value.
        value: Value,
        /// Absolute expiry.
        expire_at: u64,
    },
    /// The key no longer exists (DEL, expiry, eviction, the source of a RENAME).
    Del {
        /// The key.
        key: Bytes,
    },
    /// The key's expiry is now `at` (unix ms; 0 = persistent).
    Expire {
        /// The key.
        key: Bytes,
        /// Absolute expiry.
        at: u64,
    },
    /// Some elements of a collection changed: the elements of `upserts` (a collection of
    /// the key's type holding just those elements, with their new values, scores or
    /// field expiries) are written in and the `removed` elements taken out. A large
    /// collection's change is recorded this way instead of as its whole new value.
    ///
    /// Idempotent like the others: replaying it over a state that already holds it
    /// changes nothing. Replayed over a missing key, or one of another type (a fuzzy
    /// snapshot taken after a later DEL or SET), it stores `upserts` as the key's value,
    /// which a later record of that key then corrects. The key keeps its TTL.
    Patch {
        /// The key.
        key: Bytes,
        /// The elements written, as a collection (never a string).
        upserts: Value,
        /// The elements (hash fields, members) removed.
        removed: Vec<Bytes>,
    },
    /// Pushes and pops at the ends of the list at `key`, made on the list at version
    /// `from` (see `ListV`): applied, in order, only to the list at exactly that version,
    /// which then is at `from + 1`. So a replay over a fuzzy snapshot skips what the
    /// snapshot already holds, and a long list's push costs the log its item, not the list.
    ListOps {
        /// The key.
        key: Bytes,
        /// The list's version before the change.
        from: u64,
        /// The changes, in order.
        ops: Vec<crate::store::types::ListOp>,
    },
    /// Every key is gone.
    FlushAll,
    /// Every key of the named cache is gone (CACHE.CLEAR).
    ClearCache {
        /// The cache.
        cache: String,
    },
}

/// Where effects go once applied: the fast-restart log (and, through it, the mirrors).
///
/// Called while the shards the effects touched are still locked, so records of one key
/// reach the sink in the order they were applied.
pub trait EffectSink: Send + Sync + std::fmt::Debug {
    /// Appends one record holding `effects` (all of one command or transaction, so it is
    /// kept or lost as a whole) and returns its log sequence number.
    fn append(&self, effects: &[Effect]) -> u64;
}
