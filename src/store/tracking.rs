//! Server-assisted client-side caching, store side: the tracking table (which clients may
//! hold which keys in their L1) and the [`Invalidation`]s a change produces.
//!
//! It knows client ids only; delivering invalidations to connections is the server's job
//! (`server::tracking`). Each shard has its own table, changed under the shard's lock by
//! the command that reads or writes the key, so a read and its tracking entry are atomic
//! with respect to writes: a write either finds the entry (and invalidates it) or came
//! before the read, which then returned the written value.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use indexmap::IndexMap;

use super::entry::Key;

/// What a change tells the L1s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// The key, or `None` for every key (a flush: clients drop their whole L1).
    pub key: Option<Key>,
    /// Clients that read the key since it last changed (their tracking-table entry).
    pub clients: Vec<u64>,
    /// Also every BCAST client (with a matching prefix, for a key).
    pub bcast: bool,
    /// Also every tracking client (FLUSHALL, losing a key range).
    pub everyone: bool,
    /// The key's cache is strong: the writer's reply waits until this invalidation is on
    /// the tracking connections' sockets.
    pub strong: bool,
}

impl Invalidation {
    /// An invalidation of `key` for `clients`.
    pub fn of_key(key: &[u8], clients: Vec<u64>, bcast: bool, strong: bool) -> Invalidation {
        Invalidation {
            key: Some(Key::from_slice(key)),
            clients,
            bcast,
            everyone: false,
            strong,
        }
    }

    /// A flush of every L1 (FLUSHALL, or a key range this server no longer serves).
    pub fn flush_all(strong: bool) -> Invalidation {
        Invalidation {
            key: None,
            clients: Vec::new(),
            bcast: true,
            everyone: true,
            strong,
        }
    }
}

/// Figures and limits shared by every shard's table.
#[derive(Debug, Default)]
pub struct TrackingState {
    /// Keys in all tables (INFO `tracking_total_keys`).
    keys: AtomicUsize,
    /// (key, client) pairs in all tables (INFO `tracking_total_items`).
    items: AtomicUsize,
    /// Connected BCAST clients: while 0, changing an untracked key costs nothing.
    pub bcast_clients: AtomicUsize,
    /// `tracking-table-max-keys`: most keys all tables together hold; 0 = unlimited.
    /// Shared with the CONFIG setting.
    pub max_keys: Arc<AtomicU64>,
}

impl TrackingState {
    /// State with this `tracking-table-max-keys` cell.
    pub fn new(max_keys: Arc<AtomicU64>) -> TrackingState {
        TrackingState {
            max_keys,
            ..TrackingState::default()
        }
    }

    /// Keys tracked in all tables.
    pub fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// (key, client) pairs tracked in all tables.
    pub fn items(&self) -> usize {
        self.items.load(Ordering::Relaxed)
    }

    /// True when the tables hold more keys than `tracking-table-max-keys`.
    pub fn over_limit(&self) -> bool {
        let max = self.max_keys.load(Ordering::Relaxed);
        max != 0 && self.keys() as u64 > max
    }

    /// True while any BCAST client is connected.
    pub fn any_bcast(&self) -> bool {
        self.bcast_clients.load(Ordering::Relaxed) > 0
    }
}

/// One shard's tracking table: key → ids of the clients that read it since it last
/// changed. An entry is one-shot, as in Redis: the change that invalidates it removes it,
/// and the client's next read of the key tracks it again.
#[derive(Debug, Default)]
pub struct TrackTable {
    keys: IndexMap<Key, Vec<u64>, ahash::RandomState>,
}

