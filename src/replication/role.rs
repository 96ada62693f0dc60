//! Who is active: the role thread of a server in a stripe with mirrors.
//!
//! With a control plane (`consistency`), [`run_controlled`]: the cluster map names the
//! active; this server takes the role, steps down or follows as the map says.
//!
//! Without one (`availability`, or a 2-member cluster), probing:
//! ```text
//!  loop: probe every peer (HELLO)
//!        ├─ one is ACTIVE-COORDINATOR ──▶ follow it (mirror::session) until the link ends
//!        ├─ this server is the best candidate ──▶ hold, probe again, still best ──▶ ACTIVE
//!        └─ otherwise wait and probe again
//!  active (availability): another active outranks it ──▶ zapped: mirror, full resync
//! ```
//!
//! The best candidate at start: the server that was last active according to its data
//! directory, else one that holds data, else the first listed; among servers that are up
//! and not following an active. A server that has been a mirror in this process takes over
//! when a restarted peer that ranks below it is up, through `FAILOVER`, or in availability
//! mode once it has had no active for `election_time` (Terracotta's classic failover).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::wire::PeerView;
use super::{GATE_CLOSED, GATE_OPEN, Peer, Replication, State};
use crate::persist::Log;
use crate::server::Shared;

/// How long one probe of a peer may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// Between rounds of probes while no active is found.
const RETRY: Duration = Duration::from_millis(200);
/// How long a candidate waits before it probes again and takes over: longer than a
/// probe round, so a peer that came up meanwhile is seen.
const HOLD: Duration = Duration::from_millis(1000);
/// The node file: `epoch N` and `active 0|1`.
const NODE_FILE: &str = "terrace.role";

/// Reads the node file of `dir`: (epoch, was the last active).
pub fn read_node_file(dir: &Path) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(dir.join(NODE_FILE)).ok()?;
    let mut epoch = 0;
    let mut active = false;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("epoch", v)) => epoch = v.trim().parse().ok()?,
            Some(("active", v)) => active = v.trim() == "1",
            _ => {}
        }
    }
    Some((epoch, active))
}

