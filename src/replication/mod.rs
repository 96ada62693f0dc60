//! Mirror groups: a stripe's active streams its effect records to its mirrors over the
//! group port; strong caches answer only once every in-sync mirror has them.
//!
//! Owns the server's role in its stripe (active or mirror, Terracotta's states), the
//! replication backlog's readers, the links to mirrors and the mirror's apply loop. It must
//! not interpret commands: it ships and applies records (persist::record) and decides who
//! may take writes. The rules are in ../shared/REPLICATION.md; what this issue does not do
//! yet (the control plane) is marked where it will plug in.
//!
//! ```text
//!  active:  Db::commit ─▶ Log (lsn, encode once) ─▶ backlog ─▶ shipper task per mirror ─▶ group port
//!           connection: strong batch ─▶ InSync::replicated(lsn) ◀── acks ◀── shipper's reader
//!  mirror:  role thread: probe peers ─▶ follow the active ─▶ SYNC ─▶ FULLSYNC (snapshot + records)
//!           or CONTINUE ─▶ apply (all shards, no effects recorded) ─▶ own log (append_raw) ─▶ ack
//!  switch:  FAILOVER ─▶ pause writes ─▶ mirror catches up ─▶ T ─▶ mirror promotes (epoch+1) ─▶ P
//!           ─▶ old active demotes, follows the new one (resuming from its backlog)
//! ```
//!
//! - [`backlog`]: the recent records, shared by every shipper.
//! - [`wire`]: the group-port protocol.
//! - [`in_sync`]: links, the in-sync set, acks, the out-of-sync decision point.
//! - [`shipper`]: the active's side: HELLO answers, full sync, streaming, switchover.
//! - [`mirror`]: the mirror's side: sync, apply, ack, take over.
//! - [`role`]: choosing the active at start, the role thread, the node file.

pub mod backlog;
pub mod in_sync;
pub mod mirror;
pub mod role;
pub mod shipper;
pub mod wire;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

use crate::cluster::control::{ControlPlane, Lease, Report};
use crate::command::CmdError;
use crate::config::{Config, Placement};
use crate::persist::Log;

pub use in_sync::InSync;

/// A server's state in its stripe (Terracotta's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Deciding who is active (only in stripes with several servers).
    Starting = 0,
    /// The active: takes writes and streams them to the mirrors.
    ActiveCoordinator = 1,
    /// A mirror without a synced copy: looking for the active or just connected.
    PassiveUninitialized = 2,
    /// A mirror receiving its snapshot or catching up.
    Initializing = 3,
    /// A mirror that has caught up and streams; promotable.
    PassiveStandby = 4,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::ActiveCoordinator,
            2 => State::PassiveUninitialized,
            3 => State::Initializing,
            4 => State::PassiveStandby,
            _ => State::Starting,
        }
    }

    /// Every state.
    pub const ALL: [State; 5] = [
        State::Starting,
        State::ActiveCoordinator,
        State::PassiveUninitialized,
        State::Initializing,
        State::PassiveStandby,
    ];

    /// The state with this [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The name shown in INFO, `terrace status` and the logs.
    pub fn name(self) -> &'static str {
        match self {
            State::Starting => "STARTING",
            State::ActiveCoordinator => "ACTIVE-COORDINATOR",
            State::PassiveUninitialized => "PASSIVE-UNINITIALIZED",
            State::Initializing => "INITIALIZING",
            State::PassiveStandby => "PASSIVE-STANDBY",
        }
    }

    /// `active`, `mirror` or `starting`.
    pub fn role(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::ActiveCoordinator => "active",
            _ => "mirror",
        }
    }
}

/// A server of the stripe, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Server name.
    pub name: String,
    /// Its client address, `host:port` (what MOVED names).
    pub addr: String,
    /// Its group address, `host:group_port`.
    pub group: String,
    /// Its place in the stripe's list (priority order).
    pub index: usize,
}

