//! The control plane's Raft storage: vote, log, state machine (the cluster map) and its
//! snapshot, in one small JSON file rewritten atomically (write, fsync, rename, fsync the
//! directory) on every change.
//!
//! The control plane's log holds a few entries per election, mirror sync or failover, and
//! is compacted by snapshots, so rewriting the whole file is cheap and gives the simplest
//! crash behaviour: the file is always one complete state. Without a data directory the
//! state lives in memory only (a restarted member forgets its vote: see the README).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{LogState, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder,
    RaftStorage, SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::TypeConfig;
use super::map::{ClusterMap, Outcome};

/// The file in the member's data directory.
pub const FILE: &str = "control-plane.json";

type Nid = u64;

/// The applied part: what a snapshot holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId<Nid>>,
    membership: StoredMembership<Nid, BasicNode>,
    map: ClusterMap,
}

/// Everything that is persisted.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Durable {
    vote: Option<Vote<Nid>>,
    committed: Option<LogId<Nid>>,
    last_purged: Option<LogId<Nid>>,
    log: BTreeMap<u64, Entry<TypeConfig>>,
    applied: Applied,
    snapshot: Option<(SnapshotMeta<Nid, BasicNode>, Vec<u8>)>,
}

/// The storage; clones share it (openraft reads the log through a clone).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Durable>>,
    /// The file, when the member has a data directory.
    path: Option<PathBuf>,
    /// Every applied change of the map goes out here (the role thread and routing watch it).
    map_tx: Arc<watch::Sender<ClusterMap>>,
}

fn io_err(e: impl ToString) -> StorageError<Nid> {
    StorageIOError::write(AnyError::error(e.to_string())).into()
}

impl Store {
    /// Opens (or starts) the storage in `dir`.
    pub fn open(dir: Option<PathBuf>) -> Result<Store, String> {
        let path = dir.map(|d| d.join(FILE));
        let durable = match &path {
            Some(p) if p.exists() => {
                let text = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                serde_json::from_slice::<Durable>(&text)
                    .map_err(|e| format!("{}: damaged control-plane state: {e}", p.display()))?
            }
            _ => Durable::default(),
        };
        let (map_tx, _) = watch::channel(durable.applied.map.clone());
        Ok(Store {
            inner: Arc::new(Mutex::new(durable)),
            path,
            map_tx: Arc::new(map_tx),
        })
    }

    /// Watches the applied map.
    pub fn map(&self) -> watch::Receiver<ClusterMap> {
        self.map_tx.subscribe()
    }

    /// Whether this member holds no Raft state at all (it may initialise the group).
    pub fn is_pristine(&self) -> bool {
        let d = self.inner.lock();
        d.vote.is_none() && d.log.is_empty() && d.snapshot.is_none()
    }

