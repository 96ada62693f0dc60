//! The active's view of its mirrors: one [`Link`] per connected mirror, the in-sync set
//! (links in `PASSIVE-STANDBY`), and the lsn every in-sync mirror has acknowledged, which
//! strong writers wait for.
//!
//! Without a control plane, [`InSync::mark_out_of_sync`] is the one place a mirror leaves
//! the in-sync set (its link closed, or it was silent for `replica_timeout`). With one, the
//! set strong writes wait for also holds every mirror of the *committed* in-sync set
//! ([`InSync::set_committed`]): a mirror stops counting only once the active's
//! `RemoveInSync` committed ([`reconcile`]), so whoever the control plane may promote holds
//! every acknowledged strong write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

/// A link still sending its snapshot or catching up.
const INITIALIZING: u8 = 0;
/// A link whose mirror has caught up: it counts for strong writes.
const STANDBY: u8 = 1;
/// A link taken out of the in-sync set; it is closing.
const OUT: u8 = 2;

/// One connected mirror, as its shipper and the in-sync set see it.
#[derive(Debug)]
pub struct Link {
    /// The mirror's server name.
    pub name: String,
    /// Its client address (`host:port`).
    pub addr: String,
    state: AtomicU8,
    /// The last lsn it acknowledged.
    pub acked: AtomicU64,
    /// It becomes PASSIVE-STANDBY once it acknowledges this lsn (`u64::MAX` while its
    /// snapshot is still being sent).
    pub standby_at: AtomicU64,
    /// Unix ms of the last message from it.
    pub last_contact_ms: AtomicU64,
    /// A planned switchover asks this mirror to take over: (last lsn, new epoch), until its
    /// shipper sends it (or the switchover withdraws it).
    pub takeover: Mutex<Option<(u64, u64)>>,
    /// It answered the takeover: it is the active now.
    pub promoted: AtomicBool,
    /// Wakes the link's shipper (takeover asked, out of sync).
    pub wake: Notify,
}

impl Link {
    /// A new link to mirror `name` at client address `addr`, initializing.
    pub fn new(name: String, addr: String) -> Link {
        Link {
            name,
            addr,
            state: AtomicU8::new(INITIALIZING),
            acked: AtomicU64::new(0),
            standby_at: AtomicU64::new(u64::MAX),
            last_contact_ms: AtomicU64::new(crate::store::now_ms()),
            takeover: Mutex::new(None),
            promoted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// True while it counts for strong writes.
    pub fn is_standby(&self) -> bool {
        self.state.load(Ordering::Acquire) == STANDBY
    }

    /// True once it was taken out of the in-sync set.
    pub fn is_out(&self) -> bool {
        self.state.load(Ordering::Acquire) == OUT
    }

    /// Its Terracotta state name.
    pub fn state_name(&self) -> &'static str {
        match self.state.load(Ordering::Acquire) {
            STANDBY => "PASSIVE-STANDBY",
            OUT => "PASSIVE-UNINITIALIZED",
            _ => "INITIALIZING",
        }
    }
}

/// The mirrors of an active.
#[derive(Debug)]
pub struct InSync {
    links: Mutex<Vec<Arc<Link>>>,
    /// The lsn every in-sync mirror has acknowledged; `u64::MAX` when there is none (the
    /// active alone is the in-sync set).
    acked: watch::Sender<u64>,
    /// Bumped on every ack (WAIT counts mirrors then).
    acks: watch::Sender<u64>,
    /// The committed in-sync set's mirrors (control plane only): strong writes wait for
    /// each of them, connected or not, until their removal commits.
    committed: Mutex<Vec<String>>,
    /// Notified when a link joins or leaves the in-sync set (the reconciler proposes it).
    pub changed: Notify,
}

impl Default for InSync {
    fn default() -> Self {
        InSync {
            links: Mutex::new(Vec::new()),
            acked: watch::channel(u64::MAX).0,
            acks: watch::channel(0).0,
            committed: Mutex::new(Vec::new()),
            changed: Notify::new(),
        }
    }
}

impl InSync {
    /// Adds a mirror's link (not in sync yet).
    pub fn add(&self, link: Arc<Link>) {
        self.links.lock().push(link);
    }