fn write_node_file(dir: &Path, epoch: u64, active: bool) -> std::io::Result<()> {
    let tmp = dir.join(format!("{NODE_FILE}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        write!(f, "epoch {epoch}\nactive {}\n", u8::from(active))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(NODE_FILE))?;
    crate::persist::files::sync_dir(dir)
}

impl Replication {
    /// Records this server's epoch and whether it is active, on disk when restartable.
    pub(crate) fn store_role(&self, active: bool) {
        self.was_active.store(active, Ordering::Release);
        if let Some(dir) = &self.dir
            && let Err(e) = write_node_file(dir, self.epoch(), active)
        {
            tracing::error!("cannot write {}: {e}", dir.join(NODE_FILE).display());
        }
    }

    /// Becomes the stripe's active at `epoch`: the log numbers records again from after
    /// the last one held, and writes are taken.
    pub(crate) fn become_active(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Release);
        if let Some(log) = self.log.get() {
            let next = log.last_lsn() + 1;
            self.epoch_start.store(next, Ordering::Release);
            log.set_follower(false, next);
        }
        self.set_active_peer(Some(self.me.clone()));
        self.synced.store(true, Ordering::Release);
        self.store_role(true);
        self.set_state(State::ActiveCoordinator);
        self.gate.store(GATE_OPEN, Ordering::Release);
    }

    /// Stops taking writes and becomes a mirror looking for its active.
    pub(crate) fn become_mirror(&self, why: &str) {
        self.gate.store(GATE_CLOSED, Ordering::Release);
        self.was_mirror.store(true, Ordering::Release);
        if let Some(log) = self.log.get() {
            log.set_follower(true, log.last_lsn() + 1);
        }
        if self.is_active() {
            tracing::warn!("{} stops being active: {why}", self.me.name);
            self.floor.fetch_max(self.epoch(), Ordering::AcqRel);
            self.lease.clear();
            self.in_sync.clear("this server is no longer active");
            self.store_role(false);
        }
        self.set_state(State::PassiveUninitialized);
    }

    /// Pauses (true) or reopens (false) writes for a switchover.
    pub(crate) fn pause_writes(&self, pause: bool) {
        let _ = self.gate.compare_exchange(
            if pause { GATE_OPEN } else { super::GATE_PAUSED },
            if pause { super::GATE_PAUSED } else { GATE_OPEN },
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Whether a resuming mirror at (`epoch`, `lsn`) holds a prefix of this active's log.
    pub(crate) fn is_prefix(&self, epoch: u64, lsn: u64) -> bool {
        let mine = self.epoch();
        epoch == mine || (epoch + 1 == mine && lsn < self.epoch_start.load(Ordering::Acquire))
    }
}

/// Starts replication once the data is loaded: sets up the log (a memory-only one when not
/// restartable) with its backlog, and the role thread. A server alone in its stripe is
/// active at once and needs none of it; it still reports to the control plane (whose map
/// then holds its stripe, and which compares its slot layout) and takes the map's epoch.
pub fn start(shared: &Arc<Shared>) -> std::io::Result<()> {
    let repl = &shared.repl;
    if !repl.has_peers() {
        if let Some(cp) = repl.control().cloned() {
            report(shared, &cp);
            tokio::spawn(adopt_epoch(shared.clone(), cp));
        }
        return Ok(());
    }
    let log = match shared.persist.as_ref().and_then(|p| p.log()) {
        Some(l) => l.clone(),
        None => {
            let l = Arc::new(Log::memory(1));
            shared.keyspace.set_sink(l.clone());
            l
        }
    };
    log.enable_backlog(repl.backlog_bytes);
    // Until a role is chosen, nothing local is numbered.
    log.set_follower(true, log.last_lsn() + 1);
    let _ = repl.log.set(log);
    if let Some(cp) = repl.control().cloned() {
        // After the log is set: the first report carries the real lsn.
        report(shared, &cp);
        tokio::spawn(super::in_sync::reconcile(shared.clone(), cp.clone()));
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("repl-role".into())
            .spawn(move || run_controlled(&shared, &cp))?;
        return Ok(());
    }
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("repl-role".into())
        .spawn(move || run(&shared))?;
    Ok(())
}

/// Starts this server's reports to the control plane's leader.
fn report(shared: &Arc<Shared>, cp: &Arc<crate::cluster::control::ControlPlane>) {
    let durable = shared.persist.is_some();
    let source = {
        let shared = shared.clone();
        Arc::new(move || shared.repl.report(durable, shared.cluster.layout))
    };
    cp.spawn_reporter(
        source,
        shared.repl.lease.clone(),
        shared.repl.report_now.clone(),
    );
}

/// A server alone in its stripe is its active whatever the map says, but it takes the
/// map's epoch, so its epoch, INFO and leases agree with the control plane.
async fn adopt_epoch(shared: Arc<Shared>, cp: Arc<crate::cluster::control::ControlPlane>) {
    let repl = &shared.repl;
    let mut rx = cp.watch();
    loop {
        let epoch = rx
            .borrow_and_update()
            .stripe(&repl.stripe)
            .filter(|e| e.active == repl.me.name)
            .map(|e| e.epoch);
        if let Some(e) = epoch
            && e != repl.epoch()
        {
            repl.epoch.store(e, Ordering::Release);
            repl.store_role(true);
            repl.report_now.notify_one();
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The role thread under a control plane: the map says who is active; this server takes
/// the role when the map names it (in this process, at an epoch above the one it last
/// left), steps down when it names another, and follows that one.
fn run_controlled(shared: &Arc<Shared>, cp: &Arc<crate::cluster::control::ControlPlane>) {
    let repl = &shared.repl;
    let mut rx = cp.watch();
    let mut waiting_logged = false;
    while !*shared.shutdown.borrow() {
        let entry = cp.stripe(&repl.stripe);
        match entry {
            Some(e) if e.active == repl.me.name => {
                let mine = e.run == repl.run_id && e.epoch > repl.floor.load(Ordering::Acquire);
                if mine && !(repl.is_active() && repl.epoch() == e.epoch) {
                    tracing::info!(
                        "{}: the control plane made it active at epoch {}",
                        repl.me.name,
                        e.epoch
                    );
                    repl.become_active(e.epoch);
                    shared.key_range_lost();
                } else if !mine && !waiting_logged {
                    tracing::info!(
                        "{}: named active at epoch {} by an earlier process (or one it left); waiting for the control plane to promote it again",
                        repl.me.name,
                        e.epoch
                    );
                    waiting_logged = true;
                }
            }
            Some(e) => {
                waiting_logged = false;
                if repl.is_active() || repl.state() == State::Starting {
                    repl.become_mirror(&format!(
                        "the control plane made {} active at epoch {}",
                        e.active, e.epoch
                    ));
                    repl.store_role(false);
                }
                if let Some(peer) = repl.peers.iter().find(|p| p.name == e.active).cloned() {
                    follow(shared, &peer);
                    continue;
                }
            }
            None => {}
        }
        // Wait for the map to change (or a moment, to notice a shutdown).
        let _ = cp
            .runtime()
            .block_on(async { tokio::time::timeout(RETRY, rx.changed()).await });
    }
}

fn run(shared: &Arc<Shared>) {
    let repl = &shared.repl;
    let mut waiting_logged = false;
    let started = std::time::Instant::now();
    let availability = repl.priority == crate::config::FailoverPriority::Availability;
    // When this mirror last lost its active (availability: it takes over after
    // election_time without one).
    let mut lost: Option<std::time::Instant> = None;
    while !*shared.shutdown.borrow() {
        if repl.is_active() {
            std::thread::sleep(RETRY);
            if availability {
                zap_if_outranked(shared);
            }
            continue;
        }
        let views = probe_all(&repl.peers);
        if let Some((peer, _)) = views
            .iter()
            .find(|(_, v)| v.state == State::ActiveCoordinator.name())
        {
            waiting_logged = false;
            follow(shared, peer);
            lost = Some(std::time::Instant::now());
            continue;
        }
        let patient = started.elapsed() < repl.election_time;
        let orphaned = availability
            && repl.synced.load(Ordering::Acquire)
            && lost.is_some_and(|t| t.elapsed() >= repl.election_time);
        match choose(repl, &views, patient, orphaned) {
            Choice::Me => {
                std::thread::sleep(HOLD);
                let again = probe_all(&repl.peers);
                let taken = again
                    .iter()
                    .any(|(_, v)| v.state == State::ActiveCoordinator.name());
                let patient = started.elapsed() < repl.election_time;
                if !taken
                    && choose(repl, &again, patient, orphaned) == Choice::Me
                    && !*shared.shutdown.borrow()
                {
                    let epoch = again
                        .iter()
                        .map(|(_, v)| v.epoch)
                        .chain([repl.epoch()])
                        .max()
                        .unwrap_or(0)
                        + 1;
                    if orphaned {
                        tracing::warn!(
                            "{}: no active for {:?} (election_time): taking over at epoch \
                             {epoch} without a quorum (failover_priority: availability)",
                            repl.me.name,
                            repl.election_time
                        );
                    }
                    repl.become_active(epoch);
                    shared.key_range_lost();
                }
            }
            Choice::Wait(why) => {
                if !waiting_logged {
                    tracing::info!("{} waits for an active: {why}", repl.me.name);
                    waiting_logged = true;
                }
                std::thread::sleep(RETRY);
            }
        }
    }
}

/// Follows `active` until the link ends or this server takes over.
fn follow(shared: &Arc<Shared>, active: &Peer) {
    let repl = &shared.repl;
    if repl.state() == State::Starting {
        repl.become_mirror("another server is active");
        repl.store_role(false);
    }
    repl.set_active_peer(Some(active.clone()));
    match super::mirror::session(shared, active) {
        Ok(super::mirror::End::Promoted) => {}
        Ok(super::mirror::End::Closed(why)) | Err(why) => {
            let line = format!(
                "{}: link to active {} ({}) ended: {why}",
                repl.me.name, active.name, active.group
            );
            // Once per distinct failure: a dead active refuses every 200 ms.
            let mut last = repl.last_link_end.lock();
            if *last != line {
                tracing::warn!("{line}");
                *last = line;
            }
            drop(last);
            repl.link_up.store(false, Ordering::Release);
            if !repl.is_active() {
                repl.set_state(State::PassiveUninitialized);
            }
            std::thread::sleep(RETRY);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Choice {
    Me,
    Wait(String),
}

/// Availability mode, on an active: when another server of the stripe is active too (a
/// split brain healed) and outranks this one (higher epoch, then higher lsn, then earlier
/// in the config), this one is zapped: it steps down, and its next sync is a full one that
/// clears its data (the records it took meanwhile are counted in a WARN line then).
fn zap_if_outranked(shared: &Arc<Shared>) {
    let repl = &shared.repl;
    let me = repl.view();
    let rank = |v: &PeerView| (v.epoch, v.lsn, std::cmp::Reverse(v.index));
    let winner = probe_all(&repl.peers)
        .into_iter()
        .filter(|(_, v)| v.state == State::ActiveCoordinator.name())
        .max_by_key(|(_, v)| rank(v));
    if let Some((peer, v)) = winner
        && rank(&v) > rank(&me)
    {
        tracing::warn!(
            "{}: split brain: {} is active too, at epoch {} lsn {} (this server: epoch {} lsn \
             {}); the higher epoch wins: this server is zapped and resyncs as its mirror",
            repl.me.name,
            v.name,
            v.epoch,
            v.lsn,
            me.epoch,
            me.lsn
        );
        repl.become_mirror(&format!("zapped by {}", peer.name));
        repl.synced_once.store(false, Ordering::Release);
        repl.synced.store(false, Ordering::Release);
        shared.key_range_lost();
    }
}

/// Whether this server should become active, given what the reachable peers said.
/// `patient`: still within `election_time` of this server's start, when a server whose data
/// directory says it was a mirror leaves the role to the last active if it comes back.
/// `orphaned` (availability mode): this synced mirror has had no active for
/// `election_time`, so it takes over on its own.
fn choose(repl: &Replication, views: &[(Peer, PeerView)], patient: bool, orphaned: bool) -> Choice {
    let me = repl.view();
    let rank = |v: &PeerView| (v.was_active, v.lsn > 0, std::cmp::Reverse(v.index));
    // Servers following an active we cannot see are not candidates.
    let candidates: Vec<&PeerView> = views
        .iter()
        .map(|(_, v)| v)
        .filter(|v| {
            v.state == State::Starting.name() || v.state == State::PassiveUninitialized.name()
        })
        .collect();
    if let Some(best) = candidates.iter().max_by_key(|v| rank(v))
        && rank(best) > rank(&me)
    {
        return Choice::Wait(format!("{} ranks first", best.name));
    }
    if patient && !me.was_active && me.epoch > 0 && !candidates.iter().any(|v| v.was_active) {
        return Choice::Wait(format!(
            "this server was a mirror at epoch {}: waiting up to election_time ({:?}) for the \
             last active to come back",
            me.epoch, repl.election_time
        ));
    }
    if repl.was_mirror.load(Ordering::Acquire)
        && !orphaned
        && !candidates.iter().any(|v| v.state == State::Starting.name())
    {
        return Choice::Wait(format!(
            "no active in stripe {}; a mirror takes over on its own only in availability mode, \
             after election_time (else use `terrace failover`, or restart the old active)",
            repl.stripe
        ));
    }
    Choice::Me
}

fn probe_all(peers: &[Peer]) -> Vec<(Peer, PeerView)> {
    peers
        .iter()
        .filter_map(|p| probe(&p.group).ok().map(|v| (p.clone(), v)))
        .collect()
}

/// Asks one peer's group port who it is.
pub fn probe(group: &str) -> Result<PeerView, String> {
    probe_within(group, PROBE_TIMEOUT)
}

/// [`probe`] with its own timeout (a server, or a voter: its state is `VOTER`).
pub fn probe_within(group: &str, timeout: Duration) -> Result<PeerView, String> {
    let mut s = crate::net::connect_to(group, crate::net::Port::Group, timeout)?;
    s.write_all(b"HELLO\n").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s.take(1024))
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    PeerView::parse(line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_file_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_node_file(dir.path()), None);
        write_node_file(dir.path(), 7, true).expect("write");
        assert_eq!(read_node_file(dir.path()), Some((7, true)));
        write_node_file(dir.path(), 8, false).expect("write");
        assert_eq!(read_node_file(dir.path()), Some((8, false)));
    }
}
