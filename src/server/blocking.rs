//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, and the sorted sets'
//! BZPOPMIN, BZPOPMAX, BZMPOP): clients waiting for keys to get elements.
//!
//! The mechanism knows nothing of lists or sorted sets. A blocking command runs through
//! dispatch like any other; when it finds nothing to serve it calls
//! [`ExecCtx::block_on`] with its keys and timeout and returns the reply it gives when it
//! cannot block (inside MULTI). The connection then waits (a timeout answers Redis's null
//! array, for every blocking command), and *re-runs the same command* through
//! dispatch each time it is woken: the retry is a normal execution (routing, locks,
//! effects logged and replicated, keyspace notifications), and a retry that again finds
//! nothing keeps the client's place in line.
//!
//! ```text
//!  BLPOP k 5 ──dispatch──▶ exec: k empty ──block_on(k)──▶ registry: k → [c1, c2, ...]
//!     (shard lock held: a push after this sees c1)        │
//!  LPUSH k x ──dispatch──▶ exec ──▶ Db::take_ready() = [k] ──signal(k)──▶ wake c1 (head)
//!  c1's connection: woken ──retry BLPOP via dispatch──▶ served: leave, pass the turn on
//!                                                    └▶ empty again: wait, same place
//!  timeout / CLIENT UNBLOCK / kill / shutdown: leave (passing the turn on if woken)
//! ```
//! Only the head waiter of a key is woken (Redis serves blocked clients of a key in
//! arrival order); a waiter that leaves after being served or woken wakes the next
//! head of each of its keys, so an element is never left while someone waits for it.
//! A role change or a lost slot range wakes everyone ([`Blocking::wake_all`]): the
//! retry's routing answers MOVED where the keys are no longer served.
//!
//! Inside MULTI/EXEC a blocking command's registration is dropped at once, so it
//! answers like its non-blocking form, as in Redis.
//!
//! A new blocking command (BZPOPMIN, ...) needs: `Flags::WRITE | Flags::BLOCKING` and its
//! keys in its key spec (`.keys(..)` or `.numkeys(..)`); its timeout parsed with
//! [`parse_timeout`]; when nothing can be served, `ctx.block_on(keys, timeout)` and its
//! non-blocking reply; on a retry ([`ExecCtx::is_retry`]) a key of another type skips
//! instead of answering WRONGTYPE. Writes through `Db::update`/`Db::set` already report
//! lists and sorted sets that grew.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::command::{CmdError, ExecCtx};
use crate::protocol::Reply;

/// Not unblocked by CLIENT UNBLOCK.
const UNBLOCK_NONE: u8 = 0;
/// CLIENT UNBLOCK id TIMEOUT: answer as on timeout.
const UNBLOCK_TIMEOUT: u8 = 1;
/// CLIENT UNBLOCK id ERROR: answer `-UNBLOCKED`.
const UNBLOCK_ERROR: u8 = 2;

/// The registry of blocked clients, shared by every connection.
#[derive(Debug, Default)]
pub struct Blocking {
    /// The waiters by key and by client. One mutex: registering, leaving and signalling
    /// are short, and signalling skips it while nobody is blocked (`blocked`).
    inner: Mutex<Registry>,
    /// Clients blocked now (INFO `blocked_clients`); read without the lock.
    blocked: AtomicUsize,
}

#[derive(Debug, Default)]
struct Registry {
    /// Key → its waiters, oldest first.
    keys: HashMap<Bytes, VecDeque<Arc<Waiter>>, ahash::RandomState>,
    /// Client id → its waiter (a client blocks on one command at a time).
    clients: HashMap<u64, Arc<Waiter>, ahash::RandomState>,
}

/// One blocked client.
#[derive(Debug)]
pub struct Waiter {
    /// Its client id.
    client: u64,
    /// Woken by a push on one of its keys, CLIENT UNBLOCK or a role change. A `Notify`
    /// keeps one permit, so a signal sent before the connection awaits is not lost.
    wake: Notify,
    /// Signalled and not yet retried: when it leaves now, the turn passes on.
    woken: AtomicBool,
    /// CLIENT UNBLOCK's request, one of the `UNBLOCK_*` values.
    unblock: AtomicU8,
}