    // openraft's traits fix these error types; they are what the callers return.
    #[allow(clippy::result_large_err)]
    fn save(&self, d: &Durable) -> Result<(), StorageError<Nid>> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(d).map_err(io_err)?;
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io_err)?;
            f.write_all(&bytes).map_err(io_err)?;
            f.sync_all().map_err(io_err)?;
        }
        std::fs::rename(&tmp, path).map_err(io_err)?;
        if let Some(dir) = path.parent() {
            crate::persist::files::sync_dir(dir).map_err(io_err)?;
        }
        Ok(())
    }

    // openraft's traits fix these error types; they are what the callers return.
    #[allow(clippy::result_large_err)]
    fn mutate<T>(&self, f: impl FnOnce(&mut Durable) -> T) -> Result<T, StorageError<Nid>> {
        let mut d = self.inner.lock();
        let out = f(&mut d);
        self.save(&d)?;
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for Store {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<Nid>> {
        Ok(self
            .inner
            .lock()
            .log
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for Store {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<Nid>> {
        let (meta, data) = self
            .mutate(|d| -> Result<_, String> {
                // A snapshot that cannot be encoded is an error, never an empty snapshot.
                let data = serde_json::to_vec(&d.applied).map_err(|e| e.to_string())?;
                let last = d.applied.last_applied;
                let meta = SnapshotMeta {
                    last_log_id: last,
                    last_membership: d.applied.membership.clone(),
                    snapshot_id: format!(
                        "{}-{}",
                        last.map_or(0, |l| l.leader_id.term),
                        last.map_or(0, |l| l.index)
                    ),
                };
                d.snapshot = Some((meta.clone(), data.clone()));
                Ok((meta, data))
            })?
            .map_err(io_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStorage<TypeConfig> for Store {
    type LogReader = Store;
    type SnapshotBuilder = Store;

    async fn save_vote(&mut self, vote: &Vote<Nid>) -> Result<(), StorageError<Nid>> {
        self.mutate(|d| d.vote = Some(*vote))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<Nid>>, StorageError<Nid>> {
        Ok(self.inner.lock().vote)
    }

    async fn save_committed(&mut self, c: Option<LogId<Nid>>) -> Result<(), StorageError<Nid>> {
        self.mutate(|d| d.committed = c)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<Nid>>, StorageError<Nid>> {
        Ok(self.inner.lock().committed)
    }

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<Nid>> {
        let d = self.inner.lock();
        let last = d
            .log
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(d.last_purged);
        Ok(LogState {
            last_purged_log_id: d.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn append_to_log<I>(&mut self, entries: I) -> Result<(), StorageError<Nid>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
    {
        self.mutate(|d| {
            for e in entries {
                d.log.insert(e.log_id.index, e);
            }
        })
    }

    async fn delete_conflict_logs_since(
        &mut self,
        log_id: LogId<Nid>,
    ) -> Result<(), StorageError<Nid>> {
        self.mutate(|d| {
            d.log.split_off(&log_id.index);
        })
    }

    async fn purge_logs_upto(&mut self, log_id: LogId<Nid>) -> Result<(), StorageError<Nid>> {
        self.mutate(|d| {
            d.last_purged = Some(log_id);
            d.log = d.log.split_off(&(log_id.index + 1));
        })
    }

    async fn last_applied_state(
        &mut self,
    ) -> Result<(Option<LogId<Nid>>, StoredMembership<Nid, BasicNode>), StorageError<Nid>> {
        let d = self.inner.lock();
        Ok((d.applied.last_applied, d.applied.membership.clone()))
    }

    async fn apply_to_state_machine(
        &mut self,
        entries: &[Entry<TypeConfig>],
    ) -> Result<Vec<Outcome>, StorageError<Nid>> {
        let (out, map) = self.mutate(|d| {
            let mut out = Vec::with_capacity(entries.len());
            for e in entries {
                d.applied.last_applied = Some(e.log_id);
                match &e.payload {
                    EntryPayload::Blank => out.push(Outcome::Applied { epoch: 0 }),
                    EntryPayload::Normal(p) => {
                        let o = d.applied.map.apply(p);
                        match &o {
                            Outcome::Applied { .. } => tracing::info!("control plane: {p:?}"),
                            Outcome::Refused(why) => {
                                tracing::debug!("control plane refused {p:?}: {why}")
                            }
                        }
                        out.push(o);
                    }
                    EntryPayload::Membership(m) => {
                        d.applied.membership = StoredMembership::new(Some(e.log_id), m.clone());
                        out.push(Outcome::Applied { epoch: 0 });
                    }
                }
            }
            (out, d.applied.map.clone())
        })?;
        self.map_tx.send_if_modified(|m| {
            let changed = *m != map;
            *m = map;
            changed
        });
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<Nid>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<Nid, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<Nid>> {
        let data = snapshot.into_inner();
        let applied: Applied = serde_json::from_slice(&data).map_err(io_err)?;
        let map = applied.map.clone();
        self.mutate(|d| {
            d.applied = applied;
            d.applied.last_applied = meta.last_log_id;
            d.applied.membership = meta.last_membership.clone();
            d.snapshot = Some((meta.clone(), data));
        })?;
        self.map_tx.send_replace(map);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<Nid>> {
        Ok(self
            .inner
            .lock()
            .snapshot
            .clone()
            .map(|(meta, data)| Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            }))
    }
}