    /// Removes a link whose connection ended, taking it out of the in-sync set first.
    pub fn remove(&self, link: &Arc<Link>, why: &str) {
        self.mark_out_of_sync(link, why);
        self.links.lock().retain(|l| !Arc::ptr_eq(l, link));
        self.acks.send_modify(|n| *n += 1);
    }

    /// Every link.
    pub fn links(&self) -> Vec<Arc<Link>> {
        self.links.lock().clone()
    }

    /// Mirrors in PASSIVE-STANDBY.
    pub fn standby_count(&self) -> usize {
        self.links.lock().iter().filter(|l| l.is_standby()).count()
    }

    /// Records an ack from `link`; it becomes PASSIVE-STANDBY when it reached its mark.
    /// True when it just did.
    pub fn on_ack(&self, link: &Link, lsn: u64) -> bool {
        link.acked.fetch_max(lsn, Ordering::AcqRel);
        link.last_contact_ms
            .store(crate::store::now_ms(), Ordering::Relaxed);
        let joined = lsn >= link.standby_at.load(Ordering::Acquire)
            && link
                .state
                .compare_exchange(INITIALIZING, STANDBY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if joined {
            tracing::info!(
                "mirror {} ({}) is PASSIVE-STANDBY at lsn {lsn}: strong writes now wait for it",
                link.name,
                link.addr
            );
            self.changed.notify_one();
        }
        self.recompute();
        self.acks.send_modify(|n| *n += 1);
        joined
    }

    /// **The decision point**: `link`'s mirror stops counting for strong writes (its link
    /// closed, or it was silent for `replica_timeout`). Strong writes waiting only for it
    /// are answered. It must resync to count again.
    pub fn mark_out_of_sync(&self, link: &Link, why: &str) {
        let was = link.state.swap(OUT, Ordering::AcqRel);
        if was == STANDBY {
            tracing::warn!(
                "mirror {} ({}) is out of sync: {why}; strong writes no longer wait for it{}",
                link.name,
                link.addr,
                if self.committed.lock().contains(&link.name) {
                    " once the control plane removed it from the in-sync set"
                } else {
                    ""
                }
            );
            self.changed.notify_one();
        }
        self.recompute();
        link.wake.notify_one();
    }

    /// Takes every mirror out (this server stops being the active).
    pub fn clear(&self, why: &str) {
        for l in self.links() {
            self.mark_out_of_sync(&l, why);
        }
    }

    /// Sets the committed in-sync set's mirrors (the active excluded).
    pub fn set_committed(&self, mirrors: Vec<String>) {
        {
            let mut c = self.committed.lock();
            if *c == mirrors {
                return;
            }
            *c = mirrors;
        }
        self.recompute();
    }

    /// Names of the links in PASSIVE-STANDBY.
    pub fn standby_names(&self) -> Vec<String> {
        self.links
            .lock()
            .iter()
            .filter(|l| l.is_standby())
            .map(|l| l.name.clone())
            .collect()
    }

    fn recompute(&self) {
        let links = self.links.lock();
        let standby = links
            .iter()
            .filter(|l| l.is_standby())
            .map(|l| l.acked.load(Ordering::Acquire));
        // A committed member counts with what its link acknowledged, 0 without a link.
        let committed = self.committed.lock().clone();
        let members = committed.iter().map(|name| {
            links
                .iter()
                .filter(|l| l.name == *name)
                .map(|l| l.acked.load(Ordering::Acquire))
                .max()
                .unwrap_or(0)
        });
        let min = standby.chain(members).min().unwrap_or(u64::MAX);
        drop(links);
        self.acked.send_if_modified(|a| {
            let changed = *a != min;
            *a = min;
            changed
        });
    }

    /// True while a strong write or a WAIT is waiting for acks (the shipper then sends at
    /// once instead of gathering records).
    pub fn has_waiters(&self) -> bool {
        self.acked.receiver_count() > 0 || self.acks.receiver_count() > 0
    }

    /// Waits until every in-sync mirror has acknowledged `lsn`.
    pub async fn replicated(&self, lsn: u64) {
        let mut rx = self.acked.subscribe();
        let _ = rx.wait_for(|a| *a >= lsn).await;
    }

    /// Mirrors (in any state) that acknowledged `lsn`.
    pub fn count_acked(&self, lsn: u64) -> usize {
        self.links
            .lock()
            .iter()
            .filter(|l| !l.is_out() && l.acked.load(Ordering::Acquire) >= lsn)
            .count()
    }

    /// Waits until `want` mirrors acknowledged `lsn` or `timeout` passed (None: forever);
    /// returns how many did (WAIT).
    pub async fn wait_for(
        &self,
        want: usize,
        lsn: u64,
        timeout: Option<std::time::Duration>,
    ) -> usize {
        let mut rx = self.acks.subscribe();
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let n = self.count_acked(lsn);
            if n >= want {
                return n;
            }
            let changed = rx.changed();
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, changed).await.is_err() {
                        return self.count_acked(lsn);
                    }
                }
                None => {
                    let _ = changed.await;
                }
            }
        }
    }
}