/// A command that answers only after waiting (the connection awaits it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// WAIT numreplicas timeout.
    Wait {
        /// Mirrors wanted.
        replicas: usize,
        /// Milliseconds; 0 = forever.
        timeout_ms: u64,
        /// The connection's last write.
        lsn: u64,
    },
    /// FAILOVER [TO host port] [TIMEOUT ms].
    Failover {
        /// The mirror's client address, or any PASSIVE-STANDBY mirror.
        to: Option<String>,
        /// Milliseconds to wait for the mirror to catch up.
        timeout_ms: u64,
    },
}

/// Whether writes are taken.
const GATE_OPEN: u8 = 0;
/// A switchover is under way: writes are refused with TRYAGAIN.
const GATE_PAUSED: u8 = 1;
/// Not the active: writes are redirected.
const GATE_CLOSED: u8 = 2;

/// This server's replication state.
#[derive(Debug)]
pub struct Replication {
    /// This server.
    pub me: Peer,
    /// The other servers of the stripe.
    pub peers: Vec<Peer>,
    /// The stripe's name.
    pub stripe: String,
    state: AtomicU8,
    /// Whether writes are taken: one load on the write path.
    gate: AtomicU8,
    /// The epoch this server knows (raised by every promotion).
    epoch: AtomicU64,
    /// The first lsn of the current epoch: a mirror of the previous epoch whose log ends
    /// before it is a prefix of ours (it may resume).
    epoch_start: AtomicU64,
    /// This server was the last active (its node file or this process says so).
    was_active: AtomicBool,
    /// This server has been a mirror in this process (it never promotes itself then).
    was_mirror: AtomicBool,
    /// This process has synced with an active: it may resume instead of a full sync.
    synced_once: AtomicBool,
    /// The active a mirror follows.
    active: Mutex<Option<Peer>>,
    /// The log records are numbered by (and the backlog read from).
    log: OnceLock<Arc<Log>>,
    /// The mirrors, when active.
    pub in_sync: InSync,
    /// Mirror: the link to the active is up.
    pub link_up: AtomicBool,
    /// Mirror: unix ms of the last message from the active.
    pub last_io_ms: AtomicU64,
    /// The data directory, for the node file (`None` when not restartable).
    dir: Option<PathBuf>,
    /// `cluster.replica_timeout`.
    pub timeout: Duration,
    /// `cluster.election_time`: how long a former mirror waits for the last active to come
    /// back after a whole-stripe restart before the usual choice applies.
    pub election_time: Duration,
    /// `cluster.repl_backlog`, bytes.
    pub backlog_bytes: usize,
    /// `cluster.failover_priority` in force.
    pub priority: crate::config::FailoverPriority,
    /// The control plane, in `consistency` clusters of several members: it decides who is
    /// active (set once at start, before the role thread runs).
    pub control: OnceLock<Arc<ControlPlane>>,
    /// The lease from the control plane's leader: without it an active takes no writes
    /// and serves no strong reads.
    pub lease: Arc<Lease>,
    /// Wakes the reporter (a role change is reported at once).
    pub report_now: Arc<tokio::sync::Notify>,
    /// This server holds a synced copy of its epoch's log: it is active, or it reached
    /// PASSIVE-STANDBY and has not cleared its data since (reported: only such a server
    /// may be promoted).
    pub synced: AtomicBool,
    /// The epoch at which this process last stopped being active: it does not take that
    /// epoch's role back (only a new promotion, at a higher epoch, makes it active again).
    floor: AtomicU64,
    /// This process's run id (Redis's run_id): promotions name the process they are for.
    pub run_id: String,
    /// The last "link ended" line logged (repeats are not logged again).
    pub(crate) last_link_end: Mutex<String>,
}

