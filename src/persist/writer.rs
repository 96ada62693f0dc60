//! The log writer: commands append their effects as records to an in-memory tail; one
//! flusher thread writes the tail to the current log file and fsyncs it by policy.
//!
//! ```text
//!  Db::commit ──append (lsn, encode) under the shard locks──▶ tail buffer
//!                                                               │ wake (if the flusher idles)
//!  flusher thread ◀─────────────────────────────────────────────┘
//!     write(all of it) ─▶ fsync: always = every pass (group commit: every writer waiting
//!                         since the last pass shares it); everysec = once a second; no = never
//!     └─▶ durable ─watch─▶ connections of `always` writers send their replies
//!  rewrite ──switch(new file)──▶ flusher: the tail so far to the old file, the rest to the new
//! ```
//!
//! Appending under the shard locks is what orders the log: two writes of one key hold the
//! same lock, so their records are appended in the order they were applied.
//!
//! A failed write or fsync poisons the log (fjall's `Poisoned`): the server refuses writes
//! with `MISCONF` and nothing more is written to the broken file, because after a failed
//! fsync the kernel may have dropped pages it still reports as written. Only a rewrite
//! (a fresh base snapshot and a fresh log) clears the poison.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::record;
use crate::config::FsyncPolicy;
use crate::replication::backlog::{Backlog, Cursor, Lost};
use crate::store::{Effect, EffectSink};

/// A tail buffer that grew beyond this is released after it was written.
const KEEP_BUF: usize = 4 << 20;
/// Under `everysec` and `no`, how long the flusher lets appends gather after a write.
const GATHER: Duration = Duration::from_millis(1);

/// The fsync policy as a cell CONFIG SET `appendfsync` can change at run time.
#[derive(Debug)]
pub struct PolicyCell(AtomicU8);

impl PolicyCell {
    /// A cell holding `p`.
    pub fn new(p: FsyncPolicy) -> PolicyCell {
        PolicyCell(AtomicU8::new(p as u8))
    }

    /// The current policy.
    pub fn get(&self) -> FsyncPolicy {
        match self.0.load(Ordering::Relaxed) {
            x if x == FsyncPolicy::Always as u8 => FsyncPolicy::Always,
            x if x == FsyncPolicy::No as u8 => FsyncPolicy::No,
            _ => FsyncPolicy::Everysec,
        }
    }

    /// Changes the policy.
    pub fn set(&self, p: FsyncPolicy) {
        self.0.store(p as u8, Ordering::Relaxed);
    }
}

/// What the flusher has made of the records so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durable {
    /// Every record up to this lsn is written and, under `always`, fsynced.
    pub synced: u64,
    /// The highest lsn whose record was lost to a failed write or fsync (0: none).
    pub lost: u64,
}

impl Durable {
    /// `Some(true)` once record `lsn` is safe, `Some(false)` if it was lost, `None` while
    /// undecided.
    pub fn of(&self, lsn: u64) -> Option<bool> {
        if lsn <= self.lost {
            Some(false)
        } else if lsn <= self.synced {
            Some(true)
        } else {
            None
        }
    }
}

/// Records appended but not yet handed to the flusher.
#[derive(Debug, Default)]
struct Tail {
    buf: Vec<u8>,
    /// The lsn the next record gets.
    next_lsn: u64,
    /// A rewrite's request to move to a new file.
    switch: Option<Switch>,
    /// Set when the server stops: write and fsync what is left, then end.
    stop: bool,
    /// The flusher is waiting for work: the next append must wake it. While it is busy it
    /// comes back on its own, so appends skip the wake-up syscall.
    idle: bool,
    /// False for a log without a file (a server that replicates but is not restartable):
    /// records go only to the backlog.
    file: bool,
    /// A mirror's log: local effects (lazy expiry on a read) are not logged, because only
    /// the active numbers records; records received from it come in by `append_raw`.
    follower: bool,
    /// The replication backlog, on servers of a stripe with mirrors.
    backlog: Option<Backlog>,
}

