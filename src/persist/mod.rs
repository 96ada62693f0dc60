//! Fast restart (Terracotta's `<restartable>`): every applied effect goes to an
//! append-only log in the server's `data` directory; compaction folds the log into base
//! snapshots; at start the base and logs are replayed, so all data survives any restart.
//!
//! Owns the files of the data directory and the threads that write them. It must not
//! interpret commands: it sees only effects (store::Effect) and the keyspace's entries.
//!
//! ```text
//!  start:   open (manifest, leftovers) ─▶ load (base, logs ─▶ keyspace; torn tail cut)
//!           ─▶ writer started, keyspace sink set: from here every effect is logged
//!  writes:  Db::commit ─▶ writer::Log::append ─▶ flusher thread ─▶ DATA/terrace.log.N
//!  rewrite: BGREWRITEAOF or the log outgrew its base ─▶ compact (own thread)
//!  stop:    the flusher writes and fsyncs what is left
//! ```
//!
//! - [`record`]: the record format (shared with replication).
//! - [`files`]: manifest, base and log files, durable replace.
//! - [`writer`]: appending, the flusher, fsync policy, poisoning.
//! - [`loader`]: recovery, torn tails, `--repair`.
//! - [`compact`]: the base snapshot.

pub mod compact;
pub mod files;
pub mod loader;
pub mod record;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;

pub use loader::Progress;
pub use writer::{Log, PolicyCell};

use crate::config::FsyncPolicy;
use crate::store::Keyspace;
use files::Manifest;

/// Why persistence could not start or go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// A file operation failed.
    #[error("{0}")]
    Io(String),
    /// A record before the tail is damaged.
    #[error(
        "fast-restart file {file} is corrupt at offset {offset} ({why}); refusing to start. \
         Start with `terrace server --repair` to keep every record before the damage \
         (the original files are backed up first)"
    )]
    Corrupt {
        /// The file.
        file: String,
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// The server is stopping.
    #[error("the server is shutting down")]
    Stopping,
}

/// Rewrites after a failure are retried no sooner than this after the previous attempt.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The fast-restart store of one server.
#[derive(Debug)]
pub struct Persist {
    dir: PathBuf,
    /// `appendfsync`, shared with CONFIG SET.
    policy: Arc<PolicyCell>,
    /// Which files hold the data. Changed only at start and by a rewrite (one at a time).
    manifest: Mutex<Manifest>,
    /// The writer, once loading is done.
    log: OnceLock<Arc<Log>>,
    /// The flusher thread, joined at stop.
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// `--repair`: cut damage off instead of refusing to start.
    repair: bool,
    /// True until the data is loaded: commands other than `loading` ones are refused.
    loading: AtomicBool,
    /// Unix seconds loading started.
    load_started: AtomicU64,
    /// Loading progress.
    pub progress: Progress,
    /// Rewrite state, for INFO and the triggers.
    rewrite: RewriteState,
}

#[derive(Debug, Default)]
struct RewriteState {
    /// A rewrite is running (one at a time).
    running: AtomicBool,
    /// BGREWRITEAOF asked for one; the cron starts it.
    requested: AtomicBool,
    /// When the running rewrite started.
    started: Mutex<Option<Instant>>,
    /// When the last attempt ended (for retry pacing).
    last_attempt: Mutex<Option<Instant>>,
    /// Whether the last rewrite succeeded.
    last_failed: AtomicBool,
    /// Seconds the last rewrite took; -1 before the first.
    last_secs: AtomicI64,
    /// Rewrites completed.
    count: AtomicU64,
    /// Failed rewrites since the last success.
    failures: AtomicU64,
    /// Size of the files after the last rewrite (or load): the auto-rewrite baseline.
    base_size: AtomicU64,
}