impl Replication {
    /// The replication state of the server at `at` in `config`, in the process `run_id`.
    pub fn new(config: &Config, at: &Placement, run_id: String) -> Replication {
        let peer = |i: usize, s: &crate::config::ServerConfig| Peer {
            name: s.name.clone(),
            addr: format!("{}:{}", s.host, s.port),
            group: format!("{}:{}", s.host, s.group_port()),
            index: i,
        };
        let stripe = config.cluster.stripes.get(at.stripe);
        let servers = stripe.map(|s| s.servers.as_slice()).unwrap_or_default();
        let me = servers
            .get(at.server)
            .map(|s| peer(at.server, s))
            .unwrap_or(Peer {
                name: "server1".into(),
                addr: "127.0.0.1:6379".into(),
                group: "127.0.0.1:16379".into(),
                index: 0,
            });
        let peers = servers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at.server)
            .map(|(i, s)| peer(i, s))
            .collect::<Vec<_>>();
        let dir = config
            .storage
            .restartable
            .then(|| servers.get(at.server).and_then(|s| s.data.clone()))
            .flatten()
            .map(PathBuf::from);
        let (epoch, was_active) = dir
            .as_deref()
            .and_then(role::read_node_file)
            .unwrap_or((0, false));
        let alone = peers.is_empty();
        Replication {
            me,
            peers,
            stripe: stripe.map(|s| s.name.clone()).unwrap_or_default(),
            state: AtomicU8::new(if alone {
                State::ActiveCoordinator as u8
            } else {
                State::Starting as u8
            }),
            gate: AtomicU8::new(if alone { GATE_OPEN } else { GATE_CLOSED }),
            epoch: AtomicU64::new(epoch),
            epoch_start: AtomicU64::new(0),
            was_active: AtomicBool::new(was_active),
            was_mirror: AtomicBool::new(false),
            synced_once: AtomicBool::new(false),
            active: Mutex::new(None),
            log: OnceLock::new(),
            in_sync: InSync::default(),
            link_up: AtomicBool::new(false),
            last_io_ms: AtomicU64::new(0),
            dir,
            timeout: config.cluster.replica_timeout.0,
            election_time: config.cluster.election_time.0,
            backlog_bytes: config.cluster.repl_backlog.0 as usize,
            priority: config.cluster.priority(),
            control: OnceLock::new(),
            lease: Arc::new(Lease::default()),
            report_now: Arc::new(tokio::sync::Notify::new()),
            synced: AtomicBool::new(alone),
            floor: AtomicU64::new(0),
            run_id,
            last_link_end: Mutex::new(String::new()),
        }
    }

    /// The control plane, when this cluster has one.
    pub fn control(&self) -> Option<&Arc<ControlPlane>> {
        self.control.get()
    }

    /// Whether a mirror's session with `active` goes on: always without a control plane;
    /// with one, while the map names `active` (a promotion ends the session at once, even
    /// while the old active is silent rather than gone).
    pub fn still_follows(&self, active: &Peer) -> bool {
        match self.control.get() {
            None => true,
            Some(cp) => cp
                .stripe(&self.stripe)
                .is_none_or(|e| e.active == active.name),
        }
    }

    /// What this server tells the control plane's leader.
    pub fn report(&self, durable: bool, layout: u32) -> Report {
        Report {
            server: self.me.name.clone(),
            run: self.run_id.clone(),
            stripe: self.stripe.clone(),
            state: self.state().name().to_string(),
            epoch: self.epoch(),
            lsn: self.last_lsn(),
            was_active: self.was_active.load(Ordering::Acquire),
            durable,
            synced: self.synced.load(Ordering::Acquire),
            layout,
        }
    }

    /// True when this server must hold a lease to serve: it is in a control plane and its
    /// stripe has mirrors (a server alone in its stripe has nobody to be replaced by).
    #[inline]
    fn leased(&self) -> bool {
        self.control.get().is_some() && !self.peers.is_empty()
    }

    /// Why an active refuses a strong read now: it holds no lease (it may have been cut
    /// off from the control plane, and a new active may be serving).
    pub fn strong_read_refusal(&self) -> Option<CmdError> {
        (self.leased() && self.is_active() && !self.lease.valid()).then(no_lease)
    }

    /// Waits until every in-sync mirror has `lsn` (a strong batch). In a control plane the
    /// active must still hold its lease when they have: a write that lost it meanwhile is
    /// not confirmed (its outcome is unknown to the client).
    pub async fn confirm_strong(&self, lsn: u64) -> Result<(), String> {
        if !self.leased() {
            self.in_sync.replicated(lsn).await;
            return Ok(());
        }
        loop {
            let done =
                tokio::time::timeout(Duration::from_millis(50), self.in_sync.replicated(lsn))
                    .await
                    .is_ok();
            if !self.lease.valid() || !self.is_active() {
                return Err("TRYAGAIN this active lost its control-plane lease before the write was confirmed; its outcome is unknown"
                    .into());
            }
            if done {
                return Ok(());
            }
        }
    }

    /// True when the stripe has other servers.
    pub fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    /// The current state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, s: State) {
        let was = State::from_u8(self.state.swap(s as u8, Ordering::AcqRel));
        if was != s {
            tracing::info!(
                "{} {} -> {} (stripe {}, epoch {})",
                self.me.name,
                was.name(),
                s.name(),
                self.stripe,
                self.epoch()
            );
            self.report_now.notify_one();
        }
    }

    /// True when this server is the stripe's active.
    pub fn is_active(&self) -> bool {
        self.state() == State::ActiveCoordinator
    }

    /// The epoch this server knows.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The active this mirror follows.
    pub fn active(&self) -> Option<Peer> {
        if self.is_active() {
            return Some(self.me.clone());
        }
        self.active.lock().clone()
    }

    /// The log, once replication started.
    pub fn log(&self) -> Option<&Arc<Log>> {
        self.log.get()
    }

    /// The last lsn this server holds.
    pub fn last_lsn(&self) -> u64 {
        self.log.get().map_or(0, |l| l.last_lsn())
    }

    /// What this server says about itself to a peer's HELLO.
    pub fn view(&self) -> wire::PeerView {
        wire::PeerView {
            name: self.me.name.clone(),
            state: self.state().name().to_string(),
            epoch: self.epoch(),
            lsn: self.last_lsn(),
            was_active: self.was_active.load(Ordering::Acquire),
            index: self.me.index,
        }
    }

    /// Why a write cannot run here now, or `None` when it can. Checked while the
    /// command's shards are locked, so a switchover's barrier sees every write that passed.
    /// `key` gives the command's first key, looked up only when the write is refused.
    #[inline]
    pub fn write_refusal<'k>(&self, key: impl FnOnce() -> Option<&'k [u8]>) -> Option<CmdError> {
        match self.gate.load(Ordering::Acquire) {
            GATE_OPEN if self.leased() && !self.lease.valid() => Some(no_lease()),
            GATE_OPEN => None,
            GATE_PAUSED => Some(CmdError::Prefixed(
                "TRYAGAIN A failover is in progress; retry the write".into(),
            )),
            _ => Some(self.redirect(key())),
        }
    }

    /// The redirect for a command this server does not serve: MOVED to the active for a
    /// keyed command, READONLY for a keyless write, CLUSTERDOWN while no active is known.
    pub fn redirect(&self, key: Option<&[u8]>) -> CmdError {
        match (key, self.active.lock().as_ref()) {
            (Some(k), Some(a)) => CmdError::Prefixed(
                format!("MOVED {} {}", redis_protocol::redis_keyslot(k), a.addr).into(),
            ),
            (None, Some(_)) => {
                CmdError::Prefixed("READONLY You can't write against a read only replica.".into())
            }
            (_, None) => CmdError::Prefixed(
                format!(
                    "CLUSTERDOWN stripe {} has no active server yet",
                    self.stripe
                )
                .into(),
            ),
        }
    }

    /// Whether a mirror serves this read: the connection sent READONLY, this mirror is
    /// PASSIVE-STANDBY and every key is of an eventual cache.
    pub fn serves_read(&self, readonly: bool, strong: bool) -> bool {
        readonly && !strong && self.state() == State::PassiveStandby
    }

    fn set_active_peer(&self, p: Option<Peer>) {
        *self.active.lock() = p;
    }

    /// INFO replication (Redis's field names).
    pub fn info(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, val: String| v.push((k.to_string(), val));
        let (backlog, first) = self.log.get().map_or((0, 0), |l| l.backlog_info());
        if self.is_active() || !self.has_peers() {
            put("role", "master".into());
            let links = self.in_sync.links();
            put("connected_slaves", links.len().to_string());
            let now = crate::store::now_ms();
            for (i, l) in links.iter().enumerate() {
                let (host, port) = l.addr.rsplit_once(':').unwrap_or((&l.addr, "0"));
                let state = if l.is_standby() {
                    "online"
                } else {
                    "wait_bgsave"
                };
                put(
                    &format!("slave{i}"),
                    format!(
                        "ip={host},port={port},state={state},offset={},lag={},name={},terrace_state={}",
                        l.acked.load(Ordering::Relaxed),
                        now.saturating_sub(l.last_contact_ms.load(Ordering::Relaxed)) / 1000,
                        l.name,
                        l.state_name()
                    ),
                );
            }
        } else {
            put("role", "slave".into());
            let active = self.active.lock().clone();
            let (host, port) = active
                .as_ref()
                .and_then(|a| a.addr.rsplit_once(':'))
                .map_or(("", "0"), |(h, p)| (h, p));
            put("master_host", host.into());
            put("master_port", port.into());
            let up = self.link_up.load(Ordering::Acquire);
            put("master_link_status", if up { "up" } else { "down" }.into());
            let io = self.last_io_ms.load(Ordering::Relaxed);
            put(
                "master_last_io_seconds_ago",
                if io == 0 {
                    "-1".into()
                } else {
                    (crate::store::now_ms().saturating_sub(io) / 1000).to_string()
                },
            );
            put(
                "master_sync_in_progress",
                u8::from(self.state() == State::Initializing).to_string(),
            );
            put("slave_repl_offset", self.last_lsn().to_string());
            put("slave_read_only", "1".into());
            put("connected_slaves", "0".into());
        }
        put("master_failover_state", "no-failover".into());
        put("master_replid", format!("{:040x}", self.epoch()));
        put("master_repl_offset", self.last_lsn().to_string());
        put(
            "repl_backlog_active",
            u8::from(self.log.get().is_some() && self.has_peers()).to_string(),
        );
        put("repl_backlog_size", self.backlog_bytes.to_string());
        put("repl_backlog_first_byte_offset", first.to_string());
        put("repl_backlog_histlen", backlog.to_string());
        v
    }
}

/// The refusal of an active without a lease.
fn no_lease() -> CmdError {
    CmdError::Prefixed(
        "TRYAGAIN this active holds no control-plane lease (just promoted, or cut off from \
         the control plane's majority); retry"
            .into(),
    )
}

/// Runs a blocked command (see [`Blocked`]) and returns its reply.
pub async fn run_blocked(
    shared: &Arc<crate::server::Shared>,
    b: Blocked,
) -> crate::protocol::Reply {
    use crate::protocol::Reply;
    let repl = &shared.repl;
    match b {
        Blocked::Wait {
            replicas,
            timeout_ms,
            lsn,
        } => {
            let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
            let n = repl.in_sync.wait_for(replicas, lsn, timeout).await;
            Reply::Int(n as i64)
        }
        Blocked::Failover { to, timeout_ms } => {
            match shipper::switchover(shared, to, Duration::from_millis(timeout_ms)).await {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::Error(format!("ERR {e}").into()),
            }
        }
    }
}