/// A move to a new log file at a record boundary.
#[derive(Debug)]
struct Switch {
    /// The records appended before the switch: they belong to the old file.
    before: Vec<u8>,
    /// The last of them.
    before_upto: u64,
    file: File,
    /// Told when the flusher writes to the new file.
    done: std::sync::mpsc::Sender<()>,
}

/// Figures for INFO persistence.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Bytes of the current log file.
    pub file_len: AtomicU64,
    /// Bytes written to log files since start (all files).
    pub written: AtomicU64,
    /// fsyncs done.
    pub fsyncs: AtomicU64,
    /// Bytes waiting in the tail buffer at the last pass.
    pub pending: AtomicU64,
    /// Unix ms of the last successful fsync.
    pub last_fsync_ms: AtomicU64,
    /// How long fsyncs take.
    pub fsync_latency: crate::latency::Histogram,
}

/// The append side of the fast-restart log.
#[derive(Debug)]
pub struct Log {
    /// Appenders (under shard locks) and the flusher meet here; held only to encode one
    /// record or to swap the buffer out.
    tail: Mutex<Tail>,
    /// Wakes the flusher when the tail gets its first record, a switch or the stop.
    wake: Condvar,
    /// What is durable, for `always` writers waiting to reply.
    durable: watch::Sender<Durable>,
    /// `appendfsync`.
    policy: Arc<PolicyCell>,
    /// Raised by a failed write or fsync; writes are refused while it is up.
    poisoned: AtomicBool,
    /// Failures so far: a rewrite clears the poison only if none happened after its switch.
    failures: AtomicU64,
    /// The last failure, for the MISCONF error and INFO.
    error: Mutex<Option<String>>,
    /// Wakes shippers waiting for records (see [`next_records`](Self::next_records)).
    shipped: tokio::sync::Notify,
    /// A shipper waits on `shipped`: the next append must wake it.
    ship_waiting: AtomicBool,
    /// INFO figures.
    pub stats: LogStats,
}

impl Log {
    /// A log whose next record is `next_lsn`, under `policy`; a flusher writes it to a file.
    pub fn new(next_lsn: u64, policy: Arc<PolicyCell>) -> Log {
        Log::with_file(next_lsn, policy, true)
    }

    /// A log with no file: it numbers records and keeps them in the replication backlog only
    /// (a stripe's server that is not restartable). No flusher runs for it.
    pub fn memory(next_lsn: u64) -> Log {
        Log::with_file(next_lsn, Arc::new(PolicyCell::new(FsyncPolicy::No)), false)
    }

    fn with_file(next_lsn: u64, policy: Arc<PolicyCell>, file: bool) -> Log {
        let (durable, _) = watch::channel(Durable {
            synced: next_lsn.saturating_sub(1),
            lost: 0,
        });
        Log {
            tail: Mutex::new(Tail {
                next_lsn,
                file,
                ..Tail::default()
            }),
            wake: Condvar::new(),
            durable,
            policy,
            poisoned: AtomicBool::new(false),
            failures: AtomicU64::new(0),
            error: Mutex::new(None),
            shipped: tokio::sync::Notify::new(),
            ship_waiting: AtomicBool::new(false),
            stats: LogStats::default(),
        }
    }

    /// Keeps the most recent records (about `limit` bytes) for mirrors from now on.
    pub fn enable_backlog(&self, limit: usize) {
        let mut t = self.tail.lock();
        if t.backlog.is_none() {
            t.backlog = Some(Backlog::new(limit));
        }
    }

    /// Makes this a mirror's log (`true`: local effects are not logged, records come from
    /// the active through [`append_raw`](Self::append_raw)) or an active's, whose next own
    /// record is `next_lsn`.
    pub fn set_follower(&self, follower: bool, next_lsn: u64) {
        let mut t = self.tail.lock();
        t.follower = follower;
        t.next_lsn = next_lsn;
    }