/// A client's place in line, held by its [`Client`](super::Client) while it is blocked;
/// dropping it leaves every queue (and passes the turn on when it was woken or served).
#[derive(Debug)]
pub struct Block {
    registry: Arc<Blocking>,
    waiter: Arc<Waiter>,
    keys: Vec<Bytes>,
    /// When the wait ends with the timeout reply; `None` blocks forever.
    pub deadline: Option<Instant>,
    /// Set by [`ExecCtx::block_on`] when a retry found nothing to serve again.
    pub again: bool,
    /// Set once the command was served: leaving then always passes the turn on (the
    /// key may hold more elements for the next waiter).
    pub served: bool,
    /// Set while the command runs again (its calls and latency were counted once, when
    /// it first ran).
    pub retrying: bool,
}

/// Why a blocked client stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A key it waits on may have elements: retry.
    Retry,
    /// CLIENT UNBLOCK ... TIMEOUT: answer the timeout reply.
    Timeout,
    /// CLIENT UNBLOCK ... ERROR: answer [`unblocked_error`].
    Error,
}

impl Blocking {
    /// Clients blocked now.
    pub fn blocked(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Keys with at least one client blocked on them (INFO `total_blocking_keys`).
    pub fn keys(&self) -> usize {
        if self.blocked() == 0 {
            return 0;
        }
        self.inner.lock().keys.len()
    }

    /// Wakes the first waiter of each key (after a command made them grow).
    pub fn signal(&self, keys: &[Bytes]) {
        if keys.is_empty() || self.blocked() == 0 {
            return;
        }
        let r = self.inner.lock();
        for k in keys {
            if let Some(w) = r.keys.get(k).and_then(|q| q.front()) {
                w.woken.store(true, Ordering::Release);
                w.wake.notify_one();
            }
        }
    }

    /// Wakes every blocked client: this server's role or slot ranges changed, and each
    /// retry finds out whether its keys are still served here (MOVED otherwise).
    pub fn wake_all(&self) {
        if self.blocked() == 0 {
            return;
        }
        for w in self.inner.lock().clients.values() {
            w.woken.store(true, Ordering::Release);
            w.wake.notify_one();
        }
    }

    /// CLIENT UNBLOCK: ends client `id`'s wait with the timeout reply, or with the
    /// UNBLOCKED error when `error`. False when that client is not blocked on keys.
    pub fn unblock(&self, id: u64, error: bool) -> bool {
        let r = self.inner.lock();
        let Some(w) = r.clients.get(&id) else {
            return false;
        };
        let how = if error {
            UNBLOCK_ERROR
        } else {
            UNBLOCK_TIMEOUT
        };
        w.unblock.store(how, Ordering::Release);
        w.wake.notify_one();
        true
    }

    fn register(self: &Arc<Self>, client: u64, keys: Vec<Bytes>) -> Arc<Waiter> {
        let w = Arc::new(Waiter {
            client,
            wake: Notify::new(),
            woken: AtomicBool::new(false),
            unblock: AtomicU8::new(UNBLOCK_NONE),
        });
        let mut r = self.inner.lock();
        for k in &keys {
            let q = r.keys.entry(k.clone()).or_default();
            // A key named twice (BLPOP k k 0) waits once.
            if !q.iter().any(|x| Arc::ptr_eq(x, &w)) {
                q.push_back(w.clone());
            }
        }
        if r.clients.insert(client, w.clone()).is_none() {
            self.blocked.fetch_add(1, Ordering::Relaxed);
        }
        w
    }

    fn leave(&self, w: &Arc<Waiter>, keys: &[Bytes]) {
        let mut r = self.inner.lock();
        for k in keys {
            if let Some(q) = r.keys.get_mut(k) {
                q.retain(|x| !Arc::ptr_eq(x, w));
                if q.is_empty() {
                    r.keys.remove(k);
                }
            }
        }
        if r.clients.get(&w.client).is_some_and(|x| Arc::ptr_eq(x, w)) {
            r.clients.remove(&w.client);
            self.blocked.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Block {
    /// Waits until woken (the caller also watches the deadline, kills and shutdown).
    pub async fn woken(&self) -> Wake {
        self.waiter.wake.notified().await;
        self.waiter.woken.store(false, Ordering::Release);
        match self.waiter.unblock.load(Ordering::Acquire) {
            UNBLOCK_TIMEOUT => Wake::Timeout,
            UNBLOCK_ERROR => Wake::Error,
            _ => Wake::Retry,
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.registry.leave(&self.waiter, &self.keys);
        if self.served || self.waiter.woken.load(Ordering::Acquire) {
            self.registry.signal(&self.keys);
        }
    }
}

/// The error a client unblocked by `CLIENT UNBLOCK id ERROR` gets (Redis's text).
pub fn unblocked_error() -> Reply {
    Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
}

/// Parses a blocking command's timeout in seconds (a float, as Redis 7.4's
/// `getTimeoutFromObjectOrReply`): how long to wait, `None` for 0 (forever).
pub fn parse_timeout(b: &[u8]) -> Result<Option<Duration>, CmdError> {
    let secs = crate::protocol::args::parse_f64(b)
        .map_err(|_| CmdError::err("timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    if ms > i64::MAX as f64 {
        return Err(CmdError::err("timeout is out of range"));
    }
    if ms < 0.0 {
        return Err(CmdError::err("timeout is negative"));
    }
    // Beyond what a clock can add, Redis says out of range too.
    if ms > 1e15 {
        return Err(CmdError::err("timeout is out of range"));
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

impl ExecCtx<'_> {
    /// Called by a blocking command that found nothing to serve, while it still holds its
    /// keys' shard locks (so a push that follows finds this client in line): the
    /// connection waits for `keys` until `timeout` (`None`: forever) and runs the command
    /// again when one of them grows. The command then returns the reply it gives when it
    /// cannot block (inside MULTI, where the wait is dropped at once).
    ///
    /// On a retry the client keeps its place and its first deadline.
    pub fn block_on<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        timeout: Option<Duration>,
    ) {
        if let Some(b) = self.client.block.as_mut() {
            b.again = true;
            return;
        }
        let keys: Vec<Bytes> = keys.into_iter().map(Bytes::copy_from_slice).collect();
        let registry = self.server.blocking.clone();
        let waiter = registry.register(self.client.id(), keys.clone());
        self.client.block = Some(Block {
            registry,
            waiter,
            keys,
            deadline: timeout.map(|t| Instant::now() + t),
            again: true,
            served: false,
            retrying: false,
        });
    }

    /// True while this command runs again for a client already blocked on its keys (a
    /// key that holds another type then keeps it waiting, as in Redis, instead of
    /// answering WRONGTYPE).
    pub fn is_retry(&self) -> bool {
        self.client.block.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(reg: &Arc<Blocking>, client: u64, keys: &[&str]) -> Block {
        let keys: Vec<Bytes> = keys.iter().map(|k| Bytes::from(k.to_string())).collect();
        let waiter = reg.register(client, keys.clone());
        Block {
            registry: reg.clone(),
            waiter,
            keys,
            deadline: None,
            again: true,
            served: false,
            retrying: false,
        }
    }

    fn woken(b: &Block) -> bool {
        b.waiter.woken.load(Ordering::Acquire)
    }

    #[test]
    fn signal_wakes_the_head_and_leaving_passes_the_turn() {
        let reg = Arc::new(Blocking::default());
        let a = block(&reg, 1, &["k"]);
        let b = block(&reg, 2, &["k", "j"]);
        assert_eq!(reg.blocked(), 2);
        assert_eq!(reg.keys(), 2);
        reg.signal(&[Bytes::from("k")]);
        assert!(woken(&a) && !woken(&b));
        let mut a = a;
        a.served = true;
        drop(a);
        assert!(woken(&b), "served: the next in line is woken");
        assert_eq!(reg.blocked(), 1);
        drop(b);
        assert_eq!(reg.blocked(), 0);
        assert!(reg.inner.lock().keys.is_empty());
    }

    #[test]
    fn unblock_and_timeouts() {
        let reg = Arc::new(Blocking::default());
        let a = block(&reg, 7, &["k"]);
        assert!(!reg.unblock(8, false));
        assert!(reg.unblock(7, true));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        assert_eq!(rt.block_on(a.woken()), Wake::Error);
        assert!(matches!(parse_timeout(b"0"), Ok(None)));
        assert!(matches!(parse_timeout(b"0.0011"), Ok(Some(d)) if d == Duration::from_millis(2)));
        assert_eq!(
            parse_timeout(b"-1").err().map(|e| e.to_string()),
            Some("ERR timeout is negative".into())
        );
        assert_eq!(
            parse_timeout(b"x").err().map(|e| e.to_string()),
            Some("ERR timeout is not a float or out of range".into())
        );
        assert_eq!(
            parse_timeout(b"1e300").err().map(|e| e.to_string()),
            Some("ERR timeout is out of range".into())
        );
    }
}