/// The active's side of the in-sync set under a control plane: keeps the committed set
/// the strong writes wait for, and proposes `AddInSync` for every PASSIVE-STANDBY link not
/// in it and `RemoveInSync` for every member without one. Runs on every server; acts only
/// while this server is the map's active at its epoch.
pub async fn reconcile(
    shared: Arc<crate::server::Shared>,
    cp: Arc<crate::cluster::control::ControlPlane>,
) {
    use crate::cluster::control::Proposal;
    let repl = &shared.repl;
    let mut map = cp.watch();
    let mut shutdown = shared.shutdown.subscribe();
    let every = cp.election_time / 4;
    loop {
        tokio::select! {
            _ = map.changed() => {}
            _ = repl.in_sync.changed.notified() => {}
            _ = tokio::time::sleep(every) => {}
            _ = crate::server::stopping(&mut shutdown) => return,
        }
        let Some(e) = cp.stripe(&repl.stripe) else {
            continue;
        };
        let me = &repl.me.name;
        if !repl.is_active() || e.active != *me || e.epoch != repl.epoch() {
            repl.in_sync.set_committed(Vec::new());
            continue;
        }
        let members: Vec<String> = e.in_sync.iter().filter(|s| *s != me).cloned().collect();
        repl.in_sync.set_committed(members.clone());
        let standby = repl.in_sync.standby_names();
        let adds =
            standby
                .iter()
                .filter(|s| !e.in_sync.contains(*s))
                .map(|s| Proposal::AddInSync {
                    stripe: repl.stripe.clone(),
                    server: s.clone(),
                    epoch: e.epoch,
                });
        let removes =
            members
                .iter()
                .filter(|m| !standby.contains(m))
                .map(|m| Proposal::RemoveInSync {
                    stripe: repl.stripe.clone(),
                    server: m.clone(),
                    epoch: e.epoch,
                });
        for p in adds.chain(removes).collect::<Vec<_>>() {
            if let Err(why) = cp.propose(p).await {
                tracing::warn!("{me}: {why}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_writes_wait_for_standby_mirrors_only_and_stop_when_one_is_out() {
        let s = InSync::default();
        assert_eq!(*s.acked.borrow(), u64::MAX, "alone: nothing to wait for");
        let a = Arc::new(Link::new("a".into(), "x:1".into()));
        let b = Arc::new(Link::new("b".into(), "x:2".into()));
        s.add(a.clone());
        s.add(b.clone());
        a.standby_at.store(10, Ordering::Release);
        assert!(!s.on_ack(&a, 5), "not caught up yet");
        assert_eq!(
            *s.acked.borrow(),
            u64::MAX,
            "initializing mirrors do not count"
        );
        assert!(s.on_ack(&a, 10));
        assert_eq!(*s.acked.borrow(), 10);
        b.standby_at.store(0, Ordering::Release);
        assert!(s.on_ack(&b, 7));
        assert_eq!(*s.acked.borrow(), 7, "the slowest in-sync mirror");
        assert_eq!(s.count_acked(8), 1);
        s.mark_out_of_sync(&b, "test");
        assert_eq!(
            *s.acked.borrow(),
            10,
            "b no longer holds strong writes back"
        );
        assert_eq!(s.standby_count(), 1);
        s.remove(&a, "closed");
        assert_eq!(*s.acked.borrow(), u64::MAX);
    }
}