impl Persist {
    /// Opens `dir` (created if missing): reads its manifest, or starts an empty one, and
    /// removes leftovers of an interrupted rewrite. Nothing is loaded yet.
    pub fn open(
        dir: &Path,
        policy: Arc<PolicyCell>,
        repair: bool,
    ) -> Result<Persist, PersistError> {
        let io = |what: &str, e: std::io::Error| {
            PersistError::Io(format!("{what} {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create data directory", e))?;
        let manifest = match Manifest::load(dir).map_err(PersistError::Io)? {
            Some(m) => m,
            None => {
                // Data files without a manifest: someone removed it. Starting empty would
                // delete them as leftovers; refuse instead.
                let found = files::data_files(dir).map_err(|e| io("cannot read", e))?;
                if let Some(f) = found.first() {
                    return Err(PersistError::Io(format!(
                        "{} holds fast-restart files ({} and {} more) but no {}: restore the manifest, or move the files away to start empty",
                        dir.display(),
                        f.display(),
                        found.len() - 1,
                        files::MANIFEST
                    )));
                }
                let m = Manifest {
                    base: None,
                    logs: vec![1],
                };
                files::create_log(dir, 1).map_err(|e| io("cannot create a log in", e))?;
                m.store(dir)
                    .map_err(|e| io("cannot write the manifest in", e))?;
                m
            }
        };
        for p in files::remove_unnamed(dir, &manifest).map_err(|e| io("cannot clean", e))? {
            tracing::info!(
                "removed {}, left over from an unfinished rewrite",
                p.display()
            );
        }
        Ok(Persist {
            dir: dir.to_path_buf(),
            policy,
            manifest: Mutex::new(manifest),
            log: OnceLock::new(),
            flusher: Mutex::new(None),
            repair,
            loading: AtomicBool::new(true),
            load_started: AtomicU64::new(crate::store::now_ms() / 1000),
            progress: Progress::default(),
            rewrite: RewriteState {
                last_secs: AtomicI64::new(-1),
                ..RewriteState::default()
            },
        })
    }

    /// Loads the data into `ks`, then starts the writer and makes `ks` log every effect.
    pub fn load(&self, ks: &Keyspace) -> Result<loader::Loaded, PersistError> {
        let started = Instant::now();
        let manifest = self.manifest.lock().clone();
        let loaded = loader::load(&self.dir, manifest, ks, self.repair, &self.progress)?;
        *self.manifest.lock() = loaded.manifest.clone();
        let seq = loaded.manifest.logs.last().copied().unwrap_or(1);
        let file = files::open_log(&self.dir, seq, loaded.log_len).map_err(|e| {
            PersistError::Io(format!(
                "cannot open {}: {e}",
                files::log_path(&self.dir, seq).display()
            ))
        })?;
        let log = Arc::new(Log::new(loaded.next_lsn, self.policy.clone()));
        let flusher = {
            let log = log.clone();
            let len = loaded.log_len;
            std::thread::Builder::new()
                .name("log-flusher".into())
                .spawn(move || log.run_flusher(file, len))
                .map_err(|e| PersistError::Io(format!("cannot start the log flusher: {e}")))?
        };
        *self.flusher.lock() = Some(flusher);
        let _ = self.log.set(log.clone());
        ks.set_sink(log);
        self.rewrite
            .base_size
            .store(self.current_size(), Ordering::Relaxed);
        self.loading.store(false, Ordering::Release);
        tracing::info!(
            "fast restart: loaded {} records ({} keys set) from {} in {:.3}s{}",
            loaded.records,
            loaded.sets,
            self.dir.display(),
            started.elapsed().as_secs_f64(),
            if loaded.refused > 0 {
                format!("; {} writes refused by full caches", loaded.refused)
            } else {
                String::new()
            }
        );
        Ok(loaded)
    }

    /// The `appendfsync` cell the writer reads.
    pub fn policy_cell(&self) -> &Arc<PolicyCell> {
        &self.policy
    }

    /// True until loading is done.
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    /// The writer, once loading is done.
    pub fn log(&self) -> Option<&Arc<Log>> {
        self.log.get()
    }

    /// The reason writes are refused (a failed write or fsync), if they are.
    pub fn refusal(&self) -> Option<String> {
        self.log.get()?.poisoned()
    }

    /// Waits until record `lsn` is durable by the fsync policy; Err if it was lost.
    pub async fn durable(&self, lsn: u64) -> Result<(), String> {
        match self.log.get() {
            Some(log) => log.durable(lsn).await,
            None => Ok(()),
        }
    }

    /// BGREWRITEAOF: asks for a rewrite, which the cron starts. False if one is running.
    pub fn request_rewrite(&self) -> bool {
        if self.rewrite.running.load(Ordering::Acquire) {
            return false;
        }
        self.rewrite.requested.store(true, Ordering::Release);
        true
    }

    /// Whether a rewrite should start now: asked for, the log outgrew its baseline by
    /// `pct` percent and is at least `min_size` bytes (Redis's auto-aof-rewrite), or the
    /// log is poisoned (a rewrite is the way back). Claims the rewrite when true: the
    /// caller must then run [`rewrite`](Self::rewrite).
    pub fn claim_rewrite(&self, pct: u64, min_size: u64) -> bool {
        if self.is_loading() || self.rewrite.running.load(Ordering::Acquire) {
            return false;
        }
        let requested = self.rewrite.requested.load(Ordering::Acquire);
        let retry = self.refusal().is_some()
            && self
                .rewrite
                .last_attempt
                .lock()
                .is_none_or(|t| t.elapsed() >= RETRY_AFTER);
        let grown = pct > 0 && {
            let size = self.current_size();
            let base = self.rewrite.base_size.load(Ordering::Relaxed).max(1);
            size >= min_size && size.saturating_mul(100) / base >= 100 + pct
        };
        if !(requested || retry || grown) {
            return false;
        }
        !self.rewrite.running.swap(true, Ordering::AcqRel)
    }

    /// Runs a claimed rewrite (see [`compact`]) on the calling thread.
    pub fn rewrite(&self, ks: &Keyspace) -> Result<(), PersistError> {
        self.rewrite.requested.store(false, Ordering::Release);
        let started = Instant::now();
        *self.rewrite.started.lock() = Some(started);
        let r = self.rewrite_now(ks);
        let secs = started.elapsed().as_secs() as i64;
        *self.rewrite.started.lock() = None;
        *self.rewrite.last_attempt.lock() = Some(Instant::now());
        self.rewrite.last_secs.store(secs, Ordering::Relaxed);
        match &r {
            Ok(()) => {
                self.rewrite.last_failed.store(false, Ordering::Relaxed);
                self.rewrite.failures.store(0, Ordering::Relaxed);
                self.rewrite.count.fetch_add(1, Ordering::Relaxed);
                self.rewrite
                    .base_size
                    .store(self.current_size(), Ordering::Relaxed);
                tracing::info!(
                    "background append only file rewriting terminated with success in {:.3}s",
                    started.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                self.rewrite.last_failed.store(true, Ordering::Relaxed);
                self.rewrite.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("background append only file rewriting failed: {e}");
            }
        }
        self.rewrite.running.store(false, Ordering::Release);
        r
    }

    fn rewrite_now(&self, ks: &Keyspace) -> Result<(), PersistError> {
        let log = self.log.get().ok_or(PersistError::Stopping)?;
        let dir = &self.dir;
        let io = |e: std::io::Error| PersistError::Io(e.to_string());
        let old = self.manifest.lock().clone();
        let seq = old.next_seq();
        let file = files::create_log(dir, seq).map_err(io)?;
        let mut during = old.clone();
        during.logs.push(seq);
        during.store(dir).map_err(io)?;
        *self.manifest.lock() = during.clone();
        let (start, failures) = log.switch(file).ok_or(PersistError::Stopping)?;
        compact::write_base(dir, seq, start, ks).map_err(io)?;
        let after = Manifest {
            base: Some(seq),
            logs: during.logs.iter().copied().filter(|&l| l >= seq).collect(),
        };
        after.store(dir).map_err(io)?;
        *self.manifest.lock() = after.clone();
        let keep = after.paths(dir);
        for p in during.paths(dir).iter().filter(|p| !keep.contains(p)) {
            if let Err(e) = std::fs::remove_file(p) {
                tracing::warn!("cannot remove {}: {e}", p.display());
            }
        }
        log.recovered(failures);
        Ok(())
    }

    /// Bytes of the base and every log.
    pub fn current_size(&self) -> u64 {
        let m = self.manifest.lock().clone();
        files::size_of(&self.dir, &m)
    }

    /// Writes and fsyncs what is buffered, then stops the writer (shutdown).
    pub fn stop(&self) {
        if let Some(log) = self.log.get() {
            log.stop();
        }
        if let Some(h) = self.flusher.lock().take()
            && h.join().is_err()
        {
            tracing::error!("the log flusher panicked");
        }
    }

    /// The INFO persistence fields (Redis's names where Redis has the figure).
    pub fn info(&self) -> Vec<(&'static str, String)> {
        let r = &self.rewrite;
        let log = self.log.get();
        let loading = self.is_loading();
        let total = self.progress.total.load(Ordering::Relaxed);
        let loaded = self.progress.loaded.load(Ordering::Relaxed);
        let mut v = vec![
            ("loading", u8::from(loading).to_string()),
            ("async_loading", "0".into()),
        ];
        if loading {
            let started = self.load_started.load(Ordering::Relaxed);
            let elapsed = (crate::store::now_ms() / 1000).saturating_sub(started);
            let perc = if total == 0 {
                0.0
            } else {
                loaded as f64 * 100.0 / total as f64
            };
            let eta = if loaded == 0 {
                1
            } else {
                (elapsed as f64 * (total - loaded.min(total)) as f64 / loaded as f64) as u64
            };
            v.extend([
                ("loading_start_time", started.to_string()),
                ("loading_total_bytes", total.to_string()),
                ("loading_loaded_bytes", loaded.to_string()),
                ("loading_loaded_perc", format!("{perc:.2}")),
                ("loading_eta_seconds", eta.to_string()),
            ]);
        }
        let running = r.running.load(Ordering::Relaxed);
        let current_secs = r
            .started
            .lock()
            .map_or(-1, |t| t.elapsed().as_secs() as i64);
        let ok = |failed: bool| if failed { "err" } else { "ok" }.to_string();
        let error = log.and_then(|l| l.last_error()).unwrap_or_default();
        v.extend([
            ("aof_enabled", "1".into()),
            ("aof_rewrite_in_progress", u8::from(running).to_string()),
            (
                "aof_rewrite_scheduled",
                u8::from(r.requested.load(Ordering::Relaxed) && !running).to_string(),
            ),
            (
                "aof_last_rewrite_time_sec",
                r.last_secs.load(Ordering::Relaxed).to_string(),
            ),
            ("aof_current_rewrite_time_sec", current_secs.to_string()),
            (
                "aof_last_bgrewrite_status",
                ok(r.last_failed.load(Ordering::Relaxed)),
            ),
            ("aof_rewrites", r.count.load(Ordering::Relaxed).to_string()),
            (
                "aof_rewrites_consecutive_failures",
                r.failures.load(Ordering::Relaxed).to_string(),
            ),
            ("aof_last_write_status", ok(self.refusal().is_some())),
            ("aof_current_size", self.current_size().to_string()),
            (
                "aof_base_size",
                r.base_size.load(Ordering::Relaxed).to_string(),
            ),
            (
                "aof_buffer_length",
                log.map_or(0, |l| l.buffered()).to_string(),
            ),
            ("aof_fsync", policy_name(self.policy.get()).into()),
            ("aof_last_fsync_error", error),
            (
                "aof_fsyncs",
                log.map_or(0, |l| l.stats.fsyncs.load(Ordering::Relaxed))
                    .to_string(),
            ),
            (
                "aof_last_fsync_time",
                log.map_or(0, |l| l.stats.last_fsync_ms.load(Ordering::Relaxed) / 1000)
                    .to_string(),
            ),
            ("aof_lsn", log.map_or(0, |l| l.last_lsn()).to_string()),
            (
                "aof_files",
                self.manifest.lock().paths(&self.dir).len().to_string(),
            ),
        ]);
        v
    }
}

/// Redis's error for a write refused, or lost, because the log could not be written.
pub fn misconf(why: &str) -> String {
    format!("MISCONF Errors writing to the AOF file: {why}")
}

/// The config and CONFIG name of a policy.
pub fn policy_name(p: FsyncPolicy) -> &'static str {
    match p {
        FsyncPolicy::Always => "always",
        FsyncPolicy::Everysec => "everysec",
        FsyncPolicy::No => "no",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::Caches;
    use crate::store::{Keyspace, ShardSet, Ttl, Value};

    fn keyspace() -> Keyspace {
        Keyspace::new(false, Arc::new(Caches::single()))
    }

    fn open(dir: &Path, policy: FsyncPolicy) -> Persist {
        Persist::open(dir, Arc::new(PolicyCell::new(policy)), false).expect("open")
    }

    #[test]
    fn writes_survive_a_stop_and_a_rewrite_in_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path(), FsyncPolicy::Always);
        let ks = keyspace();
        p.load(&ks).expect("load empty");
        {
            let mut db = ks.db(ShardSet::All, 1, true);
            for i in 0..100 {
                db.set(format!("k{i}").as_bytes(), Value::str(b"v"), Ttl::Clear)
                    .expect("set");
            }
            db.del(b"k7").expect("del");
            assert_eq!(
                db.commit().map(|c| c.lsn),
                Some(1),
                "one record for the whole view"
            );
        }
        assert!(!p.claim_rewrite(0, 0), "nothing asked for a rewrite");
        assert!(p.request_rewrite());
        assert!(p.claim_rewrite(0, 0));
        assert!(!p.request_rewrite(), "one rewrite at a time");
        p.rewrite(&ks).expect("rewrite");
        {
            let mut db = ks.db(ShardSet::All, 1, true);
            db.set(b"after", Value::str(b"rewrite"), Ttl::Clear)
                .expect("set");
        }
        p.stop();
        let m = Manifest::load(dir.path()).expect("manifest").expect("some");
        assert_eq!(m.base, Some(2));
        assert_eq!(m.logs, vec![2]);

        // Once as written (records skipped by shard), once with a base from a process
        // that placed keys differently (every record decoded by every thread).
        for other_router in [false, true] {
            if other_router {
                let base = files::base_path(dir.path(), 2);
                let mut b = std::fs::read(&base).expect("read base");
                b[16..24].copy_from_slice(&[99; 8]);
                std::fs::write(&base, b).expect("write base");
            }
            let again = open(dir.path(), FsyncPolicy::Always);
            let ks2 = keyspace();
            let loaded = again.load(&ks2).expect("load");
            assert_eq!(loaded.next_lsn, 3, "lsns continue after the base's start");
            let mut db = ks2.db(ShardSet::All, 1, true);
            assert_eq!(db.len(), 100, "other router: {other_router}");
            assert!(db.get(b"k7").expect("get").is_none());
            assert!(db.get(b"k8").expect("get").is_some());
            assert!(db.get(b"after").expect("get").is_some());
            drop(db);
            again.stop();
        }
    }

    #[test]
    fn data_files_without_a_manifest_are_not_taken_for_leftovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("terrace.log.3"), b"TRCLOG\x00\x01").expect("write");
        let err = Persist::open(
            dir.path(),
            Arc::new(PolicyCell::new(FsyncPolicy::No)),
            false,
        )
        .expect_err("refused");
        assert!(err.to_string().contains("no terrace.manifest"), "{err}");
        assert!(dir.path().join("terrace.log.3").exists());
    }
}