    /// Appends records received from the active (whole frames, lsns `first..=last`, in
    /// order) to the file and the backlog, exactly as the active wrote them.
    pub fn append_raw(&self, first: u64, last: u64, frames: &[u8]) {
        let wake = {
            let mut guard = self.tail.lock();
            let t = &mut *guard;
            t.next_lsn = last + 1;
            let wake = t.file && t.idle && t.buf.is_empty();
            if t.file {
                t.buf.extend_from_slice(frames);
            }
            if let Some(b) = &mut t.backlog {
                b.push(first, frames);
            }
            wake
        };
        self.after_append(wake);
    }

    fn after_append(&self, wake_flusher: bool) {
        if wake_flusher {
            self.wake.notify_one();
        }
        if self.ship_waiting.load(Ordering::SeqCst)
            && self.ship_waiting.swap(false, Ordering::SeqCst)
        {
            self.shipped.notify_waiters();
        }
    }

    /// The backlog position of record `lsn`, if the backlog still holds it (or `lsn` is the
    /// next record's).
    pub fn backlog_find(&self, lsn: u64) -> Option<Cursor> {
        let t = self.tail.lock();
        t.backlog.as_ref()?.find(lsn, t.next_lsn)
    }

    /// The backlog position after the last record, and the next record's lsn, read
    /// together: a full sync's snapshot starts there.
    pub fn backlog_end(&self) -> Option<(Cursor, u64)> {
        let t = self.tail.lock();
        Some((t.backlog.as_ref()?.end(), t.next_lsn))
    }

    /// Bytes of the backlog after `cur` (see [`Backlog::behind`]).
    pub fn backlog_behind(&self, cur: &Cursor) -> Option<usize> {
        self.tail.lock().backlog.as_ref()?.behind(cur)
    }

    /// Bytes the backlog holds and the lsn of its oldest record (INFO).
    pub fn backlog_info(&self) -> (usize, u64) {
        let t = self.tail.lock();
        t.backlog
            .as_ref()
            .map_or((0, 0), |b| (b.len(), b.first_lsn().unwrap_or(t.next_lsn)))
    }

    /// Appends the records after `cur` to `out` (about `max` bytes); when there are none,
    /// waits up to `idle` for some. Nothing is appended when `idle` passed with nothing new.
    pub async fn next_records(
        &self,
        cur: &mut Cursor,
        out: &mut Vec<u8>,
        max: usize,
        idle: Duration,
    ) -> Result<(), Lost> {
        let deadline = tokio::time::Instant::now() + idle;
        let had = out.len();
        loop {
            let notified = self.shipped.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Raised before looking, so an append that lands after the look wakes us.
            self.ship_waiting.store(true, Ordering::SeqCst);
            {
                let t = self.tail.lock();
                match &t.backlog {
                    Some(b) => b.read(cur, out, max)?,
                    None => return Err(Lost),
                }
            }
            if out.len() > had {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(());
            }
        }
    }

    /// The fsync policy.
    pub fn policy(&self) -> FsyncPolicy {
        self.policy.get()
    }

    /// The lsn of the last record appended.
    pub fn last_lsn(&self) -> u64 {
        self.tail.lock().next_lsn.saturating_sub(1)
    }

    /// Bytes appended and not yet handed to the flusher.
    pub fn buffered(&self) -> usize {
        self.tail.lock().buf.len()
    }

    /// The failure that poisoned the log, if it is poisoned.
    pub fn poisoned(&self) -> Option<String> {
        if !self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        Some(self.error.lock().clone().unwrap_or_default())
    }

    /// The last write or fsync error, even if a rewrite has cleared it since.
    pub fn last_error(&self) -> Option<String> {
        self.error.lock().clone()
    }