impl TrackTable {
    /// True when no key of this shard is tracked.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of keys tracked in this shard.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Remembers that `client` read `key`. When that makes the tables exceed
    /// `tracking-table-max-keys`, a random other key of this shard is dropped and
    /// returned with its clients: they must be told, since no change will reach them.
    pub fn track(
        &mut self,
        key: &[u8],
        client: u64,
        st: &TrackingState,
    ) -> Option<(Key, Vec<u64>)> {
        match self.keys.get_mut(key) {
            Some(ids) => {
                if !ids.contains(&client) {
                    ids.push(client);
                    st.items.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            None => {
                self.keys.insert(Key::from_slice(key), vec![client]);
                st.keys.fetch_add(1, Ordering::Relaxed);
                st.items.fetch_add(1, Ordering::Relaxed);
                if st.over_limit() && self.keys.len() > 1 {
                    // Any key but the one just added (its last index).
                    let victim = fastrand::usize(..self.keys.len() - 1);
                    return self.remove_index(victim, st);
                }
                None
            }
        }
    }

    /// Removes `key`'s entry, returning the clients to invalidate.
    #[inline]
    pub fn take(&mut self, key: &[u8], st: &TrackingState) -> Option<Vec<u64>> {
        let i = self.keys.get_index_of(key)?;
        self.remove_index(i, st).map(|(_, ids)| ids)
    }

    /// Drops a random entry (the table is over `tracking-table-max-keys`), returning it.
    pub fn evict_one(&mut self, st: &TrackingState) -> Option<(Key, Vec<u64>)> {
        if self.keys.is_empty() {
            return None;
        }
        self.remove_index(fastrand::usize(..self.keys.len()), st)
    }

    /// Removes and returns every entry whose key satisfies `pred`.
    pub fn take_where(
        &mut self,
        st: &TrackingState,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> Vec<(Key, Vec<u64>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.keys.len() {
            let hit = self.keys.get_index(i).is_some_and(|(k, _)| pred(k));
            if hit && let Some(e) = self.remove_index(i, st) {
                out.push(e);
            } else {
                i += 1;
            }
        }
        out
    }

    /// Forgets every entry (a flush tells all clients at once instead).
    pub fn clear(&mut self, st: &TrackingState) {
        let items: usize = self.keys.values().map(Vec::len).sum();
        st.keys.fetch_sub(self.keys.len(), Ordering::Relaxed);
        st.items.fetch_sub(items, Ordering::Relaxed);
        self.keys.clear();
    }

    fn remove_index(&mut self, i: usize, st: &TrackingState) -> Option<(Key, Vec<u64>)> {
        let (k, ids) = self.keys.swap_remove_index(i)?;
        st.keys.fetch_sub(1, Ordering::Relaxed);
        st.items.fetch_sub(ids.len(), Ordering::Relaxed);
        Some((k, ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(max: u64) -> TrackingState {
        TrackingState::new(Arc::new(AtomicU64::new(max)))
    }

    #[test]
    fn entries_are_one_shot_and_counted() {
        let st = state(0);
        let mut t = TrackTable::default();
        assert_eq!(t.track(b"k", 1, &st), None);
        assert_eq!(t.track(b"k", 2, &st), None);
        assert_eq!(t.track(b"k", 1, &st), None, "a client is listed once");
        assert_eq!((st.keys(), st.items()), (1, 2));
        assert_eq!(t.take(b"k", &st), Some(vec![1, 2]));
        assert_eq!(t.take(b"k", &st), None, "the change consumed the entry");
        assert_eq!((st.keys(), st.items()), (0, 0));
    }

    #[test]
    fn the_key_limit_drops_another_key_and_reports_it() {
        let st = state(3);
        let mut t = TrackTable::default();
        for (i, k) in [b"a", b"b", b"c"].iter().enumerate() {
            assert_eq!(t.track(*k, i as u64, &st), None);
        }
        let (dropped, ids) = t.track(b"d", 9, &st).expect("over the limit");
        assert_ne!(dropped.as_slice(), b"d", "the new key stays");
        assert_eq!(ids.len(), 1);
        assert_eq!(st.keys(), 3);
        assert!(t.take(b"d", &st).is_some());
    }

    #[test]
    fn take_where_and_clear_keep_the_counts() {
        let st = state(0);
        let mut t = TrackTable::default();
        for k in [&b"x:1"[..], b"x:2", b"y:1"] {
            t.track(k, 1, &st);
            t.track(k, 2, &st);
        }
        let mut taken: Vec<_> = t
            .take_where(&st, |k| k.starts_with(b"x:"))
            .into_iter()
            .map(|(k, _)| k.to_vec())
            .collect();
        taken.sort();
        assert_eq!(taken, vec![b"x:1".to_vec(), b"x:2".to_vec()]);
        assert_eq!((st.keys(), st.items()), (1, 2));
        t.clear(&st);
        assert_eq!((st.keys(), st.items(), t.len()), (0, 0, 0));
    }
}