    /// Waits until record `lsn` is durable under the current policy: at once for
    /// `everysec` and `no`; after its fsync for `always`. Err if it was lost.
    pub async fn durable(&self, lsn: u64) -> Result<(), String> {
        if lsn == 0 || self.policy() != FsyncPolicy::Always {
            return Ok(());
        }
        let mut rx = self.durable.subscribe();
        let ok = match rx.wait_for(|d| d.of(lsn).is_some()).await {
            Ok(d) => d.of(lsn) == Some(true),
            Err(_) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(self
                .last_error()
                .unwrap_or_else(|| "the log stopped".into()))
        }
    }

    /// Moves appends to `file` (a new, empty log) from the next record on, waits until the
    /// flusher has done so, and returns the first lsn that goes to the new file and the
    /// failure count at the switch (see [`recovered`](Self::recovered)); `None` when the
    /// log is stopping.
    pub fn switch(&self, file: File) -> Option<(u64, u64)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (lsn, failures) = {
            let mut t = self.tail.lock();
            if t.stop {
                return None;
            }
            let before = std::mem::take(&mut t.buf);
            let before_upto = t.next_lsn.saturating_sub(1);
            t.switch = Some(Switch {
                before,
                before_upto,
                file,
                done: tx,
            });
            (t.next_lsn, self.failures.load(Ordering::Acquire))
        };
        self.wake.notify_one();
        // The flusher answers within one pass (it takes a switch before it looks at a stop).
        rx.recv().ok()?;
        Some((lsn, failures))
    }

    /// A rewrite completed: every record before its switch is in its base, so the poison
    /// of a failure that happened before the switch is cleared.
    pub fn recovered(&self, failures_at_switch: u64) {
        if self.failures.load(Ordering::Acquire) == failures_at_switch
            && self.poisoned.swap(false, Ordering::AcqRel)
        {
            tracing::info!("the fast-restart log is writable again: writes are accepted");
        }
    }

    /// Asks the flusher to write and fsync what is left and end.
    pub fn stop(&self) {
        self.tail.lock().stop = true;
        self.wake.notify_one();
    }

    fn poison(&self, what: &str, e: &std::io::Error, lost_upto: u64) {
        let msg = e.to_string();
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(
                "fast-restart log {what} failed: {msg}; refusing writes until a rewrite succeeds"
            );
        }
        self.failures.fetch_add(1, Ordering::AcqRel);
        *self.error.lock() = Some(msg);
        self.durable.send_modify(|d| d.lost = d.lost.max(lost_upto));
    }

    /// The flusher: runs on its own thread until [`stop`](Self::stop), writing to `file`
    /// (already positioned at its end, `len` bytes long).
    pub fn run_flusher(&self, file: File, len: u64) {
        let mut f = Flusher {
            file,
            len,
            broken: false,
            dirty: false,
            last_sync: Instant::now(),
        };
        self.stats.file_len.store(len, Ordering::Relaxed);
        let mut spare = Vec::new();
        let mut wrote = false;
        loop {
            let (upto, switch, stop) = {
                let mut t = self.tail.lock();
                if wrote && self.policy() != FsyncPolicy::Always && t.switch.is_none() && !t.stop {
                    // everysec / no: gather what arrives for a moment, so the log is written
                    // in a few large writes, not one per command (Redis writes once per
                    // event loop). What a crash can lose is bounded by the fsync anyway.
                    self.wake.wait_for(&mut t, GATHER);
                }
                while t.buf.is_empty() && t.switch.is_none() && !t.stop {
                    t.idle = true;
                    let wait = if f.dirty && self.policy() == FsyncPolicy::Everysec {
                        Duration::from_secs(1).saturating_sub(f.last_sync.elapsed())
                    } else {
                        Duration::from_secs(1)
                    };
                    if wait.is_zero() || self.wake.wait_for(&mut t, wait).timed_out() {
                        break;
                    }
                }
                t.idle = false;
                wrote = !t.buf.is_empty();
                std::mem::swap(&mut t.buf, &mut spare);
                self.stats
                    .pending
                    .store(spare.len() as u64, Ordering::Relaxed);
                (t.next_lsn.saturating_sub(1), t.switch.take(), t.stop)
            };
            if let Some(sw) = switch {
                // The records before the switch end the old file, fsynced whatever the
                // policy: the rewrite is about to stop naming it.
                self.write(&mut f, &sw.before, sw.before_upto);
                self.sync(&mut f, sw.before_upto);
                f = Flusher {
                    file: sw.file,
                    len: super::files::LOG_HEADER as u64,
                    broken: false,
                    dirty: false,
                    last_sync: Instant::now(),
                };
                let _ = sw.done.send(());
            }
            self.write(&mut f, &spare, upto);
            if spare.capacity() > KEEP_BUF {
                spare = Vec::new();
            } else {
                spare.clear();
            }
            let due = match self.policy() {
                FsyncPolicy::Always => true,
                FsyncPolicy::Everysec => f.last_sync.elapsed() >= Duration::from_secs(1),
                FsyncPolicy::No => false,
            };
            if stop || due {
                self.sync(&mut f, upto);
            } else if !f.broken {
                self.durable.send_if_modified(|d| {
                    // Written, not fsynced: only `always` writers wait, and they never
                    // see this state for their own records.
                    let changed = d.synced < upto && self.policy() != FsyncPolicy::Always;
                    if changed {
                        d.synced = upto;
                    }
                    changed
                });
            }
            if stop {
                return;
            }
        }
    }

    fn write(&self, f: &mut Flusher, data: &[u8], upto: u64) {
        if data.is_empty() {
            return;
        }
        if f.broken {
            self.durable.send_modify(|d| d.lost = d.lost.max(upto));
            return;
        }
        match f.file.write_all(data) {
            Ok(()) => {
                f.len += data.len() as u64;
                f.dirty = true;
                self.stats.file_len.store(f.len, Ordering::Relaxed);
                self.stats
                    .written
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                // Cut a partial record off, so the file ends on a record boundary for
                // whatever a rewrite does not replace.
                let _ = f.file.set_len(f.len);
                f.broken = true;
                self.poison("write", &e, upto);
            }
        }
    }

    fn sync(&self, f: &mut Flusher, upto: u64) {
        if f.broken {
            f.dirty = false;
            return;
        }
        if f.dirty {
            let t = Instant::now();
            let r = f.file.sync_data();
            self.stats
                .fsync_latency
                .record(t.elapsed().as_micros() as u64);
            if let Err(e) = r {
                f.broken = true;
                self.poison("fsync", &e, upto);
                return;
            }
            f.dirty = false;
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.stats
                .last_fsync_ms
                .store(crate::store::now_ms(), Ordering::Relaxed);
        }
        f.last_sync = Instant::now();
        self.durable.send_if_modified(|d| {
            let changed = d.synced < upto;
            if changed {
                d.synced = upto;
            }
            changed
        });
    }
}

/// The flusher's file.
struct Flusher {
    file: File,
    /// Bytes in the file, all whole records.
    len: u64,
    /// A write or fsync to this file failed: nothing more goes to it.
    broken: bool,
    /// Written since the last fsync.
    dirty: bool,
    last_sync: Instant,
}

impl EffectSink for Log {
    fn append(&self, effects: &[Effect]) -> u64 {
        let (lsn, wake) = {
            let mut guard = self.tail.lock();
            let t = &mut *guard;
            if t.follower {
                return 0;
            }
            let lsn = t.next_lsn;
            t.next_lsn += 1;
            let wake = t.file && t.idle && t.buf.is_empty();
            // Encoded once, into the file's buffer; the backlog copies the frame.
            let start = t.buf.len();
            record::encode(&mut t.buf, lsn, effects);
            if let Some(b) = &mut t.backlog {
                b.push(lsn, &t.buf[start..]);
            }
            if !t.file {
                t.buf.truncate(start);
            }
            (lsn, wake)
        };
        self.after_append(wake);
        lsn
    }
}
